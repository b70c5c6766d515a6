-- The archive's queue records each event's envelope as it came (protobuf); its payload is
-- read, and the personal data taken out, only when its batch's files are built. Rows
-- recorded before keep their payload as JSON, already without personal data. Once a
-- batch's files are written its rows keep only what recognises a redelivery: neither. The
-- check is validated apart, so that the consumer's inserts are not blocked meanwhile.
ALTER TABLE analytics_events ADD COLUMN envelope bytea;
ALTER TABLE analytics_events ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE analytics_events ADD CONSTRAINT analytics_events_payload_or_envelope
    CHECK (payload IS NULL OR envelope IS NULL) NOT VALID;
ALTER TABLE analytics_events VALIDATE CONSTRAINT analytics_events_payload_or_envelope;
