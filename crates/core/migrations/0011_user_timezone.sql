-- The zone a user reads times in (notifications show a booking's start in it).
ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
