-- The scheduler's sweeps read requested bookings only: the ones to expire and the open ones
-- to assign, oldest request first.
CREATE INDEX bookings_requested ON bookings (created_at, id) WHERE status = 'requested';
