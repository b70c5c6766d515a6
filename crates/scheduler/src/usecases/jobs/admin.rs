//! What admins see of the clock jobs and how they start one by hand.

use chrono::{DateTime, Utc};
use spruce_domain::reason::FieldError;
use spruce_platform::{
    identity::{Caller, Role},
    paging::{Cursor, split_page},
};
use sqlx::PgPool;

use crate::{
    domain::jobs::{Options, Run},
    error::SchedulerError,
    store::jobs as store,
    usecases::jobs::runner::ScheduledJob,
};

/// A job as admins see it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub name: &'static str,
    /// Its cron expression and the zone it reads in.
    pub schedule: String,
    pub time_zone: String,
    pub enabled: bool,
    pub last_tick: Option<DateTime<Utc>>,
    /// When it runs next (none while switched off).
    pub next_tick: Option<DateTime<Utc>>,
    pub last_run: Option<Run>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// The jobs' state and history, and manual runs, for admins only.
pub struct JobAdmin {
    pool: PgPool,
    jobs: Vec<ScheduledJob>,
}

impl JobAdmin {
    /// Serves `jobs`, whose state and runs are in `pool`.
    pub fn new(pool: PgPool, jobs: Vec<ScheduledJob>) -> Self {
        JobAdmin { pool, jobs }
    }

    fn known(&self, name: &str) -> Result<&ScheduledJob, SchedulerError> {
        self.jobs
            .iter()
            .find(|job| job.name == name)
            .ok_or(SchedulerError::NotFound("job"))
    }

    /// Every job with its last tick, next tick and last run.
    ///
    /// # Errors
    /// Unauthenticated, permission denied for anyone but an admin, or a database failure.
    pub async fn list(&self, caller: Option<Caller>) -> Result<Vec<JobView>, SchedulerError> {
        admin(caller)?;
        let mut connection = self.pool.acquire().await?;
        let states = store::states(&mut connection).await?;
        let mut last_runs = store::last_runs(&mut connection).await?;
        let now = Utc::now();
        Ok(self
            .jobs
            .iter()
            .map(|job| {
                let state = states.iter().find(|state| state.name == job.name);
                JobView {
                    name: job.name,
                    schedule: job.schedule.expression().to_owned(),
                    time_zone: job.schedule.zone().to_owned(),
                    enabled: job.enabled,
                    last_tick: state.map(|state| state.last_tick),
                    next_tick: job.enabled.then(|| job.schedule.next_after(now)).flatten(),
                    last_run: last_runs
                        .iter()
                        .position(|run| run.job == job.name)
                        .map(|at| last_runs.swap_remove(at)),
                    last_success_at: state.and_then(|state| state.last_success_at),
                }
            })
            .collect())
    }

    /// Queues a run of job `name` with `options`, for any replica to take.
    ///
    /// # Errors
    /// Unauthenticated, permission denied, not found for an unknown job, a validation error
    /// for options the job does not take, or a database failure.
    pub async fn trigger(
        &self,
        caller: Option<Caller>,
        name: &str,
        options: Options,
    ) -> Result<Run, SchedulerError> {
        let caller = admin(caller)?;
        let job = self.known(name)?;
        job.job
            .check_options(&options)
            .map_err(|message| SchedulerError::Validation(FieldError::new("options", message)))?;
        let mut connection = self.pool.acquire().await?;
        let run = store::queue_manual(&mut connection, job.name, &options).await?;
        tracing::info!(job = job.name, run_id = %run.id, by = %caller.user_id, "job run queued by hand");
        Ok(run)
    }

    /// A page of job `name`'s runs, newest first, and where the next page starts.
    ///
    /// # Errors
    /// Unauthenticated, permission denied, not found for an unknown job, or a database
    /// failure.
    pub async fn runs(
        &self,
        caller: Option<Caller>,
        name: &str,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<Run>, Option<Cursor>), SchedulerError> {
        admin(caller)?;
        let job = self.known(name)?;
        let mut connection = self.pool.acquire().await?;
        // One extra row tells whether another page exists.
        let rows = store::list_runs(&mut connection, job.name, after, limit + 1).await?;
        Ok(split_page(rows, limit, |run| Cursor {
            created_at: run.created_at,
            id: run.id,
        }))
    }
}

/// Only admins see and run jobs.
fn admin(caller: Option<Caller>) -> Result<Caller, SchedulerError> {
    let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
    if caller.role == Role::Admin {
        Ok(caller)
    } else {
        Err(SchedulerError::PermissionDenied("only admins manage jobs"))
    }
}
