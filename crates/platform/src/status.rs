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

/// Maps an unexpected error: UNAVAILABLE (reason `database_unavailable`) when anything in its
/// cause chain says the database cannot be reached right now, otherwise an opaque INTERNAL.
/// Logs the whole cause chain either way. The one mapping of unexpected errors for every
/// gRPC service.
pub fn unexpected(error: &anyhow::Error) -> Status {
    if database_unreachable_in(error) {
        tracing::warn!(error = format!("{error:#}"), "database unavailable");
        return with_detail(
            Code::Unavailable,
            "the database is unavailable, try again shortly",
            "database_unavailable",
            vec![],
        );
    }
    tracing::error!(error = format!("{error:#}"), "internal error");
    Status::internal("internal error")
}

/// Returns whether anything in `error`'s cause chain is a [`database_unreachable`] error.
pub fn database_unreachable_in(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(database_unreachable)
}

/// Returns whether `error` means the database cannot be reached right now (down, restarting,
/// out of connections, or no pooled connection within the pool's timeout), as opposed to a
/// query that is wrong.
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // Class 08: connection exceptions; 53300: too many connections; 57P01-57P03:
            // the server is shutting down or starting up.
            code.starts_with("08") || ["53300", "57P01", "57P02", "57P03"].contains(&&*code)
        }),
        _ => false,
    }
}
