//! The bus's Prometheus metrics, named after the OpenTelemetry messaging conventions and
//! registered in the process's default registry beside the servers' (`/metrics` shows all).

use std::sync::LazyLock;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, register_histogram_vec,
    register_int_counter_vec, register_int_gauge_vec,
};
use spruce_platform::metrics::LATENCY_BUCKETS;

/// Event handling latency by queue and outcome (`ok`, `duplicate`, `retried`, `parked`).
pub static MESSAGING_PROCESS_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new(
            "messaging_process_duration_seconds",
            "event handling latency"
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["queue", "outcome"]
    )
    .expect("metric registered once")
});

/// Events sent to a retry queue or parked, by queue.
pub static MESSAGING_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new("messaging_failures_total", "events retried or parked"),
        &["queue", "outcome"]
    )
    .expect("metric registered once")
});

/// Messages ready in a consumer's queue and in its parked queue, as the consumer last asked
/// the broker (every replica reports the same queue: take the max).
pub static MESSAGING_QUEUE_READY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new(
            "messaging_queue_messages_ready",
            "messages waiting in a consumer's queue"
        ),
        &["queue"]
    )
    .expect("metric registered once")
});

/// 1 while a bus client (the outbox relay of a database, or a consumer's queue) holds a
/// working broker connection, 0 while it reconnects. Readiness leaves the broker out (the
/// outbox and the queues ride out an outage), so this is how an outage shows.
pub static MESSAGING_BROKER_CONNECTED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new(
            "messaging_broker_connected",
            "1 while a bus client is connected to the broker"
        ),
        &["client"]
    )
    .expect("metric registered once")
});

/// Outbox rows not yet confirmed by the broker.
pub static OUTBOX_PENDING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new("outbox_pending", "outbox rows waiting to be published"),
        &["database"]
    )
    .expect("metric registered once")
});

/// Age of the oldest unpublished outbox row.
pub static OUTBOX_OLDEST_AGE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new(
            "outbox_oldest_age_seconds",
            "age of the oldest unpublished outbox row"
        ),
        &["database"]
    )
    .expect("metric registered once")
});

/// Events the broker handed back to the outbox relay as unroutable: only possible when the
/// exchange lacks its alternate exchange (see `bus::unrouted_name`); they are retried, and
/// each row's `last_error` names its routing key.
pub static OUTBOX_RETURNED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new(
            "outbox_returned_total",
            "outbox events the broker returned as unroutable (the exchange has no alternate exchange)"
        ),
        &["database"]
    )
    .expect("metric registered once")
});
