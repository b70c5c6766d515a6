-- One row per clock job: the last tick a replica claimed (the claim is an UPDATE that only
-- one replica can win per tick) and when it last succeeded (for the staleness alert).
CREATE TABLE job_state (
    name text PRIMARY KEY,
    last_tick timestamptz NOT NULL,
    last_success_at timestamptz,
    registered_at timestamptz NOT NULL DEFAULT now()
);

-- Every run, scheduled or triggered by hand: a manual run is queued here and picked up by
-- whichever replica holds the job's lock next.
CREATE TABLE job_runs (
    id uuid PRIMARY KEY,
    job text NOT NULL REFERENCES job_state (name),
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    tick timestamptz NOT NULL,
    replica text,
    outcome text NOT NULL
        CHECK (outcome IN ('queued', 'running', 'succeeded', 'failed', 'abandoned')),
    attempts integer NOT NULL DEFAULT 0,
    error text,
    items bigint NOT NULL DEFAULT 0,
    detail text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);

-- A scheduled tick runs once, whatever the replicas do.
CREATE UNIQUE INDEX job_runs_once_per_tick ON job_runs (job, tick) WHERE trigger = 'schedule';
CREATE INDEX job_runs_by_job ON job_runs (job, created_at DESC, id DESC);
CREATE INDEX job_runs_open ON job_runs (job) WHERE outcome IN ('queued', 'running');
