//! The duration model: trained on the curated history through search's RetrainModel,
//! versioned, kept across a restart, and only for admins and the scheduler.

use serde_json::{Value, json};
use spruce_core::seed::{self, DEV_PASSWORD, SeedSize};
use spruce_platform::keys;
use spruce_proto::search::v1::{RetrainModelRequest, search_service_client::SearchServiceClient};

use crate::helpers::{TestApp, service_claims, sign, unique_email, with_token};

#[tokio::test]
async fn a_model_trained_on_the_curated_history_is_promoted_kept_and_guarded() {
    let mut app = TestApp::spawn_with_search().await;
    seed::seed(app.core_pool.as_ref().unwrap(), SeedSize::CURATED)
        .await
        .unwrap();
    let admin: Value = app
        .post(
            "/v1/auth/login",
            &json!({"email": "admin@spruce.test", "password": DEV_PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let search_url = app.search.as_ref().unwrap().url.clone();
    let mut search = SearchServiceClient::connect(search_url.clone())
        .await
        .unwrap();

    let first = search
        .retrain_model(with_token(RetrainModelRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    eprintln!("curated history: {first:?}");
    assert!(first.promoted, "{first:?}");
    assert_eq!(first.active_version, first.version);
    assert!(
        first.rows >= 1_600 && first.holdout_rows >= 400,
        "{first:?}"
    );
    assert!(
        first.holdout_mae_min <= 17.0,
        "hold-out MAE {:.1} min",
        first.holdout_mae_min
    );

    // Kept across a restart: the next candidate is compared with the stored one.
    app.restart_search(async {}).await;
    let mut search = SearchServiceClient::connect(search_url).await.unwrap();
    let second = search
        .retrain_model(with_token(RetrainModelRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(second.version > first.version);
    assert!(
        (second.current_mae_min - first.holdout_mae_min).abs() < 1e-9,
        "the restarted service served version {}: {second:?}",
        first.version
    );

    let customer = app.signup(&unique_email()).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = search
        .retrain_model(with_token(RetrainModelRequest {}, &customer))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let gateway = sign(
        keys::dev::GATEWAY_PRIVATE_KEY,
        &service_claims("gateway"),
        Some("gateway"),
    );
    let refused = search
        .retrain_model(with_token(RetrainModelRequest {}, &gateway))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    app.stop().await;
}
