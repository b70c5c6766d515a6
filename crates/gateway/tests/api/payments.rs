//! Payments against a Stripe-style stand-in: a slow provider holds no database connection,
//! and what a crash or an outage leaves half done is finished by core's sweeper.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use futures_util::future::join_all;
use serde_json::{Value, json};
use spruce_core::{
    payments::StripeProvider,
    upstream::{DurationModel, EstimateFuture, Job},
    usecases::bookings::Bookings,
};

use crate::{
    helpers::TestApp,
    scene::{Scene, json_of},
};

/// What the stand-in was asked, and how it behaves.
#[derive(Default)]
struct Provider {
    /// How long an authorization takes.
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    /// Captures answer 500 while this is set.
    failing: AtomicBool,
    authorized: Mutex<Vec<String>>,
    captured: Mutex<Vec<String>>,
    released: Mutex<Vec<String>>,
}

type Shared = Arc<Provider>;

/// A payment intent per idempotency key, as Stripe replays an answer for a repeated key.
async fn authorize(State(provider): State<Shared>, headers: HeaderMap) -> Json<Value> {
    let delay = *provider.delay.lock().unwrap();
    provider.in_flight.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    provider.in_flight.fetch_sub(1, Ordering::SeqCst);
    let key = headers["idempotency-key"].to_str().unwrap();
    let id = format!("pi_{key}");
    provider.authorized.lock().unwrap().push(id.clone());
    Json(json!({"id": id, "status": "requires_capture"}))
}

async fn capture(
    State(provider): State<Shared>,
    Path(id): Path<String>,
) -> (StatusCode, Json<Value>) {
    if provider.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    }
    provider.captured.lock().unwrap().push(id.clone());
    (StatusCode::OK, Json(json!({"id": id})))
}

async fn cancel(State(provider): State<Shared>, Path(id): Path<String>) -> Json<Value> {
    provider.released.lock().unwrap().push(id.clone());
    Json(json!({"id": id}))
}

/// Starts the stand-in; returns its URL and its record.
async fn stand_in(delay: Duration) -> (String, Shared) {
    let provider = Shared::default();
    *provider.delay.lock().unwrap() = delay;
    let router = Router::new()
        .route("/v1/payment_intents", post(authorize))
        .route("/v1/payment_intents/{id}/capture", post(capture))
        .route("/v1/payment_intents/{id}/cancel", post(cancel))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, provider)
}

/// No duration model: the sweeper needs none.
struct NoModel;

impl DurationModel for NoModel {
    fn estimate<'a>(&'a self, _job: Job<'a>) -> EstimateFuture<'a> {
        Box::pin(async { Err("no model in this test".to_owned()) })
    }
}

/// Core's booking use cases on the test's database, paying through the stand-in: to run
/// the sweeper now rather than on its clock.
fn bookings_on(app: &TestApp, url: &str) -> Bookings {
    let provider =
        StripeProvider::new(url, "sk_test_stand_in".into(), Duration::from_secs(5), 0).unwrap();
    Bookings::new(app.core_pool.clone(), Arc::new(provider), Arc::new(NoModel))
}

fn open_booking(scene: &Scene, day: i64, hour: i64) -> Value {
    let mut body = scene.booking(&Scene::at(day, hour), "pm_card_visa");
    body.as_object_mut().unwrap().remove("cleaner_id");
    body
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.core_pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn slow_authorizations_hold_no_database_connection_and_every_booking_ends_booked() {
    let (url, provider) = stand_in(Duration::from_secs(3)).await;
    // Core's pool has 5 connections here; 30 payments wait on the provider at once.
    let scene = Scene::on(TestApp::builder().stripe(&url).spawn().await).await;
    let attempts = (0..30).map(|index| {
        let scene = &scene;
        async move {
            let body = open_booking(scene, index / 8, 8 + index % 8);
            scene
                .book(&format!("slow-{index}"), &body)
                .await
                .status()
                .as_u16()
        }
    });
    let all = join_all(attempts);
    let reads = async {
        // Every payment is with the provider: each held its slot and gave its connection back.
        let started = Instant::now();
        while provider.in_flight.load(Ordering::SeqCst) < 30 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "only {} payments reached the provider",
                provider.in_flight.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut latencies = Vec::new();
        for _ in 0..50 {
            for (path, token) in [
                ("/v1/me", &scene.customer),
                ("/v1/bookings", &scene.cleaner),
            ] {
                let asked = Instant::now();
                let response = scene.app.get(path, Some(token)).await;
                assert_eq!(response.status(), 200);
                latencies.push(asked.elapsed());
            }
        }
        // The reads were answered while every payment was still waiting.
        assert_eq!(provider.in_flight.load(Ordering::SeqCst), 30);
        latencies.sort_unstable();
        // Measured, not asserted (BENCHMARKS.md): run with --no-capture to see it.
        eprintln!(
            "100 reads while 30 payments wait: p50 {:?}, p99 {:?}",
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100]
        );
    };
    let (statuses, ()) = tokio::join!(all, reads);
    assert_eq!(statuses, vec![201; 30]);
    let (held, requested, authorized) = (
        count(
            &scene.app,
            "SELECT count(*) FROM bookings WHERE status = 'pending_payment'",
        )
        .await,
        count(
            &scene.app,
            "SELECT count(*) FROM bookings WHERE status = 'requested'",
        )
        .await,
        count(
            &scene.app,
            "SELECT count(*) FROM payments WHERE status = 'authorized'",
        )
        .await,
    );
    assert_eq!((held, requested, authorized), (0, 30, 30));
}

#[tokio::test]
async fn a_hold_a_crash_left_is_released_and_its_authorization_voided() {
    let (url, provider) = stand_in(Duration::ZERO).await;
    let scene = Scene::on(TestApp::builder().stripe(&url).spawn().await).await;
    let created = json_of(
        scene
            .book("kept", &scene.booking(&Scene::at(0, 9), "pm_card_visa"))
            .await,
        201,
    )
    .await;
    // A crash after the card was authorized and before the hold was confirmed: the hold
    // is still there, its payment token with it, three minutes on.
    let pool = &scene.app.core_pool;
    sqlx::query(
        "INSERT INTO bookings (id, customer_id, cleaner_id, address_id, service, starts_at, \
         ends_at, duration_min, price_cents, currency, status, idempotency_key, request_hash, \
         estimated_by, payment_token, created_at) \
         SELECT gen_random_uuid(), customer_id, cleaner_id, address_id, service, \
         starts_at + interval '1 day', ends_at + interval '1 day', duration_min, price_cents, \
         currency, 'pending_payment', 'crashed', request_hash, estimated_by, 'pm_card_visa', \
         now() - interval '3 minutes' FROM bookings WHERE id = $1::uuid",
    )
    .bind(created["id"].as_str().unwrap())
    .execute(pool)
    .await
    .unwrap();
    let held: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM bookings WHERE status = 'pending_payment'")
            .fetch_one(pool)
            .await
            .unwrap();
    // The hold is invisible to its customer meanwhile, and its slot taken.
    let listed = json_of(
        scene.app.get("/v1/bookings", Some(&scene.customer)).await,
        200,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let clash = scene
        .book("clash", &scene.booking(&Scene::at(1, 9), "pm_card_visa"))
        .await;
    assert_eq!(clash.status(), 409);

    let bookings = bookings_on(&scene.app, &url);
    assert_eq!(bookings.sweep(100).await.unwrap(), (1, 0));
    assert_eq!(
        *provider.released.lock().unwrap(),
        [format!("pi_{held}")],
        "the authorization the lost request made is voided"
    );
    assert_eq!(
        count(
            &scene.app,
            "SELECT count(*) FROM bookings WHERE status = 'pending_payment'"
        )
        .await,
        0
    );
    // The slot is free again, and the booking made before is untouched.
    json_of(
        scene
            .book("after", &scene.booking(&Scene::at(1, 9), "pm_card_visa"))
            .await,
        201,
    )
    .await;
    assert_eq!(
        scene
            .fetch(created["id"].as_str().unwrap(), &scene.customer)
            .await["payment_status"],
        "authorized"
    );
}

#[tokio::test]
async fn a_capture_the_provider_failed_is_asked_again_until_it_is_taken() {
    let (url, provider) = stand_in(Duration::ZERO).await;
    let scene = Scene::on(TestApp::builder().stripe(&url).spawn().await).await;
    let created = json_of(
        scene
            .book("c-1", &scene.booking(&Scene::at(0, 9), "pm_card_visa"))
            .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    json_of(scene.act(&scene.cleaner, id, "confirm", None).await, 200).await;
    scene.bring_forward(id).await;
    json_of(scene.act(&scene.cleaner, id, "start", None).await, 200).await;

    // The provider fails: the cleaning is completed all the same, its capture pending.
    provider.failing.store(true, Ordering::SeqCst);
    let done = json_of(
        scene
            .act(
                &scene.cleaner,
                id,
                "complete",
                Some(json!({"actual_duration_min": 120})),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["payment_status"].as_str()),
        (Some("completed"), Some("capture_pending"))
    );
    assert_eq!(scene.outbox("booking.completed").await, 1);

    let bookings = bookings_on(&scene.app, &url);
    // Asked again only once the retry delay has passed.
    assert_eq!(bookings.sweep(100).await.unwrap(), (0, 0));
    sqlx::query("UPDATE payments SET updated_at = now() - interval '2 minutes'")
        .execute(&scene.app.core_pool)
        .await
        .unwrap();
    bookings.sweep(100).await.unwrap();
    assert_eq!(
        scene.fetch(id, &scene.customer).await["payment_status"],
        "capture_pending"
    );
    provider.failing.store(false, Ordering::SeqCst);
    sqlx::query("UPDATE payments SET updated_at = now() - interval '2 minutes'")
        .execute(&scene.app.core_pool)
        .await
        .unwrap();
    assert_eq!(bookings.sweep(100).await.unwrap(), (0, 1));
    assert_eq!(
        scene.fetch(id, &scene.customer).await["payment_status"],
        "captured"
    );
    assert_eq!(*provider.captured.lock().unwrap(), [format!("pi_{id}")]);
}

#[tokio::test]
async fn a_repeat_while_the_payment_is_under_way_gets_the_same_booking() {
    let (url, provider) = stand_in(Duration::from_secs(1)).await;
    let scene = Scene::on(TestApp::builder().stripe(&url).spawn().await).await;
    let body = scene.booking(&Scene::at(0, 9), "pm_card_visa");
    let first = scene.book("repeated", &body);
    let repeat = async {
        // Sent once the first request's slot is held and its card with the provider.
        while provider.in_flight.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        scene.book("repeated", &body).await
    };
    let (first, repeat) = tokio::join!(first, repeat);
    let (first, repeat) = (json_of(first, 201).await, json_of(repeat, 201).await);
    assert_eq!(first["id"], repeat["id"]);
    assert_eq!(provider.authorized.lock().unwrap().len(), 1);
}
