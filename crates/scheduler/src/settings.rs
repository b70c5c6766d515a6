//! The scheduler's settings; every key has a local default.

use std::collections::BTreeMap;

use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    settings::{
        self, BusSettings, CallerSettings, DatabaseSettings, ListenSettings, SettingsError,
        TelemetrySettings, UserTokenSettings, Validate,
    },
};

/// The scheduler's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[grpc]
port = 50053

[http]
port = 9093

[database]
name = "spruce_scheduler"

[bus]
queue_prefix = "scheduler"
"#;

/// Everything the scheduler reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub grpc: ListenSettings,
    #[serde(default)]
    pub http: ListenSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub bus: BusSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The services whose own tokens are accepted.
    #[serde(default)]
    pub callers: CallerSettings,
    /// Per-job switches, `[jobs.<name>] enabled = false` (the chart's `scheduler.jobs`).
    /// A job not listed runs.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobSettings>,
}

/// One clock job's switch.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    pub enabled: bool,
}

impl Settings {
    /// Returns the verifier of every gRPC call.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        self.auth.verifier(&self.callers.service_keys()?)
    }

    /// Whether the clock job `name` should run in this process.
    pub fn job_enabled(&self, name: &str) -> bool {
        self.jobs.get(name).is_none_or(|job| job.enabled)
    }
}

impl Default for Settings {
    fn default() -> Self {
        settings::from_toml(DEFAULTS).expect("built-in defaults are valid")
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.grpc.address("grpc")?;
        self.http.address("http")?;
        self.database.validate()?;
        self.bus.validate()?;
        self.verifier()?;
        if self.bus.queue_prefix.is_empty() {
            return Err(SettingsError::invalid(
                "bus.queue_prefix",
                "must not be empty",
            ));
        }
        self.telemetry.validate()
    }
}

impl spruce_platform::cli::ServiceSettings for Settings {
    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }

    fn http(&self) -> &ListenSettings {
        &self.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_are_this_services_and_valid() {
        let defaults = Settings::default();
        assert_eq!(defaults.database.name, "spruce_scheduler");
        assert_eq!(defaults.grpc.port, 50053);
        defaults.validate().unwrap();
    }

    #[test]
    fn jobs_are_switched_off_by_name_and_run_when_not_listed() {
        let settings: Settings = settings::from_toml(
            "[jobs.\"reminders\"]\nenabled = false\n[jobs.matching]\nenabled = true\n",
        )
        .unwrap();
        assert!(!settings.job_enabled("reminders"));
        assert!(settings.job_enabled("matching"));
        assert!(settings.job_enabled("expire-requests"));
        assert!(Settings::default().job_enabled("reminders"));
    }
}
