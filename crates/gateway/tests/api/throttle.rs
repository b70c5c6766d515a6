//! Repeated failed logins are refused with 429 for a while, per email, in Redis.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, problem, unique_email};

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post(
        "/v1/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn five_wrong_passwords_block_that_email_for_a_while() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.signup(&email).await;
    for _ in 0..5 {
        assert_eq!(login_status(&app, &email, "wrong password").await, 401);
    }
    // Even the right password is refused now, whatever the case of the email.
    let blocked = app
        .post(
            "/v1/auth/login",
            &json!({"email": email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        problem(blocked, 429).await["type"],
        "urn:spruce:problem:too_many_attempts"
    );

    let other = unique_email();
    app.signup(&other).await;
    assert_eq!(
        login_status(&app, &other, PASSWORD).await,
        200,
        "other emails are not affected"
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_failures() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.signup(&email).await;
    for _ in 0..4 {
        assert_eq!(login_status(&app, &email, "wrong password").await, 401);
    }
    assert_eq!(login_status(&app, &email, PASSWORD).await, 200);
    for _ in 0..4 {
        assert_eq!(login_status(&app, &email, "wrong password").await, 401);
    }
    assert_eq!(login_status(&app, &email, PASSWORD).await, 200);
}

#[tokio::test]
async fn logins_still_work_when_redis_is_down() {
    let app = TestApp::builder()
        .redis(&format!(
            "redis://127.0.0.1:{}",
            spruce_testkit::free_port()
        ))
        .spawn()
        .await;
    let email = unique_email();
    app.signup(&email).await;
    for _ in 0..6 {
        assert_eq!(login_status(&app, &email, "wrong password").await, 401);
    }
    assert_eq!(login_status(&app, &email, PASSWORD).await, 200);
}

#[tokio::test]
async fn twenty_failures_from_one_address_block_it_whatever_the_emails() {
    let app = TestApp::spawn().await;
    let victim = unique_email();
    app.signup(&victim).await;
    for attempt in 0..20 {
        // A spoofed X-Forwarded-For changes nothing: the gateway does not trust it by default.
        let response = app
            .client
            .post(format!("{}/v1/auth/login", app.address))
            .header("x-forwarded-for", format!("203.0.113.{attempt}"))
            .json(&json!({"email": unique_email(), "password": "guessing"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let blocked = app
        .post(
            "/v1/auth/login",
            &json!({"email": victim, "password": PASSWORD}),
        )
        .await;
    assert!(blocked.headers().contains_key("retry-after"));
    problem(blocked, 429).await;
}

#[tokio::test]
async fn a_concurrent_burst_of_wrong_passwords_gets_at_most_five_401s() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.signup(&email).await;
    let attempts = (0..60).map(|_| login_status(&app, &email, "wrong password"));
    let statuses = futures_util::future::join_all(attempts).await;
    let unauthorized = statuses.iter().filter(|&&status| status == 401).count();
    let throttled = statuses.iter().filter(|&&status| status == 429).count();
    assert_eq!(unauthorized + throttled, 60, "{statuses:?}");
    assert!(
        unauthorized <= 5,
        "{unauthorized} wrong passwords were checked"
    );
}

#[tokio::test]
async fn signups_from_one_address_are_limited() {
    let app = TestApp::builder().signup_limit(3).spawn().await;
    for _ in 0..3 {
        app.signup(&unique_email()).await;
    }
    let refused = app
        .post(
            "/v1/auth/signup",
            &json!({"email": unique_email(), "password": PASSWORD, "full_name": "Ann Lee", "role": "customer"}),
        )
        .await;
    assert!(refused.headers().contains_key("retry-after"));
    problem(refused, 429).await;
}
