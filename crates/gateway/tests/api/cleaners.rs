//! `PUT /v1/me/cleaner-profile` and `GET /v1/cleaners/{id}`.

use prost::Message as _;
use serde_json::{Value, json};
use spruce_proto::events::v1::{Envelope, envelope::Payload};
use uuid::Uuid;

use crate::helpers::{TestApp, field_names, problem, unique_email};

fn profile() -> Value {
    json!({
        "bio": "Ten years of tidy homes.",
        "hourly_rate_cents": 2800,
        "services": ["standard", "deep"],
        "home": {"lat": 52.52, "lng": 13.405},
        "service_radius_km": 8.5,
        "weekly_availability": [
            {"weekday": "monday", "start": "09:00", "end": "17:00"},
            {"weekday": "saturday", "start": "10:00", "end": "14:00"}
        ],
        "timezone": "Europe/Berlin"
    })
}

#[tokio::test]
async fn a_cleaner_publishes_a_profile_others_can_read_without_the_home() {
    let app = TestApp::spawn().await;
    let cleaner = app.signup_as(&unique_email(), "cleaner").await;
    let cleaner_token = cleaner["access_token"].as_str().unwrap();
    let cleaner_id = cleaner["user"]["id"].as_str().unwrap();

    let response = app
        .put_authorized("/v1/me/cleaner-profile", cleaner_token, &profile())
        .await;
    assert_eq!(response.status(), 200);
    let own: Value = response.json().await.unwrap();
    assert_eq!(own["id"], cleaner_id);
    assert_eq!(own["services"], json!(["standard", "deep"]));
    assert_eq!(own["currency"], "EUR");
    assert_eq!(own["home"]["lat"], 52.52);
    assert_eq!(own["weekly_availability"][1]["weekday"], "saturday");
    assert_eq!(own["rating_count"], 0);

    let customer = app.signup(&unique_email()).await;
    let public = app
        .get(
            &format!("/v1/cleaners/{cleaner_id}"),
            customer["access_token"].as_str(),
        )
        .await;
    assert_eq!(public.status(), 200);
    let public: Value = public.json().await.unwrap();
    assert_eq!(public["full_name"], "Ann Lee");
    assert_eq!(public["hourly_rate_cents"], 2800);
    assert!(
        public.get("home").is_none(),
        "a cleaner's home is private: {public}"
    );

    let mut changed = profile();
    changed["hourly_rate_cents"] = json!(3100);
    let response = app
        .put_authorized("/v1/me/cleaner-profile", cleaner_token, &changed)
        .await;
    assert_eq!(response.status(), 200);
    let again: Value = app
        .get(&format!("/v1/cleaners/{cleaner_id}"), Some(cleaner_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["hourly_rate_cents"], 3100);

    // Each change wrote its cleaner.updated event, with rising versions.
    let events: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'cleaner.updated' ORDER BY id",
    )
    .fetch_all(&app.core_pool)
    .await
    .unwrap();
    let envelopes: Vec<Envelope> = events
        .iter()
        .map(|bytes| Envelope::decode(bytes.as_slice()).unwrap())
        .collect();
    let versions: Vec<i64> = envelopes
        .iter()
        .map(|envelope| envelope.aggregate_version)
        .collect();
    assert_eq!(versions, [1, 2]);
    match &envelopes[1].payload {
        Some(Payload::CleanerUpdated(updated)) => {
            assert_eq!(updated.cleaner_id, cleaner_id);
            assert_eq!(updated.hourly_rate_cents, 3100);
        }
        other => panic!("unexpected payload {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_profile_is_a_422_naming_every_field() {
    let app = TestApp::spawn().await;
    let cleaner = app.signup_as(&unique_email(), "cleaner").await;
    let token = cleaner["access_token"].as_str().unwrap();

    let bad = json!({
        "hourly_rate_cents": 0,
        "services": ["windows"],
        "service_radius_km": 500,
        "weekly_availability": [{"weekday": "monday", "start": "18:00", "end": "09:00"}],
        "timezone": "Europe/Berlin"
    });
    let body = problem(
        app.put_authorized("/v1/me/cleaner-profile", token, &bad)
            .await,
        422,
    )
    .await;
    assert_eq!(
        field_names(&body),
        [
            "hourly_rate_cents",
            "services",
            "home",
            "service_radius_km",
            "weekly_availability"
        ]
    );

    let mut unknown_zone = profile();
    unknown_zone["timezone"] = json!("Mars/Olympus_Mons");
    let body = problem(
        app.put_authorized("/v1/me/cleaner-profile", token, &unknown_zone)
            .await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["timezone"]);

    let wrong_type = json!({"hourly_rate_cents": "a lot"});
    problem(
        app.put_authorized("/v1/me/cleaner-profile", token, &wrong_type)
            .await,
        422,
    )
    .await;
}

#[tokio::test]
async fn only_cleaners_have_profiles() {
    let app = TestApp::spawn().await;
    let customer = app.signup(&unique_email()).await;
    let token = customer["access_token"].as_str().unwrap();
    let body = problem(
        app.put_authorized("/v1/me/cleaner-profile", token, &profile())
            .await,
        403,
    )
    .await;
    assert_eq!(body["type"], "urn:spruce:problem:forbidden");

    let anonymous = app
        .client
        .put(format!("{}/v1/me/cleaner-profile", app.address))
        .json(&profile())
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;

    // Neither a customer, nor a cleaner without a profile, nor nonsense is a cleaner.
    let customer_id = customer["user"]["id"].as_str().unwrap();
    let cleaner = app.signup_as(&unique_email(), "cleaner").await;
    let cleaner_id = cleaner["user"]["id"].as_str().unwrap();
    for id in [
        customer_id.to_owned(),
        cleaner_id.to_owned(),
        Uuid::new_v4().to_string(),
        "not-an-id".to_owned(),
    ] {
        problem(
            app.get(&format!("/v1/cleaners/{id}"), Some(token)).await,
            404,
        )
        .await;
    }
    problem(
        app.get(&format!("/v1/cleaners/{cleaner_id}"), None).await,
        401,
    )
    .await;
}
