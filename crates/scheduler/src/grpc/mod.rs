//! The scheduler's gRPC services over tonic.

mod jobs;
mod notifications;

pub use jobs::JobApi;
pub use notifications::NotificationApi;
