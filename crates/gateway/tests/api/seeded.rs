//! The curated data set, used the way the README's walk-through uses it: a seeded customer
//! books a seeded cleaner through the whole state machine and reviews them.

use chrono::{Datelike as _, Duration, DurationRound as _, Utc, Weekday};
use serde_json::{Value, json};
use spruce_core::seed::{self, DEV_PASSWORD, SeedSize};

use crate::{
    helpers::{TestApp, problem},
    scene::bring_forward,
};

async fn login(app: &TestApp, email: &str) -> Value {
    let response = app
        .post(
            "/v1/auth/login",
            &json!({"email": email, "password": DEV_PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200, "{email}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn seeded_customer01_books_and_reviews_seeded_cleaner01() {
    let app = TestApp::spawn().await;
    let pool = app.core_pool.clone();
    let report = seed::seed(&pool, SeedSize::CURATED).await.unwrap();
    assert!(report.written);
    assert!(
        !seed::seed(&pool, SeedSize::CURATED).await.unwrap().written,
        "seeding twice changes nothing"
    );
    let completed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status = 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(completed >= 2_000);

    let customer = login(&app, "customer01@spruce.test").await;
    let customer_token = customer["access_token"].as_str().unwrap();
    let cleaner = login(&app, "cleaner01@spruce.test").await;
    let cleaner_token = cleaner["access_token"].as_str().unwrap();
    let cleaner_id = cleaner["user"]["id"].as_str().unwrap();
    login(&app, "admin@spruce.test").await;

    // The cleaner sees their own home; the customer books right next to it.
    let own: Value = app
        .get(&format!("/v1/cleaners/{cleaner_id}"), Some(cleaner_token))
        .await
        .json()
        .await
        .unwrap();
    let rating_count = own["rating_count"].as_u64().unwrap();
    assert!(rating_count > 0, "seeded reviews count towards the rating");
    let address = json!({
        "label": "Flat", "line1": "Torstrasse 9", "city": "Berlin", "postal_code": "10119",
        "lat": own["home"]["lat"].as_f64().unwrap() + 0.001, "lng": own["home"]["lng"],
        "size_m2": 55, "bedrooms": 1, "bathrooms": 1, "has_pets": false
    });
    let created = app
        .post_authorized("/v1/me/addresses", customer_token, &address)
        .await;
    let address_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The next weekday at 11:00 UTC is midday in Berlin, inside cleaner01's hours.
    let mut day = Utc::now().duration_trunc(Duration::days(1)).unwrap() + Duration::days(1);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day += Duration::days(1);
    }
    let booking = |token: &str| {
        json!({
            "address_id": address_id, "service": "standard", "cleaner_id": cleaner_id,
            "starts_at": (day + Duration::hours(11)).to_rfc3339(), "payment_token": token
        })
    };
    let book = |key: &'static str, body: Value| {
        app.client
            .post(format!("{}/v1/bookings", app.address))
            .bearer_auth(customer_token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    problem(
        book("seeded-declined", booking("tok_chargeDeclined"))
            .await
            .unwrap(),
        402,
    )
    .await;
    let response = book("seeded-1", booking("tok_visa")).await.unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (action, body) in [
        ("confirm", json!({})),
        ("start", json!({})),
        ("complete", json!({"actual_duration_min": 100})),
    ] {
        if action == "start" {
            bring_forward(&app.core_pool, &id).await;
        }
        let response = app
            .post_authorized(&format!("/v1/bookings/{id}/{action}"), cleaner_token, &body)
            .await;
        assert_eq!(response.status(), 200, "{action}");
    }
    let review = json!({"rating": 5, "comment": "Lovely work."});
    let response = app
        .post_authorized(
            &format!("/v1/bookings/{id}/review"),
            customer_token,
            &review,
        )
        .await;
    assert_eq!(response.status(), 201);
    let after: Value = app
        .get(&format!("/v1/cleaners/{cleaner_id}"), Some(customer_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["rating_count"].as_u64().unwrap(), rating_count + 1);
}

/// Every index of core's schema, as the catalog defines it.
async fn index_definitions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_scaled_seed_loads_its_rows_and_builds_every_index_again() {
    let app = TestApp::spawn().await;
    let pool = app.core_pool.clone();
    let migrated = index_definitions(&pool).await;
    let size = SeedSize::scaled(60);
    let report = seed::seed(&pool, size).await.unwrap();
    assert!(report.written);

    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM cleaner_profiles), \
                (SELECT count(*) FROM users WHERE role = 'customer'), \
                (SELECT count(*) FROM bookings)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (60, 80, 600),
        "cleaners, customers and bookings of --scale 60"
    );
    // The load drops the indexes that back no constraint and builds them afterwards.
    assert_eq!(index_definitions(&pool).await, migrated);
    login(&app, "customer01@spruce.test").await;
}

#[tokio::test]
async fn the_development_password_opens_nothing_where_it_is_refused() {
    let app = TestApp::builder().refusing_the_dev_password().spawn().await;
    let pool = app.core_pool.clone();
    seed::seed(&pool, SeedSize::CURATED).await.unwrap();
    let login = app
        .post(
            "/v1/auth/login",
            &json!({"email": "admin@spruce.test", "password": DEV_PASSWORD}),
        )
        .await;
    problem(login, 401).await;
    let signup = app
        .post(
            "/v1/auth/signup",
            &json!({"email": "new@example.com", "password": DEV_PASSWORD, "full_name": "New", "role": "customer"}),
        )
        .await;
    let body = problem(signup, 422).await;
    assert_eq!(body["errors"][0]["field"], "password");
}
