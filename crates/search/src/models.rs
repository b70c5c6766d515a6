//! The duration model's versions: trained from core's completed bookings, stored in
//! `model_versions`, the newest promoted one serving (loaded at start, swapped in memory on
//! promotion, without a restart).

use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use serde_json::json;
use spruce_platform::{auth::ServiceTokenSigner, grpc::request_with_token};
use spruce_proto::core::v1::{
    StreamCompletedBookingsRequest, read_model_service_client::ReadModelServiceClient,
};
use sqlx::PgPool;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::{
    domain::duration::{
        Completed, DurationModel, FEATURE_NAMES, MAX_PANEL_SHIFT, panel, panel_shift,
        rule_of_thumb, should_promote,
    },
    error::SearchError,
    wire,
};

/// The model serving now.
pub struct ActiveModel {
    pub version: i64,
    pub model: DurationModel,
}

/// What a retraining did.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrained {
    pub version: i64,
    pub promoted: bool,
    pub holdout_mae_min: f64,
    /// The serving model's error on the same rows; `None` when none served.
    pub current_mae_min: Option<f64>,
    pub rows: usize,
    pub holdout_rows: usize,
    pub active_version: Option<i64>,
    /// Why the candidate was not promoted.
    pub refusal: Option<String>,
}

/// The versions and the one serving.
pub struct Models {
    pool: PgPool,
    core: ReadModelServiceClient<Channel>,
    signer: ServiceTokenSigner,
    active: RwLock<Option<Arc<ActiveModel>>>,
    training: Mutex<()>,
    training_threads: usize,
}

impl Models {
    /// Versions in `pool`, training data from `core` with `signer`'s tokens, trained on
    /// `training_threads` threads.
    pub fn new(
        pool: PgPool,
        core: ReadModelServiceClient<Channel>,
        signer: ServiceTokenSigner,
        training_threads: usize,
    ) -> Self {
        Models {
            pool,
            core,
            signer,
            active: RwLock::new(None),
            training: Mutex::new(()),
            training_threads,
        }
    }

    /// Returns the model serving now, if any.
    pub fn active(&self) -> Option<Arc<ActiveModel>> {
        self.active
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn serve(&self, model: ActiveModel) {
        *self
            .active
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(Arc::new(model));
    }

    /// Loads the promoted version, if there is one.
    ///
    /// # Errors
    /// When the database fails or the stored model does not read.
    pub async fn load_active(&self) -> anyhow::Result<Option<i64>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT version, model FROM model_versions WHERE active")
                .fetch_optional(&self.pool)
                .await?;
        let Some((version, body)) = row else {
            return Ok(None);
        };
        let model = tokio::task::spawn_blocking(move || DurationModel::from_json(&body))
            .await?
            .with_context(|| format!("stored model version {version} does not read"))?;
        self.serve(ActiveModel { version, model });
        Ok(Some(version))
    }

    /// Trains a candidate on every completed booking, stores it, and promotes it unless it
    /// does worse than the serving model on the candidate's hold-out rows.
    ///
    /// # Errors
    /// [`SearchError::TrainingRunning`] while another retraining runs,
    /// [`SearchError::CoreUnavailable`] when core cannot be reached,
    /// [`SearchError::CannotTrain`] with too little history.
    pub async fn retrain(&self) -> Result<Retrained, SearchError> {
        let _running = self
            .training
            .try_lock()
            .map_err(|_| SearchError::TrainingRunning)?;
        let history = self.history().await?;
        let current = self.active();
        let threads = Some(self.training_threads);
        let (candidate, current_mae, shift) = tokio::task::spawn_blocking(move || {
            let candidate = DurationModel::train(&history, threads)?;
            let current_mae = current
                .as_ref()
                .map(|active| active.model.holdout_mae(&history));
            let panel = panel();
            let reference: Vec<f64> = match &current {
                Some(active) => active.model.predict_many(&panel),
                None => panel
                    .iter()
                    .map(|job| f64::from(rule_of_thumb(job)))
                    .collect(),
            };
            let shift = panel_shift(&candidate.predict_many(&panel), &reference);
            Ok::<_, crate::domain::duration::TrainingError>((candidate, current_mae, shift))
        })
        .await
        .map_err(|error| SearchError::Unexpected(error.into()))?
        .map_err(|error| SearchError::CannotTrain(error.to_string()))?;
        let refusal = if !should_promote(candidate.holdout_mae_min, current_mae) {
            Some(format!(
                "its hold-out MAE {:.1} min is worse than the serving model's",
                candidate.holdout_mae_min
            ))
        } else if shift > MAX_PANEL_SHIFT {
            Some(format!(
                "it moves the panel's quotes without a cleaner by {:.0}% on average (at most {:.0}%)",
                shift * 100.0,
                MAX_PANEL_SHIFT * 100.0
            ))
        } else {
            None
        };
        let promoted = refusal.is_none();
        let body = candidate
            .to_json()
            .map_err(|error| SearchError::Unexpected(error.into()))?;
        let metrics = json!({
            "holdout_mae_min": candidate.holdout_mae_min,
            "current_mae_min": current_mae,
            "panel_shift": shift,
            "refusal": refusal,
            "rows": candidate.rows,
            "holdout_rows": candidate.holdout_rows,
        });
        let parameters = json!({"features": FEATURE_NAMES, "target": "ln(actual_duration_min)"});
        let mut transaction = self.pool.begin().await.map_err(unexpected)?;
        if promoted {
            sqlx::query("UPDATE model_versions SET active = false WHERE active")
                .execute(&mut *transaction)
                .await
                .map_err(unexpected)?;
        }
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO model_versions (parameters, metrics, active, model) \
             VALUES ($1::jsonb, $2::jsonb, $3, $4) RETURNING version",
        )
        .bind(parameters.to_string())
        .bind(metrics.to_string())
        .bind(promoted)
        .bind(body)
        .fetch_one(&mut *transaction)
        .await
        .map_err(unexpected)?;
        transaction.commit().await.map_err(unexpected)?;
        let outcome = Retrained {
            version,
            promoted,
            holdout_mae_min: candidate.holdout_mae_min,
            current_mae_min: current_mae,
            rows: candidate.rows,
            holdout_rows: candidate.holdout_rows,
            active_version: None,
            refusal,
        };
        if promoted {
            self.serve(ActiveModel {
                version,
                model: candidate,
            });
        }
        tracing::info!(version, promoted, mae = outcome.holdout_mae_min, current = ?current_mae, "duration model trained");
        Ok(Retrained {
            active_version: self.active().map(|active| active.version),
            ..outcome
        })
    }

    /// Streams every completed booking from core.
    async fn history(&self) -> Result<Vec<Completed>, SearchError> {
        let token = self.signer.token("core").map_err(SearchError::Unexpected)?;
        let unavailable =
            |status: tonic::Status| SearchError::CoreUnavailable(status.message().to_owned());
        let mut stream = self
            .core
            .clone()
            .stream_completed_bookings(request_with_token(
                StreamCompletedBookingsRequest {},
                &token,
            ))
            .await
            .map_err(unavailable)?
            .into_inner();
        let mut history = Vec::new();
        while let Some(batch) = stream.message().await.map_err(unavailable)? {
            for booking in &batch.bookings {
                match wire::completed(booking) {
                    Ok(row) => history.push(row),
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "skipped a completed booking search cannot read"
                    ),
                }
            }
        }
        Ok(history)
    }
}

fn unexpected(error: sqlx::Error) -> SearchError {
    SearchError::Unexpected(error.into())
}
