//! Core's settings; every key has a local default so the service starts with no configuration.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use spruce_platform::settings::{
    BusSettings, DatabaseSettings, ListenSettings, SettingsError, TelemetrySettings, Validate,
};

/// The development signing key. Anyone can read it here, so it must never sign production
/// tokens: startup refuses it when `SPRUCE_ENV` is `staging` or `prod`.
pub const DEV_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHfcrIpsis1ZpfiTKTx4t7GarH6TX0ChNFoamJT3Leim
-----END PRIVATE KEY-----
";

/// Everything core reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub grpc: ListenSettings,
    pub http: ListenSettings,
    pub database: DatabaseSettings,
    pub bus: BusSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grpc: ListenSettings::on_port(50051),
            http: ListenSettings::on_port(9091),
            database: DatabaseSettings {
                name: "spruce_core".to_owned(),
                ..DatabaseSettings::default()
            },
            bus: BusSettings {
                queue_prefix: "core".to_owned(),
                ..BusSettings::default()
            },
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings::default(),
        }
    }
}

/// Token signing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// PEM-encoded Ed25519 private key (PKCS#8); use `private_key_file` in deployments.
    pub private_key: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_days: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            private_key: SecretString::from(DEV_PRIVATE_KEY_PEM),
            issuer: "spruce".to_owned(),
            audience: "spruce-mobile".to_owned(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
        }
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.grpc.address("grpc")?;
        self.http.address("http")?;
        self.database.validate()?;
        self.bus.validate()?;
        self.telemetry.validate()?;
        if self.auth.access_token_ttl_secs <= 0 {
            return Err(SettingsError::invalid("auth.access_token_ttl_secs", "must be positive"));
        }
        if self.auth.refresh_token_ttl_days <= 0 {
            return Err(SettingsError::invalid("auth.refresh_token_ttl_days", "must be positive"));
        }
        let environment = std::env::var("SPRUCE_ENV").unwrap_or_default();
        let dev_key = self.auth.private_key.expose_secret() == DEV_PRIVATE_KEY_PEM;
        if dev_key && ["staging", "prod", "production"].contains(&environment.as_str()) {
            return Err(SettingsError::invalid(
                "auth.private_key",
                "is the public development key; set auth.private_key_file",
            ));
        }
        Ok(())
    }
}
