//! Machine-readable details on gRPC statuses: a [`Reason`] and field errors, so the gateway
//! can answer the mobile client precisely. Servers attach them here; the gateway reads them
//! back here. Each reason's gRPC code and HTTP status are here too ([`Codes`]).

use http::StatusCode;
use prost::Message as _;
use spruce_domain::reason::{FieldError, Reason};
use spruce_proto::common::v1::{ErrorDetail, FieldViolation};
use tonic::{Code, Status};

/// Every reason's gRPC code and HTTP status: the single table.
const CODES: &[(Reason, Code, StatusCode)] = &[
    (
        Reason::MalformedRequest,
        Code::InvalidArgument,
        StatusCode::BAD_REQUEST,
    ),
    (
        Reason::Unauthenticated,
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::InvalidCredentials,
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::InvalidRefreshToken,
        Code::Unauthenticated,
        StatusCode::UNAUTHORIZED,
    ),
    (
        Reason::PaymentDeclined,
        Code::FailedPrecondition,
        StatusCode::PAYMENT_REQUIRED,
    ),
    (
        Reason::Forbidden,
        Code::PermissionDenied,
        StatusCode::FORBIDDEN,
    ),
    (Reason::NotFound, Code::NotFound, StatusCode::NOT_FOUND),
    (
        Reason::MethodNotAllowed,
        Code::Unimplemented,
        StatusCode::METHOD_NOT_ALLOWED,
    ),
    (
        Reason::EmailTaken,
        Code::AlreadyExists,
        StatusCode::CONFLICT,
    ),
    (Reason::SlotTaken, Code::Aborted, StatusCode::CONFLICT),
    (
        Reason::IllegalTransition,
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::TooEarly,
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::EmailUnverified,
        Code::PermissionDenied,
        StatusCode::FORBIDDEN,
    ),
    (
        Reason::AlreadyReviewed,
        Code::AlreadyExists,
        StatusCode::CONFLICT,
    ),
    (
        Reason::NotReviewable,
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::Conflict,
        Code::FailedPrecondition,
        StatusCode::CONFLICT,
    ),
    (
        Reason::PayloadTooLarge,
        Code::InvalidArgument,
        StatusCode::PAYLOAD_TOO_LARGE,
    ),
    (
        Reason::UnsupportedMediaType,
        Code::InvalidArgument,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ),
    (
        Reason::ValidationFailed,
        Code::InvalidArgument,
        StatusCode::UNPROCESSABLE_ENTITY,
    ),
    (
        Reason::TooManyAttempts,
        Code::ResourceExhausted,
        StatusCode::TOO_MANY_REQUESTS,
    ),
    (
        Reason::RateLimited,
        Code::ResourceExhausted,
        StatusCode::TOO_MANY_REQUESTS,
    ),
    (
        Reason::Unavailable,
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::PaymentUnavailable,
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::DatabaseUnavailable,
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::Busy,
        Code::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Reason::Internal,
        Code::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
    ),
];

/// A reason's codes on the wire.
pub trait Codes {
    /// The gRPC code servers answer it with.
    fn grpc_code(self) -> Code;
    /// The HTTP status the gateway answers it with.
    fn http_status(self) -> StatusCode;
    /// Whether the client should try again later (503 and 429, with `Retry-After`).
    fn retry_later(self) -> bool;
}

impl Codes for Reason {
    fn grpc_code(self) -> Code {
        codes(self).1
    }

    fn http_status(self) -> StatusCode {
        codes(self).2
    }

    fn retry_later(self) -> bool {
        matches!(
            self.http_status(),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        )
    }
}

fn codes(reason: Reason) -> &'static (Reason, Code, StatusCode) {
    CODES
        .iter()
        .find(|row| row.0 == reason)
        .expect("every reason has its codes")
}

/// The reason a bare gRPC `code` stands for, when a status carries none of its own.
pub fn reason_for_code(code: Code) -> Reason {
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

/// Builds the status for `reason`: its gRPC code and `message`, with the reason and the
/// field errors in its details.
pub fn status(reason: Reason, message: impl Into<String>, errors: &[FieldError]) -> Status {
    let detail = ErrorDetail {
        reason: reason.as_str().to_owned(),
        field_violations: errors
            .iter()
            .map(|error| FieldViolation {
                field: error.field.clone(),
                message: error.message.clone(),
            })
            .collect(),
    };
    Status::with_details(reason.grpc_code(), message, detail.encode_to_vec().into())
}

/// Returns what a Spruce server said in `status`: its reason (from the code alone when it
/// carries none) and its field errors.
pub fn reason_of(status: &Status) -> (Reason, Vec<FieldError>) {
    let detail = (!status.details().is_empty())
        .then(|| ErrorDetail::decode(status.details()).ok())
        .flatten();
    let Some(detail) = detail else {
        return (reason_for_code(status.code()), Vec::new());
    };
    let reason = Reason::parse(&detail.reason).unwrap_or_else(|| reason_for_code(status.code()));
    let errors = detail
        .field_violations
        .into_iter()
        .map(|violation| FieldError::new(violation.field, violation.message))
        .collect();
    (reason, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_codes_and_a_code_alone_leads_to_the_same_class() {
        assert_eq!(CODES.len(), Reason::all().count());
        for (reason, code, status) in CODES {
            // A reason's code alone leads to the same HTTP class, so a status whose detail
            // was lost still answers sensibly (402, 405, 413 and 415 are the refinements).
            let by_code = reason_for_code(*code).http_status();
            let refined = [
                StatusCode::PAYMENT_REQUIRED,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                StatusCode::BAD_REQUEST,
            ];
            assert!(
                by_code == *status || refined.contains(status) || *code == Code::Unimplemented,
                "{reason}"
            );
        }
    }
}
