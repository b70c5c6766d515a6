-- Lets the exclusion constraint below compare uuids with = inside a GiST index.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE bookings (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES users (id),
    cleaner_id uuid REFERENCES users (id),
    address_id uuid NOT NULL REFERENCES addresses (id),
    service text NOT NULL CHECK (service IN ('standard', 'deep', 'move_out', 'office')),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
    duration_min integer NOT NULL CHECK (duration_min > 0),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('requested', 'confirmed', 'in_progress', 'completed', 'cancelled')),
    actual_duration_min integer CHECK (actual_duration_min > 0),
    idempotency_key text NOT NULL,
    -- SHA-256 of the request, to tell a replay from a different request with the same key.
    request_hash bytea NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_idempotency_key UNIQUE (customer_id, idempotency_key),
    -- A cleaner never holds two overlapping live bookings; the loser of a race gets 409.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        cleaner_id WITH =,
        tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (cleaner_id IS NOT NULL AND status IN ('requested', 'confirmed', 'in_progress'))
);

CREATE INDEX bookings_by_customer ON bookings (customer_id, created_at DESC, id DESC);
CREATE INDEX bookings_by_cleaner ON bookings (cleaner_id, created_at DESC, id DESC);

CREATE TABLE payments (
    id uuid PRIMARY KEY,
    booking_id uuid NOT NULL UNIQUE REFERENCES bookings (id) ON DELETE CASCADE,
    provider text NOT NULL,
    -- The provider's id for the authorization (payment intent).
    provider_reference text NOT NULL,
    amount_cents bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL CHECK (status IN ('authorized', 'captured', 'released')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
