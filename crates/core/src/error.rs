//! Core's error type and its single mapping to gRPC statuses.

use spruce_platform::status::{unexpected, violation, with_detail};
use tonic::{Code, Status};

use crate::domain::FieldError;

/// Everything a core operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("the email address is already registered")]
    EmailTaken,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("no caller identity was given")]
    Unauthenticated,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("the cleaner is already booked at that time")]
    SlotTaken,
    #[error("{0}")]
    IllegalTransition(String),
    #[error("the payment was declined ({0})")]
    PaymentDeclined(String),
    #[error("the payment provider is unavailable, try again shortly")]
    PaymentUnavailable,
    #[error("too busy to check passwords right now, try again shortly")]
    Busy,
    #[error("this booking has been reviewed already")]
    AlreadyReviewed,
    #[error("{0}")]
    NotReviewable(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CoreError {
    /// One invalid field, with a message fit for the client.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<sqlx::Error> for CoreError {
    fn from(error: sqlx::Error) -> Self {
        // Text PostgreSQL cannot hold (a NUL) that slipped past validation is still the
        // client's input, not our failure.
        let unstorable = error
            .as_database_error()
            .and_then(|database| database.code())
            .is_some_and(|code| code == "22021" || code == "22P05");
        if unstorable {
            return CoreError::invalid("body", "holds a character that cannot be stored");
        }
        CoreError::Unexpected(error.into())
    }
}

impl From<CoreError> for Status {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::Validation(errors) => {
                let violations = errors
                    .iter()
                    .map(|error| violation(error.field, error.message.clone()))
                    .collect();
                with_detail(
                    Code::InvalidArgument,
                    message,
                    "validation_failed",
                    violations,
                )
            }
            CoreError::EmailTaken => {
                with_detail(Code::AlreadyExists, message, "email_taken", vec![])
            }
            CoreError::InvalidCredentials => with_detail(
                Code::Unauthenticated,
                message,
                "invalid_credentials",
                vec![],
            ),
            CoreError::InvalidRefreshToken => with_detail(
                Code::Unauthenticated,
                message,
                "invalid_refresh_token",
                vec![],
            ),
            CoreError::Unauthenticated => {
                with_detail(Code::Unauthenticated, message, "unauthenticated", vec![])
            }
            CoreError::NotFound => with_detail(Code::NotFound, message, "not_found", vec![]),
            CoreError::AlreadyReviewed => {
                with_detail(Code::AlreadyExists, message, "already_reviewed", vec![])
            }
            CoreError::NotReviewable(_) => {
                with_detail(Code::FailedPrecondition, message, "not_reviewable", vec![])
            }
            CoreError::SlotTaken => with_detail(Code::Aborted, message, "slot_taken", vec![]),
            CoreError::IllegalTransition(_) => with_detail(
                Code::FailedPrecondition,
                message,
                "illegal_transition",
                vec![],
            ),
            CoreError::PaymentDeclined(_) => with_detail(
                Code::FailedPrecondition,
                message,
                "payment_declined",
                vec![],
            ),
            CoreError::PaymentUnavailable => {
                with_detail(Code::Unavailable, message, "payment_unavailable", vec![])
            }
            CoreError::Busy => with_detail(Code::Unavailable, message, "busy", vec![]),
            CoreError::PermissionDenied(_) => {
                with_detail(Code::PermissionDenied, message, "forbidden", vec![])
            }
            CoreError::Unexpected(error) => unexpected(&error),
        }
    }
}
