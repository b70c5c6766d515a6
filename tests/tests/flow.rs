//! The walking skeleton, end to end: a signup through the gateway reaches core over gRPC,
//! goes out through the outbox and RabbitMQ, becomes a welcome notification in the
//! scheduler, and is one trace across all of it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spruce_e2e::{otlp, stack::Stack};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn signup_becomes_a_welcome_notification_in_one_trace() {
    let shutdown = CancellationToken::new();
    let (otlp_port, spans) = otlp::start(shutdown.clone()).await.unwrap();
    let stack = Stack::start(otlp_port).await.unwrap();
    let client = reqwest::Client::new();

    // The client starts the trace, so we know its id.
    let trace_id = Uuid::new_v4().simple().to_string();
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        &Uuid::new_v4().simple().to_string()[..16]
    );
    let email = format!("e2e-{}@example.com", Uuid::new_v4().simple());
    let signup = client
        .post(format!("{}/v1/auth/signup", stack.gateway_url))
        .header("traceparent", traceparent)
        .json(&json!({"email": email, "password": "correct horse battery", "full_name": "Erin", "role": "cleaner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let signed_up = Instant::now();
    let session: Value = signup.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();

    let get = |path: &'static str| {
        let request = client
            .get(format!("{}{path}", stack.gateway_url))
            .bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let me = get("/v1/me").await;
    assert_eq!(me["email"], email.as_str());

    let mut welcome = None;
    while signed_up.elapsed() < Duration::from_secs(5) {
        let page = get("/v1/me/notifications").await;
        if let Some(first) = page["items"].as_array().and_then(|items| items.first()) {
            welcome = Some(first.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let welcome = welcome.expect("a welcome notification within 5 s of signup");
    assert_eq!(welcome["kind"], "welcome");
    assert!(welcome["body"].as_str().unwrap().contains("Erin"));

    let mut trace = Vec::new();
    let wanted = |trace: &[otlp::ReceivedSpan], service: &str, name_part: &str| {
        trace
            .iter()
            .any(|span| span.service == service && span.name.contains(name_part))
    };
    for _ in 0..100 {
        trace = spans.of_trace(&trace_id);
        if wanted(&trace, "spruce-gateway", "POST /v1/auth/signup")
            && wanted(&trace, "spruce-core", "UserService/Register")
            && wanted(&trace, "spruce-core", "publish")
            && wanted(&trace, "spruce-scheduler", "process")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        wanted(&trace, "spruce-gateway", "POST /v1/auth/signup"),
        "{trace:#?}"
    );
    assert!(
        wanted(&trace, "spruce-core", "UserService/Register"),
        "{trace:#?}"
    );
    assert!(
        wanted(&trace, "spruce-core", "user.registered publish"),
        "{trace:#?}"
    );
    assert!(wanted(&trace, "spruce-scheduler", "process"), "{trace:#?}");

    // Every service drains and exits 0 on SIGTERM.
    stack.stop().await.unwrap();
    shutdown.cancel();
}
