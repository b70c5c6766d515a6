//! A server span and `http_server_request_duration_seconds` for every routed request,
//! continuing a client's `traceparent` when it sends one.

use std::time::Instant;

use axum::{
    extract::MatchedPath, extract::Request, http::Method, middleware::Next, response::Response,
};
use spruce_platform::{metrics::HTTP_SERVER_DURATION, propagation};
use tracing::Instrument as _;

/// Wraps one request in a span and measures it.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
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
        .with_label_values(&[method, route.as_str(), &status.to_string()])
        .observe(started.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        tracing::warn!(parent: &span, status, "request failed");
    }
    response
}

/// Returns the method's name for spans and metrics: one of HTTP's own, or `OTHER` for a
/// method a client made up, so that no client can add label values (series) at will.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_are_labelled_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "OTHER");
    }
}
