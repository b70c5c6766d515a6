//! The scheduler's clock jobs through `/v1/admin/jobs`: admins only, each run recorded with
//! its outcome.

use prost::Message as _;
use serde_json::{Value, json};
use spruce_proto::events::v1::{Envelope, envelope::Payload};
use spruce_testkit::eventually;
use std::time::Duration;

use crate::{
    helpers::{TestApp, field_names, problem, unique_email, user_token},
    scene::{Scene, json_of},
    search::found_within_freshness,
};

/// `name` as `GET /v1/admin/jobs` lists it.
async fn listed(app: &TestApp, admin: &str, name: &str) -> Value {
    let jobs: Value = app
        .get("/v1/admin/jobs", Some(admin))
        .await
        .json()
        .await
        .unwrap();
    jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {jobs}"))
}

/// Queues a run of `job` by hand and waits until a replica has finished it.
pub(crate) async fn run_job(app: &TestApp, admin: &str, job: &str) -> Value {
    run_job_with(app, admin, job, &json!({})).await
}

/// Same, with the request `body` (its options).
async fn run_job_with(app: &TestApp, admin: &str, job: &str, body: &Value) -> Value {
    let queued = app
        .post_authorized(&format!("/v1/admin/jobs/{job}/run"), admin, body)
        .await;
    assert_eq!(queued.status(), 202);
    let queued: Value = queued.json().await.unwrap();
    assert_eq!(queued["outcome"], "queued", "{queued}");
    assert_eq!(queued["trigger"], "manual");
    let id = queued["id"].as_str().unwrap().to_owned();
    eventually("the run's end", Duration::from_secs(60), || async {
        let runs: Value = app
            .get(&format!("/v1/admin/jobs/{job}/runs"), Some(admin))
            .await
            .json()
            .await
            .unwrap();
        let run = runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["id"] == id.as_str())
            .cloned()
            .expect("the queued run is listed");
        if matches!(run["outcome"].as_str(), Some("queued" | "running")) {
            Err(run)
        } else {
            Ok(run)
        }
    })
    .await
}

#[tokio::test]
async fn only_admins_see_and_run_jobs() {
    let app = TestApp::spawn().await;
    let customer = user_token("customer");
    let cleaner = user_token("cleaner");
    for token in [&customer, &cleaner] {
        problem(app.get("/v1/admin/jobs", Some(token)).await, 403).await;
        problem(
            app.post_authorized(
                "/v1/admin/jobs/auto-assign/run",
                token,
                &serde_json::json!({}),
            )
            .await,
            403,
        )
        .await;
        problem(
            app.get("/v1/admin/jobs/auto-assign/runs", Some(token))
                .await,
            403,
        )
        .await;
    }
    problem(app.get("/v1/admin/jobs", None).await, 401).await;

    let admin = user_token("admin");
    let retrain = listed(&app, &admin, "retrain-duration-model").await;
    assert_eq!(retrain["schedule"], "0 3 * * *");
    assert_eq!(retrain["time_zone"], "UTC");
    // The tests switch every job's ticks off: no next tick.
    assert_eq!(retrain["enabled"], false);
    assert_eq!(retrain["next_tick"], Value::Null);
    assert!(retrain["last_tick"].is_string());
    for unknown in ["no-such-job", "Auto-Assign", &"a".repeat(65)] {
        problem(
            app.post_authorized(
                &format!("/v1/admin/jobs/{unknown}/run"),
                &admin,
                &serde_json::json!({}),
            )
            .await,
            404,
        )
        .await;
        problem(
            app.get(&format!("/v1/admin/jobs/{unknown}/runs"), Some(&admin))
                .await,
            404,
        )
        .await;
    }
    // Options are the job's to accept: retraining takes none, auto-assign only a mode.
    for (job, body) in [
        (
            "retrain-duration-model",
            json!({"options": {"mode": "stable"}}),
        ),
        ("auto-assign", json!({"options": {"mode": "greedy"}})),
        ("auto-assign", json!({"options": {"radius": "5"}})),
    ] {
        let response = app
            .post_authorized(&format!("/v1/admin/jobs/{job}/run"), &admin, &body)
            .await;
        assert_eq!(
            field_names(&problem(response, 422).await),
            ["options"],
            "{body}"
        );
    }
    let unknown_field = app
        .post_authorized(
            "/v1/admin/jobs/auto-assign/run",
            &admin,
            &json!({"mode": "stable"}),
        )
        .await;
    problem(unknown_field, 422).await;
    let malformed = app
        .client
        .post(format!("{}/v1/admin/jobs/auto-assign/run", app.address))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
    let bad_page = app
        .get(
            "/v1/admin/jobs/retrain-duration-model/runs?limit=1000",
            Some(&admin),
        )
        .await;
    problem(bad_page, 422).await;
}

#[tokio::test]
async fn a_run_whose_upstream_is_down_is_retried_then_recorded_as_failed() {
    // Search does not run here: retraining cannot succeed.
    let app = TestApp::spawn().await;
    let admin = user_token("admin");
    let run = run_job(&app, &admin, "retrain-duration-model").await;
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(run["attempts"], 3);
    assert!(
        run["error"].as_str().unwrap().contains("RetrainModel"),
        "{run}"
    );
    assert!(run["finished_at"].is_string());
    let retrain = listed(&app, &admin, "retrain-duration-model").await;
    assert_eq!(retrain["last_run"]["id"], run["id"]);
    assert_eq!(retrain["last_success_at"], Value::Null);
}

/// The `reason` of each booking.cancelled event core wrote for `booking_id`.
async fn cancel_reasons(scene: &Scene, booking_id: &str) -> Vec<String> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'booking.cancelled' ORDER BY id",
    )
    .fetch_all(&scene.app.core_pool)
    .await
    .unwrap();
    payloads
        .iter()
        .filter_map(
            |payload| match Envelope::decode(payload.as_slice()).unwrap().payload? {
                Payload::BookingChanged(change) if change.booking_id == booking_id => {
                    Some(change.reason)
                }
                _ => None,
            },
        )
        .collect()
}

#[tokio::test]
async fn unconfirmed_bookings_expire_once_and_confirmed_ones_stay() {
    let scene = Scene::new().await;
    let admin = user_token("admin");
    let stale = json_of(
        scene
            .book("expire-1", &scene.booking(&Scene::at(0, 9), "tok_visa"))
            .await,
        201,
    )
    .await;
    let kept = json_of(
        scene
            .book("expire-2", &scene.booking(&Scene::at(0, 12), "tok_visa"))
            .await,
        201,
    )
    .await;
    let fresh = json_of(
        scene
            .book("expire-3", &scene.booking(&Scene::at(1, 9), "tok_visa"))
            .await,
        201,
    )
    .await;
    let kept_id = kept["id"].as_str().unwrap();
    json_of(
        scene.act(&scene.cleaner, kept_id, "confirm", None).await,
        200,
    )
    .await;
    // Two of them were made three hours ago; one of those was confirmed since.
    for id in [stale["id"].as_str().unwrap(), kept_id] {
        sqlx::query(
            "UPDATE bookings SET created_at = now() - interval '3 hours' WHERE id = $1::uuid",
        )
        .bind(id)
        .execute(&scene.app.core_pool)
        .await
        .unwrap();
    }

    let run = run_job(&scene.app, &admin, "expire-unconfirmed").await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["items"], 1, "{run}");
    let stale_id = stale["id"].as_str().unwrap();
    let expired = scene.fetch(stale_id, &scene.customer).await;
    assert_eq!(expired["status"], "cancelled");
    assert_eq!(expired["payment_status"], "released");
    assert_eq!(cancel_reasons(&scene, stale_id).await, ["unconfirmed"]);
    for (id, status) in [
        (kept_id, "confirmed"),
        (fresh["id"].as_str().unwrap(), "requested"),
    ] {
        let booking = scene.fetch(id, &scene.customer).await;
        assert_eq!(booking["status"], status);
    }
    // Again: nothing left to expire, nothing cancelled twice.
    let again = run_job(&scene.app, &admin, "expire-unconfirmed").await;
    assert_eq!(again["items"], 0, "{again}");
    assert_eq!(cancel_reasons(&scene, stale_id).await.len(), 1);
    // A customer's own cancellation names them.
    let fresh_id = fresh["id"].as_str().unwrap();
    json_of(
        scene.act(&scene.customer, fresh_id, "cancel", None).await,
        200,
    )
    .await;
    assert_eq!(cancel_reasons(&scene, fresh_id).await, ["customer"]);
}

#[tokio::test]
async fn auto_assign_gives_an_open_booking_a_cleaner_once_and_leaves_the_clash_open() {
    let scene = Scene::on(TestApp::builder().with_search().spawn().await).await;
    let admin = user_token("admin");
    assert!(
        found_within_freshness(
            &scene.app,
            &scene.customer,
            "lat=52.529&lng=13.401",
            &scene.cleaner_id,
            true
        )
        .await
    );
    // Two customers want the same hour without choosing; there is one cleaner.
    let mut open = scene.booking(&Scene::at(0, 9), "tok_visa");
    open.as_object_mut().unwrap().remove("cleaner_id");
    let first = json_of(scene.book("assign-1", &open).await, 201).await;
    let other = scene.app.signup(&unique_email()).await;
    let other_token = other["access_token"].as_str().unwrap().to_owned();
    let other_address = Scene::add_address(&scene.app, &other_token, 52.525, 13.40).await;
    let mut clash = open.clone();
    clash["address_id"] = other_address.into();
    let response = scene
        .app
        .client
        .post(format!("{}/v1/bookings", scene.app.address))
        .bearer_auth(&other_token)
        .header("idempotency-key", "assign-2")
        .json(&clash)
        .send()
        .await
        .unwrap();
    let second = json_of(response, 201).await;

    // This run in stable mode: cleaners' preferences count too.
    let run = run_job_with(
        &scene.app,
        &admin,
        "auto-assign",
        &json!({"options": {"mode": "stable"}}),
    )
    .await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["items"], 1, "{run}");
    assert_eq!(run["options"], json!({"mode": "stable"}));
    let detail = run["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("stable: assigned 1 of 2 open bookings")
            && detail.contains(", 0 blocking pairs;"),
        "{run}"
    );
    let mut statuses = Vec::new();
    for (booking, token) in [(&first, &scene.customer), (&second, &other_token)] {
        let id = booking["id"].as_str().unwrap();
        let now = scene.fetch(id, token).await;
        statuses.push((now["status"].clone(), now["cleaner_id"].clone()));
    }
    statuses.sort_by_key(|(status, _)| status.to_string());
    assert_eq!(
        statuses,
        [
            (json!("confirmed"), json!(scene.cleaner_id)),
            (json!("requested"), Value::Null)
        ]
    );
    // The next tick finds the cleaner taken (by search's read model or core's constraint):
    // the other booking stays open, nothing is assigned twice.
    let again = run_job(&scene.app, &admin, "auto-assign").await;
    assert_eq!(again["outcome"], "succeeded", "{again}");
    assert_eq!(again["items"], 0, "{again}");
    assert_eq!(scene.outbox("booking.assigned").await, 1);
}
