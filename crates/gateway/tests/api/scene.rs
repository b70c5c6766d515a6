//! The booking tests' scene: a cleaner, a customer with a home near them, and the calls
//! the tests make on a booking.

use chrono::{Duration, DurationRound as _, Utc};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique_email};

/// A cleaner available 08:00–18:00 UTC every day, a customer with a home 1 km away.
pub(crate) struct Scene {
    pub(crate) app: TestApp,
    pub(crate) customer: String,
    pub(crate) cleaner: String,
    pub(crate) cleaner_id: String,
    pub(crate) address_id: String,
}

impl Scene {
    pub(crate) async fn new() -> Self {
        Self::on(TestApp::spawn().await).await
    }

    /// The scene on services already running.
    pub(crate) async fn on(app: TestApp) -> Self {
        let cleaner = app.signup_as(&unique_email(), "cleaner").await;
        let cleaner_token = cleaner["access_token"].as_str().unwrap().to_owned();
        let response = app
            .put_authorized(
                "/v1/me/cleaner-profile",
                &cleaner_token,
                &Self::profile("08:00"),
            )
            .await;
        assert_eq!(response.status(), 200);
        let customer = app.signup(&unique_email()).await;
        let customer_token = customer["access_token"].as_str().unwrap().to_owned();
        let address = Self::add_address(&app, &customer_token, 52.529, 13.401).await;
        Scene {
            cleaner_id: cleaner["user"]["id"].as_str().unwrap().to_owned(),
            app,
            customer: customer_token,
            cleaner: cleaner_token,
            address_id: address,
        }
    }

    /// The cleaner's profile, available from `start` until 18:00 UTC every day.
    pub(crate) fn profile(start: &str) -> Value {
        let availability: Vec<Value> = spruce_platform::time::WEEKDAYS
            .iter()
            .map(|day| json!({"weekday": day, "start": start, "end": "18:00"}))
            .collect();
        json!({
            "bio": "Careful and quick.",
            "hourly_rate_cents": 3000,
            "services": ["standard", "deep"],
            "home": {"lat": 52.520, "lng": 13.405},
            "service_radius_km": 10,
            "weekly_availability": availability,
            "timezone": "UTC"
        })
    }

    pub(crate) async fn add_address(app: &TestApp, token: &str, lat: f64, lng: f64) -> String {
        let body = json!({
            "label": "Home", "line1": "Torstrasse 1", "city": "Berlin", "postal_code": "10119",
            "lat": lat, "lng": lng, "size_m2": 70, "bedrooms": 2, "bathrooms": 1, "has_pets": false
        });
        let response = app.post_authorized("/v1/me/addresses", token, &body).await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Tomorrow (plus `days`) at `hour`:00 UTC.
    pub(crate) fn at(days: i64, hour: i64) -> String {
        let midnight = Utc::now().duration_trunc(Duration::days(1)).unwrap();
        (midnight + Duration::days(1 + days) + Duration::hours(hour)).to_rfc3339()
    }

    pub(crate) fn booking(&self, starts_at: &str, token: &str) -> Value {
        json!({
            "address_id": self.address_id,
            "service": "standard",
            "starts_at": starts_at,
            "cleaner_id": self.cleaner_id,
            "payment_token": token
        })
    }

    pub(crate) async fn book(&self, key: &str, body: &Value) -> Response {
        self.app
            .client
            .post(format!("{}/v1/bookings", self.app.address))
            .bearer_auth(&self.customer)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn act(
        &self,
        token: &str,
        booking_id: &str,
        action: &str,
        body: Option<Value>,
    ) -> Response {
        let mut request = self
            .app
            .client
            .post(format!(
                "{}/v1/bookings/{booking_id}/{action}",
                self.app.address
            ))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// The booking `id` as `token`'s holder sees it (200 expected).
    pub(crate) async fn fetch(&self, id: &str, token: &str) -> Value {
        json_of(
            self.app
                .get(&format!("/v1/bookings/{id}"), Some(token))
                .await,
            200,
        )
        .await
    }

    /// Moves the booking `id` to start in ten minutes, as if the days until it had passed,
    /// so that its cleaner may start it.
    pub(crate) async fn bring_forward(&self, id: &str) {
        bring_forward(&self.app.core_pool, id).await;
    }

    pub(crate) async fn outbox(&self, routing_key: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = $1")
            .bind(routing_key)
            .fetch_one(&self.app.core_pool)
            .await
            .unwrap()
    }

    pub(crate) async fn bookings_stored(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bookings")
            .fetch_one(&self.app.core_pool)
            .await
            .unwrap()
    }
}

/// Moves the booking `id` in core's database to start in ten minutes, keeping its length.
pub(crate) async fn bring_forward(core: &sqlx::PgPool, id: &str) {
    let moved = sqlx::query(
        "UPDATE bookings SET starts_at = now() + interval '10 minutes', \
         ends_at = now() + interval '10 minutes' + (ends_at - starts_at) WHERE id = $1::uuid",
    )
    .bind(id)
    .execute(core)
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 1);
}

pub(crate) async fn json_of(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}
