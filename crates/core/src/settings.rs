//! Core's settings; every key has a local default so the service starts with no configuration.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    cli::ServiceSettings,
    keys::{self, PrivateKey},
    settings::{
        self, BusSettings, CallerSettings, CommonSettings, DatabaseSettings, ListenSettings,
        SettingsError, Upstream, Validate, positive, production_like,
    },
};

/// Core's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[grpc]
port = 50051

[http]
port = 9091

[database]
name = "spruce_core"

[bus]
queue_prefix = "core"

# Bookings are priced with search's duration model; `timeout` is how long a booking waits
# for its estimate before the rule of thumb answers.
[search]
url = "http://127.0.0.1:50052"
connect_timeout = "500ms"
timeout = "300ms"
"#;

/// Everything core reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    #[serde(default)]
    pub grpc: ListenSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub bus: BusSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub callers: CallerSettings,
    #[serde(default)]
    pub payments: PaymentSettings,
    #[serde(default)]
    pub outbox: OutboxSettings,
    /// Where search is: bookings are priced with its duration model's estimates.
    pub search: Upstream,
}

/// The outbox relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OutboxSettings {
    /// Publish outbox rows from this process (switched off only to measure what publishing
    /// costs, or when a separate relay deployment does it).
    pub relay: bool,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings { relay: true }
    }
}

/// Which payment processor: `fake` (development and tests: honours the test tokens, refused
/// where production-like) or `stripe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProviderKind {
    Fake,
    Stripe,
}

/// The payment processor.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PaymentSettings {
    pub provider: PaymentProviderKind,
    pub stripe: StripeSettings,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            provider: PaymentProviderKind::Fake,
            stripe: StripeSettings::default(),
        }
    }
}

/// A Stripe-style payment API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StripeSettings {
    pub base_url: String,
    /// The API secret key; use `secret_key_file` in deployments.
    pub secret_key: SecretString,
    #[serde(deserialize_with = "settings::duration")]
    pub timeout: Duration,
    /// Retries after a timeout or 5xx, each with the same idempotency key.
    pub retries: u32,
}

impl Default for StripeSettings {
    fn default() -> Self {
        StripeSettings {
            base_url: "https://api.stripe.com".to_owned(),
            secret_key: SecretString::from(""),
            timeout: Duration::from_secs(5),
            retries: 2,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        settings::from_toml(DEFAULTS).expect("built-in defaults are valid")
    }
}

/// Token signing: core signs users' access tokens, and verifies them on every call with the
/// public half of the same key.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// PEM-encoded Ed25519 private key (PKCS#8); use `private_key_file` in deployments.
    /// The built-in development key is refused where production-like.
    pub private_key: SecretString,
    pub issuer: String,
    pub audience: String,
    /// How long an access token is good for (whole seconds).
    #[serde(deserialize_with = "settings::duration")]
    pub access_token_ttl: Duration,
    /// How long a session lasts unused: each refresh starts it again.
    #[serde(deserialize_with = "settings::duration")]
    pub refresh_token_ttl: Duration,
    /// Password hashes computed at once (each takes about 19 MiB); 0 means one per core.
    pub hashing_threads: usize,
    /// How long a signup or login waits for a hashing thread before it is refused as busy.
    #[serde(deserialize_with = "settings::duration")]
    pub hashing_wait: Duration,
    /// Refuse the seeded accounts' published password at signup and login; always on where
    /// production-like (see [`AuthSettings::dev_password_refused`]).
    pub refuse_dev_password: bool,
    /// Customers book, and cleaners are found and booked, only once their email is
    /// verified. May be false only where not production-like (tests, local tries).
    pub require_verified_email: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            private_key: SecretString::from(keys::dev::CORE_PRIVATE_KEY),
            issuer: "spruce".to_owned(),
            audience: "spruce-mobile".to_owned(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            hashing_threads: 0,
            hashing_wait: Duration::from_secs(2),
            refuse_dev_password: false,
            require_verified_email: true,
        }
    }
}

impl AuthSettings {
    /// Returns whether the development password is refused: where production-like, or when
    /// `refuse_dev_password` says so.
    pub fn dev_password_refused(&self) -> bool {
        self.refuse_dev_password || production_like()
    }

    /// Returns the number of password hashing threads: the setting, or one per core.
    pub fn hashing_threads(&self) -> usize {
        if self.hashing_threads > 0 {
            return self.hashing_threads;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// Returns the signing key.
    ///
    /// # Errors
    /// Names `auth.private_key` when it is not an Ed25519 key, or is the development key
    /// where production-like.
    pub fn signing_key(&self) -> Result<PrivateKey, SettingsError> {
        settings::private_key("auth.private_key", &self.private_key)
    }
}

impl Settings {
    /// Returns the verifier of every gRPC call: users' access tokens with the public half of
    /// core's own key, service tokens with the keys `callers.service_keys` names.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        Ok(TokenVerifier::new(
            &self.auth.signing_key()?.public_key(),
            &self.auth.issuer,
            &self.auth.audience,
            &self.callers.service_keys()?,
            "core",
        ))
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.grpc.address("grpc")?;
        self.database.validate()?;
        self.bus.validate()?;
        if self.auth.access_token_ttl < Duration::from_secs(1) {
            return Err(SettingsError::invalid(
                "auth.access_token_ttl",
                "must be at least 1s",
            ));
        }
        if !self.auth.require_verified_email && production_like() {
            return Err(SettingsError::invalid(
                "auth.require_verified_email",
                "may be false only outside e2e, staging and prod",
            ));
        }
        positive("auth.refresh_token_ttl", self.auth.refresh_token_ttl)?;
        positive("auth.hashing_wait", self.auth.hashing_wait)?;
        positive("payments.stripe.timeout", self.payments.stripe.timeout)?;
        match self.payments.provider {
            PaymentProviderKind::Fake if production_like() => {
                return Err(SettingsError::invalid(
                    "payments.provider",
                    "is the fake provider, refused in e2e, staging and prod",
                ));
            }
            PaymentProviderKind::Stripe
                if self.payments.stripe.secret_key.expose_secret().is_empty() =>
            {
                return Err(SettingsError::invalid(
                    "payments.stripe.secret_key",
                    "is required with the stripe provider (or secret_key_file)",
                ));
            }
            PaymentProviderKind::Fake | PaymentProviderKind::Stripe => {}
        }
        self.search.validate("search")?;
        if self.search.timeout > Duration::from_secs(10) {
            return Err(SettingsError::invalid(
                "search.timeout",
                "must be at most 10s (a booking waits that long)",
            ));
        }
        self.verifier()?;
        Ok(())
    }
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_are_this_services_and_valid() {
        let defaults = Settings::default();
        assert_eq!(defaults.database.name, "spruce_core");
        assert_eq!(defaults.grpc.port, 50051);
        defaults.validate().unwrap();
    }
}
