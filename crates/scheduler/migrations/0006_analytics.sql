-- Events on their way to the analytics archive. A row is cut into a batch once (a file
-- per day of the batch is then written under the batch's id) and kept for a while after,
-- so that a redelivered event is recognised by its id.
CREATE TABLE analytics_batches (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- A replica writing the batch's files holds it until then.
    leased_until timestamptz,
    written_at timestamptz
);
CREATE INDEX analytics_batches_unwritten ON analytics_batches (id) WHERE written_at IS NULL;

CREATE TABLE analytics_events (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    aggregate_id text NOT NULL,
    aggregate_version bigint NOT NULL,
    payload text NOT NULL,
    trace_id text,
    received_at timestamptz NOT NULL DEFAULT now(),
    batch bigint REFERENCES analytics_batches (id)
);
CREATE INDEX analytics_events_waiting ON analytics_events (seq) WHERE batch IS NULL;
CREATE INDEX analytics_events_batch ON analytics_events (batch);
