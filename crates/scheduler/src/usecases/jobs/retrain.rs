//! `retrain-duration-model`: asks search to retrain its duration model and records what
//! came of it. Search refuses to promote a candidate worse than the serving model; either
//! way the run succeeds and says so.

use spruce_proto::search::v1::RetrainModelRequest;

use crate::domain::jobs::{Job, JobFuture, RunContext, RunReport};
use crate::upstream::{Upstreams, within};

/// Retrains search's model.
pub struct RetrainDurationModel {
    upstreams: Upstreams,
}

impl RetrainDurationModel {
    /// Calls search through `upstreams`.
    pub fn new(upstreams: Upstreams) -> Self {
        RetrainDurationModel { upstreams }
    }
}

impl Job for RetrainDurationModel {
    fn run(&self, _context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let mut search = self.upstreams.search.clone();
            let request = self.upstreams.to_search(RetrainModelRequest {})?;
            let outcome = within(
                "search's RetrainModel",
                self.upstreams.retrain_timeout,
                search.retrain_model(request),
            )
            .await?;
            let verdict = if outcome.promoted {
                "promoted".to_owned()
            } else {
                format!("not promoted ({})", outcome.refusal)
            };
            let against = outcome.current_mae_min.map_or_else(
                || " (no model served before)".to_owned(),
                |current| format!(" against {current:.1}"),
            );
            Ok(RunReport {
                items: u64::from(outcome.rows),
                detail: Some(format!(
                    "candidate version {} {verdict}: hold-out MAE {:.1} min{against}; \
                     serving version {}",
                    outcome.version, outcome.holdout_mae_min, outcome.active_version
                )),
            })
        })
    }
}
