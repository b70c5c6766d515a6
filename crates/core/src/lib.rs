//! spruce-core: users, credentials and sessions (and, in later issues, cleaners, bookings,
//! payments and reviews) on PostgreSQL, publishing events through the outbox.

pub mod accounts;
pub mod addresses;
pub mod authz;
pub mod bookings;
pub mod cleaners;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod passwords;
pub mod payments;
pub mod reviews;
pub mod seed;
pub mod settings;
pub mod startup;
pub mod store;
pub mod tokens;
