//! End-to-end harness: starts the four real binaries on free ports, against fresh databases
//! (core's seeded with the curated data set) and a private exchange, with an in-process OTLP
//! receiver collecting their spans.

pub mod otlp;
pub mod stack;
pub mod tap;
