//! The scheduler's gRPC API as the gateway calls it: the scheduler alone, in-process, on a
//! database and an exchange of the test's own (no core: nothing listens where it looks);
//! and the analytics archive, the scheduler's binary killed and started again (`archive`).

mod archive;

use spruce_bus::testing::TestExchange;
use spruce_platform::{
    grpc::request_with_token as with_token,
    settings::{CommonSettings, ListenSettings},
    telemetry,
    testing::user_token,
};
use spruce_proto::scheduler::v1::{
    ListNotificationsRequest, notification_service_client::NotificationServiceClient,
};
use spruce_testkit::{TestDb, free_port};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

/// A running scheduler; dropping it stops it and removes its database and exchange.
struct TestScheduler {
    url: String,
    shutdown: CancellationToken,
    _exchange: TestExchange,
    _database: TestDb,
}

impl TestScheduler {
    async fn start() -> Self {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("scheduler");
        let exchange = TestExchange::new(&id);
        let mut settings = spruce_scheduler::settings::Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: spruce_db::testing::settings(&database),
            bus: exchange.settings().clone(),
            ..spruce_scheduler::settings::Settings::default()
        };
        let nowhere = format!("http://127.0.0.1:{}", free_port());
        settings.core.url.clone_from(&nowhere);
        settings.search.url = nowhere;
        for job in settings.jobs.values_mut() {
            job.enabled = false;
        }
        settings.analytics.enabled = false;
        let scheduler = spruce_scheduler::startup::Application::build(settings)
            .await
            .expect("the scheduler builds");
        let url = format!("http://127.0.0.1:{}", scheduler.grpc_port());
        let shutdown = CancellationToken::new();
        tokio::spawn(scheduler.run_until_stopped(shutdown.clone()));
        TestScheduler {
            url,
            shutdown,
            _exchange: exchange,
            _database: database,
        }
    }
}

impl Drop for TestScheduler {
    /// Stops the scheduler; the database and the exchange go with their fields.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn list(user_id: &str) -> ListNotificationsRequest {
    ListNotificationsRequest {
        user_id: user_id.to_owned(),
        limit: 10,
        cursor: String::new(),
    }
}

#[tokio::test]
async fn forged_identity_metadata_without_a_token_is_unauthenticated() {
    let scheduler = TestScheduler::start().await;
    let mut notifications = NotificationServiceClient::connect(scheduler.url.clone())
        .await
        .unwrap();
    let user_id = Uuid::new_v4().to_string();
    let mut forged = tonic::Request::new(list(&user_id));
    forged
        .metadata_mut()
        .insert("x-user-id", user_id.parse().unwrap());
    forged
        .metadata_mut()
        .insert("x-user-role", "customer".parse().unwrap());
    let status = notifications.list_notifications(forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // A user's token, forwarded as the gateway does, is what works (someone else's list
    // looks empty).
    let listed = notifications
        .list_notifications(with_token(list(&user_id), &user_token("customer")))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.notifications.is_empty());
}

#[tokio::test]
async fn health_stays_open_to_probes() {
    let scheduler = TestScheduler::start().await;
    let channel = tonic::transport::Endpoint::from_shared(scheduler.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, 1, "SERVING");
}
