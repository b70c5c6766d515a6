//! The `job_state` and `job_runs` tables: per-tick claims and the run history.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use spruce_platform::paging::Cursor;

use crate::domain::jobs::{Options, Outcome, Run, Trigger};

/// The columns [`StoredRun`] reads; a literal, so no SQL is built at run time.
macro_rules! run_columns {
    () => {
        "id, job, trigger, tick, replica, outcome, attempts, error, items, detail, created_at, \
         started_at, finished_at, options"
    };
}

/// Adds `job` with `tick` as its last tick, unless it is known: a new job waits for its
/// next tick instead of running at once.
pub async fn register(
    connection: &mut PgConnection,
    job: &str,
    tick: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO job_state (name, last_tick) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(job)
        .bind(tick)
        .execute(connection)
        .await?;
    Ok(())
}

spruce_db::named_row! {
    /// What a replica needs to decide whether a job has work.
    pub struct JobState {
        pub last_tick: DateTime<Utc>,
        /// The last success, else when the job was registered.
        pub healthy_since: DateTime<Utc>,
        pub queued: bool,
    }
}

/// Returns `job`'s state, `None` before it is registered.
pub async fn state(connection: &mut PgConnection, job: &str) -> sqlx::Result<Option<JobState>> {
    sqlx::query_as(
        "SELECT last_tick, coalesce(last_success_at, registered_at) AS healthy_since, EXISTS (SELECT 1 FROM job_runs \
         WHERE job = $1 AND outcome = 'queued') AS queued FROM job_state WHERE name = $1",
    )
    .bind(job)
    .fetch_optional(connection)
    .await
}

/// Takes `job`'s session-level advisory lock without waiting; true when this connection
/// holds it now. Whoever holds it is the only one running the job.
pub async fn try_lock(connection: &mut PgConnection, job: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('spruce.job'), hashtext($1))")
        .bind(job)
        .fetch_one(connection)
        .await
}

/// Releases `job`'s advisory lock held by this connection.
pub async fn unlock(connection: &mut PgConnection, job: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext('spruce.job'), hashtext($1))")
        .bind(job)
        .execute(connection)
        .await?;
    Ok(())
}

/// Marks `job`'s runs still `running` as abandoned: called by the lock's holder, so no
/// replica is running them (theirs died with its connection).
pub async fn abandon_running(
    connection: &mut PgConnection,
    job: &str,
    why: &str,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE job_runs SET outcome = 'abandoned', error = $2, finished_at = now() \
         WHERE job = $1 AND outcome = 'running'",
    )
    .bind(job)
    .bind(why)
    .execute(connection)
    .await?;
    Ok(done.rows_affected())
}

/// Claims `job`'s tick `due` and opens its run, in one statement: only the replica whose
/// update moved `last_tick` forward gets the run's id; the others get `None`.
pub async fn claim_tick(
    connection: &mut PgConnection,
    job: &str,
    due: DateTime<Utc>,
    replica: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "WITH claimed AS (UPDATE job_state SET last_tick = $2 \
                          WHERE name = $1 AND last_tick < $2 RETURNING name) \
         INSERT INTO job_runs (id, job, trigger, tick, replica, outcome, started_at) \
         SELECT $3, name, 'schedule', $2, $4, 'running', now() FROM claimed \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(job)
    .bind(due)
    .bind(Uuid::new_v4())
    .bind(replica)
    .fetch_optional(connection)
    .await
}

/// Starts the oldest queued manual run of `job`, if any: its id, tick and options.
pub async fn claim_queued(
    connection: &mut PgConnection,
    job: &str,
    replica: &str,
) -> sqlx::Result<Option<(Uuid, DateTime<Utc>, Options)>> {
    let claimed: Option<(Uuid, DateTime<Utc>, String)> = sqlx::query_as(
        "UPDATE job_runs SET outcome = 'running', replica = $2, started_at = now() \
         WHERE id = (SELECT id FROM job_runs WHERE job = $1 AND outcome = 'queued' \
                     ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, tick, options",
    )
    .bind(job)
    .bind(replica)
    .fetch_optional(connection)
    .await?;
    claimed
        .map(|(id, tick, options)| {
            let options = serde_json::from_str(&options)
                .map_err(|error| sqlx::Error::Decode(format!("run {id}: {error}").into()))?;
            Ok((id, tick, options))
        })
        .transpose()
}

/// Queues a manual run of `job` with `options` for the next replica free to run it.
pub async fn queue_manual(
    connection: &mut PgConnection,
    job: &str,
    options: &Options,
) -> sqlx::Result<Run> {
    let options =
        serde_json::to_string(options).map_err(|error| sqlx::Error::Encode(error.into()))?;
    let row: StoredRun = sqlx::query_as(concat!(
        "INSERT INTO job_runs (id, job, trigger, tick, outcome, options) \
         VALUES ($1, $2, 'manual', now(), 'queued', $3) RETURNING ",
        run_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(job)
    .bind(options)
    .fetch_one(connection)
    .await?;
    row.into_run()
}

/// Records how many attempts a run has made and the last error.
pub async fn record_attempt(
    connection: &mut PgConnection,
    run: Uuid,
    attempts: u32,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE job_runs SET attempts = $2, error = $3 WHERE id = $1")
        .bind(run)
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(error)
        .execute(connection)
        .await?;
    Ok(())
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub outcome: Outcome,
    pub attempts: u32,
    pub items: u64,
    pub detail: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Closes a run; a success also becomes the job's `last_success_at`.
pub async fn finish(
    connection: &mut PgConnection,
    run: Uuid,
    finish: &Finish<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH closed AS (UPDATE job_runs SET outcome = $2, attempts = $3, items = $4, \
                         detail = $5, error = $6, finished_at = now() \
                         WHERE id = $1 RETURNING job, outcome, finished_at) \
         UPDATE job_state SET last_success_at = closed.finished_at FROM closed \
         WHERE job_state.name = closed.job AND closed.outcome = 'succeeded'",
    )
    .bind(run)
    .bind(finish.outcome.as_str())
    .bind(i32::try_from(finish.attempts).unwrap_or(i32::MAX))
    .bind(i64::try_from(finish.items).unwrap_or(i64::MAX))
    .bind(finish.detail)
    .bind(finish.error)
    .execute(connection)
    .await?;
    Ok(())
}

spruce_db::named_row! {
    /// A run as stored.
    struct StoredRun {
        id: Uuid,
        job: String,
        trigger: String,
        tick: DateTime<Utc>,
        replica: Option<String>,
        outcome: String,
        attempts: i32,
        error: Option<String>,
        items: i64,
        detail: Option<String>,
        created_at: DateTime<Utc>,
        started_at: Option<DateTime<Utc>>,
        finished_at: Option<DateTime<Utc>>,
        options: String,
    }
}

impl StoredRun {
    fn into_run(self) -> sqlx::Result<Run> {
        let id = self.id;
        let bad = |error: String| sqlx::Error::Decode(format!("stored run {id}: {error}").into());
        Ok(Run {
            id,
            job: self.job,
            trigger: self.trigger.parse::<Trigger>().map_err(bad)?,
            tick: self.tick,
            replica: self.replica,
            outcome: self.outcome.parse::<Outcome>().map_err(bad)?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            error: self.error,
            items: u64::try_from(self.items).unwrap_or(0),
            detail: self.detail,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            options: serde_json::from_str(&self.options).map_err(|error| bad(error.to_string()))?,
        })
    }
}

/// Returns up to `limit` of `job`'s runs, newest first, after `after`.
pub async fn list_runs(
    connection: &mut PgConnection,
    job: &str,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredRun> = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM job_runs WHERE job = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(job)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(StoredRun::into_run).collect()
}

/// Returns one run.
pub async fn find_run(connection: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Run>> {
    let row: Option<StoredRun> = sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM job_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(StoredRun::into_run).transpose()
}

spruce_db::named_row! {
    /// A job's row in `job_state`.
    pub struct StoredState {
        pub name: String,
        pub last_tick: DateTime<Utc>,
        pub last_success_at: Option<DateTime<Utc>>,
    }
}

/// Returns every registered job's state.
pub async fn states(connection: &mut PgConnection) -> sqlx::Result<Vec<StoredState>> {
    sqlx::query_as("SELECT name, last_tick, last_success_at FROM job_state ORDER BY name")
        .fetch_all(connection)
        .await
}

/// Returns each job's newest run.
pub async fn last_runs(connection: &mut PgConnection) -> sqlx::Result<Vec<Run>> {
    let rows: Vec<StoredRun> = sqlx::query_as(concat!(
        "SELECT DISTINCT ON (job) ",
        run_columns!(),
        " FROM job_runs ORDER BY job, created_at DESC, id DESC"
    ))
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(StoredRun::into_run).collect()
}
