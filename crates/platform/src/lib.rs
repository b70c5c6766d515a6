//! What every Spruce service shares: settings (and what "production-like" refuses), keys and
//! tokens (users' and services'), telemetry, trace propagation, the database pool and
//! migrations, the event bus (outbox relay, consumer, unrouted events), the gRPC server
//! scaffolding with its authentication layer, the ops HTTP side, the one vocabulary of
//! failure reasons, email normalisation and text rules.

pub mod auth;
pub mod bus;
pub mod cli;
pub mod db;
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
pub mod time;
pub mod upstream;
