//! The one vocabulary of failures, shared by every gRPC service and the gateway: each
//! [`Reason`] knows its gRPC code (servers attach it to statuses in `ErrorDetail.reason`)
//! and its HTTP status (the gateway answers with it, as `urn:spruce:problem:<reason>`), and
//! [`FieldError`] is the one shape of "this field is wrong" on both sides.

use http::StatusCode;
use serde::Serialize;
use tonic::Code;

/// Why a request failed, stable for clients to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    MalformedRequest,
    Unauthenticated,
    InvalidCredentials,
    InvalidRefreshToken,
    PaymentDeclined,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    SlotTaken,
    IllegalTransition,
    TooEarly,
    EmailUnverified,
    AlreadyReviewed,
    NotReviewable,
    Conflict,
    PayloadTooLarge,
    ValidationFailed,
    TooManyAttempts,
    RateLimited,
    Unavailable,
    PaymentUnavailable,
    DatabaseUnavailable,
    Busy,
    Internal,
}

/// Every reason with its spelling, gRPC code and HTTP status: the single table.
const TABLE: &[(Reason, &str, Code, StatusCode)] = &[
    (
        Reason::MalformedRequest,
        "malformed_request",
        Code::InvalidArgument,
        StatusCode::BAD_REQUEST,
    ),
    (
        Reason::Unauthenticated,
        "unauthenticated",
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::InvalidCredentials,
        "invalid_credentials",
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::InvalidRefreshToken,
        "invalid_refresh_token",
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::PaymentDeclined,
        "payment_declined",
        Code::FailedPrecondition,
        StatusCode::PAYMENT_REQUIRED,
    ),
    (
        Reason::Forbidden,
        "forbidden",
        Code::PermissionDenied,
        StatusCode::FORBIDDEN,
    ),
    (
        Reason::NotFound,
        "not_found",
        Code::NotFound,
        StatusCode::NOT_FOUND,
    ),
    (
        Reason::MethodNotAllowed,
        "method_not_allowed",
        Code::Unimplemented,
        StatusCode::METHOD_NOT_ALLOWED,
    ),
    (
        Reason::EmailTaken,
        "email_taken",
        Code::AlreadyExists,
        StatusCode::CONFLICT,
    ),
    (
        Reason::SlotTaken,
        "slot_taken",
        Code::Aborted,
        StatusCode::CONFLICT,
    ),
    (
        Reason::IllegalTransition,
        "illegal_transition",
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::TooEarly,
        "too_early",
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::EmailUnverified,
        "email_unverified",
        Code::PermissionDenied,
        StatusCode::FORBIDDEN,
    ),
    (
        Reason::AlreadyReviewed,
        "already_reviewed",
        Code::AlreadyExists,
        StatusCode::CONFLICT,
    ),
    (
        Reason::NotReviewable,
        "not_reviewable",
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::Conflict,
        "conflict",
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::PayloadTooLarge,
        "payload_too_large",
        Code::InvalidArgument,
        StatusCode::PAYLOAD_TOO_LARGE,
    ),
    (
        Reason::ValidationFailed,
        "validation_failed",
        Code::InvalidArgument,
        StatusCode::UNPROCESSABLE_ENTITY,
    ),
    (
        Reason::TooManyAttempts,
        "too_many_attempts",
        Code::ResourceExhausted,
        StatusCode::TOO_MANY_REQUESTS,
    ),
    (
        Reason::RateLimited,
        "rate_limited",
        Code::ResourceExhausted,
        StatusCode::TOO_MANY_REQUESTS,
    ),
    (
        Reason::Unavailable,
        "unavailable",
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::PaymentUnavailable,
        "payment_unavailable",
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::DatabaseUnavailable,
        "database_unavailable",
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::Busy,
        "busy",
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::Internal,
        "internal",
        Code::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
    ),
];

impl Reason {
    fn row(self) -> &'static (Reason, &'static str, Code, StatusCode) {
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .expect("every reason is in the table")
    }

    /// Returns the wire spelling (`slot_taken`).
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// Returns the gRPC code a server answers with.
    pub fn grpc_code(self) -> Code {
        self.row().2
    }

    /// Returns the HTTP status the gateway answers with.
    pub fn http_status(self) -> StatusCode {
        self.row().3
    }

    /// Returns the reason spelled `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        TABLE.iter().find(|row| row.1 == text).map(|row| row.0)
    }

    /// Returns the reason for a status that carries none (a transport error, a server that
    /// is not ours): by its code alone.
    pub fn for_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Reason::ValidationFailed,
            Code::NotFound => Reason::NotFound,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => Reason::Conflict,
            Code::PermissionDenied => Reason::Forbidden,
            Code::Unauthenticated => Reason::Unauthenticated,
            Code::ResourceExhausted => Reason::RateLimited,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Reason::Unavailable,
            Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
                Reason::Internal
            }
        }
    }

    /// Returns whether a client should come back later (the answer carries Retry-After).
    pub fn retry_later(self) -> bool {
        matches!(
            self.http_status(),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One broken rule about one input field, named in the REST API's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, e.g. `email` or `weekly_availability[0].start`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_codes_agree_with_statuses() {
        for (reason, text, code, status) in TABLE {
            assert_eq!(Reason::parse(text), Some(*reason));
            assert_eq!(reason.as_str(), *text);
            // A reason's code alone leads to the same HTTP class, so a status whose detail
            // was lost still answers sensibly (402, 405 and 413 are the refinements).
            let by_code = Reason::for_code(*code).http_status();
            let refined = [
                StatusCode::PAYMENT_REQUIRED,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::BAD_REQUEST,
            ];
            assert!(
                by_code == *status || refined.contains(status) || *code == Code::Unimplemented,
                "{text}"
            );
        }
        assert_eq!(Reason::parse("bogus"), None);
    }
}
