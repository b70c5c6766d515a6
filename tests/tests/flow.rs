//! The walking skeleton, end to end: a signup through the gateway reaches core over gRPC,
//! goes out through the outbox and RabbitMQ, becomes a welcome notification in the
//! scheduler, and is one trace across all of it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spruce_e2e::{
    otlp,
    stack::Stack,
    tap::{Tap, documented_routing_keys},
};
use spruce_search::{domain::query::RawQuery, testing::scan_of_core};
use spruce_testkit::{eventually, try_eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test]
async fn signup_becomes_a_welcome_notification_in_one_trace() {
    let shutdown = CancellationToken::new();
    let (otlp_port, spans) = otlp::start(shutdown.clone()).await.unwrap();
    let stack = Stack::start(otlp_port).await.unwrap();
    let client = reqwest::Client::new();

    // The client starts the trace, so we know its id.
    let trace_id = Uuid::new_v4().simple().to_string();
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        &Uuid::new_v4().simple().to_string()[..16]
    );
    let email = format!("e2e-{}@example.com", Uuid::new_v4().simple());
    let signup = client
        .post(format!("{}/v1/auth/signup", stack.gateway_url))
        .header("traceparent", traceparent)
        .json(&json!({"email": email, "password": "correct horse battery", "full_name": "Erin", "role": "cleaner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let signed_up = Instant::now();
    let session: Value = signup.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap().to_owned();

    let get = |path: &'static str| {
        let request = client
            .get(format!("{}{path}", stack.gateway_url))
            .bearer_auth(&token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let me = get("/v1/me").await;
    assert_eq!(me["email"], email.as_str());

    let mut welcome = None;
    while signed_up.elapsed() < Duration::from_secs(5) {
        let page = get("/v1/me/notifications").await;
        if let Some(first) = page["items"].as_array().and_then(|items| items.first()) {
            welcome = Some(first.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let welcome = welcome.expect("a welcome notification within 5 s of signup");
    assert_eq!(welcome["kind"], "welcome");
    // It carries the verification code: that goes to the mailbox, never back through the API.
    assert_eq!(welcome["body"], "Sent to your email address only.");

    let wanted = |trace: &[otlp::ReceivedSpan], service: &str, name_part: &str| {
        trace
            .iter()
            .any(|span| span.service == service && span.name.contains(name_part))
    };
    let trace = try_eventually(Duration::from_secs(10), || {
        let trace = spans.of_trace(&trace_id);
        let whole = wanted(&trace, "spruce-gateway", "POST /v1/auth/signup")
            && wanted(&trace, "spruce-core", "UserService/Register")
            && wanted(&trace, "spruce-core", "publish")
            && wanted(&trace, "spruce-scheduler", "process");
        async move { if whole { Ok(trace) } else { Err(trace) } }
    })
    .await
    .unwrap_or_else(|partial| partial);
    assert!(
        wanted(&trace, "spruce-gateway", "POST /v1/auth/signup"),
        "{trace:#?}"
    );
    assert!(
        wanted(&trace, "spruce-core", "UserService/Register"),
        "{trace:#?}"
    );
    assert!(
        wanted(&trace, "spruce-core", "user.registered publish"),
        "{trace:#?}"
    );
    assert!(wanted(&trace, "spruce-scheduler", "process"), "{trace:#?}");

    // Every service drains and exits 0 on SIGTERM.
    stack.stop().await.unwrap();
    shutdown.cancel();
}

/// Logs in as a seeded user and returns the session.
async fn login(client: &reqwest::Client, stack: &Stack, email: &str) -> Value {
    let response = client
        .post(format!("{}/v1/auth/login", stack.gateway_url))
        .json(&json!({"email": email, "password": "spruce-dev-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{email}");
    response.json().await.unwrap()
}

/// The gateway as the mobile app uses it: JSON in and out, a bearer token.
struct Gateway<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
}

impl Gateway<'_> {
    async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Adds a flat at `home` for `customer`; returns it and the next Wednesday at 11:00 UTC,
/// midday in Berlin, inside cleaner01's hours.
async fn flat_next_to(gateway: &Gateway<'_>, customer: &str, home: &Value) -> (Value, String) {
    let address: Value = gateway
        .post(
            "/v1/me/addresses",
            customer,
            &json!({
                "label": "Flat", "line1": "Torstrasse 9", "city": "Berlin", "postal_code": "10119",
                "lat": home["lat"], "lng": home["lng"],
                "size_m2": 50, "bedrooms": 1, "bathrooms": 1, "has_pets": false
            }),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut day = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    while chrono::Datelike::weekday(&day) != chrono::Weekday::Wed {
        day = day + chrono::Days::new(1);
    }
    (address, format!("{day}T11:00:00Z"))
}

#[tokio::test]
async fn seeded_customer_books_and_reviews_a_seeded_cleaner_a_declined_card_books_nothing_and_auto_assign_fills_an_open_booking()
 {
    let shutdown = CancellationToken::new();
    let (otlp_port, _spans) = otlp::start(shutdown.clone()).await.unwrap();
    let stack = Stack::start(otlp_port).await.unwrap();
    // What the services publish meanwhile, checked against docs/asyncapi.yaml at the end.
    let tap = Tap::bind(stack.exchange()).await.unwrap();
    let client = reqwest::Client::new();
    let gateway = Gateway {
        client: &client,
        base: &stack.gateway_url,
    };

    let customer = login(&client, &stack, "customer01@spruce.test").await;
    let customer = customer["access_token"].as_str().unwrap().to_owned();
    let cleaner_session = login(&client, &stack, "cleaner01@spruce.test").await;
    let cleaner = cleaner_session["access_token"].as_str().unwrap().to_owned();
    let cleaner_id = cleaner_session["user"]["id"].as_str().unwrap().to_owned();
    let profile = gateway
        .get(&format!("/v1/cleaners/{cleaner_id}"), &cleaner)
        .await;
    let ratings_before = profile["rating_count"].as_u64().unwrap();

    let (address, starts_at) = flat_next_to(&gateway, &customer, &profile["home"]).await;
    let booking = |token: &str| {
        json!({
            "address_id": address["id"], "service": "standard", "cleaner_id": cleaner_id,
            "starts_at": starts_at, "payment_token": token
        })
    };
    let book = |key: &str, body: Value| {
        client
            .post(format!("{}/v1/bookings", gateway.base))
            .bearer_auth(&customer)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let declined = book("e2e-declined", booking("tok_chargeDeclined"))
        .await
        .unwrap();
    assert_eq!(declined.status(), 402);
    let created = book("e2e-1", booking("tok_visa")).await.unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = gateway
        .get("/v1/bookings?status=requested", &customer)
        .await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "the declined attempt left no booking (the history is all completed)"
    );

    for (action, body) in [
        ("confirm", json!({})),
        ("start", json!({})),
        ("complete", json!({"actual_duration_min": 90})),
    ] {
        if action == "start" {
            stack.bring_forward(&id).await.unwrap();
        }
        let response = gateway
            .post(&format!("/v1/bookings/{id}/{action}"), &cleaner, &body)
            .await;
        assert_eq!(response.status(), 200, "{action}");
    }
    let review = gateway
        .post(
            &format!("/v1/bookings/{id}/review"),
            &customer,
            &json!({"rating": 5, "comment": "Great."}),
        )
        .await;
    assert_eq!(review.status(), 201);
    let after = gateway
        .get(&format!("/v1/cleaners/{cleaner_id}"), &customer)
        .await;
    assert_eq!(after["rating_count"].as_u64().unwrap(), ratings_before + 1);

    // A booking without a cleaner: the admin runs auto-assign, the matching engine gives it
    // a cleaner, core confirms it, and the customer is told.
    let week_later = (chrono::DateTime::parse_from_rfc3339(&starts_at).unwrap()
        + chrono::Duration::days(7))
    .to_rfc3339();
    let open = json!({
        "address_id": address["id"], "service": "standard", "starts_at": week_later,
        "payment_token": "tok_visa"
    });
    let created = book("e2e-open", open).await.unwrap();
    assert_eq!(created.status(), 201);
    let open_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = login(&client, &stack, "admin@spruce.test").await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let queued = gateway
        .post("/v1/admin/jobs/auto-assign/run", &admin, &json!({}))
        .await;
    assert_eq!(queued.status(), 202);
    let run_id = queued.json::<Value>().await.unwrap()["id"].clone();
    let run = eventually(
        "the auto-assign run's end",
        Duration::from_secs(30),
        || async {
            let runs = gateway.get("/v1/admin/jobs/auto-assign/runs", &admin).await;
            let run = runs["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|run| run["id"] == run_id)
                .cloned()
                .unwrap();
            if matches!(run["outcome"].as_str(), Some("queued" | "running")) {
                Err(run)
            } else {
                Ok(run)
            }
        },
    )
    .await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert!(run["items"].as_u64().unwrap() >= 1, "{run}");
    let assigned = gateway
        .get(&format!("/v1/bookings/{open_id}"), &customer)
        .await;
    assert_eq!(assigned["status"], "confirmed", "{assigned}");
    assert!(assigned["cleaner_id"].is_string(), "{assigned}");
    eventually(
        "the customer told of the assignment",
        Duration::from_secs(10),
        || async {
            let notifications = gateway
                .get("/v1/me/notifications?limit=100", &customer)
                .await;
            let told = notifications["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|item| {
                    // Sent, though the seeded customer's user.registered never reached the
                    // scheduler: it asked core where to (GetUser as the scheduler).
                    item["kind"] == "booking.assigned"
                        && item["subject"] == "We found you a cleaner"
                        && item["delivery"] == "sent"
                });
            if told { Ok(()) } else { Err(notifications) }
        },
    )
    .await;
    events_are_as_documented(&tap).await;

    stack.stop().await.unwrap();
    shutdown.cancel();
}

/// Waits for the journey's events (a booking made, worked through, reviewed and assigned,
/// a card declined) and checks every message published meanwhile against
/// docs/asyncapi.yaml: a documented routing key, the content type, the event id as message
/// id, a W3C `traceparent`, and a body that is an Envelope of that type with its payload.
async fn events_are_as_documented(tap: &Tap) {
    let documented = documented_routing_keys().unwrap();
    let journey = [
        "booking.created",
        "booking.confirmed",
        "booking.started",
        "booking.completed",
        "review.created",
        "cleaner.updated",
        "payment.failed",
        "booking.assigned",
    ];
    let received = eventually("the journey's events", Duration::from_secs(10), || async {
        let received = tap.received();
        let missing: Vec<_> = journey
            .iter()
            .filter(|key| !received.iter().any(|message| message.routing_key == **key))
            .collect();
        if missing.is_empty() {
            Ok(received)
        } else {
            Err(missing)
        }
    })
    .await;
    let traceparent = |value: &str| {
        let parts: Vec<&str> = value.split('-').collect();
        parts.len() == 4
            && [2, 32, 16, 2].iter().zip(&parts).all(|(length, part)| {
                part.len() == *length && part.chars().all(|c| c.is_ascii_hexdigit())
            })
    };
    for message in &received {
        let key = &message.routing_key;
        assert!(
            documented.contains(key),
            "{key} is not in docs/asyncapi.yaml"
        );
        assert_eq!(
            message.content_type.as_deref(),
            Some("application/x-protobuf"),
            "{key}"
        );
        let envelope = message.envelope.as_ref().expect("the body is an Envelope");
        assert_eq!(&envelope.r#type, key);
        assert!(envelope.payload.is_some(), "{key} has its payload");
        assert_eq!(
            message.message_id.as_deref(),
            Some(envelope.event_id.as_str())
        );
        let parent = message.headers.get("traceparent").map(String::as_str);
        assert!(
            parent.is_some_and(traceparent),
            "{key}: traceparent {parent:?}"
        );
    }
}

#[tokio::test]
async fn search_killed_while_cleaners_and_bookings_change_answers_as_a_scan_of_core() {
    let shutdown = CancellationToken::new();
    let (otlp_port, _spans) = otlp::start(shutdown.clone()).await.unwrap();
    let mut stack = Stack::start(otlp_port).await.unwrap();
    let client = reqwest::Client::new();
    let gateway = Gateway {
        client: &client,
        base: &stack.gateway_url.clone(),
    };
    let customer = login(&client, &stack, "customer01@spruce.test").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cleaner_session = login(&client, &stack, "cleaner01@spruce.test").await;
    let cleaner = cleaner_session["access_token"].as_str().unwrap().to_owned();
    let cleaner_id = cleaner_session["user"]["id"].as_str().unwrap().to_owned();
    let profile = gateway
        .get(&format!("/v1/cleaners/{cleaner_id}"), &cleaner)
        .await;
    let home = profile["home"].clone();
    let (address, starts_at) = flat_next_to(&gateway, &customer, &home).await;

    // A crash: no shutdown runs, nothing is acknowledged or flushed.
    stack.kill("search").await.unwrap();
    // Meanwhile cleaner01 becomes the cheapest around and gets booked for Wednesday.
    let cheaper = json!({
        "bio": profile["bio"], "hourly_rate_cents": 600, "services": profile["services"],
        "home": home, "service_radius_km": profile["service_radius_km"],
        "weekly_availability": profile["weekly_availability"], "timezone": profile["timezone"]
    });
    let updated = client
        .put(format!("{}/v1/me/cleaner-profile", gateway.base))
        .bearer_auth(&cleaner)
        .json(&cheaper)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200, "{:?}", updated.text().await);
    let booked = client
        .post(format!("{}/v1/bookings", gateway.base))
        .bearer_auth(&customer)
        .header("idempotency-key", "e2e-kill-1")
        .json(&json!({
            "address_id": address["id"], "service": "standard", "cleaner_id": cleaner_id,
            "starts_at": starts_at, "payment_token": "tok_visa"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status(), 201);
    stack.start_again("search").await.unwrap();

    let (lat, lng) = (home["lat"].as_f64().unwrap(), home["lng"].as_f64().unwrap());
    let base = RawQuery {
        lat: Some(lat),
        lng: Some(lng),
        radius_km: Some(30.0),
        limit: Some(100),
        ..RawQuery::default()
    };
    let window = RawQuery {
        starts_at: Some(
            chrono::DateTime::parse_from_rfc3339(&starts_at)
                .unwrap()
                .to_utc(),
        ),
        duration_min: Some(60),
        ..base.clone()
    };
    let cheap = RawQuery {
        max_rate_cents: Some(1_000),
        ..base.clone()
    };
    let query = |raw: &RawQuery| {
        let mut query = format!("lat={lat}&lng={lng}&radius_km=30&limit=100");
        if raw.starts_at.is_some() {
            query.push_str(&format!("&starts_at={starts_at}&duration_min=60"));
        }
        if let Some(max) = raw.max_rate_cents {
            query.push_str(&format!("&max_rate_cents={max}"));
        }
        query
    };
    for (raw, holds_cleaner01) in [(&base, true), (&cheap, true), (&window, false)] {
        let expected = scan_of_core(&stack.core_url, raw).await;
        assert_eq!(
            expected.contains(&cleaner_id),
            holds_cleaner01,
            "{}: {expected:?}",
            query(raw)
        );
        // Ready means loaded: the answer is right at once, not eventually.
        let searched = gateway
            .get(&format!("/v1/search/cleaners?{}", query(raw)), &customer)
            .await;
        let ids: Vec<String> = searched["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{searched}"))
            .iter()
            .map(|hit| hit["cleaner_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, expected, "{}", query(raw));
    }
    stack.stop().await.unwrap();
    shutdown.cancel();
}

/// What an ingress controller does with a Service's endpoints: sends each request to a
/// replica whose `/readyz` answered 200 at its last probe (every 100 ms), round robin.
struct Balancer {
    replicas: Vec<String>,
    ready: std::sync::Mutex<Vec<bool>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Balancer {
    fn pick(&self) -> Option<usize> {
        let ready = self.ready.lock().unwrap().clone();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (0..ready.len())
            .map(|offset| (start + offset) % ready.len())
            .find(|index| ready[*index])
    }

    async fn probe_until(&self, stop: CancellationToken) {
        let client = reqwest::Client::new();
        while !stop.is_cancelled() {
            for (index, url) in self.replicas.iter().enumerate() {
                let ready = matches!(
                    client
                        .get(format!("{url}/readyz"))
                        .timeout(Duration::from_millis(500))
                        .send()
                        .await,
                    Ok(response) if response.status().is_success()
                );
                self.ready.lock().unwrap()[index] = ready;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_rolling_restart_of_the_gateway_under_steady_load_fails_no_request() {
    let shutdown = CancellationToken::new();
    let (otlp_port, _spans) = otlp::start(shutdown.clone()).await.unwrap();
    let mut stack = Stack::start(otlp_port).await.unwrap();
    let client = reqwest::Client::new();
    let token = login(&client, &stack, "customer01@spruce.test").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two replicas that drain as the chart configures them, at a test's scale: after
    // SIGTERM they answer 503 on /readyz and keep serving for 1.5 s, then stop accepting.
    let drain = [("SPRUCE__HTTP__DRAIN", "1500ms")];
    let first = stack.add_replica("gateway", &drain).await.unwrap();
    let second = stack.add_replica("gateway", &drain).await.unwrap();
    let balancer = std::sync::Arc::new(Balancer {
        replicas: vec![first.http.clone(), second.http.clone()],
        ready: std::sync::Mutex::new(vec![true, true]),
        next: std::sync::atomic::AtomicUsize::new(0),
    });
    let stop = CancellationToken::new();
    tokio::spawn({
        let balancer = std::sync::Arc::clone(&balancer);
        let stop = stop.clone();
        async move { balancer.probe_until(stop).await }
    });
    // Steady load: four clients in a loop, each request to a ready replica.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (balancer, stop, token) = (
            std::sync::Arc::clone(&balancer),
            stop.clone(),
            token.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut served, mut failed) = ([0_u32; 2], Vec::new());
            while !stop.is_cancelled() {
                let Some(index) = balancer.pick() else {
                    failed.push("no replica ready".to_owned());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                match client
                    .get(format!("{}/v1/me", balancer.replicas[index]))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 200 => served[index] += 1,
                    Ok(response) => failed.push(format!("replica {index}: {}", response.status())),
                    Err(error) => failed.push(format!("replica {index}: {error}")),
                }
            }
            (served, failed)
        }));
    }

    // The rolling restart: each replica in turn is signalled, exits, and starts again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for replica in [first.index, second.index] {
        assert!(
            stack.terminate(replica).await.unwrap(),
            "a replica exits 0 after draining"
        );
        stack.restart(replica).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    let (mut served, mut failed) = ([0_u32; 2], Vec::new());
    for client in clients {
        let (by_replica, failures) = client.await.unwrap();
        served[0] += by_replica[0];
        served[1] += by_replica[1];
        failed.extend(failures);
    }
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert!(
        served[0] > 0 && served[1] > 0,
        "both replicas served: {served:?}"
    );

    stack.stop().await.unwrap();
    shutdown.cancel();
}

#[tokio::test]
async fn a_service_told_to_stop_says_so_on_grpc_health_and_readyz_while_it_still_serves() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let shutdown = CancellationToken::new();
    let (otlp_port, _spans) = otlp::start(shutdown.clone()).await.unwrap();
    let mut stack = Stack::start(otlp_port).await.unwrap();
    // A second core on the same database, as a Deployment's second pod.
    let core = stack
        .add_replica("core", &[("SPRUCE__HTTP__DRAIN", "3000ms")])
        .await
        .unwrap();
    let grpc = core.grpc.clone().unwrap();
    let status = || async {
        let channel = tonic::transport::Channel::from_shared(grpc.clone())?
            .connect()
            .await?;
        let mut health = HealthClient::new(channel);
        let answer = health.check(HealthCheckRequest::default()).await?;
        anyhow::Ok(answer.into_inner().status())
    };
    assert_eq!(status().await.unwrap(), ServingStatus::Serving);

    stack.signal_stop(core.index).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Draining: callers and probes are told, and it still answers them.
    assert_eq!(status().await.unwrap(), ServingStatus::NotServing);
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/readyz", core.http))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "draining");
    let alive = client
        .get(format!("{}/healthz", core.http))
        .send()
        .await
        .unwrap();
    assert_eq!(
        alive.status(),
        200,
        "the liveness probe must not restart it meanwhile"
    );
    // Then it stops accepting and exits 0.
    assert!(stack.wait_for_exit(core.index).await.unwrap());
    assert!(status().await.is_err(), "nothing listens after the drain");

    stack.stop().await.unwrap();
    shutdown.cancel();
}

#[tokio::test]
async fn the_end_to_end_suite_passes_against_a_stack_on_the_curated_data() {
    let shutdown = CancellationToken::new();
    let (otlp_port, _spans) = otlp::start(shutdown.clone()).await.unwrap();
    let stack = Stack::start(otlp_port).await.unwrap();
    // The suite CD runs against e2e after each release, as `make e2e` runs it.
    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/e2e.py");
    let run = tokio::process::Command::new("python3")
        .arg(suite)
        .arg(&stack.gateway_url)
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the suite failed:\n{printed}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(printed.contains("journeys passed"), "{printed}");

    stack.stop().await.unwrap();
    shutdown.cancel();
}
