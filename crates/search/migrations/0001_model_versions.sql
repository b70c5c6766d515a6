-- Versions of the cleaning-duration model; training arrives with the prediction issue.
CREATE TABLE model_versions (
    version bigserial PRIMARY KEY,
    trained_at timestamptz NOT NULL DEFAULT now(),
    parameters jsonb NOT NULL,
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    active boolean NOT NULL DEFAULT false
);
