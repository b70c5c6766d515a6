//! A server span and `http_server_request_duration_seconds` for every routed request,
//! continuing a client's `traceparent` when it sends one.

use std::time::Instant;

use axum::{extract::MatchedPath, extract::Request, middleware::Next, response::Response};
use spruce_platform::{metrics::HTTP_SERVER_DURATION, propagation};
use tracing::Instrument as _;

/// Wraps one request in a span and measures it.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    propagation::set_parent_from_http(&span, request.headers());
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    HTTP_SERVER_DURATION
        .with_label_values(&[method.as_str(), route.as_str(), &status.to_string()])
        .observe(started.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        tracing::warn!(parent: &span, status, "request failed");
    }
    response
}
