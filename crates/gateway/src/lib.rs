//! spruce-gateway: the public REST API for the mobile apps. It verifies access tokens,
//! turns REST calls into gRPC calls to core, search and scheduler, and maps their statuses
//! to RFC 9457 problem responses. It also takes cleaners' photos and documents into object
//! storage.

pub mod auth;
pub mod clients;
pub mod error;
pub mod extract;
pub mod fields;
pub mod openapi;
pub mod revocations;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod throttle;
pub mod uploads;
