//! Core's error type and its single mapping to gRPC statuses.

use spruce_db::unexpected;
use spruce_domain::reason::Reason;
use spruce_platform::status::status;
use tonic::Status;

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
    #[error("{0}")]
    TooEarly(String),
    #[error("{0}")]
    LimitReached(String),
    #[error("too many wrong codes, or the code expired; ask for a new one")]
    TooManyTries,
    #[error("the email address is verified already")]
    AlreadyVerified,
    #[error("verify your email address first (see the code we sent)")]
    EmailUnverified,
    /// The card issuer's reason stays in the logs and the `payment.failed` event: told to
    /// the client, it would help whoever tests stolen cards.
    #[error("the payment was declined; try another card")]
    PaymentDeclined,
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
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
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

impl CoreError {
    /// Returns the reason a client sees.
    fn reason(&self) -> Reason {
        match self {
            CoreError::Validation(_) => Reason::ValidationFailed,
            CoreError::EmailTaken => Reason::EmailTaken,
            CoreError::InvalidCredentials => Reason::InvalidCredentials,
            CoreError::InvalidRefreshToken => Reason::InvalidRefreshToken,
            CoreError::Unauthenticated => Reason::Unauthenticated,
            CoreError::NotFound => Reason::NotFound,
            CoreError::PermissionDenied(_) => Reason::Forbidden,
            CoreError::SlotTaken => Reason::SlotTaken,
            CoreError::IllegalTransition(_) => Reason::IllegalTransition,
            CoreError::TooEarly(_) => Reason::TooEarly,
            CoreError::LimitReached(_) => Reason::Conflict,
            CoreError::TooManyTries => Reason::TooManyAttempts,
            CoreError::AlreadyVerified => Reason::Conflict,
            CoreError::EmailUnverified => Reason::EmailUnverified,
            CoreError::PaymentDeclined => Reason::PaymentDeclined,
            CoreError::PaymentUnavailable => Reason::PaymentUnavailable,
            CoreError::Busy => Reason::Busy,
            CoreError::AlreadyReviewed => Reason::AlreadyReviewed,
            CoreError::NotReviewable(_) => Reason::NotReviewable,
            CoreError::Unexpected(_) => Reason::Internal,
        }
    }
}

impl From<CoreError> for Status {
    fn from(error: CoreError) -> Self {
        let reason = error.reason();
        let message = error.to_string();
        match error {
            CoreError::Validation(errors) => status(reason, message, &errors),
            CoreError::Unexpected(error) => unexpected(&error),
            _ => status(reason, message, &[]),
        }
    }
}
