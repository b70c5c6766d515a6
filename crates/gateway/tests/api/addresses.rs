//! `POST` and `GET /v1/me/addresses`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, unique_email};

fn address(label: &str) -> Value {
    json!({
        "label": label,
        "line1": "Torstrasse 1",
        "city": "Berlin",
        "postal_code": "10119",
        "lat": 52.529,
        "lng": 13.401,
        "size_m2": 72,
        "bedrooms": 2,
        "bathrooms": 1,
        "has_pets": true
    })
}

fn labels(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["label"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_customer_adds_addresses_and_pages_through_them() {
    let app = TestApp::spawn().await;
    let customer = app.signup(&unique_email()).await;
    let token = customer["access_token"].as_str().unwrap();
    for label in ["Home", "Office", "Parents"] {
        let response = app
            .post_authorized("/v1/me/addresses", token, &address(label))
            .await;
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["label"], label);
        assert_eq!(created["size_m2"], 72);
        assert_eq!(created["has_pets"], true);
    }

    let first: Value = app
        .get("/v1/me/addresses?limit=2", Some(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(labels(&first), ["Home", "Office"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get(
            &format!("/v1/me/addresses?limit=2&cursor={cursor}"),
            Some(token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(labels(&second), ["Parents"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Another customer sees none of them.
    let other = app.signup(&unique_email()).await;
    let theirs: Value = app
        .get("/v1/me/addresses", other["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(labels(&theirs), Vec::<String>::new());
}

#[tokio::test]
async fn a_bad_address_is_a_422_naming_every_field() {
    let app = TestApp::spawn().await;
    let customer = app.signup(&unique_email()).await;
    let token = customer["access_token"].as_str().unwrap();
    let mut bad = address("");
    bad["lat"] = json!(100.0);
    bad["size_m2"] = json!(3);
    bad["bathrooms"] = json!(0);
    let body = problem(
        app.post_authorized("/v1/me/addresses", token, &bad).await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["label", "lat", "size_m2", "bathrooms"]);

    let negative = json!({"label": "x", "size_m2": -5});
    problem(
        app.post_authorized("/v1/me/addresses", token, &negative)
            .await,
        422,
    )
    .await;
    problem(
        app.get("/v1/me/addresses?cursor=garbage", Some(token))
            .await,
        422,
    )
    .await;
}

#[tokio::test]
async fn only_customers_have_addresses() {
    let app = TestApp::spawn().await;
    let cleaner = app.signup_as(&unique_email(), "cleaner").await;
    let token = cleaner["access_token"].as_str().unwrap();
    problem(
        app.post_authorized("/v1/me/addresses", token, &address("Home"))
            .await,
        403,
    )
    .await;
    problem(app.get("/v1/me/addresses", Some(token)).await, 403).await;
    problem(app.get("/v1/me/addresses", None).await, 401).await;
}

#[tokio::test]
async fn a_customer_keeps_at_most_twenty_addresses_even_asking_all_at_once() {
    let app = TestApp::spawn().await;
    let customer = app.signup(&unique_email()).await;
    let token = customer["access_token"].as_str().unwrap();
    let attempts = (0..25).map(|index| {
        let app = &app;
        async move {
            let body = address(&format!("Place {index}"));
            app.post_authorized("/v1/me/addresses", token, &body)
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [[201; 20].as_slice(), &[409; 5]].concat());
    let refused = app
        .post_authorized("/v1/me/addresses", token, &address("One more"))
        .await;
    let body = problem(refused, 409).await;
    assert_eq!(body["type"], "urn:spruce:problem:conflict");
    assert!(
        body["detail"].as_str().unwrap().contains("at most 20"),
        "{body}"
    );
}
