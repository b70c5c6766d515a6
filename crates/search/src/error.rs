//! Search's error type and its single mapping to gRPC statuses.

use spruce_db::unexpected;
use spruce_domain::reason::{FieldError, Reason};
use spruce_platform::status::status;
use tonic::Status;

/// Everything a search RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("no caller identity was given")]
    Unauthenticated,
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("the search index is still loading, try again shortly")]
    NotReady,
    #[error("no such cleaner")]
    NotFound,
    #[error("a retraining is running already")]
    TrainingRunning,
    #[error("cannot train: {0}")]
    CannotTrain(String),
    #[error("core is unavailable: {0}")]
    CoreUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<SearchError> for Status {
    fn from(error: SearchError) -> Self {
        let message = error.to_string();
        match error {
            SearchError::Validation(fields) => status(Reason::ValidationFailed, message, &fields),
            SearchError::Unauthenticated => status(Reason::Unauthenticated, message, &[]),
            SearchError::PermissionDenied(_) => status(Reason::Forbidden, message, &[]),
            SearchError::NotFound => status(Reason::NotFound, message, &[]),
            SearchError::NotReady | SearchError::CoreUnavailable(_) => {
                status(Reason::Unavailable, message, &[])
            }
            SearchError::TrainingRunning => status(Reason::Conflict, message, &[]),
            SearchError::CannotTrain(_) => status(Reason::Conflict, message, &[]),
            SearchError::Unexpected(error) => unexpected(&error),
        }
    }
}
