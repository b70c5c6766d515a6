//! `GET /v1/search/cleaners` through the gateway, a real search service and core: the read
//! model follows events through the real RabbitMQ, survives a restart, and refuses bad
//! input field by field.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use spruce_platform::keys;
use spruce_proto::core::v1::{
    StreamCleanersRequest, read_model_service_client::ReadModelServiceClient,
};
use spruce_search::{
    domain::{
        index::scan,
        query::{RawQuery, SearchQuery},
        readmodel::SnapshotBuilder,
    },
    wire,
};
use spruce_testkit::try_eventually;

use crate::{
    helpers::{TestApp, field_names, problem, service_token, unique_email, with_token},
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

/// Every hit of a search, page by page.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let paged = match &cursor {
            Some(cursor) => format!("{query}&limit=2&cursor={cursor}"),
            None => format!("{query}&limit=2"),
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

/// Streams core's state as search's own snapshot would, and answers `query` by looking at
/// every cleaner.
async fn brute_force(core_url: &str, query: &RawQuery) -> Vec<String> {
    let token = service_token(keys::dev::SEARCH_PRIVATE_KEY, "search", "core");
    let mut client = ReadModelServiceClient::connect(core_url.to_owned())
        .await
        .unwrap();
    let mut stream = client
        .stream_cleaners(with_token(StreamCleanersRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    let mut builder = SnapshotBuilder::default();
    while let Some(batch) = stream.message().await.unwrap() {
        for state in &batch.cleaners {
            if let Some((cleaner, bookings)) = wire::cleaner_state(state).unwrap() {
                builder.add(state.version, cleaner, bookings);
            }
        }
    }
    let model = builder.finish();
    let query = SearchQuery::parse(
        &RawQuery {
            limit: Some(100),
            ..query.clone()
        },
        Utc::now(),
    )
    .unwrap();
    scan(model.index().cleaners(), &query)
        .hits
        .iter()
        .map(|hit| hit.id.to_string())
        .collect()
}

#[tokio::test]
async fn search_restarted_while_things_change_answers_as_a_scan_of_core() {
    let mut scene = Scene::on(TestApp::builder().with_search().spawn().await).await;
    let mut cleaners = Vec::new();
    for (n, (lat, rate, services)) in [
        (52.53, 2_000, vec!["standard"]),
        (52.50, 4_000, vec!["deep", "standard"]),
        (52.56, 2_500, vec!["office"]),
    ]
    .into_iter()
    .enumerate()
    {
        let cleaner = scene.app.signup_as(&unique_email(), "cleaner").await;
        let token = cleaner["access_token"].as_str().unwrap().to_owned();
        let mut profile = Scene::profile("08:00");
        profile["home"] = json!({"lat": lat, "lng": 13.40});
        profile["hourly_rate_cents"] = json!(rate);
        profile["services"] = json!(services);
        profile["bio"] = json!(format!("cleaner number {n}"));
        let response = scene
            .app
            .put_authorized("/v1/me/cleaner-profile", &token, &profile)
            .await;
        assert_eq!(response.status(), 200);
        cleaners.push(token);
    }
    let noon = Scene::at(0, 12);
    let first: Value = scene
        .book("r-1", &scene.booking(&noon, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();

    let app_address = scene.app.address.clone();
    let customer = scene.customer.clone();
    let first_id = first["id"].as_str().unwrap().to_owned();
    let repriced = cleaners[0].clone();
    let client = scene.app.client.clone();
    let core = scene.app.core_pool.clone();
    scene
        .app
        .restart_search(async {
            // While search is down: a newcomer, a new price, a cancellation, a new booking.
            let newcomer = client
                .post(format!("{app_address}/v1/auth/signup"))
                .json(&json!({"email": unique_email(), "password": crate::helpers::PASSWORD, "full_name": "Zoë Late", "role": "cleaner"}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            crate::helpers::mark_verified(&core, newcomer["user"]["id"].as_str().unwrap()).await;
            let put = |token: String, profile: Value| {
                let client = client.clone();
                let url = format!("{app_address}/v1/me/cleaner-profile");
                async move {
                    let response = client.put(url).bearer_auth(token).json(&profile).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                }
            };
            put(
                newcomer["access_token"].as_str().unwrap().to_owned(),
                Scene::profile("06:00"),
            )
            .await;
            let mut cheaper = Scene::profile("08:00");
            cheaper["home"] = json!({"lat": 52.53, "lng": 13.40});
            cheaper["hourly_rate_cents"] = json!(900);
            cheaper["services"] = json!(["standard"]);
            put(repriced, cheaper).await;
            let cancelled = client
                .post(format!("{app_address}/v1/bookings/{first_id}/cancel"))
                .bearer_auth(&customer)
                .send()
                .await
                .unwrap();
            assert_eq!(cancelled.status(), 200);
        })
        .await;
    let later = Scene::at(0, 15);
    assert_eq!(
        scene
            .book("r-2", &scene.booking(&later, "tok_visa"))
            .await
            .status(),
        201
    );

    let core_url = scene.app.core_url.clone();
    let base = RawQuery {
        lat: Some(52.529),
        lng: Some(13.401),
        radius_km: Some(30.0),
        ..RawQuery::default()
    };
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    // Each with how many cleaners answer it: the scene's, three more, the newcomer.
    let cases = [
        (
            5,
            "lat=52.529&lng=13.401&radius_km=30".to_owned(),
            base.clone(),
        ),
        (
            3,
            "lat=52.529&lng=13.401&radius_km=30&service=standard&max_rate_cents=3000".to_owned(),
            RawQuery {
                service: Some("standard".to_owned()),
                max_rate_cents: Some(3_000),
                ..base.clone()
            },
        ),
        (
            5,
            format!("{}&radius_km=30", window(&noon)).replace("radius_km=20&", ""),
            RawQuery {
                starts_at: Some(at(&noon)),
                duration_min: Some(60),
                ..base.clone()
            },
        ),
        (
            4,
            format!("{}&radius_km=30", window(&later)).replace("radius_km=20&", ""),
            RawQuery {
                starts_at: Some(at(&later)),
                duration_min: Some(60),
                ..base.clone()
            },
        ),
    ];
    for (count, query, raw) in cases {
        let expected = brute_force(&core_url, &raw).await;
        assert_eq!(expected.len(), count, "{query}: {expected:?}");
        let started = Instant::now();
        loop {
            let searched = all_pages(&scene.app, &scene.customer, &query).await;
            if searched == expected {
                break;
            }
            assert!(
                started.elapsed() < FRESHNESS,
                "{query}: search says {searched:?}, a scan of core says {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
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
