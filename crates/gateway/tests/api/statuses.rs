//! Honest statuses: a dependency that is down is 503 with Retry-After, never 500.

use crate::helpers::{TcpProxy, TestApp, problem, unique_email};

#[tokio::test]
async fn a_cut_database_is_503_with_retry_after_never_500() {
    let proxy = TcpProxy::to(5432).await;
    let app = TestApp::spawn_with_core_database_port(proxy.port).await;
    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", Some(token)).await.status(), 200);

    proxy.cut();
    // Pooled connections break at once; new ones are refused until the pool gives up.
    for _ in 0..2 {
        let response = app.get("/v1/me", Some(token)).await;
        assert_eq!(response.headers()["retry-after"], "5");
        let body = problem(response, 503).await;
        assert!(body["trace_id"].is_string(), "{body}");
    }
    app.stop().await;
}
