//! Runs each clock job once per tick, however many replicas run.
//!
//! Every replica polls every job. When a tick is due (or a manual run is queued), a replica
//! takes the job's PostgreSQL advisory lock on a connection of its own, claims the tick
//! with an update only one replica can win, and runs it while it holds the lock:
//!
//! - **once per tick**: the claim moves `job_state.last_tick` forward in the same statement
//!   that opens the run, and a unique index allows one scheduled run per tick;
//! - **missed ticks run once**: the tick claimed is the latest one due, so a replica back
//!   from downtime runs one catch-up run, not one per missed tick;
//! - **never twice at once**: a run that outlives its tick keeps the lock, so the next tick
//!   waits, unclaimed, and runs (once) when the lock is free;
//! - **a dead replica**: its connection closes, which releases the lock; the next holder
//!   marks its run abandoned. The lock's connection is pinged while a job runs, and a job
//!   whose lock is lost is stopped, so two replicas never run it together;
//! - **failures** are retried with exponential backoff, up to `max_attempts` per run.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use spruce_platform::settings::{self, DatabaseSettings};
use sqlx::{Connection as _, PgConnection};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{
    jobs::{Job, Options, Outcome, RunContext, RunReport},
    schedule::Schedule,
};
use crate::{
    metrics,
    retry::backoff,
    store::jobs::{self as store, Finish},
};

/// How the runner polls, retries and watches its locks: `[runner]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RunnerSettings {
    /// This replica's name in the run history. Empty: `HOSTNAME` (the pod's name), else a
    /// random name.
    pub replica: String,
    /// Between two looks at a job's state: how late a tick may start.
    #[serde(deserialize_with = "settings::duration")]
    pub poll: Duration,
    /// Attempts per run before it is recorded as failed.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    #[serde(deserialize_with = "settings::duration")]
    pub retry_base: Duration,
    /// The longest wait between attempts.
    #[serde(deserialize_with = "settings::duration")]
    pub retry_max: Duration,
    /// Between two pings of the lock's connection while a job runs.
    #[serde(deserialize_with = "settings::duration")]
    pub heartbeat: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            replica: String::new(),
            poll: Duration::from_secs(1),
            max_attempts: 3,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// A job with its name, schedule and switch.
#[derive(Clone)]
pub struct ScheduledJob {
    pub name: &'static str,
    pub schedule: Schedule,
    /// Whether its ticks run here; manual runs run either way.
    pub enabled: bool,
    pub job: Arc<dyn Job>,
}

/// The clock jobs of one replica.
pub struct Runner {
    database: DatabaseSettings,
    replica: String,
    settings: RunnerSettings,
    jobs: Vec<ScheduledJob>,
}

impl Runner {
    /// Runs `jobs` as `replica`, with a database connection per job for its lock.
    pub fn new(
        database: DatabaseSettings,
        replica: String,
        settings: RunnerSettings,
        jobs: Vec<ScheduledJob>,
    ) -> Self {
        Runner {
            database,
            replica,
            settings,
            jobs,
        }
    }

    /// Adds the jobs this replica knows to the database, each waiting for its next tick.
    ///
    /// # Errors
    /// Fails when the database does.
    pub async fn register(&self, connection: &mut PgConnection) -> sqlx::Result<()> {
        let now = Utc::now();
        for job in &self.jobs {
            let tick = job.schedule.latest_due(now).unwrap_or(now);
            store::register(connection, job.name, tick).await?;
            // Every job's counters exist from the start, at zero, so the alerts on their
            // increase read a series before the first run ends.
            for outcome in [Outcome::Succeeded, Outcome::Failed, Outcome::Abandoned] {
                metrics::JOB_RUNS.with_label_values(&[job.name, outcome.as_str()]);
            }
            metrics::JOB_FAILURES.with_label_values(&[job.name]);
            metrics::JOB_ITEMS.with_label_values(&[job.name]);
        }
        Ok(())
    }

    /// Polls every job until `shutdown`; a run in progress is cut off then (and recorded as
    /// abandoned), which its job must tolerate anyway.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for job in self.jobs {
            let worker = Worker {
                job,
                database: self.database.clone(),
                replica: self.replica.clone(),
                settings: self.settings.clone(),
                connection: None,
            };
            tasks.spawn(worker.run(shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// One job's loop on one replica.
struct Worker {
    job: ScheduledJob,
    database: DatabaseSettings,
    replica: String,
    settings: RunnerSettings,
    /// The connection the job's lock is taken on (its own, so that a dying replica's lock
    /// dies with it and is never handed back to a pool still held).
    connection: Option<PgConnection>,
}

impl Worker {
    async fn run(mut self, shutdown: CancellationToken) {
        let name = self.job.name;
        let period = if self.job.enabled {
            self.job
                .schedule
                .period_after(Utc::now())
                .map_or(0.0, |period| period.as_seconds_f64())
        } else {
            0.0
        };
        metrics::JOB_PERIOD.with_label_values(&[name]).set(period);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
            if let Err(error) = self.step(&shutdown).await {
                tracing::warn!(job = name, error = %format!("{error:#}"), "job step failed");
                // A fresh connection next time: this one may be broken.
                self.connection = None;
            }
        }
        if let Some(connection) = self.connection.take() {
            connection.close().await.ok();
        }
    }

    /// Looks at the job once; runs what is due if this replica gets the lock.
    async fn step(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let job = self.job.clone();
        let replica = self.replica.clone();
        let settings = self.settings.clone();
        let connection = self.connection().await?;
        let Some(state) = store::state(connection, job.name).await? else {
            let now = Utc::now();
            store::register(
                connection,
                job.name,
                job.schedule.latest_due(now).unwrap_or(now),
            )
            .await?;
            return Ok(());
        };
        metrics::JOB_LAST_SUCCESS
            .with_label_values(&[job.name])
            .set(state.healthy_since.timestamp() as f64);
        let due = if job.enabled {
            job.schedule
                .latest_due(Utc::now())
                .filter(|due| *due > state.last_tick)
        } else {
            None
        };
        if due.is_none() && !state.queued {
            return Ok(());
        }
        if !store::try_lock(connection, job.name).await? {
            // Another replica is running it; a due tick waits for the lock.
            return Ok(());
        }
        let ran = run_locked(connection, &job, &replica, &settings, due, shutdown).await;
        if store::unlock(connection, job.name).await.is_err() {
            // Closing the connection releases the lock.
            self.connection = None;
        }
        ran
    }

    async fn connection(&mut self) -> anyhow::Result<&mut PgConnection> {
        if self.connection.is_none() {
            let connection =
                PgConnection::connect_with(&spruce_db::connect_options(&self.database)).await?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }
}

/// With the job's lock held: closes what a dead replica left running, then runs the queued
/// manual runs and the due tick.
async fn run_locked(
    connection: &mut PgConnection,
    job: &ScheduledJob,
    replica: &str,
    settings: &RunnerSettings,
    mut due: Option<DateTime<Utc>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let abandoned = store::abandon_running(
        connection,
        job.name,
        "its replica stopped or lost its database connection mid-run",
    )
    .await?;
    if abandoned > 0 {
        metrics::JOB_RUNS
            .with_label_values(&[job.name, Outcome::Abandoned.as_str()])
            .inc_by(abandoned);
        tracing::warn!(
            job = job.name,
            abandoned,
            "runs of a lost replica marked abandoned"
        );
    }
    while !shutdown.is_cancelled() {
        let (run_id, tick, options) =
            if let Some(queued) = store::claim_queued(connection, job.name, replica).await? {
                queued
            } else if let Some(tick) = due.take() {
                match store::claim_tick(connection, job.name, tick, replica).await? {
                    Some(run_id) => (run_id, tick, Options::new()),
                    // Another replica ran this tick before this one got the lock.
                    None => break,
                }
            } else {
                break;
            };
        execute(connection, job, settings, (run_id, tick, options), shutdown).await?;
    }
    Ok(())
}

/// Runs one run to its end, retrying failures, and records the outcome.
async fn execute(
    connection: &mut PgConnection,
    job: &ScheduledJob,
    settings: &RunnerSettings,
    (run_id, tick, options): (Uuid, DateTime<Utc>, Options),
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let name = job.name;
    tracing::info!(job = name, run_id = %run_id, tick = %tick, "job run started");
    let timer = metrics::JOB_DURATION
        .with_label_values(&[name])
        .start_timer();
    let mut attempt = 0;
    let (outcome, report, error) = loop {
        attempt += 1;
        let context = RunContext {
            run_id,
            tick,
            attempt,
            options: options.clone(),
        };
        let result = tokio::select! {
            result = job.job.run(context) => result,
            lost = heartbeat(connection, settings.heartbeat) => {
                // The lock may be gone with its connection: stop before another replica
                // starts the same job.
                return Err(lost.context("the job's lock connection failed; run stopped"));
            }
            () = shutdown.cancelled() => {
                let finish = Finish {
                    outcome: Outcome::Abandoned,
                    attempts: attempt,
                    items: 0,
                    detail: None,
                    error: Some("the replica stopped mid-run"),
                };
                store::finish(connection, run_id, &finish).await?;
                record(name, Outcome::Abandoned, 0);
                return Ok(());
            }
        };
        match result {
            Ok(report) => break (Outcome::Succeeded, report, None),
            Err(error) => {
                let error = format!("{error:#}");
                metrics::JOB_FAILURES.with_label_values(&[name]).inc();
                tracing::warn!(job = name, run_id = %run_id, attempt, error = %error, "job attempt failed");
                if attempt >= settings.max_attempts {
                    break (Outcome::Failed, RunReport::default(), Some(error));
                }
                store::record_attempt(connection, run_id, attempt, &error).await?;
                let wait = backoff(settings.retry_base, settings.retry_max, attempt);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    };
    timer.observe_duration();
    let finish = Finish {
        outcome,
        attempts: attempt,
        items: report.items,
        detail: report.detail.as_deref(),
        error: error.as_deref(),
    };
    store::finish(connection, run_id, &finish).await?;
    record(name, outcome, report.items);
    tracing::info!(
        job = name,
        run_id = %run_id,
        outcome = outcome.as_str(),
        attempts = attempt,
        items = report.items,
        "job run finished"
    );
    Ok(())
}

fn record(job: &str, outcome: Outcome, items: u64) {
    metrics::JOB_RUNS
        .with_label_values(&[job, outcome.as_str()])
        .inc();
    metrics::JOB_ITEMS.with_label_values(&[job]).inc_by(items);
}

/// Pings `connection` every `every`; returns only when a ping fails.
async fn heartbeat(connection: &mut PgConnection, every: Duration) -> anyhow::Error {
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = connection.ping().await {
            return error.into();
        }
    }
}
