//! Turns SIGTERM and Ctrl-C into a cancellation token every task of a service watches, after
//! a drain: the service first tells its callers it is going (`/readyz` answers 503
//! `draining`, gRPC health says NOT_SERVING) and keeps serving for the drain time, so that
//! load balancers, ingress endpoints and callers that resolve names again (every 5 s, see
//! [`crate::upstream`]) stop sending it calls before it stops accepting them. A second
//! signal skips what is left of the drain.

use std::{sync::LazyLock, time::Duration};

use tokio_util::sync::CancellationToken;

/// Cancelled when this process received its shutdown signal and is draining.
static DRAINING: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Returns whether this process is draining after a shutdown signal.
pub fn is_draining() -> bool {
    DRAINING.is_cancelled()
}

/// Resolves when this process starts draining.
pub async fn draining() {
    DRAINING.cancelled().await;
}

/// Returns a token that is cancelled `drain` after the first SIGTERM or Ctrl-C (at once
/// on a second one); the process reports itself as draining from the first.
pub fn on_signal(drain: Duration) -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            drain_ms = drain.as_millis(),
            "shutdown signal received: unready, serving until the drain ends"
        );
        DRAINING.cancel();
        tokio::select! {
            () = tokio::time::sleep(drain) => {}
            () = wait_for_signal() => tracing::info!("second signal: draining ends now"),
        }
        tracing::info!("no longer accepting; finishing calls in flight");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
