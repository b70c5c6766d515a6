//! The duration model as customers and admins meet it: quotes and bookings priced by the
//! rule of thumb until the nightly job (run by hand here) trains a model, then by the model,
//! and by the rule again while search is down.

use std::time::Duration;

use serde_json::{Value, json};
use spruce_core::seed::{self, DEV_PASSWORD, SeedSize};

use crate::helpers::{TestApp, field_names, problem};
use crate::jobs::run_job;

async fn login(app: &TestApp, email: &str) -> String {
    let session: Value = app
        .post(
            "/v1/auth/login",
            &json!({"email": email, "password": DEV_PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    session["access_token"].as_str().unwrap().to_owned()
}

async fn quote(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post_authorized("/v1/quotes", token, body).await
}

/// Books a standard cleaning at `address` without a cleaner, a week and `day` days away,
/// through the gateway at `gateway`.
async fn book(gateway: &str, token: &str, address: &str, day: i64) -> Value {
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(7 + day)).to_rfc3339();
    let response = reqwest::Client::new()
        .post(format!("{gateway}/v1/bookings"))
        .bearer_auth(token)
        .header("idempotency-key", format!("model-test-{day}"))
        .json(&json!({
            "address_id": address,
            "service": "standard",
            "starts_at": starts_at,
            "payment_token": "tok_visa",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_nightly_job_trains_a_model_that_prices_quotes_and_bookings() {
    let mut app = TestApp::builder().with_search().spawn().await;
    seed::seed(&app.core_pool, SeedSize::CURATED).await.unwrap();
    let admin = login(&app, "admin@spruce.test").await;
    let customer01 = login(&app, "customer01@spruce.test").await;
    let addresses: Value = app
        .get("/v1/me/addresses", Some(&customer01))
        .await
        .json()
        .await
        .unwrap();
    let address = addresses["items"][0]["id"].as_str().unwrap().to_owned();
    let standard = json!({"address_id": address, "service": "standard"});
    let gateway = app.address.clone();
    // No model yet: quotes and bookings both come from the one rule of thumb.
    let quoted_by_rule: Value = quote(&app, &customer01, &standard)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        quoted_by_rule["estimated_by"], "rule_of_thumb",
        "{quoted_by_rule}"
    );
    assert_eq!(quoted_by_rule["model_version"], Value::Null);
    let by_rule = book(&gateway, &customer01, &address, 0).await;
    assert_eq!(by_rule["estimated_by"], "rule_of_thumb", "{by_rule}");
    assert_eq!(by_rule["model_version"], Value::Null);
    assert_eq!(
        by_rule["duration_min"],
        quoted_by_rule["estimated_duration_min"]
    );
    // The nightly job, run by an admin, retrains through the scheduler's own identity and
    // records how it went.
    let first = run_job(&app, &admin, "retrain-duration-model").await;
    assert_eq!(first["outcome"], "succeeded", "{first}");
    assert!(first["items"].as_u64().unwrap() >= 1_600, "{first}");
    let detail = first["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("candidate version 1 promoted: hold-out MAE ")
            && detail.ends_with(" (no model served before); serving version 1"),
        "{detail}"
    );
    let first_mae = mae(detail);
    let quoted: Value = quote(&app, &customer01, &standard)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(quoted["model_version"], 1, "{quoted}");
    assert_eq!(quoted["currency"], "EUR");
    let minutes = quoted["estimated_duration_min"].as_u64().unwrap();
    assert!(
        (60..=600).contains(&minutes) && minutes.is_multiple_of(15),
        "{quoted}"
    );
    assert_eq!(
        quoted["price_cents"].as_i64().unwrap(),
        (minutes as i64 * 2_500 + 59) / 60,
        "the default rate without a cleaner"
    );
    // Core now prices bookings with the model's estimate, as quoted.
    let by_model = book(&gateway, &customer01, &address, 1).await;
    assert_eq!(by_model["estimated_by"], "model", "{by_model}");
    assert_eq!(by_model["model_version"], 1);
    assert_eq!(by_model["duration_min"], quoted["estimated_duration_min"]);
    assert_eq!(by_model["price_cents"], quoted["price_cents"]);
    let deep: Value = quote(
        &app,
        &customer01,
        &json!({"address_id": address, "service": "deep"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        deep["estimated_duration_min"].as_u64().unwrap() > minutes,
        "{deep}"
    );
    let body = problem(
        quote(
            &app,
            &customer01,
            &json!({"address_id": address, "service": "windows"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["service"]);
    let unknown =
        json!({"address_id": address, "service": "standard", "cleaner_id": uuid::Uuid::new_v4()});
    problem(quote(&app, &customer01, &unknown).await, 404).await;
    let customer02 = login(&app, "customer02@spruce.test").await;
    problem(quote(&app, &customer02, &standard).await, 404).await;

    // While search is down, bookings fall back to the rule of thumb, as before the model.
    app.restart_search(async {
        let while_down = book(&gateway, &customer01, &address, 2).await;
        assert_eq!(while_down["estimated_by"], "rule_of_thumb", "{while_down}");
        assert_eq!(while_down["duration_min"], by_rule["duration_min"]);
    })
    .await;
    // Kept across the restart: the next candidate is compared with the one served, and
    // as good as it, so promoted; quotes report it at once.
    let second = run_job(&app, &admin, "retrain-duration-model").await;
    let detail = second["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("candidate version 2 promoted: ")
            && detail.contains(&format!(" against {first_mae}; serving version 2")),
        "{detail}"
    );
    let quoted: Value = quote(&app, &customer01, &standard)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(quoted["model_version"], 2, "{quoted}");
}

/// The candidate's hold-out MAE a retraining run's `detail` reports, as written there.
fn mae(detail: &str) -> &str {
    let rest = &detail[detail.find("hold-out MAE ").expect("an MAE") + "hold-out MAE ".len()..];
    &rest[..rest.find(" min").expect("in minutes")]
}

#[tokio::test]
async fn search_started_without_a_model_trains_a_first_one_from_core_history() {
    let mut app = TestApp::builder().with_search().spawn().await;
    seed::seed(&app.core_pool, SeedSize::CURATED).await.unwrap();
    let customer01 = login(&app, "customer01@spruce.test").await;
    let addresses: Value = app
        .get("/v1/me/addresses", Some(&customer01))
        .await
        .json()
        .await
        .unwrap();
    let standard = json!({"address_id": addresses["items"][0]["id"], "service": "standard"});
    let before: Value = quote(&app, &customer01, &standard)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["estimated_by"], "rule_of_thumb", "{before}");

    app.restart_search_with(async {}, |settings| settings.model.train_at_start = true)
        .await;
    let quoted = spruce_testkit::eventually("a first model", Duration::from_secs(30), || async {
        let quoted: Value = quote(&app, &customer01, &standard)
            .await
            .json()
            .await
            .unwrap();
        if quoted["estimated_by"] == "model" {
            Ok(quoted)
        } else {
            Err(quoted)
        }
    })
    .await;
    assert_eq!(quoted["model_version"], 1);
}
