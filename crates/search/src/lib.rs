//! spruce-search: geo search over an in-memory read model of the cleaners, built from
//! core's snapshot and kept current by events; recommendations; and the cleaning-duration
//! model and quotes, whose versions its database holds.

pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod settings;
pub mod startup;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upstream;
pub mod usecases;
pub mod wire;
