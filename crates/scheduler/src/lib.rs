//! spruce-scheduler: notifications sent from events (and, in later issues, scheduled jobs
//! and the matching engine).

pub mod error;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod matching;
pub mod metrics;
pub mod notifications;
pub mod retry;
pub mod settings;
pub mod startup;
pub mod store;
pub mod upstream;
