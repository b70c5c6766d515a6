//! The scheduler's error type and its single mapping to gRPC statuses.

use spruce_db::unexpected;
use spruce_domain::reason::{FieldError, Reason};
use spruce_platform::status::status;
use tonic::Status;

/// Everything a scheduler RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the request is invalid")]
    Validation(FieldError),
    #[error("no caller identity was given")]
    Unauthenticated,
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SchedulerError {
    fn from(error: sqlx::Error) -> Self {
        SchedulerError::Unexpected(error.into())
    }
}

impl From<SchedulerError> for Status {
    fn from(error: SchedulerError) -> Self {
        let message = error.to_string();
        match error {
            SchedulerError::Validation(field) => {
                status(Reason::ValidationFailed, message, &[field])
            }
            SchedulerError::Unauthenticated => status(Reason::Unauthenticated, message, &[]),
            SchedulerError::PermissionDenied(_) => status(Reason::Forbidden, message, &[]),
            SchedulerError::NotFound(_) => status(Reason::NotFound, message, &[]),
            SchedulerError::Unexpected(error) => unexpected(&error),
        }
    }
}
