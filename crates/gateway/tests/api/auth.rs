//! Signup, login, refresh, logout and `/v1/me`, with every error case.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use spruce_platform::auth::AccessClaims;

use crate::helpers::{PASSWORD, TestApp, TestGateway, field_names, problem, unique_email};

#[tokio::test]
async fn signup_returns_the_user_and_tokens_that_work() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let session = app.signup(&email).await;
    assert_eq!(session["user"]["email"], email.as_str());
    assert_eq!(session["user"]["role"], "customer");
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);

    let me = app.get("/v1/me", session["access_token"].as_str()).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], session["user"]["id"]);
    assert_eq!(me["full_name"], "Ann Lee");
    assert_eq!(me["timezone"], "UTC", "no zone given");

    let zoned = app
        .post(
            "/v1/auth/signup",
            &json!({"email": unique_email(), "password": PASSWORD, "full_name": "Ann Lee",
                    "role": "customer", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(zoned.status(), 201);
    let zoned: Value = zoned.json().await.unwrap();
    assert_eq!(zoned["user"]["timezone"], "Europe/Berlin");
}

#[tokio::test]
async fn signup_rejects_bad_fields_with_field_errors() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/v1/auth/signup", &json!({"email": "not-an-email", "password": "short", "full_name": "Ann", "role": "customer"}))
        .await;
    let body = problem(response, 422).await;
    assert_eq!(field_names(&body), ["email", "password"]);
    assert_eq!(body["type"], "urn:spruce:problem:validation_failed");

    let response = app.post("/v1/auth/signup", &json!({})).await;
    let body = problem(response, 422).await;
    assert_eq!(
        field_names(&body),
        ["email", "password", "full_name", "role"]
    );

    let response = app
        .post("/v1/auth/signup", &json!({"email": unique_email(), "password": PASSWORD, "full_name": "Ann", "role": "admin"}))
        .await;
    assert_eq!(field_names(&problem(response, 422).await), ["role"]);

    for zone in [
        "Mars/Olympus",
        "Europe/Berlin; DROP TABLE users",
        &"A".repeat(200),
    ] {
        let response = app
            .post("/v1/auth/signup", &json!({"email": unique_email(), "password": PASSWORD, "full_name": "Ann", "role": "customer", "timezone": zone}))
            .await;
        assert_eq!(
            field_names(&problem(response, 422).await),
            ["timezone"],
            "{zone}"
        );
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_and_wrong_shapes_are_422() {
    let app = TestApp::spawn().await;
    let response = app.post_raw("/v1/auth/signup", "{\"email\": ").await;
    assert_eq!(
        problem(response, 400).await["type"],
        "urn:spruce:problem:malformed_request"
    );

    let response = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .body("email=a")
        .send()
        .await
        .unwrap();
    problem(response, 400).await;

    let response = app
        .post(
            "/v1/auth/login",
            &json!({"email": 42, "password": PASSWORD}),
        )
        .await;
    problem(response, 422).await;
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.signup(&email).await;
    let response = app
        .post(
            "/v1/auth/signup",
            &json!({"email": email.to_uppercase(), "password": PASSWORD, "full_name": "Bob", "role": "cleaner"}),
        )
        .await;
    assert_eq!(
        problem(response, 409).await["type"],
        "urn:spruce:problem:email_taken"
    );
}

#[tokio::test]
async fn login_accepts_the_right_password_only() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.signup(&email).await;

    let response = app
        .post(
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert!(session["access_token"].as_str().unwrap().len() > 20);

    let wrong = app
        .post(
            "/v1/auth/login",
            &json!({"email": email, "password": "wrong password"}),
        )
        .await;
    let body = problem(wrong, 401).await;
    assert_eq!(body["type"], "urn:spruce:problem:invalid_credentials");

    let unknown = app
        .post(
            "/v1/auth/login",
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    // The same answer, so that nobody can probe which emails are registered.
    assert_eq!(problem(unknown, 401).await["detail"], body["detail"]);

    let missing = app.post("/v1/auth/login", &json!({"email": email})).await;
    assert_eq!(field_names(&problem(missing, 422).await), ["password"]);
}

#[tokio::test]
async fn me_needs_a_valid_unexpired_token() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;

    let anonymous = app.get("/v1/me", None).await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    problem(anonymous, 401).await;
    problem(app.get("/v1/me", Some("not.a.jwt")).await, 401).await;

    // A token signed with the right key but expired a minute ago.
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        sub: session["user"]["id"].as_str().unwrap().to_owned(),
        role: "customer".to_owned(),
        iss: "spruce".to_owned(),
        aud: "spruce-mobile".to_owned(),
        iat: now - 960,
        exp: now - 60,
        sid: None,
    };
    let key =
        EncodingKey::from_ed_pem(spruce_platform::keys::dev::CORE_PRIVATE_KEY.as_bytes()).unwrap();
    let expired = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap();
    let body = problem(app.get("/v1/me", Some(&expired)).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"));

    // A token for another audience is refused too.
    let foreign = AccessClaims {
        aud: "someone-else".to_owned(),
        exp: now + 600,
        ..claims
    };
    let foreign = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &foreign, &key).unwrap();
    problem(app.get("/v1/me", Some(&foreign)).await, 401).await;
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let first = session["refresh_token"].as_str().unwrap();

    let response = app
        .post("/v1/auth/refresh", &json!({"refresh_token": first}))
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        app.get("/v1/me", rotated["access_token"].as_str())
            .await
            .status(),
        200
    );

    // The old token stops working, and replaying it also kills the new one.
    let replay = app
        .post("/v1/auth/refresh", &json!({"refresh_token": first}))
        .await;
    assert_eq!(
        problem(replay, 401).await["type"],
        "urn:spruce:problem:invalid_refresh_token"
    );
    let after_replay = app
        .post("/v1/auth/refresh", &json!({"refresh_token": second}))
        .await;
    problem(after_replay, 401).await;

    let garbage = app
        .post("/v1/auth/refresh", &json!({"refresh_token": "made-up"}))
        .await;
    problem(garbage, 401).await;
    let missing = app.post("/v1/auth/refresh", &json!({})).await;
    problem(missing, 422).await;
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let access = session["access_token"].as_str().unwrap();
    let refresh = session["refresh_token"].as_str().unwrap();

    let anonymous = app
        .post("/v1/auth/logout", &json!({"refresh_token": refresh}))
        .await;
    problem(anonymous, 401).await;

    let response = app
        .post_authorized(
            "/v1/auth/logout",
            access,
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let refreshed = app
        .post("/v1/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    problem(refreshed, 401).await;

    // Logging out twice is harmless.
    let again = app
        .post_authorized(
            "/v1/auth/logout",
            access,
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(again.status(), 204);
}

#[tokio::test]
async fn one_user_cannot_revoke_another_users_session() {
    let app = TestApp::spawn().await;
    let ann = app.signup(&unique_email()).await;
    let bob = app.signup(&unique_email()).await;
    let response = app
        .post_authorized(
            "/v1/auth/logout",
            bob["access_token"].as_str().unwrap(),
            &json!({"refresh_token": ann["refresh_token"]}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let still_valid = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": ann["refresh_token"]}),
        )
        .await;
    assert_eq!(still_valid.status(), 200);
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::spawn().await;
    problem(app.get("/v1/nothing-here", None).await, 404).await;
    let wrong_method = app.get("/v1/auth/signup", None).await;
    problem(wrong_method, 405).await;
}

#[tokio::test]
async fn a_down_core_is_503_with_retry_after() {
    let app = TestGateway::without_services().await;
    let response = app
        .post("/v1/auth/signup", &json!({"email": unique_email(), "password": PASSWORD, "full_name": "Ann", "role": "customer"}))
        .await;
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        problem(response, 503).await["type"],
        "urn:spruce:problem:unavailable"
    );

    let readiness = app.get("/readyz", None).await;
    assert_eq!(readiness.status(), 503);
}

#[tokio::test]
async fn an_email_logs_in_however_it_is_spelled() {
    let app = TestApp::spawn().await;
    let local = format!("ann{}", uuid::Uuid::new_v4().simple());
    app.signup(&format!("{local}@example.com")).await;
    // Full-width letters and capitals are the same address after NFKC and lowercasing.
    let full_width: String = local
        .to_uppercase()
        .chars()
        .map(|character| match character {
            'A'..='Z' => char::from_u32(character as u32 - 'A' as u32 + 0xFF21).unwrap(),
            other => other,
        })
        .collect();
    let response = app
        .post(
            "/v1/auth/login",
            &json!({"email": format!(" {full_width}@EXAMPLE.com "), "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(session["user"]["email"], format!("{local}@example.com"));
}

#[tokio::test]
async fn a_user_keeps_twenty_live_sessions_and_the_least_recently_used_ends_first() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let first = app.signup(&email).await;
    let second = login(&app, &email).await;
    // The first session is used again: the second is now the one used longest ago.
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    let first: Value = refreshed.json().await.unwrap();
    for _ in 0..19 {
        login(&app, &email).await;
    }
    let ended = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    problem(ended, 401).await;
    let kept = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(kept.status(), 200);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT family_id) FROM refresh_tokens WHERE revoked_at IS NULL \
         AND rotated_at IS NULL AND expires_at > now()",
    )
    .fetch_one(&app.core_pool)
    .await
    .unwrap();
    assert_eq!(live, 20);
}

#[tokio::test]
async fn expired_refresh_tokens_are_deleted_and_live_ones_kept() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let pool = &app.core_pool;
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) \
         SELECT gen_random_uuid(), gen_random_uuid(), user_id, sha256(random()::text::bytea), \
         now() - interval '2 days' FROM refresh_tokens, generate_series(1, 3)",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut connection = pool.acquire().await.unwrap();
    let before = chrono::Utc::now() - chrono::Duration::days(1);
    let deleted = spruce_core::store::sessions::delete_expired(&mut connection, before, 2)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "a batch at a time");
    let deleted = spruce_core::store::sessions::delete_expired(&mut connection, before, 2)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    // The pool closes at stop() only once every connection is back.
    drop(connection);
    let refreshed = app
        .post(
            "/v1/auth/refresh",
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status(), 200);
}

async fn login(app: &TestApp, email: &str) -> Value {
    let response = app
        .post(
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}
