//! `GET /v1/me/notifications`: the welcome notification arrives through the event bus, pages
//! are stable, and bad paging input is a 422.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, problem, unique_email, user_token};

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/v1/me/notifications{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits up to 5 s for the first notification and returns the page then.
async fn wait_for_welcome(app: &TestApp, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..100 {
        items = page(app, token, "").await["items"]
            .as_array()
            .unwrap()
            .clone();
        if !items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    items
}

#[tokio::test]
async fn signup_leads_to_a_welcome_notification() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let items = wait_for_welcome(&app, session["access_token"].as_str().unwrap()).await;
    assert_eq!(items.len(), 1, "exactly one welcome notification");
    assert_eq!(items[0]["kind"], "welcome");
    assert_eq!(items[0]["channel"], "email");
    app.stop().await;
}

#[tokio::test]
async fn notifications_are_paged_newest_first_and_only_the_users_own() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str().unwrap();
    let user_id: Uuid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(wait_for_welcome(&app, token).await.len(), 1);
    let pool = app.scheduler_pool.as_ref().unwrap();
    // Three notifications an hour apart, plus one for somebody else.
    for (owner, hour, subject) in [
        (user_id, 1, "first"),
        (user_id, 2, "second"),
        (user_id, 3, "third"),
        (Uuid::new_v4(), 4, "not yours"),
    ] {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, channel, kind, subject, body, created_at) \
             VALUES ($1, $2, 'push', 'test', $3, 'body', $4)",
        )
        .bind(Uuid::new_v4())
        .bind(owner)
        .bind(subject)
        .bind(Utc.with_ymd_and_hms(2020, 1, 1, hour, 0, 0).unwrap())
        .execute(pool)
        .await
        .unwrap();
    }

    let subjects = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let everything = page(&app, token, "?limit=100").await;
    assert_eq!(
        subjects(&everything),
        ["Welcome to Spruce", "third", "second", "first"]
    );
    assert_eq!(everything["next_cursor"], Value::Null);

    let first = page(&app, token, "?limit=2").await;
    assert_eq!(subjects(&first), ["Welcome to Spruce", "third"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a further page")
        .to_owned();
    let second = page(&app, token, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(subjects(&second), ["second", "first"]);
    assert_eq!(second["next_cursor"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn bad_paging_input_is_a_422() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str();
    for query in [
        "?limit=1000",
        "?limit=abc",
        "?cursor=not-a-cursor",
        "?limit=-1",
    ] {
        let response = app
            .get(&format!("/v1/me/notifications{query}"), token)
            .await;
        problem(response, 422).await;
    }
    problem(app.get("/v1/me/notifications", None).await, 401).await;
    app.stop().await;
}

#[tokio::test]
async fn a_down_scheduler_is_503() {
    let app = TestApp::spawn_without_services().await;
    // Any well-signed token will do: the gateway checks it without calling core.
    let token = user_token("customer");
    let response = app.get("/v1/me/notifications", Some(&token)).await;
    assert_eq!(response.headers()["retry-after"], "5");
    problem(response, 503).await;
    app.stop().await;
}
