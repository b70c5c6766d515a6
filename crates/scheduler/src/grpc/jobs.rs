//! `spruce.scheduler.v1.JobService`: the clock jobs for admins.

use chrono::Utc;
use spruce_platform::{
    identity::{Caller, Role},
    paging::{Cursor, page_limit, split_page},
    reason::FieldError,
    time::to_timestamp,
};
use spruce_proto::scheduler::v1::{
    Job as WireJob, JobRun as WireRun, ListJobsRequest, ListJobsResponse, ListRunsRequest,
    ListRunsResponse, TriggerJobRequest, job_service_server::JobService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    error::SchedulerError,
    jobs::{Options, Run, runner::ScheduledJob},
    store::jobs as store,
};

/// Serves the jobs' state and history, and queues manual runs.
pub struct JobApi {
    pool: PgPool,
    jobs: Vec<ScheduledJob>,
}

impl JobApi {
    /// Serves `jobs` from `pool`.
    pub fn new(pool: PgPool, jobs: Vec<ScheduledJob>) -> Self {
        JobApi { pool, jobs }
    }

    fn known(&self, name: &str) -> Result<&ScheduledJob, SchedulerError> {
        self.jobs
            .iter()
            .find(|job| job.name == name)
            .ok_or(SchedulerError::NotFound("job"))
    }

    async fn list(&self, caller: Option<Caller>) -> Result<ListJobsResponse, SchedulerError> {
        admin(caller)?;
        let mut connection = self.pool.acquire().await?;
        let states = store::states(&mut connection).await?;
        let mut last_runs = store::last_runs(&mut connection).await?;
        let now = Utc::now();
        let jobs = self
            .jobs
            .iter()
            .map(|job| {
                let state = states.iter().find(|state| state.name == job.name);
                let last_run = last_runs
                    .iter()
                    .position(|run| run.job == job.name)
                    .map(|at| to_wire(last_runs.swap_remove(at)));
                WireJob {
                    name: job.name.to_owned(),
                    schedule: job.schedule.expression().to_owned(),
                    time_zone: job.schedule.zone().to_owned(),
                    enabled: job.enabled,
                    last_tick: state.map(|state| to_timestamp(state.last_tick)),
                    next_tick: job
                        .enabled
                        .then(|| job.schedule.next_after(now))
                        .flatten()
                        .map(to_timestamp),
                    last_run,
                    last_success_at: state
                        .and_then(|state| state.last_success_at)
                        .map(to_timestamp),
                }
            })
            .collect();
        Ok(ListJobsResponse { jobs })
    }

    async fn trigger(
        &self,
        caller: Option<Caller>,
        request: &TriggerJobRequest,
    ) -> Result<Run, SchedulerError> {
        let caller = admin(caller)?;
        let job = self.known(&request.name)?;
        let options: Options = request
            .options
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        job.job
            .check_options(&options)
            .map_err(|message| SchedulerError::Validation(FieldError::new("options", message)))?;
        let mut connection = self.pool.acquire().await?;
        let run = store::queue_manual(&mut connection, job.name, &options).await?;
        tracing::info!(job = job.name, run_id = %run.id, by = %caller.user_id, "job run queued by hand");
        Ok(run)
    }

    async fn runs(
        &self,
        caller: Option<Caller>,
        request: &ListRunsRequest,
    ) -> Result<ListRunsResponse, SchedulerError> {
        admin(caller)?;
        let invalid = |field: &str, message: &str| {
            SchedulerError::Validation(FieldError::new(field, message))
        };
        let limit = page_limit(request.limit).map_err(|message| invalid("limit", &message))?;
        let cursor =
            Cursor::from_wire(&request.cursor).map_err(|message| invalid("cursor", &message))?;
        let job = self.known(&request.name)?;
        let mut connection = self.pool.acquire().await?;
        let rows = store::list_runs(&mut connection, job.name, cursor, limit + 1).await?;
        let (page, next) = split_page(rows, limit, |run| Cursor {
            created_at: run.created_at,
            id: run.id,
        });
        Ok(ListRunsResponse {
            runs: page.into_iter().map(to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        })
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

fn to_wire(run: Run) -> WireRun {
    WireRun {
        id: run.id.to_string(),
        job: run.job,
        trigger: run.trigger.as_str().to_owned(),
        tick: Some(to_timestamp(run.tick)),
        replica: run.replica.unwrap_or_default(),
        outcome: run.outcome.as_str().to_owned(),
        attempts: run.attempts,
        error: run.error.unwrap_or_default(),
        items: run.items,
        detail: run.detail.unwrap_or_default(),
        created_at: Some(to_timestamp(run.created_at)),
        started_at: run.started_at.map(to_timestamp),
        finished_at: run.finished_at.map(to_timestamp),
        options: run.options.into_iter().collect(),
    }
}

#[tonic::async_trait]
impl JobService for JobApi {
    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        Ok(Response::new(self.list(Caller::of(&request)).await?))
    }

    async fn trigger_job(
        &self,
        request: Request<TriggerJobRequest>,
    ) -> Result<Response<WireRun>, Status> {
        let caller = Caller::of(&request);
        let run = self.trigger(caller, request.get_ref()).await?;
        Ok(Response::new(to_wire(run)))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(self.runs(caller, request.get_ref()).await?))
    }
}
