//! Search's gRPC API as the other services call it: search alone, in-process, on a
//! database, an exchange and cache keys of the test's own (no core: nothing listens where
//! it looks, so the read model stays unloaded and retraining finds no history).

use spruce_bus::testing::TestExchange;
use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    settings::{CommonSettings, ListenSettings},
    telemetry,
    testing::{service_token, user_token},
};
use spruce_proto::search::v1::{
    EstimateDurationRequest, RetrainModelRequest, search_service_client::SearchServiceClient,
};
use spruce_testkit::{TestDb, free_port};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

/// A running search; dropping it stops it and removes its database and exchange.
struct TestSearch {
    url: String,
    shutdown: CancellationToken,
    _exchange: TestExchange,
    _database: TestDb,
}

impl TestSearch {
    async fn start() -> Self {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("search");
        let exchange = TestExchange::new(&id);
        let mut settings = spruce_search::settings::Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: spruce_db::testing::settings(&database),
            bus: exchange.settings().clone(),
            ..spruce_search::settings::Settings::default()
        };
        settings.core.url = format!("http://127.0.0.1:{}", free_port());
        settings.redis.key_prefix = format!("spruce:test:{id}:");
        settings.model.train_at_start = false;
        let search = spruce_search::startup::Application::build(settings)
            .await
            .expect("search builds");
        let url = format!("http://127.0.0.1:{}", search.grpc_port());
        let shutdown = CancellationToken::new();
        tokio::spawn(search.run_until_stopped(shutdown.clone()));
        TestSearch {
            url,
            shutdown,
            _exchange: exchange,
            _database: database,
        }
    }

    async fn client(&self) -> SearchServiceClient<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        SearchServiceClient::new(channel)
    }
}

impl Drop for TestSearch {
    /// Stops search; the database and the exchange go with their fields.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test]
async fn only_admins_and_the_scheduler_retrain_the_duration_model() {
    let search = TestSearch::start().await;
    let mut client = search.client().await;
    // Not a customer, not the gateway, and not core, whose service token prices bookings
    // and does nothing else on search.
    for (who, token) in [
        ("a customer", user_token("customer")),
        (
            "the gateway",
            service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "search"),
        ),
        (
            "core",
            service_token(keys::dev::CORE_PRIVATE_KEY, "core", "search"),
        ),
    ] {
        let refused = client
            .retrain_model(with_token(RetrainModelRequest {}, &token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}");
    }
    // Admins and the scheduler get past the door; with core away there is no history.
    for (who, token) in [
        ("an admin", user_token("admin")),
        (
            "the scheduler",
            service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "search"),
        ),
    ] {
        let unavailable = client
            .retrain_model(with_token(RetrainModelRequest {}, &token))
            .await
            .unwrap_err();
        assert_eq!(
            unavailable.code(),
            Code::Unavailable,
            "{who}: {unavailable:?}"
        );
    }
    let anonymous = client
        .retrain_model(RetrainModelRequest {})
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn the_scheduler_may_not_ask_for_estimates_and_bad_jobs_are_invalid() {
    let search = TestSearch::start().await;
    let mut client = search.client().await;
    let job = EstimateDurationRequest {
        service: "standard".to_owned(),
        size_m2: 70,
        bedrooms: 2,
        bathrooms: 1,
        has_pets: false,
        ..EstimateDurationRequest::default()
    };
    let scheduler = service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "search");
    let refused = client
        .estimate_duration(with_token(job.clone(), &scheduler))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Core prices bookings with it: with no model yet, the rule of thumb answers.
    let core = service_token(keys::dev::CORE_PRIVATE_KEY, "core", "search");
    let estimate = client
        .estimate_duration(with_token(job.clone(), &core))
        .await
        .unwrap()
        .into_inner();
    assert!(estimate.estimated_duration_min > 0, "{estimate:?}");
    let too_big = EstimateDurationRequest {
        size_m2: 100_000,
        ..job
    };
    let invalid = client
        .estimate_duration(with_token(too_big, &core))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn health_stays_open_to_probes_while_the_read_model_loads() {
    let search = TestSearch::start().await;
    let channel = tonic::transport::Endpoint::from_shared(search.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}
