//! The one vocabulary of failures, shared by every gRPC service and the gateway: each
//! [`Reason`] has a stable name clients match on (`ErrorDetail.reason` on gRPC statuses,
//! `urn:spruce:problem:<reason>` in the gateway's problems), and [`FieldError`] is the one
//! shape of "this field is wrong" on both sides. Each reason's gRPC code and HTTP status
//! are the servers' concern (`spruce_platform::status`).

use serde::Serialize;

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
    UnsupportedMediaType,
    ValidationFailed,
    TooManyAttempts,
    RateLimited,
    Unavailable,
    PaymentUnavailable,
    DatabaseUnavailable,
    Busy,
    Internal,
}

/// Every reason with its name.
const NAMES: &[(Reason, &str)] = &[
    (Reason::MalformedRequest, "malformed_request"),
    (Reason::Unauthenticated, "unauthenticated"),
    (Reason::InvalidCredentials, "invalid_credentials"),
    (Reason::InvalidRefreshToken, "invalid_refresh_token"),
    (Reason::PaymentDeclined, "payment_declined"),
    (Reason::Forbidden, "forbidden"),
    (Reason::NotFound, "not_found"),
    (Reason::MethodNotAllowed, "method_not_allowed"),
    (Reason::EmailTaken, "email_taken"),
    (Reason::SlotTaken, "slot_taken"),
    (Reason::IllegalTransition, "illegal_transition"),
    (Reason::TooEarly, "too_early"),
    (Reason::EmailUnverified, "email_unverified"),
    (Reason::AlreadyReviewed, "already_reviewed"),
    (Reason::NotReviewable, "not_reviewable"),
    (Reason::Conflict, "conflict"),
    (Reason::PayloadTooLarge, "payload_too_large"),
    (Reason::UnsupportedMediaType, "unsupported_media_type"),
    (Reason::ValidationFailed, "validation_failed"),
    (Reason::TooManyAttempts, "too_many_attempts"),
    (Reason::RateLimited, "rate_limited"),
    (Reason::Unavailable, "unavailable"),
    (Reason::PaymentUnavailable, "payment_unavailable"),
    (Reason::DatabaseUnavailable, "database_unavailable"),
    (Reason::Busy, "busy"),
    (Reason::Internal, "internal"),
];

impl Reason {
    /// Every reason.
    pub fn all() -> impl Iterator<Item = Reason> {
        NAMES.iter().map(|row| row.0)
    }

    /// Its stable name, e.g. `slot_taken`.
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|row| row.0 == self)
            .map(|row| row.1)
            .expect("every reason has a name")
    }

    /// The reason named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        NAMES.iter().find(|row| row.1 == text).map(|row| row.0)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One broken rule about one input field, named in the REST API's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    fn every_reason_round_trips_by_its_name() {
        for reason in Reason::all() {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::all().count(), NAMES.len());
        assert_eq!(Reason::parse("bogus"), None);
    }
}
