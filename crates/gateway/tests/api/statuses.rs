//! Honest statuses: a dependency that is down is 503 with Retry-After, never 500.

use crate::{
    helpers::{TestApp, TestGateway, field_names, problem, unique_email},
    stand_ins::TcpProxy,
};

#[tokio::test]
async fn a_cut_database_is_503_with_retry_after_never_500() {
    let proxy = TcpProxy::to(5432).await;
    let app = TestApp::builder()
        .core_database_port(proxy.port)
        .spawn()
        .await;
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
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_big_bodies_are_problems_with_a_trace_id() {
    let app = TestGateway::without_services().await;
    let body = problem(app.get("/v1/nowhere", None).await, 404).await;
    assert!(body["trace_id"].is_string(), "{body}");

    let response = app
        .client
        .delete(format!("{}/v1/auth/login", app.address))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("POST"), "{allow}");
    let body = problem(response, 405).await;
    assert!(body["trace_id"].is_string(), "{body}");

    let huge = format!(r#"{{"email":"{}","password":"x"}}"#, "a".repeat(3 << 20));
    let body = problem(app.post_raw("/v1/auth/login", &huge).await, 413).await;
    assert_eq!(body["type"], "urn:spruce:problem:payload_too_large");
    assert!(body["trace_id"].is_string(), "{body}");
}

#[tokio::test]
async fn control_and_format_characters_in_text_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let login = app
        .post_raw(
            "/v1/auth/login",
            r#"{"email":"ann\u0000@example.com","password":"correct horse battery"}"#,
        )
        .await;
    let body = problem(login, 422).await;
    assert_eq!(field_names(&body), ["email"]);

    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str().unwrap();
    let address = serde_json::json!({
        "label": "Home", "line1": "Main St\u{7}reet 1", "city": "Berlin", "postal_code": "10115",
        "lat": 52.5, "lng": 13.4, "size_m2": 50, "bedrooms": 1, "bathrooms": 1, "has_pets": false
    });
    let body = problem(
        app.post_authorized("/v1/me/addresses", token, &address)
            .await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["line1"]);

    // Invisible format characters: a right-to-left override in a name, a zero-width space
    // in a query.
    let spoofed = serde_json::json!({
        "email": unique_email(), "password": "correct horse battery",
        "full_name": "Ann \u{202e}eeL", "role": "customer"
    });
    let body = problem(app.post("/v1/auth/signup", &spoofed).await, 422).await;
    assert_eq!(field_names(&body), ["full_name"]);
    let body = problem(
        app.get("/v1/bookings?status=requested%E2%80%8B", Some(token))
            .await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["status"]);
}
