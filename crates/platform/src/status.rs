//! Machine-readable details on gRPC statuses: a stable `reason` and field violations, so the
//! gateway can answer the mobile client precisely. Servers attach them here; the gateway
//! reads them back here.

use prost::Message as _;
use spruce_proto::common::v1::{ErrorDetail, FieldViolation};
use tonic::{Code, Status};

/// Builds a status carrying `reason` and `violations` in its details.
pub fn with_detail(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    violations: Vec<FieldViolation>,
) -> Status {
    let detail = ErrorDetail {
        reason: reason.to_owned(),
        field_violations: violations,
    };
    Status::with_details(code, message, detail.encode_to_vec().into())
}

/// Returns the details a Spruce server attached to `status`, if any.
pub fn detail_of(status: &Status) -> Option<ErrorDetail> {
    if status.details().is_empty() {
        return None;
    }
    ErrorDetail::decode(status.details()).ok()
}

/// Builds a field violation.
pub fn violation(field: &str, message: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Logs an unexpected error with its whole cause chain and returns an opaque INTERNAL status.
pub fn internal(error: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{error:#}"), "internal error");
    Status::internal("internal error")
}
