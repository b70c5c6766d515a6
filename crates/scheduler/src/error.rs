//! The scheduler's error type and its single mapping to gRPC statuses.

use spruce_platform::status::{unexpected, violation, with_detail};
use tonic::{Code, Status};

/// Everything a scheduler RPC can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the request is invalid")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("no caller identity was given")]
    Unauthenticated,
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
            SchedulerError::Validation {
                field,
                message: problem,
            } => with_detail(
                Code::InvalidArgument,
                message,
                "validation_failed",
                vec![violation(field, problem)],
            ),
            SchedulerError::Unauthenticated => {
                with_detail(Code::Unauthenticated, message, "unauthenticated", vec![])
            }
            SchedulerError::Unexpected(error) => unexpected(&error),
        }
    }
}
