-- Booking creation holds the slot first (status pending_payment, with the payment token),
-- authorizes the card outside any transaction, then confirms the hold (requested) or drops
-- it. A hold still pending after a few minutes is released by core's sweeper.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (
    status IN ('pending_payment', 'requested', 'confirmed', 'in_progress', 'completed', 'cancelled')
);
ALTER TABLE bookings ADD COLUMN payment_token text;
ALTER TABLE bookings ADD CONSTRAINT bookings_token_only_while_held
    CHECK (payment_token IS NULL OR status = 'pending_payment');

ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
    cleaner_id WITH =,
    tstzrange(starts_at, ends_at) WITH &&
) WHERE (cleaner_id IS NOT NULL
         AND status IN ('pending_payment', 'requested', 'confirmed', 'in_progress'));

CREATE INDEX bookings_held ON bookings (created_at) WHERE status = 'pending_payment';

-- Capture and release are asked of the provider after the booking's own change commits:
-- capture_pending and release_pending until it answers (the sweeper asks again).
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (
    status IN ('authorized', 'capture_pending', 'captured', 'release_pending', 'released')
);
CREATE INDEX payments_unsettled ON payments (updated_at)
    WHERE status IN ('capture_pending', 'release_pending');
