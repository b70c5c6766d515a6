-- The trained model itself (trees and cleaners' speeds, as JSON), beside its metrics.
ALTER TABLE model_versions ADD COLUMN model text NOT NULL DEFAULT '';
-- At most one version serves.
CREATE UNIQUE INDEX model_versions_one_active ON model_versions (active) WHERE active;
