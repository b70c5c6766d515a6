//! RFC 9457 problem responses and the single mapping from gRPC statuses to HTTP: a status's
//! [`Reason`] (platform's one vocabulary) decides the HTTP status; upload failures map here
//! too.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use spruce_domain::reason::{FieldError, Reason};
use spruce_platform::{
    status::{Codes as _, reason_of},
    telemetry::current_trace_id,
};
use spruce_storage::StorageError;

use crate::uploads::UploadError;

/// Seconds a client should wait before retrying when a dependency is down or busy.
const RETRY_AFTER_SECS: u64 = 5;

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    reason: Reason,
    detail: String,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
}

/// An RFC 9457 problem: the body of every error answer, and its schema in the API document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:spruce:problem:<reason>`, e.g. `urn:spruce:problem:slot_taken`.
    #[schema(example = "urn:spruce:problem:validation_failed")]
    pub r#type: String,
    /// The HTTP status's name.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// For 422: one entry per invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    /// The request's trace id, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl ApiError {
    /// Builds an error for `reason`; its HTTP status follows from the reason.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        ApiError {
            reason,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: reason.retry_later().then_some(RETRY_AFTER_SECS),
        }
    }

    /// 429: too many attempts; try again after `seconds`.
    pub fn too_many_attempts(seconds: u64) -> Self {
        ApiError {
            retry_after_secs: Some(seconds),
            ..ApiError::new(
                Reason::TooManyAttempts,
                "too many attempts, try again later",
            )
        }
    }

    /// 400: the body could not be read.
    pub fn malformed(detail: impl Into<String>) -> Self {
        ApiError::new(Reason::MalformedRequest, detail)
    }

    /// 401: no usable access token.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        ApiError::new(Reason::Unauthenticated, detail)
    }

    /// 500: logs the cause chain; the client learns nothing of it.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "internal error");
        ApiError::new(Reason::Internal, "something went wrong on our side")
    }

    /// 404: nothing here (or nothing of yours).
    pub fn not_found() -> Self {
        ApiError::new(Reason::NotFound, "no such resource")
    }

    /// 422 with one field error per entry.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError {
            errors,
            ..ApiError::new(Reason::ValidationFailed, "the request is invalid")
        }
    }

    /// 422 for one invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(field, message)])
    }

    /// Returns the HTTP status.
    pub fn status(&self) -> StatusCode {
        self.reason.http_status()
    }

    /// Returns the reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let (reason, errors) = reason_of(&status);
        if reason == Reason::Internal {
            tracing::error!(code = ?status.code(), detail = status.message(), "upstream failed");
            return ApiError::new(reason, "something went wrong on our side");
        }
        if reason.http_status() == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(code = ?status.code(), detail = status.message(), "upstream unavailable");
            return ApiError::new(
                reason,
                "a service is temporarily unavailable, try again shortly",
            );
        }
        ApiError {
            errors,
            ..ApiError::new(reason, status.message())
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Busy => ApiError::new(Reason::Busy, error.to_string()),
            UploadError::Unsupported(why) => ApiError::new(Reason::UnsupportedMediaType, why),
            UploadError::Unreadable(why) => {
                ApiError::invalid_field("body", format!("the file cannot be read: {why}"))
            }
            UploadError::Storage(StorageError::BadKey(_)) => ApiError::not_found(),
            UploadError::Storage(error) => {
                tracing::error!(error = %error, "object storage failed");
                ApiError::new(
                    Reason::Unavailable,
                    "file storage is unavailable, try again shortly",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Problem {
            r#type: format!("urn:spruce:problem:{}", self.reason),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail,
            errors: self.errors,
            trace_id: current_trace_id(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use spruce_platform::status::status;
    use tonic::Code;

    use super::*;

    #[test]
    fn statuses_without_a_reason_map_by_their_code() {
        let cases = [
            (Code::InvalidArgument, 422),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 503),
            (Code::Internal, 500),
        ];
        for (code, expected) in cases {
            let error = ApiError::from(tonic::Status::new(code, "x"));
            assert_eq!(error.status().as_u16(), expected, "{code:?}");
        }
    }

    #[test]
    fn field_errors_and_the_reason_travel_through() {
        let error = ApiError::from(status(
            Reason::ValidationFailed,
            "bad",
            &[FieldError::new("email", "must be an email address")],
        ));
        assert_eq!(
            error.errors,
            [FieldError::new("email", "must be an email address")]
        );
        assert_eq!(error.reason(), Reason::ValidationFailed);
    }

    #[test]
    fn a_declined_payment_is_402_by_its_reason() {
        let error = ApiError::from(status(Reason::PaymentDeclined, "declined", &[]));
        assert_eq!(error.status().as_u16(), 402);
    }

    #[test]
    fn unavailable_answers_ask_to_retry_later() {
        for reason in [
            Reason::Busy,
            Reason::DatabaseUnavailable,
            Reason::Unavailable,
        ] {
            let error = ApiError::from(status(reason, "down", &[]));
            assert_eq!(error.status().as_u16(), 503);
            assert_eq!(error.retry_after_secs, Some(RETRY_AFTER_SECS));
        }
    }

    #[test]
    fn internal_messages_are_not_leaked() {
        let error = ApiError::from(tonic::Status::internal("password column missing"));
        assert!(!error.detail.contains("password"));
    }
}
