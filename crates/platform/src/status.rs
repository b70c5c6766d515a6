//! Machine-readable details on gRPC statuses: a [`Reason`] and field errors, so the gateway
//! can answer the mobile client precisely. Servers attach them here; the gateway reads them
//! back here.

use prost::Message as _;
use spruce_proto::common::v1::{ErrorDetail, FieldViolation};
use tonic::Status;

use crate::reason::{FieldError, Reason};

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
        return (Reason::for_code(status.code()), Vec::new());
    };
    let reason = Reason::parse(&detail.reason).unwrap_or_else(|| Reason::for_code(status.code()));
    let errors = detail
        .field_violations
        .into_iter()
        .map(|violation| FieldError::new(violation.field, violation.message))
        .collect();
    (reason, errors)
}

/// Maps an unexpected error: UNAVAILABLE (reason `database_unavailable`) when anything in its
/// cause chain says the database cannot be reached right now, otherwise an opaque INTERNAL.
/// Logs the whole cause chain either way. The one mapping of unexpected errors for every
/// gRPC service.
pub fn unexpected(error: &anyhow::Error) -> Status {
    if database_unreachable_in(error) {
        tracing::warn!(error = format!("{error:#}"), "database unavailable");
        return status(
            Reason::DatabaseUnavailable,
            "the database is unavailable, try again shortly",
            &[],
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
