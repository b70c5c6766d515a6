//! The gateway's REST API over real HTTP, calling a real spruce-core over real gRPC, on
//! a fresh database and a private exchange per test.

mod account;
mod addresses;
mod auth;
mod bookings;
mod broker;
mod cleaners;
mod files;
mod flags;
mod helpers;
mod jobs;
mod model;
mod notifications;
mod openapi;
mod payments;
mod privacy;
mod races;
mod recommendations;
mod revocations;
mod scene;
mod search;
mod seeded;
mod stand_ins;
mod statuses;
mod throttle;
