//! Core for tests (the `testing` feature, for dev-dependencies only): core in-process on free
//! ports, on a database and an exchange of the test's own, and the calls that build a scene
//! over its gRPC API as the other services make them (users, a cleaner's profile, a home, a
//! booking).

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use spruce_bus::testing::TestExchange;
use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    settings::{BusSettings, CommonSettings, ListenSettings},
    telemetry,
    testing::service_token,
};
use spruce_proto::core::v1::{
    AddressInput, AvailabilityWindow, Booking, BookingAction, CleanerProfile, CreateAddressRequest,
    CreateBookingRequest, GeoPoint, RegisterRequest, Role, ServiceKind, TransitionBookingRequest,
    UpsertCleanerProfileRequest, address_service_client::AddressServiceClient,
    booking_service_client::BookingServiceClient, cleaner_service_client::CleanerServiceClient,
    user_service_client::UserServiceClient,
};
use spruce_testkit::{TestDb, free_port};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::settings::Settings;

/// A running core; dropping it stops core and removes its database and exchange, also when
/// the test fails.
pub struct TestCore {
    /// Its gRPC address.
    pub url: String,
    /// Its database, to look at what a call stored or to seed it.
    pub pool: PgPool,
    shutdown: CancellationToken,
    exchange: TestExchange,
    _database: TestDb,
}

impl TestCore {
    /// Core as it runs locally, with nothing where search would be (bookings are priced by
    /// the rule of thumb).
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// Core with its local settings changed by `change`.
    pub async fn with(change: impl FnOnce(&mut Settings)) -> Self {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("core");
        let exchange = TestExchange::new(&id);
        let mut settings = Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: spruce_db::testing::settings(&database),
            bus: exchange.settings().clone(),
            ..Settings::default()
        };
        settings.search.url = format!("http://127.0.0.1:{}", free_port());
        change(&mut settings);
        let pool = spruce_db::connect(&settings.database)
            .await
            .expect("core's database");
        let core = crate::startup::Application::build(settings)
            .await
            .expect("core builds");
        let url = format!("http://127.0.0.1:{}", core.grpc_port());
        let shutdown = CancellationToken::new();
        tokio::spawn(core.run_until_stopped(shutdown.clone()));
        TestCore {
            url,
            pool,
            shutdown,
            exchange,
            _database: database,
        }
    }

    /// The exchange core publishes its events to, for a service that follows them.
    pub fn bus(&self) -> &BusSettings {
        self.exchange.settings()
    }

    /// Signs a customer up as the gateway does; returns their id and access token.
    pub async fn register(&self) -> (String, String) {
        self.register_as(Role::Customer).await
    }

    /// Signs a user up in `role` as the gateway does and marks their email verified, as if
    /// they had entered the emailed code; returns their id and access token.
    pub async fn register_verified(&self, role: Role) -> (String, String) {
        let (id, token) = self.register_as(role).await;
        sqlx::query("UPDATE users SET email_verified_at = now() WHERE id = $1::uuid")
            .bind(&id)
            .execute(&self.pool)
            .await
            .expect("the user is marked verified");
        (id, token)
    }

    /// Signs a user up in `role` as the gateway does; returns their id and access token.
    pub async fn register_as(&self, role: Role) -> (String, String) {
        let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
        let request = RegisterRequest {
            role: role.into(),
            ..register_request()
        };
        let created = UserServiceClient::new(self.channel().await)
            .register(with_token(request, &gateway))
            .await
            .expect("registered")
            .into_inner();
        let user = created.user.expect("the user");
        (user.id, created.session.expect("a session").access_token)
    }

    /// A verified cleaner with `profile`; returns their id and access token.
    pub async fn cleaner(&self, profile: UpsertCleanerProfileRequest) -> (String, String) {
        let (id, token) = self.register_verified(Role::Cleaner).await;
        self.upsert_profile(&token, profile).await;
        (id, token)
    }

    /// Writes the profile of the cleaner whose access token is `token`.
    pub async fn upsert_profile(
        &self,
        token: &str,
        profile: UpsertCleanerProfileRequest,
    ) -> CleanerProfile {
        CleanerServiceClient::new(self.channel().await)
            .upsert_cleaner_profile(with_token(profile, token))
            .await
            .expect("the profile is stored")
            .into_inner()
    }

    /// A verified customer with a 70 m² home at 52.529, 13.401 (1 km from
    /// [`cleaner_profile`]'s); returns their access token and the address's id.
    pub async fn customer_with_home(&self) -> (String, String) {
        let (_, customer) = self.register_verified(Role::Customer).await;
        let home = AddressInput {
            label: "Home".to_owned(),
            line1: "Torstrasse 1".to_owned(),
            city: "Berlin".to_owned(),
            postal_code: "10119".to_owned(),
            lat: 52.529,
            lng: 13.401,
            size_m2: 70,
            bedrooms: 2,
            bathrooms: 1,
            has_pets: false,
        };
        let address = AddressServiceClient::new(self.channel().await)
            .create_address(with_token(
                CreateAddressRequest {
                    address: Some(home),
                },
                &customer,
            ))
            .await
            .expect("the address is stored")
            .into_inner();
        (customer, address.id)
    }

    /// Books as the customer whose access token is `token`.
    pub async fn book(&self, token: &str, request: CreateBookingRequest) -> Booking {
        self.bookings()
            .await
            .create_booking(with_token(request, token))
            .await
            .expect("booked")
            .into_inner()
    }

    /// Cancels the booking `id` as `token`'s holder.
    pub async fn cancel(&self, token: &str, id: &str) -> Booking {
        let request = TransitionBookingRequest {
            booking_id: id.to_owned(),
            step: BookingAction::Cancel.into(),
            ..TransitionBookingRequest::default()
        };
        self.bookings()
            .await
            .transition_booking(with_token(request, token))
            .await
            .expect("cancelled")
            .into_inner()
    }

    /// A client of its booking service.
    pub async fn bookings(&self) -> BookingServiceClient<Channel> {
        BookingServiceClient::new(self.channel().await)
    }

    /// A connected channel to it.
    pub async fn channel(&self) -> Channel {
        channel(self.url.clone()).await
    }
}

impl Drop for TestCore {
    /// Stops core; the database and the exchange go with their fields.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A customer's signup with a fresh email.
pub fn register_request() -> RegisterRequest {
    RegisterRequest {
        email: format!("user-{}@example.com", Uuid::new_v4().simple()),
        password: "correct horse battery".to_owned(),
        full_name: "Ann Lee".to_owned(),
        role: Role::Customer.into(),
        timezone: String::new(),
        device: String::new(),
    }
}

/// A cleaner's profile: standard and deep cleanings at 30 €/h within 10 km of 52.520,
/// 13.405, available from `start` until 18:00 UTC every day (the enums alone, as a caller
/// of this release sends them).
pub fn cleaner_profile(start: &str) -> UpsertCleanerProfileRequest {
    UpsertCleanerProfileRequest {
        bio: "Careful and quick.".to_owned(),
        hourly_rate_cents: 3000,
        services: Vec::new(),
        service_kinds: vec![ServiceKind::Standard.into(), ServiceKind::Deep.into()],
        home: Some(GeoPoint {
            lat: 52.520,
            lng: 13.405,
        }),
        service_radius_km: 10.0,
        weekly_availability: spruce_platform::time::WEEKDAYS
            .iter()
            .map(|day| AvailabilityWindow {
                weekday: (*day).to_owned(),
                start: start.to_owned(),
                end: "18:00".to_owned(),
            })
            .collect(),
        timezone: "UTC".to_owned(),
    }
}

/// A standard cleaning at `address_id` with `cleaner_id` (empty: none) at `starts_at`, paid
/// with a card the fake provider accepts (the enum alone, as a caller of this release sends
/// it).
pub fn booking(
    key: &str,
    address_id: &str,
    cleaner_id: &str,
    starts_at: DateTime<Utc>,
) -> CreateBookingRequest {
    CreateBookingRequest {
        idempotency_key: key.to_owned(),
        address_id: address_id.to_owned(),
        service: String::new(),
        service_kind: ServiceKind::Standard.into(),
        starts_at: Some(prost_types::Timestamp {
            seconds: starts_at.timestamp(),
            nanos: 0,
        }),
        cleaner_id: cleaner_id.to_owned(),
        payment_token: "tok_visa".to_owned(),
    }
}

/// Tomorrow (plus `days`) at `hour`:00 UTC.
pub fn tomorrow_at(days: i64, hour: i64) -> DateTime<Utc> {
    let midnight = Utc::now().duration_trunc(Duration::days(1)).expect("a day");
    midnight + Duration::days(1 + days) + Duration::hours(hour)
}

/// A connected channel to `url`.
pub async fn channel(url: String) -> Channel {
    tonic::transport::Endpoint::from_shared(url)
        .expect("a URL")
        .connect()
        .await
        .expect("connected")
}
