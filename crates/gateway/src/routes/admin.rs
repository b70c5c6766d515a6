//! `/v1/admin`: the scheduler's clock jobs for operators (admins only; the scheduler
//! refuses anyone else with 403).

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use spruce_proto::scheduler::v1::{
    Job, JobRun, ListJobsRequest, ListRunsRequest, TriggerJobRequest,
};

use super::{AppState, PageQuery, page, page_limit, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiQuery, optional_json},
};

/// A clock job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
pub(super) struct JobBody {
    name: String,
    /// Cron: five fields, or six with seconds first.
    schedule: String,
    time_zone: String,
    /// Whether its ticks run (a manual run runs either way).
    enabled: bool,
    last_tick: Option<String>,
    /// Unset when switched off.
    next_tick: Option<String>,
    #[schema(format = DateTime)]
    last_success_at: Option<String>,
    last_run: Option<RunBody>,
}

/// One run of a job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Run)]
pub(super) struct RunBody {
    #[schema(format = Uuid)]
    id: String,
    job: String,
    /// `schedule` or `manual`.
    trigger: String,
    tick: Option<String>,
    /// Empty while queued.
    replica: String,
    /// `queued`, `running`, `succeeded`, `failed` or `abandoned`.
    outcome: String,
    attempts: u32,
    error: String,
    items: u64,
    detail: String,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    options: BTreeMap<String, String>,
}

page! {
    /// A job's runs, newest first.
    RunPage of RunBody
}

impl From<JobRun> for RunBody {
    fn from(run: JobRun) -> Self {
        RunBody {
            tick: run.tick.as_ref().and_then(rfc3339),
            created_at: run.created_at.as_ref().and_then(rfc3339),
            started_at: run.started_at.as_ref().and_then(rfc3339),
            finished_at: run.finished_at.as_ref().and_then(rfc3339),
            id: run.id,
            job: run.job,
            trigger: run.trigger,
            replica: run.replica,
            outcome: run.outcome,
            attempts: run.attempts,
            error: run.error,
            items: run.items,
            detail: run.detail,
            options: run.options.into_iter().collect(),
        }
    }
}

impl From<Job> for JobBody {
    fn from(job: Job) -> Self {
        JobBody {
            last_tick: job.last_tick.as_ref().and_then(rfc3339),
            next_tick: job.next_tick.as_ref().and_then(rfc3339),
            last_success_at: job.last_success_at.as_ref().and_then(rfc3339),
            last_run: job.last_run.map(RunBody::from),
            name: job.name,
            schedule: job.schedule,
            time_zone: job.time_zone,
            enabled: job.enabled,
        }
    }
}

/// The jobs' list, wrapped like every list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct JobList {
    items: Vec<JobBody>,
}

/// `POST /v1/admin/jobs/{name}/run` body, optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RunRequest {
    /// What this run should do differently; auto-assign takes `mode`: `cheapest` or
    /// `stable`. Other jobs take none.
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// A job's name from the path: bounded before it travels further.
fn job_name(name: &str) -> Result<String, ApiError> {
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    if plausible {
        Ok(name.to_owned())
    } else {
        Err(ApiError::not_found())
    }
}

/// Lists the clock jobs with their schedules and last runs.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every job", body = JobList),
        (status = 403, description = "admins only")
    )
)]
pub(super) async fn list_jobs(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<JobList>, ApiError> {
    let response = state
        .upstreams
        .jobs
        .clone()
        .list_jobs(user.request(ListJobsRequest {}))
        .await?
        .into_inner();
    Ok(Json(JobList {
        items: response.jobs.into_iter().map(JobBody::from).collect(),
    }))
}

/// Queues a run of a job now; a scheduler replica picks it up within a poll.
#[utoipa::path(
    post,
    path = "/v1/admin/jobs/{name}/run",
    tag = "admin",
    params(
        (
            "name" = String,
            Path,
            description = "booking-reminders, expire-unconfirmed, auto-assign, retrain-duration-model or export-analytics"
        )
    ),
    request_body(content = Option<RunRequest>, description = "optional: {\"options\": {\"mode\": \"stable\"}}"),
    security(("bearer" = [])),
    responses(
        (
            status = 202,
            description = "the queued run; follow it at /v1/admin/jobs/{name}/runs",
            body = RunBody
        ),
        (status = 403, description = "admins only"),
        (status = 404, description = "no such job")
    )
)]
pub(super) async fn run_job(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RunBody>), ApiError> {
    let name = job_name(&name)?;
    let body: RunRequest = optional_json(&body)?;
    if body.options.len() > 16
        || body
            .options
            .iter()
            .any(|(name, value)| name.len() > 64 || value.len() > 256)
    {
        return Err(ApiError::invalid_field(
            "options",
            "at most 16 options, names up to 64 and values up to 256 characters",
        ));
    }
    let message = TriggerJobRequest {
        name,
        options: body.options.into_iter().collect(),
    };
    let run = state
        .upstreams
        .jobs
        .clone()
        .trigger_job(user.request(message))
        .await?
        .into_inner();
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// Lists a job's runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs/{name}/runs",
    tag = "admin",
    params(("name" = String, Path, description = "the job"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the job's runs, newest first", body = RunPage),
        (status = 403, description = "admins only"),
        (status = 404, description = "no such job")
    )
)]
pub(super) async fn list_runs(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let message = ListRunsRequest {
        name: job_name(&name)?,
        limit: page_limit(page.limit)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let response = state
        .upstreams
        .jobs
        .clone()
        .list_runs(user.request(message))
        .await?
        .into_inner();
    let items = response.runs.into_iter().map(RunBody::from).collect();
    Ok(Json(RunPage::new(items, response.next_cursor)))
}
