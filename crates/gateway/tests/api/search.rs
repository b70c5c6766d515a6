//! `GET /v1/search/cleaners` through the gateway, a real search service and core: the read
//! model follows events through the real RabbitMQ, pages carry on by cursor, and bad input
//! is refused field by field.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use spruce_testkit::try_eventually;

use crate::{
    helpers::{TestApp, field_names, problem, unique_email},
    scene::Scene,
};

/// How soon a change must be searchable.
const FRESHNESS: Duration = Duration::from_secs(2);

/// The ids of one page of hits, and the next cursor.
async fn page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, Option<String>) {
    let response = app
        .get(&format!("/v1/search/cleaners?{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let body: Value = response.json().await.unwrap();
    let ids = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["cleaner_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

/// Every hit of a search, one to a page.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let paged = match &cursor {
            Some(cursor) => format!("{query}&limit=1&cursor={cursor}"),
            None => format!("{query}&limit=1"),
        };
        let (mut hits, next) = page(app, token, &paged).await;
        ids.append(&mut hits);
        match next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

/// Waits up to [`FRESHNESS`] for `query` to find (or not find) `cleaner_id`.
pub(crate) async fn found_within_freshness(
    app: &TestApp,
    token: &str,
    query: &str,
    cleaner_id: &str,
    wanted: bool,
) -> bool {
    try_eventually(FRESHNESS, || async {
        let (ids, _) = page(app, token, query).await;
        (ids.iter().any(|id| id == cleaner_id) == wanted)
            .then_some(())
            .ok_or(ids)
    })
    .await
    .is_ok()
}

fn window(starts_at: &str) -> String {
    format!(
        "lat=52.529&lng=13.401&radius_km=20&starts_at={}&duration_min=60",
        starts_at.replace('+', "%2B")
    )
}

#[tokio::test]
async fn a_new_cleaner_is_searchable_and_a_booked_one_is_not_until_cancelled() {
    let scene = Scene::on(TestApp::builder().with_search().spawn().await).await;
    let app = &scene.app;
    // The scene's cleaner was created before search loaded or after: either way, found.
    assert!(
        found_within_freshness(
            app,
            &scene.customer,
            "lat=52.529&lng=13.401",
            &scene.cleaner_id,
            true
        )
        .await
    );

    let newcomer = app.signup_as(&unique_email(), "cleaner").await;
    let newcomer_id = newcomer["user"]["id"].as_str().unwrap().to_owned();
    let mut profile = Scene::profile("08:00");
    profile["bio"] = json!("Gründlich, pünktlich, mit eigenem Staubsauger.");
    let response = app
        .put_authorized(
            "/v1/me/cleaner-profile",
            newcomer["access_token"].as_str().unwrap(),
            &profile,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        found_within_freshness(
            app,
            &scene.customer,
            "lat=52.529&lng=13.401&q=PUNKTLICH",
            &newcomer_id,
            true
        )
        .await,
        "a new cleaner is searchable by bio, case and accents aside, within 2 s"
    );
    let (hits, _) = page(app, &scene.customer, "lat=52.529&lng=13.401&q=punktlich").await;
    assert_eq!(hits.len(), 1, "the text filter leaves the others out");
    assert_eq!(hits[0], newcomer_id);
    // Page by page, the same hits in the same order as on one page.
    let (whole, _) = page(app, &scene.customer, "lat=52.529&lng=13.401").await;
    assert_eq!(whole.len(), 2, "{whole:?}");
    assert_eq!(
        all_pages(app, &scene.customer, "lat=52.529&lng=13.401").await,
        whole
    );

    let starts_at = Scene::at(0, 12);
    let booked = scene
        .book("s-1", &scene.booking(&starts_at, "tok_visa"))
        .await;
    assert_eq!(booked.status(), 201);
    let booking: Value = booked.json().await.unwrap();
    assert!(
        found_within_freshness(
            app,
            &scene.customer,
            &window(&starts_at),
            &scene.cleaner_id,
            false
        )
        .await,
        "a cleaner booked in the window is excluded within 2 s"
    );
    let (free, _) = page(app, &scene.customer, &window(&starts_at)).await;
    assert!(
        free.contains(&newcomer_id),
        "the other cleaner is still free"
    );

    let cancelled = scene
        .act(
            &scene.customer,
            booking["id"].as_str().unwrap(),
            "cancel",
            None,
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    assert!(
        found_within_freshness(
            app,
            &scene.customer,
            &window(&starts_at),
            &scene.cleaner_id,
            true
        )
        .await,
        "the cleaner is back within 2 s of the cancellation"
    );

    let response = app
        .get(
            "/v1/search/cleaners?lat=52.529&lng=13.401",
            Some(&scene.customer),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let first = &body["items"][0];
    assert!(first["distance_km"].as_f64().unwrap() > 0.0);
    assert!((0.0..=1.0).contains(&first["score"].as_f64().unwrap()));
}

#[tokio::test]
async fn bad_searches_are_422_naming_every_field_and_strangers_are_401() {
    let app = TestApp::builder().with_search().spawn().await;
    let token = app.signup(&unique_email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let search = |query: &str| {
        let path = format!("/v1/search/cleaners?{query}");
        let (app, token) = (&app, &token);
        async move { app.get(&path, Some(token)).await }
    };

    let body = problem(search("lat=abc&radius_km=0&limit=x").await, 422).await;
    assert_eq!(field_names(&body), ["lat", "lng", "limit", "radius_km"]);

    let past = (Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    let body = problem(
        search(&format!(
            "lat=91&lng=-181&radius_km=101&service=windows&starts_at={past}&duration_min=721&min_rating=6&max_rate_cents=-5&limit=101"
        ))
        .await,
        422,
    )
    .await;
    assert_eq!(
        field_names(&body),
        [
            "lat",
            "lng",
            "radius_km",
            "service",
            "starts_at",
            "duration_min",
            "min_rating",
            "max_rate_cents",
            "limit"
        ]
    );
    let body = problem(
        search("lat=1&lng=1&starts_at=tomorrow&cursor=zzz").await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["starts_at"]);
    let body = problem(search("lat=1&lng=1&cursor=zzz").await, 422).await;
    assert_eq!(field_names(&body), ["cursor"]);
    let body = problem(
        search(&format!("lat=1&lng=1&q={}", "a".repeat(101))).await,
        422,
    )
    .await;
    assert_eq!(field_names(&body), ["q"]);

    problem(app.get("/v1/search/cleaners?lat=1&lng=1", None).await, 401).await;
}

#[tokio::test]
async fn search_down_is_503_with_retry_after() {
    let app = TestApp::spawn().await;
    let token = app.signup(&unique_email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .get("/v1/search/cleaners?lat=52.5&lng=13.4", Some(&token))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}
