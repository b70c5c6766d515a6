//! Search's settings; every key has a local default.

use serde::Deserialize;
use spruce_platform::settings::{
    DatabaseSettings, ListenSettings, SettingsError, TelemetrySettings, Validate,
};

/// Everything search reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub grpc: ListenSettings,
    pub http: ListenSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grpc: ListenSettings::on_port(50052),
            http: ListenSettings::on_port(9092),
            database: DatabaseSettings {
                name: "spruce_search".to_owned(),
                ..DatabaseSettings::default()
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
        self.telemetry.validate()
    }
}
