//! The operational HTTP side of every service: `/healthz` (the process is alive), `/readyz`
//! (it can serve: what it cannot answer without is up, and it is not draining after a
//! shutdown signal) and `/metrics` (Prometheus).
//!
//! The broker is not among the checks of a running service: the outbox holds events and
//! the queues hold deliveries while it is away, so a broker outage leaves every service
//! serving, and shows as `messaging_broker_connected` 0 (alert `SpruceBrokerDisconnected`).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt as _,
};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency that must answer for the service to be ready.
#[derive(Clone)]
pub struct ReadinessCheck {
    name: &'static str,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl ReadinessCheck {
    /// Builds a check from a closure returning a future.
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        ReadinessCheck {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }

    async fn run(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(result) => result,
            Err(_) => Err("timed out".to_owned()),
        }
    }
}

/// Returns the router serving `/healthz`, `/readyz` and `/metrics`.
pub fn router(checks: Vec<ReadinessCheck>) -> Router {
    let checks = Arc::new(checks);
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(move || {
                let checks = Arc::clone(&checks);
                async move { readiness(&checks).await }
            }),
        )
        .route("/metrics", get(|| async { crate::metrics::render() }))
}

async fn readiness(checks: &[ReadinessCheck]) -> Response {
    if crate::shutdown::is_draining() {
        let body = json!({"status": "draining", "checks": {}});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let results = futures_util::future::join_all(checks.iter().map(ReadinessCheck::run)).await;
    let mut report = Map::new();
    let mut ready = true;
    for (check, result) in checks.iter().zip(results) {
        let value = match result {
            Ok(()) => Value::String("up".to_owned()),
            Err(error) => {
                ready = false;
                tracing::warn!(dependency = check.name, %error, "dependency not ready");
                Value::String(format!("down: {error}"))
            }
        };
        report.insert(check.name.to_owned(), value);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ready { "ready" } else { "not_ready" }, "checks": report});
    (status, Json(body)).into_response()
}

/// Turns Nagle's algorithm off on an accepted connection. Responses are written in a few
/// small pieces; with Nagle on, the last piece can wait for the peer's delayed ACK (40 ms on
/// Linux), which showed as a 40 ms tail under load.
pub fn no_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains open requests.
///
/// # Errors
/// Fails when the listener fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener.tap_io(no_delay), router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
