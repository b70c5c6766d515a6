//! spruce-scheduler: clock jobs run once per tick across replicas (reminders, expiry,
//! auto-assign with the matching engine, retraining), and notifications from events,
//! delivered by email and push.

pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod retry;
pub mod settings;
pub mod startup;
pub mod store;
pub mod upstream;
pub mod usecases;
