//! The duration model: trained on core's curated history, promoted, served to core's
//! pricing, and kept across a restart.

use spruce_core::{
    seed::{self, SeedSize},
    testing::TestCore,
};
use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    testing::{service_token, user_token},
};
use spruce_proto::{
    core::v1::ServiceKind,
    search::v1::{
        EstimateDurationRequest, EstimateDurationResponse, RetrainModelRequest,
        RetrainModelResponse,
    },
};

use crate::Search;

async fn retrain(search: &Search) -> RetrainModelResponse {
    search
        .client()
        .await
        .retrain_model(with_token(RetrainModelRequest {}, &user_token("admin")))
        .await
        .unwrap()
        .into_inner()
}

/// A standard cleaning of a 70 m² home, estimated as core asks when it prices a booking.
async fn estimate(search: &Search) -> EstimateDurationResponse {
    let job = EstimateDurationRequest {
        service_kind: ServiceKind::Standard.into(),
        size_m2: 70,
        bedrooms: 2,
        bathrooms: 1,
        ..EstimateDurationRequest::default()
    };
    let core = service_token(keys::dev::CORE_PRIVATE_KEY, "core", "search");
    search
        .client()
        .await
        .estimate_duration(with_token(job, &core))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_model_trained_on_the_curated_history_is_promoted_served_and_kept() {
    let core = TestCore::start().await;
    seed::seed(&core.pool, SeedSize::CURATED).await.unwrap();
    let mut search = Search::beside(&core).await;
    let by_rule = estimate(&search).await;
    assert_eq!(by_rule.estimated_by, "rule_of_thumb", "{by_rule:?}");
    assert_eq!(by_rule.model_version, 0);

    let first = retrain(&search).await;
    eprintln!("curated history: {first:?}");
    assert!(first.promoted, "{first:?}");
    assert_eq!(first.active_version, first.version);
    assert_eq!(first.current_mae_min, None, "no model served before");
    assert!(
        first.rows >= 1_600 && first.holdout_rows >= 400,
        "{first:?}"
    );
    assert!(
        first.holdout_mae_min <= 17.0,
        "hold-out MAE {:.1} min",
        first.holdout_mae_min
    );
    let by_model = estimate(&search).await;
    assert_eq!(by_model.estimated_by, "model", "{by_model:?}");
    assert_eq!(by_model.model_version, first.version);
    let minutes = by_model.estimated_duration_min;
    assert!(
        (60..=600).contains(&minutes) && minutes.is_multiple_of(15),
        "{by_model:?}"
    );

    // Kept across a restart: the restarted service serves it, and the next candidate is
    // compared with it on the same hold-out rows.
    search.restart(async {}).await;
    assert_eq!(estimate(&search).await.model_version, first.version);
    let second = retrain(&search).await;
    assert!(second.version > first.version);
    assert!(
        (second.current_mae_min.unwrap() - first.holdout_mae_min).abs() < 1e-9,
        "the restarted service served version {}: {second:?}",
        first.version
    );
    // As good as the one serving, so promoted; estimates use it at once.
    assert!(second.promoted, "{second:?}");
    assert_eq!(estimate(&search).await.model_version, second.version);
}
