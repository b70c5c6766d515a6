//! Accounts: verifying the email (it gates booking and search), resetting and changing the
//! password, and sessions; every email read from a real SMTP server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spruce_testkit::{eventually, try_eventually};

use crate::{
    helpers::{PASSWORD, TestApp, field_names, problem, unique_email},
    scene::{Scene, json_of},
    search::found_within_freshness,
    stand_ins::SmtpSink,
};

/// The text of the newest email to `address` whose text holds `holding`, waiting up to
/// 10 s for it; quoted-printable undone.
async fn email_to(sink: &SmtpSink, address: &str, holding: &str) -> String {
    eventually("the email", Duration::from_secs(10), || async {
        sink.messages()
            .into_iter()
            .filter(|message| message["to"] == json!([address]))
            .map(|message| {
                message["data"]
                    .as_str()
                    .unwrap()
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .rfind(|data| data.contains(holding))
            .ok_or_else(|| format!("no email to {address} holding {holding:?}"))
    })
    .await
}

/// The six digits after "Your code is " in an email.
fn code_in(email: &str) -> String {
    let at = email.find("Your code is ").expect("a code") + "Your code is ".len();
    email[at..at + 6].to_owned()
}

/// The link token in an email.
fn token_in(email: &str) -> String {
    let at = email.find("token=").expect("a link") + "token=".len();
    email[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn verify(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    match token {
        Some(token) => {
            app.post_authorized("/v1/auth/verify-email", token, body)
                .await
        }
        None => app.post("/v1/auth/verify-email", body).await,
    }
}

#[tokio::test]
async fn verification_gates_booking_and_search_and_refuses_wrong_expired_and_sixth_codes() {
    let sink = SmtpSink::start().await;
    let scene = Scene::on(
        TestApp::builder()
            .with_search()
            .smtp(sink.port)
            .spawn()
            .await,
    )
    .await;
    let app = &scene.app;

    // A new customer: unverified, and the first email is the welcome with the code.
    let email = unique_email();
    let session = app.signup_unverified(&email, "customer").await;
    assert_eq!(session["user"]["email_verified"], false);
    let token = session["access_token"].as_str().unwrap().to_owned();
    let me = json_of(app.get("/v1/me", Some(&token)).await, 200).await;
    assert_eq!(me["email_verified"], false);
    let welcome = email_to(&sink, &email, "Your code is").await;
    assert!(
        welcome.contains("Subject: Welcome to Spruce: confirm your email"),
        "{welcome}"
    );
    assert!(
        welcome.contains("https://app.spruce.example/verify-email?token="),
        "{welcome}"
    );
    let code = code_in(&welcome);
    // Whoever signed up holds the tokens, not necessarily the mailbox: the API never shows
    // the code.
    let listed = json_of(app.get("/v1/me/notifications", Some(&token)).await, 200).await;
    assert!(!listed.to_string().contains(&code), "{listed}");
    assert_eq!(
        listed["items"][0]["body"],
        "Sent to your email address only."
    );
    // Once sent, the scheduler keeps no copy of the code either.
    let scheduler = &app.scheduler_pool;
    eventually("the code gone", Duration::from_secs(5), || async {
        let kept: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE position($1 in body) > 0")
                .bind(&code)
                .fetch_one(scheduler)
                .await
                .unwrap();
        if kept == 0 {
            Ok(())
        } else {
            Err("the code stays stored")
        }
    })
    .await;

    // It cannot book.
    let address = Scene::add_address(app, &token, 52.529, 13.401).await;
    let mut booking = scene.booking(&Scene::at(0, 10), "tok_visa");
    booking["address_id"] = address.into();
    let book = |key: &'static str, body: Value| {
        let token = token.clone();
        async move {
            app.client
                .post(format!("{}/v1/bookings", app.address))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let refused = problem(book("unverified", booking.clone()).await, 403).await;
    assert_eq!(refused["type"], "urn:spruce:problem:email_unverified");

    // Five wrong codes are refused one by one; the sixth try fails even with the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let body = problem(
            verify(app, Some(&token), &json!({"code": wrong})).await,
            422,
        )
        .await;
        assert_eq!(field_names(&body), ["code"]);
    }
    let spent = verify(app, Some(&token), &json!({"code": code})).await;
    assert_eq!(
        problem(spent, 429).await["type"],
        "urn:spruce:problem:too_many_attempts"
    );
    // A code without the account's token is refused.
    problem(verify(app, None, &json!({"code": code})).await, 401).await;

    // A new code; the old one stops working. An expired code is refused too.
    let resent = app
        .post_authorized("/v1/auth/verify-email/resend", &token, &json!({}))
        .await;
    assert_eq!(resent.status(), 204);
    let again = email_to(&sink, &email, "here is a new code").await;
    let new_code = code_in(&again);
    let core = &app.core_pool;
    sqlx::query(
        "UPDATE account_secrets SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL",
    )
    .execute(core)
    .await
    .unwrap();
    problem(
        verify(app, Some(&token), &json!({"code": new_code})).await,
        429,
    )
    .await;
    sqlx::query("UPDATE account_secrets SET expires_at = now() + interval '30 minutes' WHERE used_at IS NULL")
        .execute(core)
        .await
        .unwrap();
    let verified = json_of(
        verify(app, Some(&token), &json!({"code": new_code})).await,
        200,
    )
    .await;
    assert_eq!(verified["email_verified"], true);
    let resent = app
        .post_authorized("/v1/auth/verify-email/resend", &token, &json!({}))
        .await;
    problem(resent, 409).await;
    json_of(book("verified", booking).await, 201).await;

    // An unverified cleaner is not found; the emailed link (no sign-in needed) lists them.
    let cleaner_email = unique_email();
    let cleaner = app.signup_unverified(&cleaner_email, "cleaner").await;
    let cleaner_token = cleaner["access_token"].as_str().unwrap();
    let cleaner_id = cleaner["user"]["id"].as_str().unwrap();
    let mut profile = Scene::profile("08:00");
    profile["home"] = json!({"lat": 52.45, "lng": 13.30});
    let response = app
        .put_authorized("/v1/me/cleaner-profile", cleaner_token, &profile)
        .await;
    assert_eq!(response.status(), 200);
    let near = "lat=52.45&lng=13.30&radius_km=3";
    assert!(found_within_freshness(app, &token, near, cleaner_id, false).await);
    let link = token_in(&email_to(&sink, &cleaner_email, "Your code is").await);
    json_of(verify(app, None, &json!({"token": link})).await, 200).await;
    assert!(found_within_freshness(app, &token, near, cleaner_id, true).await);
    problem(verify(app, None, &json!({"token": link})).await, 422).await;
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
}

async fn refresh(app: &TestApp, session: &Value) -> u16 {
    app.post(
        "/v1/auth/refresh",
        &json!({"refresh_token": session["refresh_token"]}),
    )
    .await
    .status()
    .as_u16()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

#[tokio::test]
async fn a_reset_works_once_ends_every_session_and_answers_alike_for_unknown_emails() {
    let sink = SmtpSink::start().await;
    let app = TestApp::builder().smtp(sink.port).spawn().await;
    let email = unique_email();
    let first = app.signup(&email).await;
    let second: Value = login(&app, &email, PASSWORD).await.json().await.unwrap();

    // Known and unknown emails get the same answer, as quickly (median of 20 each).
    let ask = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = app
                .post("/v1/auth/password-reset", &json!({"email": email}))
                .await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 202);
            (response.json::<Value>().await.unwrap(), elapsed)
        }
    };
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    let mut bodies = Vec::new();
    let known: Vec<String> = {
        let mut emails = vec![email.clone()];
        for _ in 0..19 {
            let other = unique_email();
            app.signup(&other).await;
            emails.push(other);
        }
        emails
    };
    for known_email in &known {
        // Alternating, so that the machine's moods fall on both alike.
        let (body, known_time) = ask(known_email.clone()).await;
        let (unknown_body, unknown_time) = ask(unique_email()).await;
        known_times.push(known_time);
        unknown_times.push(unknown_time);
        bodies.push(body);
        bodies.push(unknown_body);
    }
    assert!(bodies.iter().all(|body| *body == bodies[0]), "{bodies:?}");
    let (known_median, unknown_median) = (median(known_times), median(unknown_times));
    let slower = known_median.max(unknown_median);
    let gap = known_median.abs_diff(unknown_median);
    // Doing the work before answering would add a transaction (a secret and an outbox row)
    // to every known email's answer; a few milliseconds either way are the machine's, when
    // the whole suite runs beside this test.
    assert!(
        gap <= slower / 3 || gap <= Duration::from_millis(4),
        "known {known_median:?} against unknown {unknown_median:?}"
    );

    // The link works once; after it the old password and every session are gone.
    let reset = email_to(&sink, &email, "reset-password?token=").await;
    let token = token_in(&reset);
    let confirm = |token: String, password: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/v1/auth/password-reset/confirm",
                &json!({"token": token, "new_password": password}),
            )
            .await
        }
    };
    let short = problem(confirm(token.clone(), "short").await, 422).await;
    assert_eq!(field_names(&short), ["new_password"]);
    assert_eq!(
        confirm(token.clone(), "a brand new secret").await.status(),
        204
    );
    let twice = problem(confirm(token, "yet another secret").await, 422).await;
    assert_eq!(field_names(&twice), ["token"]);
    problem(login(&app, &email, PASSWORD).await, 401).await;
    assert_eq!(
        login(&app, &email, "a brand new secret").await.status(),
        200
    );
    assert_eq!(
        (refresh(&app, &first).await, refresh(&app, &second).await),
        (401, 401)
    );
    let told = email_to(&sink, &email, "Your Spruce password was changed").await;
    assert!(!told.contains("token="), "{told}");

    // Per email: 3 an hour (this one has asked once).
    for _ in 0..2 {
        assert_eq!(ask(email.clone()).await.0, bodies[0]);
    }
    let limited = app
        .post("/v1/auth/password-reset", &json!({"email": email}))
        .await;
    problem(limited, 429).await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let phone = app.signup(&email).await;
    let laptop: Value = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .header("user-agent", "Spruce/2.1 (iPad; iOS 18)")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = phone["access_token"].as_str().unwrap();

    let sessions = json_of(app.get("/v1/me/sessions", Some(token)).await, 200).await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{sessions}");
    assert_eq!(
        items[0]["device"], "Spruce/2.1 (iPad; iOS 18)",
        "the newest first"
    );
    assert_eq!(
        items.iter().filter(|item| item["current"] == true).count(),
        1
    );
    let laptop_session = items[0]["id"].as_str().unwrap().to_owned();

    let change = |current: &'static str, new: &'static str| {
        let app = &app;
        async move {
            let body = json!({"current_password": current, "new_password": new});
            app.post_authorized("/v1/me/password", token, &body).await
        }
    };
    let wrong = problem(change("not my password", "a brand new secret").await, 422).await;
    assert_eq!(field_names(&wrong), ["current_password"]);
    assert_eq!(refresh(&app, &laptop).await, 200, "nothing changed yet");
    let laptop: Value = login(&app, &email, PASSWORD).await.json().await.unwrap();
    assert_eq!(change(PASSWORD, "a brand new secret").await.status(), 204);
    // This session goes on; the others end.
    assert_eq!(
        (refresh(&app, &phone).await, refresh(&app, &laptop).await),
        (200, 401)
    );
    problem(login(&app, &email, PASSWORD).await, 401).await;

    // Ending a session: someone else's or an unknown one is 404.
    let other = app.signup(&unique_email()).await;
    let other_token = other["access_token"].as_str().unwrap();
    let other_sessions = json_of(app.get("/v1/me/sessions", Some(other_token)).await, 200).await;
    let theirs = other_sessions["items"][0]["id"].as_str().unwrap();
    let delete = |token: &str, id: &str| {
        app.client
            .delete(format!("{}/v1/me/sessions/{id}", app.address))
            .bearer_auth(token.to_owned())
            .send()
    };
    problem(delete(token, theirs).await.unwrap(), 404).await;
    problem(delete(token, "not-an-id").await.unwrap(), 404).await;
    problem(delete(token, &laptop_session).await.unwrap(), 404).await;
    let fresh: Value = login(&app, &email, "a brand new secret")
        .await
        .json()
        .await
        .unwrap();
    let listed = json_of(app.get("/v1/me/sessions", Some(token)).await, 200).await;
    let fresh_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(delete(token, &fresh_id).await.unwrap().status(), 204);
    assert_eq!(refresh(&app, &fresh).await, 401);
}

/// Counts the rows of every table of every service's database in which `needle` appears in
/// any text, JSON or binary column.
async fn rows_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for database in &app.databases {
        let settings = spruce_db::testing::settings(database);
        let pool = spruce_db::connect(&settings).await.unwrap();
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY')",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for (table, column, kind) in columns {
            let test = if kind == "bytea" {
                format!("position(convert_to($1, 'UTF8') in \"{column}\") > 0")
            } else {
                format!("position($1 in \"{column}\"::text) > 0")
            };
            let sql = format!("SELECT count(*) FROM \"{table}\" WHERE {test}");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(needle)
                .fetch_one(&pool)
                .await
                .unwrap();
            if count > 0 {
                found.push(format!("{}.{table}.{column}: {count}", settings.name));
            }
        }
        pool.close().await;
    }
    found
}

/// Signs up a verified user called `name`; returns the session.
async fn named(app: &TestApp, email: &str, name: &str, role: &str) -> Value {
    let response = app
        .post(
            "/v1/auth/signup",
            &json!({"email": email, "password": PASSWORD, "full_name": name, "role": role}),
        )
        .await;
    let session = json_of(response, 201).await;
    app.mark_verified(&session).await;
    session
}

#[tokio::test]
async fn export_holds_everything_and_deletion_forgets_the_person_in_every_service() {
    let scene = Scene::on(TestApp::builder().with_search().spawn().await).await;
    let app = &scene.app;
    let email = unique_email();
    let name = format!(
        "Quentin Q{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let session = named(app, &email, &name, "customer").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let address = Scene::add_address(app, &token, 52.529, 13.401).await;
    let mut body = scene.booking(&Scene::at(0, 10), "tok_visa");
    body["address_id"] = address.clone().into();
    let booked = app
        .client
        .post(format!("{}/v1/bookings", app.address))
        .bearer_auth(&token)
        .header("idempotency-key", "leaving")
        .json(&body)
        .send()
        .await
        .unwrap();
    let booking = json_of(booked, 201).await;
    let booking_id = booking["id"].as_str().unwrap();

    // The export holds the profile, the address, the booking and the notifications.
    let exported = try_eventually(Duration::from_secs(5), || async {
        let exported = json_of(app.get("/v1/me/export", Some(&token)).await, 200).await;
        if exported["notifications"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            Ok(exported)
        } else {
            Err(exported)
        }
    })
    .await
    .unwrap_or_else(|exported| exported);
    assert_eq!(exported["user"]["email"], email.as_str());
    assert_eq!(exported["user"]["full_name"], name.as_str());
    assert_eq!(exported["addresses"][0]["id"], address.as_str());
    assert_eq!(exported["addresses"][0]["line1"], "Torstrasse 1");
    assert_eq!(exported["bookings"][0]["id"], booking_id);
    assert_eq!(exported["recipient"]["email"], email.as_str());
    assert_eq!(exported["notifications"][0]["kind"], "welcome");
    assert!(exported["exported_at"].is_string());
    assert!(
        !rows_holding(app, &email).await.is_empty(),
        "the test can see the email"
    );

    // A cleaner leaves too: search drops them.
    let cleaner_email = unique_email();
    let cleaner_name = format!("Xaver X{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let cleaner = named(app, &cleaner_email, &cleaner_name, "cleaner").await;
    let cleaner_token = cleaner["access_token"].as_str().unwrap();
    let cleaner_id = cleaner["user"]["id"].as_str().unwrap();
    let mut profile = Scene::profile("08:00");
    profile["home"] = json!({"lat": 52.40, "lng": 13.20});
    let response = app
        .put_authorized("/v1/me/cleaner-profile", cleaner_token, &profile)
        .await;
    assert_eq!(response.status(), 200);
    let near = "lat=52.40&lng=13.20&radius_km=3";
    assert!(found_within_freshness(app, &token, near, cleaner_id, true).await);

    // The wrong password deletes nothing.
    let delete = |token: String, password: &'static str| async move {
        app.client
            .delete(format!("{}/v1/me", app.address))
            .bearer_auth(token)
            .json(&json!({"password": password}))
            .send()
            .await
            .unwrap()
    };
    let wrong = problem(delete(token.clone(), "not my password").await, 422).await;
    assert_eq!(field_names(&wrong), ["password"]);
    assert_eq!(delete(token.clone(), PASSWORD).await.status(), 204);

    // Sign-in, the access token and the refresh token stop at once.
    problem(login(app, &email, PASSWORD).await, 401).await;
    problem(app.get("/v1/me", Some(&token)).await, 401).await;
    assert_eq!(refresh(app, &session).await, 401);
    // The open booking was cancelled and its payment released; the cleaner still sees it.
    let kept = scene.fetch(booking_id, &scene.cleaner).await;
    assert_eq!(
        (kept["status"].as_str(), kept["payment_status"].as_str()),
        (Some("cancelled"), Some("released"))
    );

    assert_eq!(
        delete(cleaner_token.to_owned(), PASSWORD).await.status(),
        204
    );
    let customer = scene.customer.clone();
    assert!(found_within_freshness(app, &customer, near, cleaner_id, false).await);

    // Neither person's name nor email is left in any table of any service, once the
    // scheduler has heard.
    eventually(
        "every trace of them gone",
        Duration::from_secs(10),
        || async {
            let mut left = Vec::new();
            for needle in [&email, &name, &cleaner_email, &cleaner_name] {
                left.extend(rows_holding(app, needle).await);
            }
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    )
    .await;
}
