//! spruce-core: users, credentials, sessions, cleaner profiles, addresses, bookings, payments
//! and reviews on PostgreSQL, publishing events through the outbox. `usecases` holds what
//! the RPCs do, `domain` the rules (no I/O), `store` the SQL, `grpc` the thin wire adapters.

pub mod authz;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod passwords;
pub mod payments;
pub mod seed;
pub mod settings;
pub mod startup;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod upstream;
pub mod usecases;
