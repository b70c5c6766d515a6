//! Prometheus metrics named after the OpenTelemetry semantic conventions. Each metric is
//! registered once per process in the default registry and shared by every server in it.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, TextEncoder,
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Gateway request latency by method, route template and status.
pub static HTTP_SERVER_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new(
            "http_server_request_duration_seconds",
            "HTTP request latency"
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["method", "route", "status"]
    )
    .expect("metric registered once")
});

/// gRPC server latency by service, method and status code.
pub static RPC_SERVER_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new("rpc_server_duration_seconds", "gRPC call latency")
            .buckets(LATENCY_BUCKETS.to_vec()),
        &["service", "method", "code"]
    )
    .expect("metric registered once")
});

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
/// exchange lacks its alternate exchange (see `bus::unrouted_name`); they are retried.
pub static OUTBOX_RETURNED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new(
            "outbox_returned_total",
            "outbox events the broker returned as unroutable (the exchange has no alternate exchange)"
        ),
        &["database", "routing_key"]
    )
    .expect("metric registered once")
});

/// Renders every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&prometheus::gather(), &mut buffer) {
        tracing::error!(%error, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}
