-- Which estimate set a booking's duration (and so its price): search's duration model, with
-- the version that answered, or core's rule of thumb when search could not answer in time.
-- Bookings made before this column existed were all estimated by the rule of thumb.
ALTER TABLE bookings
    ADD COLUMN estimated_by text NOT NULL DEFAULT 'rule_of_thumb'
        CHECK (estimated_by IN ('model', 'rule_of_thumb')),
    ADD COLUMN model_version bigint,
    ADD CONSTRAINT bookings_model_version
        CHECK ((estimated_by = 'model') = (model_version IS NOT NULL AND model_version > 0));
