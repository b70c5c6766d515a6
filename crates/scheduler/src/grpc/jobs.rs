//! `spruce.scheduler.v1.JobService`, the clock jobs for admins: wire in, use cases, wire out.

use spruce_platform::{
    identity::Caller,
    paging::{Cursor, page_limit},
    time::to_timestamp,
};
use spruce_proto::scheduler::v1::{
    Job as WireJob, JobRun as WireRun, ListJobsRequest, ListJobsResponse, ListRunsRequest,
    ListRunsResponse, TriggerJobRequest, job_service_server::JobService,
};
use tonic::{Request, Response, Status};

use super::invalid;

use crate::{
    domain::jobs::{Options, Run},
    usecases::jobs::admin::{JobAdmin, JobView},
};

/// Serves the jobs' state and history, and queues manual runs.
pub struct JobApi {
    admin: JobAdmin,
}

impl JobApi {
    /// Serves `admin`'s jobs.
    pub fn new(admin: JobAdmin) -> Self {
        JobApi { admin }
    }
}

fn job_to_wire(job: JobView) -> WireJob {
    WireJob {
        name: job.name.to_owned(),
        schedule: job.schedule,
        time_zone: job.time_zone,
        enabled: job.enabled,
        last_tick: job.last_tick.map(to_timestamp),
        next_tick: job.next_tick.map(to_timestamp),
        last_run: job.last_run.map(run_to_wire),
        last_success_at: job.last_success_at.map(to_timestamp),
    }
}

fn run_to_wire(run: Run) -> WireRun {
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
        let jobs = self.admin.list(Caller::of(&request)).await?;
        Ok(Response::new(ListJobsResponse {
            jobs: jobs.into_iter().map(job_to_wire).collect(),
        }))
    }

    async fn trigger_job(
        &self,
        request: Request<TriggerJobRequest>,
    ) -> Result<Response<WireRun>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let options: Options = wire
            .options
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let run = self.admin.trigger(caller, &wire.name, options).await?;
        Ok(Response::new(run_to_wire(run)))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let limit = page_limit(wire.limit).map_err(|message| invalid("limit", &message))?;
        let after =
            Cursor::from_wire(&wire.cursor).map_err(|message| invalid("cursor", &message))?;
        let (page, next) = self.admin.runs(caller, &wire.name, after, limit).await?;
        Ok(Response::new(ListRunsResponse {
            runs: page.into_iter().map(run_to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }
}
