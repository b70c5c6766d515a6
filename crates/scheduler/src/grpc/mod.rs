//! The scheduler's gRPC services over tonic: wire in, use cases, wire out.

mod jobs;
mod notifications;

pub use jobs::JobApi;
pub use notifications::NotificationApi;
use spruce_domain::reason::FieldError;

use crate::error::SchedulerError;

/// A request field that does not read.
fn invalid(field: &str, message: &str) -> SchedulerError {
    SchedulerError::Validation(FieldError::new(field, message))
}
