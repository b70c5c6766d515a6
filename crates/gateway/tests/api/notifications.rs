//! `GET /v1/me/notifications`: the welcome notification arrives through the event bus, pages
//! are stable, and bad paging input is a 422.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use serde_json::{Value, json};
use spruce_testkit::eventually;
use uuid::Uuid;

use crate::{
    helpers::{PASSWORD, TestApp, field_names, problem, unique_email, user_token},
    jobs::run_job,
    scene::{Scene, json_of},
    stand_ins::SmtpSink,
};

async fn page(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/v1/me/notifications{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits up to 5 s for the first notification and returns the page then.
async fn wait_for_welcome(app: &TestApp, token: &str) -> Vec<Value> {
    wait_for_notifications_within(app, token, Duration::from_secs(5), |items| {
        !items.is_empty()
    })
    .await
}

#[tokio::test]
async fn signup_leads_to_a_welcome_notification() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let items = wait_for_welcome(&app, session["access_token"].as_str().unwrap()).await;
    assert_eq!(items.len(), 1, "exactly one welcome notification");
    assert_eq!(items[0]["kind"], "welcome");
    assert_eq!(items[0]["channel"], "email");
}

#[tokio::test]
async fn notifications_are_paged_newest_first_and_only_the_users_own() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str().unwrap();
    let user_id: Uuid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(wait_for_welcome(&app, token).await.len(), 1);
    let pool = &app.scheduler_pool;
    // Three notifications an hour apart, plus one for somebody else.
    for (owner, hour, subject) in [
        (user_id, 1, "first"),
        (user_id, 2, "second"),
        (user_id, 3, "third"),
        (Uuid::new_v4(), 4, "not yours"),
    ] {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, channel, kind, subject, body, created_at) \
             VALUES ($1, $2, 'push', 'test', $3, 'body', $4)",
        )
        .bind(Uuid::new_v4())
        .bind(owner)
        .bind(subject)
        .bind(Utc.with_ymd_and_hms(2020, 1, 1, hour, 0, 0).unwrap())
        .execute(pool)
        .await
        .unwrap();
    }

    let subjects = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let everything = page(&app, token, "?limit=100").await;
    assert_eq!(
        subjects(&everything),
        [
            "Welcome to Spruce: confirm your email",
            "third",
            "second",
            "first"
        ]
    );
    assert_eq!(everything["next_cursor"], Value::Null);

    let first = page(&app, token, "?limit=2").await;
    assert_eq!(
        subjects(&first),
        ["Welcome to Spruce: confirm your email", "third"]
    );
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a further page")
        .to_owned();
    let second = page(&app, token, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(subjects(&second), ["second", "first"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_paging_input_is_a_422() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let token = session["access_token"].as_str();
    for query in [
        "?limit=1000",
        "?limit=abc",
        "?cursor=not-a-cursor",
        "?limit=-1",
    ] {
        let response = app
            .get(&format!("/v1/me/notifications{query}"), token)
            .await;
        problem(response, 422).await;
    }
    problem(app.get("/v1/me/notifications", None).await, 401).await;
}

#[tokio::test]
async fn a_down_scheduler_fails_its_own_routes_only_and_the_gateway_stays_ready() {
    let app = TestApp::builder().scheduler_unreachable().spawn().await;
    // Most routes need core alone: the gateway stays in its Service.
    let readiness = app.get("/readyz", None).await;
    assert_eq!(readiness.status(), 200);
    let ann = app.signup(&unique_email()).await;
    let token = ann["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", Some(token)).await.status(), 200);
    // The scheduler's routes say so, and when to try again.
    let response = app.get("/v1/me/notifications", Some(token)).await;
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        problem(response, 503).await["type"],
        "urn:spruce:problem:unavailable"
    );
}

/// Waits up to 10 s for `done` to hold of the user's notifications; returns them then.
pub(crate) async fn wait_for_notifications(
    app: &TestApp,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for_notifications_within(app, token, Duration::from_secs(10), done).await
}

async fn wait_for_notifications_within(
    app: &TestApp,
    token: &str,
    limit: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    eventually("the notifications", limit, || async {
        let items = page(app, token, "?limit=100").await["items"]
            .as_array()
            .unwrap()
            .clone();
        if done(&items) { Ok(items) } else { Err(items) }
    })
    .await
}

/// Signs up a customer reading times in `zone`; returns (token, email).
async fn customer_in(app: &TestApp, zone: &str) -> (String, String) {
    let email = unique_email();
    let response = app
        .post(
            "/v1/auth/signup",
            &json!({"email": email, "password": PASSWORD, "full_name": "Cora Customer",
                    "role": "customer", "timezone": zone}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let session: Value = response.json().await.unwrap();
    app.mark_verified(&session).await;
    (session["access_token"].as_str().unwrap().to_owned(), email)
}

/// Books the scene's cleaner tomorrow at 09:00 UTC for `token`'s holder and has the
/// cleaner confirm it; returns the booking's id.
async fn confirmed_booking(scene: &Scene, token: &str, key: &str) -> String {
    let address = Scene::add_address(&scene.app, token, 52.529, 13.401).await;
    let mut body = scene.booking(&Scene::at(0, 9), "tok_visa");
    body["address_id"] = json!(address);
    let response = scene
        .app
        .client
        .post(format!("{}/v1/bookings", scene.app.address))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let booking = json_of(response, 201).await;
    let id = booking["id"].as_str().unwrap().to_owned();
    json_of(scene.act(&scene.cleaner, &id, "confirm", None).await, 200).await;
    id
}

#[tokio::test]
async fn a_reminder_reaches_each_party_by_email_once_with_the_start_in_their_zone() {
    let sink = SmtpSink::start().await;
    let scene = Scene::on(TestApp::builder().smtp(sink.port).spawn().await).await;
    let (customer, email) = customer_in(&scene.app, "Europe/Berlin").await;
    confirmed_booking(&scene, &customer, "remind-1").await;
    let admin = user_token("admin");
    // The scheduler learns of the confirmation through the bus: run until it is reminded.
    let reminded = eventually("a reminder", Duration::from_secs(5), || async {
        let run = run_job(&scene.app, &admin, "booking-reminders").await;
        assert_eq!(run["outcome"], "succeeded", "{run}");
        match run["items"].as_u64().unwrap() {
            0 => Err(run),
            reminded => Ok(reminded),
        }
    })
    .await;
    assert_eq!(reminded, 1);

    let reminders = || -> Vec<Value> {
        sink.messages()
            .into_iter()
            .filter(|message| message["data"].as_str().unwrap().contains("is tomorrow"))
            .collect()
    };
    let reminders = eventually("both reminders sent", Duration::from_secs(10), || async {
        let sent = reminders();
        if sent.len() >= 2 { Ok(sent) } else { Err(sent) }
    })
    .await;
    assert_eq!(reminders.len(), 2, "{reminders:?}");
    let to_customer = reminders
        .iter()
        .find(|message| message["to"] == json!([email]))
        .expect("the customer's reminder");
    // The body is quoted-printable: undo its soft line breaks.
    let data = to_customer["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    assert!(
        data.contains("Subject: Your cleaning is tomorrow"),
        "{data}"
    );
    // Tomorrow 09:00 UTC, read in Berlin.
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).format("%A %-d %B %Y");
    assert!(data.contains(&format!("{tomorrow}, 10:00 CET")), "{data}");
    assert!(
        data.contains("From: Spruce <no-reply@spruce.example>"),
        "{data}"
    );
    // The cleaner signed up without a zone: UTC.
    let to_cleaner = reminders
        .iter()
        .find(|message| message["to"] != json!([email]))
        .unwrap();
    let cleaner_data = to_cleaner["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    assert!(cleaner_data.contains("09:00 UTC"), "{cleaner_data}");

    // Once: another run reminds nobody, and the customer's reminder shows as sent.
    let again = run_job(&scene.app, &admin, "booking-reminders").await;
    assert_eq!(again["items"], 0);
    let items = wait_for_notifications(&scene.app, &customer, |items| {
        items
            .iter()
            .any(|item| item["kind"] == "booking.reminder" && item["delivery"] == "sent")
    })
    .await;
    let kinds: Vec<_> = items
        .iter()
        .map(|item| item["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "booking.reminder")
            .count(),
        1,
        "{kinds:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages()
            .iter()
            .filter(|message| message["data"].as_str().unwrap().contains("is tomorrow"))
            .count(),
        2,
        "nobody reminded twice"
    );
}

#[tokio::test]
async fn a_user_with_a_device_also_gets_push_and_sees_each_delivery() {
    let scene = Scene::new().await;
    let (customer, _) = customer_in(&scene.app, "Europe/Berlin").await;
    // The welcome came before any device: email only.
    wait_for_notifications(&scene.app, &customer, |items| {
        items.iter().any(|item| item["kind"] == "welcome")
    })
    .await;
    for bad in [
        json!({"device_token": "spaces are not a token"}),
        json!({"device_token": "x".repeat(5000)}),
    ] {
        let response = scene
            .app
            .put_authorized("/v1/me/device", &customer, &bad)
            .await;
        assert_eq!(field_names(&problem(response, 422).await), ["device_token"]);
    }
    let response = scene
        .app
        .client
        .put(format!("{}/v1/me/device", scene.app.address))
        .json(&json!({"device_token": "fcm-token-1"}))
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
    let registered = scene
        .app
        .put_authorized(
            "/v1/me/device",
            &customer,
            &json!({"device_token": "fcm-token-1"}),
        )
        .await;
    assert_eq!(registered.status(), 204);

    confirmed_booking(&scene, &customer, "push-1").await;
    let items = wait_for_notifications(&scene.app, &customer, |items| {
        items
            .iter()
            .filter(|item| item["kind"] == "booking.confirmed" && item["delivery"] == "sent")
            .count()
            == 2
    })
    .await;
    let mut channels: Vec<_> = items
        .iter()
        .filter(|item| item["kind"] == "booking.confirmed")
        .map(|item| item["channel"].as_str().unwrap())
        .collect();
    channels.sort_unstable();
    assert_eq!(channels, ["email", "push"]);
    let welcome: Vec<_> = items
        .iter()
        .filter(|item| item["kind"] == "welcome")
        .collect();
    assert_eq!(welcome.len(), 1);
    assert_eq!(welcome[0]["channel"], "email");
}
