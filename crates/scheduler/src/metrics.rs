//! The scheduler's own Prometheus metrics, per clock job. `/metrics` serves them with the
//! request histograms every service has.

use std::sync::LazyLock;

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, register_gauge_vec,
    register_histogram_vec, register_int_counter_vec,
};

/// Finished runs by job and outcome (`succeeded`, `failed`, `abandoned`).
pub static JOB_RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new("scheduler_job_runs_total", "finished job runs"),
        &["job_name", "outcome"]
    )
    .expect("metric registered once")
});

/// Failed attempts by job (a run retries before it fails).
pub static JOB_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new("scheduler_job_failures_total", "failed job attempts"),
        &["job_name"]
    )
    .expect("metric registered once")
});

/// Items processed by job.
pub static JOB_ITEMS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new("scheduler_job_items_total", "items processed by job runs"),
        &["job_name"]
    )
    .expect("metric registered once")
});

/// How long runs take, retries included.
pub static JOB_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new("scheduler_job_run_duration_seconds", "job run duration").buckets(vec![
            0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0
        ]),
        &["job_name"]
    )
    .expect("metric registered once")
});

/// When the job last succeeded on any replica (read from the database, so every replica
/// reports the same), or when it was first registered if it never has.
pub static JOB_LAST_SUCCESS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        Opts::new(
            "scheduler_job_last_success_timestamp_seconds",
            "when the job last succeeded (or was registered), Unix seconds"
        ),
        &["job_name"]
    )
    .expect("metric registered once")
});

/// The job's period in seconds, 0 when it is switched off: the staleness alert fires when
/// the last success is older than two periods.
pub static JOB_PERIOD: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        Opts::new(
            "scheduler_job_period_seconds",
            "seconds between the job's ticks, 0 when it is switched off"
        ),
        &["job_name"]
    )
    .expect("metric registered once")
});

/// Notification sends by channel and outcome (`sent`, `retried`, `failed`).
pub static NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new("scheduler_notifications_total", "notification sends"),
        &["channel", "outcome"]
    )
    .expect("metric registered once")
});
