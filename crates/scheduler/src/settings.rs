//! The scheduler's settings; every key has a local default.

use serde::Deserialize;
use spruce_platform::settings::{
    BusSettings, DatabaseSettings, ListenSettings, SettingsError, TelemetrySettings, Validate,
};

/// Everything the scheduler reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub grpc: ListenSettings,
    pub http: ListenSettings,
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grpc: ListenSettings::on_port(50053),
            http: ListenSettings::on_port(9093),
            database: DatabaseSettings {
                name: "spruce_scheduler".to_owned(),
                ..DatabaseSettings::default()
            },
            bus: BusSettings {
                queue_prefix: "scheduler".to_owned(),
                ..BusSettings::default()
            },
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.grpc.address("grpc")?;
        self.http.address("http")?;
        self.database.validate()?;
        self.bus.validate()?;
        if self.bus.queue_prefix.is_empty() {
            return Err(SettingsError::invalid("bus.queue_prefix", "must not be empty"));
        }
        self.telemetry.validate()
    }
}
