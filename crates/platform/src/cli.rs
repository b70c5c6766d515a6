//! The shape every service binary shares: load settings, start telemetry, run one
//! subcommand, log how it ended and flush traces.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::{
    settings::{self, TelemetrySettings, Validate},
    telemetry,
};

/// Settings of a service binary.
pub trait ServiceSettings: DeserializeOwned + Validate {
    /// Returns the logging and tracing settings.
    fn telemetry(&self) -> &TelemetrySettings;
}

/// Runs `command` (the first argument; `None` means `serve`) of `service` with settings
/// layered over `built_in`.
///
/// # Errors
/// Returns the settings error or what the command failed with, after logging it.
pub async fn run<S, F, Fut>(service: &'static str, built_in: &str, command: F) -> anyhow::Result<()>
where
    S: ServiceSettings,
    F: FnOnce(S, Option<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings: S = settings::load(built_in)?;
    let guard = telemetry::init(service, settings.telemetry())?;
    let result = command(settings, std::env::args().nth(1)).await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "{service} stopped with an error"
        );
    }
    guard.shutdown();
    result
}

/// The error for a subcommand the binary does not have.
pub fn unknown_command(command: &str, expected: &str) -> anyhow::Error {
    anyhow::anyhow!("unknown command {command:?}; expected {expected}")
}
