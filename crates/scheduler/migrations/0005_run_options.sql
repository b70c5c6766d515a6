-- What a manual run was asked to do differently (a JSON object of strings), e.g. the
-- matching mode of one auto-assign run.
ALTER TABLE job_runs ADD COLUMN options text NOT NULL DEFAULT '{}';
