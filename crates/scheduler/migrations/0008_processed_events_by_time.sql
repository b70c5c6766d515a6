-- The inbox forgets events processed longer ago than the bus's retention (spruce-bus's
-- consumer, once a minute). Rows arrive in processed_at order, so a BRIN index finds the old
-- ones for the price of a few pages, and costs next to nothing on insert.
CREATE INDEX processed_events_by_time ON processed_events USING brin (processed_at);
