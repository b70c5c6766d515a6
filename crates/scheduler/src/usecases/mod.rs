//! What the scheduler's requests, events and clock do, in domain types: the gRPC
//! adapters, the event consumer and the runner call these.

pub mod archive;
pub mod delivery;
pub mod jobs;
pub mod notifications;
pub mod recording;

#[cfg(test)]
mod delivery_tests;
