//! What every Spruce service runs on: settings (and what "production-like" refuses), keys
//! and tokens (users' and services'), telemetry and trace propagation, the gRPC server
//! scaffolding with its authentication layer, calls to other services, the ops HTTP side,
//! the binaries' subcommands, feature flags, and each failure reason's codes on the wire. The database is
//! `spruce-db`, the event bus `spruce-bus`, the shared rules `spruce-domain`.

pub mod auth;
pub mod cli;
pub mod flags;
pub mod grpc;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod paging;
pub mod propagation;
pub mod redis;
pub mod settings;
pub mod shutdown;
pub mod status;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod upstream;
