//! The gateway's settings; every key has a local default.

use serde::Deserialize;
use spruce_platform::{
    keys,
    settings::{
        self, IdentitySettings, ListenSettings, RedisSettings, SettingsError, TelemetrySettings,
        UserTokenSettings, Validate,
    },
};

/// The gateway's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[http]
port = 8080

[redis]
key_prefix = "spruce:gateway:"
"#;

/// Everything the gateway reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub http: ListenSettings,
    #[serde(default)]
    pub upstream: UpstreamSettings,
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The gateway's own key, for the calls anonymous clients make (sign up, log in, refresh).
    #[serde(default = "development_identity")]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub redis: RedisSettings,
    #[serde(default)]
    pub login_throttle: LoginThrottleSettings,
    #[serde(default)]
    pub signup_throttle: SignupThrottleSettings,
    #[serde(default)]
    pub payment_throttle: PaymentThrottleSettings,
    #[serde(default)]
    pub search_throttle: SearchThrottleSettings,
    #[serde(default)]
    pub password_reset_throttle: PasswordResetThrottleSettings,
    /// How many proxies the gateway runs behind that each append the address they saw to
    /// `X-Forwarded-For` (the load balancer, the ingress). The client is the entry this many
    /// from the right; 0 (the default) takes the TCP peer and ignores the header, which a
    /// client can write anything into.
    #[serde(default)]
    pub trusted_proxies: u32,
}

/// When searches and recommendations are refused with 429: many searches from one user
/// could narrow down where a cleaner is, and cost CPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SearchThrottleSettings {
    /// Searches and recommendation requests per user allowed within the window.
    pub max_per_user: u32,
    pub window_secs: u32,
}

impl Default for SearchThrottleSettings {
    fn default() -> Self {
        SearchThrottleSettings {
            max_per_user: 600,
            window_secs: 60,
        }
    }
}

/// When password reset requests are refused with 429: each sends an email.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PasswordResetThrottleSettings {
    /// Requests per email (known or not, alike) within the window.
    pub max_per_email: u32,
    /// Requests per client address within the window.
    pub max_per_address: u32,
    pub window_secs: u32,
}

impl Default for PasswordResetThrottleSettings {
    fn default() -> Self {
        PasswordResetThrottleSettings {
            max_per_email: 3,
            max_per_address: 20,
            window_secs: 3_600,
        }
    }
}

/// When booking attempts are refused with 429 after declined cards: card testers try many
/// cards fast, customers seldom more than a few.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PaymentThrottleSettings {
    /// Declined payments per customer allowed within the window.
    pub max_declines: u32,
    /// Declined payments per client address allowed within the window (any customers). The
    /// local default leaves room for load tests from one machine; deployments set a strict
    /// one (the chart: 10 an hour).
    pub max_declines_per_address: u32,
    pub window_secs: u32,
}

impl Default for PaymentThrottleSettings {
    fn default() -> Self {
        PaymentThrottleSettings {
            max_declines: 5,
            max_declines_per_address: 1_000,
            window_secs: 3_600,
        }
    }
}

/// When repeated failed logins are refused with 429.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoginThrottleSettings {
    /// Failed logins per email allowed within the window.
    pub max_failures: u32,
    /// Failed logins per client address allowed within the window (any emails).
    pub max_failures_per_address: u32,
    pub window_secs: u32,
}

/// When signups from one client address are refused with 429 (each costs a password hash).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SignupThrottleSettings {
    /// Signups per client address allowed within the window. The local default leaves room
    /// for test bursts; deployments set a strict one (the chart: 10 an hour).
    pub max_per_address: u32,
    pub window_secs: u32,
}

impl Default for SignupThrottleSettings {
    fn default() -> Self {
        SignupThrottleSettings {
            max_per_address: 1_000,
            window_secs: 3_600,
        }
    }
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        LoginThrottleSettings {
            max_failures: 5,
            max_failures_per_address: 20,
            window_secs: 900,
        }
    }
}

fn development_identity() -> IdentitySettings {
    IdentitySettings::development(keys::dev::GATEWAY_PRIVATE_KEY)
}

impl Default for Settings {
    fn default() -> Self {
        settings::from_toml(DEFAULTS).expect("built-in defaults are valid")
    }
}

/// Where the gRPC services are.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UpstreamSettings {
    pub core_url: String,
    pub search_url: String,
    pub scheduler_url: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            core_url: "http://127.0.0.1:50051".to_owned(),
            search_url: "http://127.0.0.1:50052".to_owned(),
            scheduler_url: "http://127.0.0.1:50053".to_owned(),
            connect_timeout_ms: 1_000,
            request_timeout_ms: 10_000,
        }
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.address("http")?;
        self.telemetry.validate()?;
        for (key, url) in [
            ("upstream.core_url", &self.upstream.core_url),
            ("upstream.search_url", &self.upstream.search_url),
            ("upstream.scheduler_url", &self.upstream.scheduler_url),
        ] {
            settings::grpc_url(key, url)?;
        }
        self.redis.validate()?;
        let limits = &self.login_throttle;
        if limits.max_failures == 0
            || limits.max_failures_per_address == 0
            || limits.window_secs == 0
        {
            return Err(SettingsError::invalid(
                "login_throttle",
                "max_failures, max_failures_per_address and window_secs must be positive",
            ));
        }
        let payments = &self.payment_throttle;
        if payments.max_declines == 0
            || payments.max_declines_per_address == 0
            || payments.window_secs == 0
        {
            return Err(SettingsError::invalid(
                "payment_throttle",
                "max_declines, max_declines_per_address and window_secs must be positive",
            ));
        }
        if self.search_throttle.max_per_user == 0 || self.search_throttle.window_secs == 0 {
            return Err(SettingsError::invalid(
                "search_throttle",
                "max_per_user and window_secs must be positive",
            ));
        }
        let resets = &self.password_reset_throttle;
        if resets.max_per_email == 0 || resets.max_per_address == 0 || resets.window_secs == 0 {
            return Err(SettingsError::invalid(
                "password_reset_throttle",
                "max_per_email, max_per_address and window_secs must be positive",
            ));
        }
        if self.trusted_proxies > 10 {
            return Err(SettingsError::invalid(
                "trusted_proxies",
                "must be at most 10 (the proxies in front of the gateway)",
            ));
        }
        if self.signup_throttle.max_per_address == 0 || self.signup_throttle.window_secs == 0 {
            return Err(SettingsError::invalid(
                "signup_throttle",
                "max_per_address and window_secs must be positive",
            ));
        }
        self.auth.verifier(&[], "gateway")?;
        self.identity.signer("gateway")?;
        Ok(())
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
    fn the_built_in_defaults_point_at_the_local_services() {
        let defaults = Settings::default();
        assert_eq!(defaults.http.port, 8080);
        assert_eq!(defaults.upstream.core_url, "http://127.0.0.1:50051");
        defaults.validate().unwrap();
    }
}
