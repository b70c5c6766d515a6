//! RFC 9457 problem responses and the single mapping from gRPC statuses to HTTP.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use spruce_platform::{status::detail_of, telemetry::current_trace_id};
use tonic::Code;

/// Seconds a client should wait before retrying when a dependency is down or busy.
const RETRY_AFTER_SECS: u64 = 5;

/// One field's problem in a 422 answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    reason: String,
    detail: String,
    errors: Vec<FieldProblem>,
    retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
    errors: &'a [FieldProblem],
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

impl ApiError {
    /// Builds an error with a stable machine-readable `reason`.
    pub fn new(status: StatusCode, reason: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            reason: reason.to_owned(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 429: too many attempts; try again after `seconds`.
    pub fn too_many_attempts(seconds: u64) -> Self {
        ApiError {
            retry_after_secs: Some(seconds),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed attempts, try again later",
            )
        }
    }

    /// 400: the body could not be read.
    pub fn malformed(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_request", detail)
    }

    /// 401: no usable access token.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 500: logs the cause chain; the client learns nothing of it.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side",
        )
    }

    /// 404: nothing here (or nothing of yours).
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 422 with one field problem per entry.
    pub fn validation(errors: Vec<FieldProblem>) -> Self {
        ApiError {
            errors,
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "the request is invalid",
            )
        }
    }

    /// 422 for one invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldProblem {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// Returns the HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let http_status = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if http_status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(code = ?status.code(), message = status.message(), "upstream failed");
            return ApiError::new(http_status, "internal", "something went wrong on our side");
        }
        if http_status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(code = ?status.code(), message = status.message(), "upstream unavailable");
            return ApiError {
                retry_after_secs: Some(RETRY_AFTER_SECS),
                ..ApiError::new(
                    http_status,
                    "unavailable",
                    "a service is temporarily unavailable, try again shortly",
                )
            };
        }
        let detail = detail_of(&status);
        let reason = detail.as_ref().map_or_else(
            || default_reason(http_status).to_owned(),
            |detail| detail.reason.clone(),
        );
        let errors = detail
            .map(|detail| {
                detail
                    .field_violations
                    .into_iter()
                    .map(|violation| FieldProblem {
                        field: violation.field,
                        message: violation.message,
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A declined card is a precondition failure in gRPC and 402 for the mobile client.
        let http_status = if reason == "payment_declined" {
            StatusCode::PAYMENT_REQUIRED
        } else {
            http_status
        };
        let retry_after_secs =
            (http_status == StatusCode::TOO_MANY_REQUESTS).then_some(RETRY_AFTER_SECS);
        ApiError {
            status: http_status,
            reason,
            detail: status.message().to_owned(),
            errors,
            retry_after_secs,
        }
    }
}

fn default_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        _ => "error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            r#type: format!("urn:spruce:problem:{}", self.reason),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            trace_id: current_trace_id(),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use spruce_platform::status::{violation, with_detail};

    use super::*;

    #[test]
    fn statuses_map_to_the_documented_http_codes() {
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
    fn field_violations_become_field_problems() {
        let status = with_detail(
            Code::InvalidArgument,
            "bad",
            "validation_failed",
            vec![violation("email", "must be an email address")],
        );
        let error = ApiError::from(status);
        assert_eq!(
            error.errors,
            [FieldProblem {
                field: "email".into(),
                message: "must be an email address".into()
            }]
        );
        assert_eq!(error.reason, "validation_failed");
    }

    #[test]
    fn a_declined_payment_is_402() {
        let status = with_detail(
            Code::FailedPrecondition,
            "declined",
            "payment_declined",
            vec![],
        );
        assert_eq!(ApiError::from(status).status().as_u16(), 402);
    }

    #[test]
    fn internal_messages_are_not_leaked() {
        let error = ApiError::from(tonic::Status::internal("password column missing"));
        assert!(!error.detail.contains("password"));
    }
}
