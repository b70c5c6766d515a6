//! Prometheus metrics named after the OpenTelemetry semantic conventions. Each metric is
//! registered once per process in the default registry and shared by every server in it.

use std::sync::LazyLock;

use prometheus::{Encoder, HistogramOpts, HistogramVec, TextEncoder, register_histogram_vec};

/// Latency buckets, in seconds, of every duration histogram.
pub const LATENCY_BUCKETS: &[f64] = &[
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

/// Renders every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&prometheus::gather(), &mut buffer) {
        tracing::error!(%error, "cannot encode metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}
