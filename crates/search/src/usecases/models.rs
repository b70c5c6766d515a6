//! The duration model's versions: trained from core's completed bookings, stored in
//! `model_versions`, the newest promoted one serving (loaded at start, swapped in memory on
//! promotion, without a restart).

use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use serde_json::json;
use spruce_domain::pricing::{DEFAULT_HOURLY_RATE_CENTS, billable_minutes, price_cents};
use spruce_platform::identity::{Principal, Role};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::{
    domain::duration::{
        DurationModel, FEATURE_NAMES, Job, MAX_PANEL_SHIFT, panel, panel_shift, rule_of_thumb,
        should_promote,
    },
    error::SearchError,
    store::models as store,
    upstream::CoreReadModel,
    usecases::live::LiveModel,
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

/// What estimated a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimatedBy {
    Model,
    /// No model is serving yet: the rule of thumb core books with.
    RuleOfThumb,
}

impl EstimatedBy {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimatedBy::Model => "model",
            EstimatedBy::RuleOfThumb => "rule_of_thumb",
        }
    }
}

/// A quote: how long a job takes, what it costs, and what said so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub minutes: u32,
    pub price_cents: i64,
    /// The serving model's version; 0 by the rule of thumb.
    pub model_version: i64,
    pub estimated_by: EstimatedBy,
}

/// The versions and the one serving.
pub struct Models {
    pool: PgPool,
    core: CoreReadModel,
    active: RwLock<Option<Arc<ActiveModel>>>,
    training: Mutex<()>,
    training_threads: usize,
}

impl Models {
    /// Versions in `pool`, training data from `core`, trained on `training_threads`
    /// threads.
    pub fn new(pool: PgPool, core: CoreReadModel, training_threads: usize) -> Self {
        Models {
            pool,
            core,
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

    /// Quotes `job` for any signed-in caller: the serving model's minutes (the rule of
    /// thumb until one serves), priced at the cleaner's rate in `live` (or the default
    /// rate without a cleaner).
    ///
    /// # Errors
    /// Unauthenticated without a caller; not found for a cleaner `live` does not list; not
    /// ready until the snapshot is in.
    pub fn estimate(
        &self,
        live: &LiveModel,
        principal: Option<&Principal>,
        job: &Job,
    ) -> Result<Estimate, SearchError> {
        principal.ok_or(SearchError::Unauthenticated)?;
        let rate = match job.cleaner_id {
            Some(id) => live
                .read(|model| {
                    model
                        .index()
                        .get(id)
                        .map(|cleaner| cleaner.hourly_rate_cents)
                })?
                .ok_or(SearchError::NotFound)?,
            None => DEFAULT_HOURLY_RATE_CENTS,
        };
        let (minutes, model_version, estimated_by) = match self.active() {
            Some(active) => (
                billable_minutes(active.model.predict(job)),
                active.version,
                EstimatedBy::Model,
            ),
            None => (rule_of_thumb(job), 0, EstimatedBy::RuleOfThumb),
        };
        Ok(Estimate {
            minutes,
            price_cents: price_cents(minutes, rate),
            model_version,
            estimated_by,
        })
    }

    /// [`Models::retrain`], for admins and the services allowed to call it.
    ///
    /// # Errors
    /// Unauthenticated, permission denied for other users, or what retraining fails with.
    pub async fn retrain_for(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Retrained, SearchError> {
        match principal {
            // The authentication layer lets only the services in SERVICE_RPCS call this.
            Some(Principal::Service(_)) => {}
            Some(Principal::User(caller)) if caller.role == Role::Admin => {}
            Some(Principal::User(_)) => {
                return Err(SearchError::PermissionDenied(
                    "only admins retrain the model",
                ));
            }
            None => return Err(SearchError::Unauthenticated),
        }
        self.retrain().await
    }

    /// Loads the promoted version, if there is one.
    ///
    /// # Errors
    /// When the database fails or the stored model does not read.
    pub async fn load_active(&self) -> anyhow::Result<Option<i64>> {
        let Some((version, body)) = store::active(&self.pool).await? else {
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
        let history = self.core.completed_bookings().await?;
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
        let version = store::insert(
            &self.pool,
            &store::NewVersion {
                parameters: parameters.to_string(),
                metrics: metrics.to_string(),
                promoted,
                body,
            },
        )
        .await
        .map_err(|error| SearchError::Unexpected(error.into()))?;
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
}
