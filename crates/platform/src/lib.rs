//! What every Spruce service shares: settings, telemetry, trace propagation, the database
//! pool and migrations, the event bus (outbox relay and consumer), the gRPC and HTTP server
//! scaffolding, caller identity and access-token claims.

pub mod auth;
pub mod bus;
pub mod cli;
pub mod db;
pub mod email;
pub mod grpc;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod paging;
pub mod propagation;
pub mod reason;
pub mod settings;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod text;
pub mod time;
