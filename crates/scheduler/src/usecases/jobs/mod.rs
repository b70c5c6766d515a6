//! The clock jobs and the runner that makes every tick run once across replicas.

pub mod admin;
pub mod assign;
pub mod expire;
pub mod reminders;
pub mod retrain;
pub mod runner;

#[cfg(test)]
mod runner_tests;
