//! spruce-search: geo search over an in-memory read model of the cleaners, built from
//! core's snapshot and kept current by events; recommendations; and the cleaning-duration
//! model and quotes, whose versions its database holds.

pub mod cache;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod live;
pub mod metrics;
pub mod models;
pub mod settings;
pub mod startup;
pub mod wire;
