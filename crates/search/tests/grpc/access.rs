//! Who may call what, and health while the read model loads: search alone.

use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    testing::{service_token, user_token},
};
use spruce_proto::search::v1::{EstimateDurationRequest, RetrainModelRequest};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::Search;

#[tokio::test]
async fn only_admins_and_the_scheduler_retrain_the_duration_model() {
    let search = Search::alone().await;
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
    let search = Search::alone().await;
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
    let search = Search::alone().await;
    let channel = spruce_core::testing::channel(search.url()).await;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}
