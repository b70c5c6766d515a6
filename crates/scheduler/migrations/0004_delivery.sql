-- Who the scheduler can reach: from user.registered, and the device a user registered for
-- push notifications.
CREATE TABLE recipients (
    user_id uuid PRIMARY KEY,
    email text NOT NULL,
    full_name text NOT NULL,
    role text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    device_token text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Each booking as its newest event tells it: the reminders job reads it.
CREATE TABLE bookings (
    id uuid PRIMARY KEY,
    customer_id uuid NOT NULL,
    cleaner_id uuid,
    service text NOT NULL,
    starts_at timestamptz NOT NULL,
    status text NOT NULL,
    version bigint NOT NULL,
    -- Set when its reminders were recorded: each booking is reminded once.
    reminded_at timestamptz
);
CREATE INDEX bookings_to_remind ON bookings (starts_at)
    WHERE status = 'confirmed' AND reminded_at IS NULL;

-- Delivery: a notification is recorded once per (what, user, channel) and then sent by
-- whichever replica claims it. Rows recorded before delivery existed were never sent.
ALTER TABLE notifications
    ADD COLUMN delivery text NOT NULL DEFAULT 'not_sent'
        CHECK (delivery IN ('pending', 'sending', 'sent', 'failed', 'not_sent')),
    ADD COLUMN dedupe_key text,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN sent_at timestamptz;
ALTER TABLE notifications ALTER COLUMN delivery SET DEFAULT 'pending';
CREATE UNIQUE INDEX notifications_once ON notifications (dedupe_key);
CREATE INDEX notifications_to_send ON notifications (next_attempt_at)
    WHERE delivery IN ('pending', 'sending');
