//! Search's settings; every key has a local default.

use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    settings::{
        self, CallerSettings, DatabaseSettings, ListenSettings, SettingsError, TelemetrySettings,
        UserTokenSettings, Validate,
    },
};

/// Search's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[grpc]
port = 50052

[http]
port = 9092

[database]
name = "spruce_search"
"#;

/// Everything search reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub grpc: ListenSettings,
    #[serde(default)]
    pub http: ListenSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The services whose own tokens are accepted.
    #[serde(default)]
    pub callers: CallerSettings,
}

impl Settings {
    /// Returns the verifier of every gRPC call.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        self.auth.verifier(&self.callers.service_keys()?)
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
        self.verifier()?;
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
        assert_eq!(defaults.database.name, "spruce_search");
        assert_eq!(defaults.grpc.port, 50052);
        defaults.validate().unwrap();
    }
}
