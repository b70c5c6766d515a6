//! The gateway's settings; every key has a local default.

use std::time::Duration;

use serde::Deserialize;
use spruce_platform::{
    cli::ServiceSettings,
    keys,
    settings::{
        self, CommonSettings, IdentitySettings, Moved, RedisSettings, SettingsError, Upstream,
        UserTokenSettings, Validate,
    },
};
use spruce_storage::StorageSettings;

/// The gateway's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[http]
port = 8080

[redis]
key_prefix = "spruce:gateway:"

# The gRPC services; `timeout` bounds each call to them.
[core]
url = "http://127.0.0.1:50051"
connect_timeout = "1s"
timeout = "10s"

[search]
url = "http://127.0.0.1:50052"
connect_timeout = "1s"
timeout = "10s"

[scheduler]
url = "http://127.0.0.1:50053"
connect_timeout = "1s"
timeout = "10s"
"#;

/// Everything the gateway reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `[http]` is where the API itself listens.
    #[serde(flatten)]
    pub common: CommonSettings,
    pub core: Upstream,
    pub search: Upstream,
    pub scheduler: Upstream,
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The gateway's own key, for the calls anonymous clients make (sign up, log in, refresh).
    #[serde(default = "development_identity")]
    pub identity: IdentitySettings,
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
    /// Where photos and documents are kept.
    #[serde(default)]
    pub storage: StorageSettings,
    #[serde(default)]
    pub uploads: UploadSettings,
}

/// How uploads are taken: `[uploads]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UploadSettings {
    /// Uploads read and processed at once; more are refused with 503. Each holds up to
    /// 10 MiB of body, and a photo's decode up to 256 MiB.
    pub concurrency: usize,
    /// How long a body may take to arrive; a slower one is refused with 400 and its permit
    /// freed.
    #[serde(deserialize_with = "settings::duration")]
    pub body_timeout: Duration,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            concurrency: 4,
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// When searches and recommendations are refused with 429: many searches from one user
/// could narrow down where a cleaner is, and cost CPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SearchThrottleSettings {
    /// Searches and recommendation requests per user allowed within the window.
    pub max_per_user: u32,
    #[serde(deserialize_with = "settings::duration")]
    pub window: Duration,
}

impl Default for SearchThrottleSettings {
    fn default() -> Self {
        SearchThrottleSettings {
            max_per_user: 600,
            window: Duration::from_secs(60),
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
    #[serde(deserialize_with = "settings::duration")]
    pub window: Duration,
}

impl Default for PasswordResetThrottleSettings {
    fn default() -> Self {
        PasswordResetThrottleSettings {
            max_per_email: 3,
            max_per_address: 20,
            window: Duration::from_secs(3_600),
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
    #[serde(deserialize_with = "settings::duration")]
    pub window: Duration,
}

impl Default for PaymentThrottleSettings {
    fn default() -> Self {
        PaymentThrottleSettings {
            max_declines: 5,
            max_declines_per_address: 1_000,
            window: Duration::from_secs(3_600),
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
    #[serde(deserialize_with = "settings::duration")]
    pub window: Duration,
}

/// When signups from one client address are refused with 429 (each costs a password hash).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SignupThrottleSettings {
    /// Signups per client address allowed within the window. The local default leaves room
    /// for test bursts; deployments set a strict one (the chart: 10 an hour).
    pub max_per_address: u32,
    #[serde(deserialize_with = "settings::duration")]
    pub window: Duration,
}

impl Default for SignupThrottleSettings {
    fn default() -> Self {
        SignupThrottleSettings {
            max_per_address: 1_000,
            window: Duration::from_secs(3_600),
        }
    }
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        LoginThrottleSettings {
            max_failures: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(900),
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

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.core.validate("core")?;
        self.search.validate("search")?;
        self.scheduler.validate("scheduler")?;
        self.redis.validate()?;
        self.storage.validate()?;
        if !(1..=64).contains(&self.uploads.concurrency) {
            return Err(SettingsError::invalid(
                "uploads.concurrency",
                "must be from 1 to 64",
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&self.uploads.body_timeout)
        {
            return Err(SettingsError::invalid(
                "uploads.body_timeout",
                "must be from 1s to 10m",
            ));
        }
        let limits = &self.login_throttle;
        if limits.max_failures == 0 || limits.max_failures_per_address == 0 {
            return Err(SettingsError::invalid(
                "login_throttle",
                "max_failures and max_failures_per_address must be positive",
            ));
        }
        let payments = &self.payment_throttle;
        if payments.max_declines == 0 || payments.max_declines_per_address == 0 {
            return Err(SettingsError::invalid(
                "payment_throttle",
                "max_declines and max_declines_per_address must be positive",
            ));
        }
        if self.search_throttle.max_per_user == 0 {
            return Err(SettingsError::invalid(
                "search_throttle",
                "max_per_user must be positive",
            ));
        }
        let resets = &self.password_reset_throttle;
        if resets.max_per_email == 0 || resets.max_per_address == 0 {
            return Err(SettingsError::invalid(
                "password_reset_throttle",
                "max_per_email and max_per_address must be positive",
            ));
        }
        if self.trusted_proxies > 10 {
            return Err(SettingsError::invalid(
                "trusted_proxies",
                "must be at most 10 (the proxies in front of the gateway)",
            ));
        }
        if self.signup_throttle.max_per_address == 0 {
            return Err(SettingsError::invalid(
                "signup_throttle",
                "max_per_address must be positive",
            ));
        }
        for (key, window) in [
            ("login_throttle.window", self.login_throttle.window),
            ("signup_throttle.window", self.signup_throttle.window),
            ("payment_throttle.window", self.payment_throttle.window),
            ("search_throttle.window", self.search_throttle.window),
            (
                "password_reset_throttle.window",
                self.password_reset_throttle.window,
            ),
        ] {
            if window < Duration::from_secs(1) {
                return Err(SettingsError::invalid(key, "must be at least 1s"));
            }
        }
        self.auth.verifier(&[], "gateway")?;
        self.identity.signer("gateway")?;
        Ok(())
    }
}

/// Where the gRPC services were once set: `[upstream]`.
const MOVED: &[Moved] = &[
    Moved {
        from: "upstream.core_url",
        to: &["core.url"],
    },
    Moved {
        from: "upstream.search_url",
        to: &["search.url"],
    },
    Moved {
        from: "upstream.scheduler_url",
        to: &["scheduler.url"],
    },
    Moved {
        from: "upstream.connect_timeout_ms",
        to: &[
            "core.connect_timeout",
            "search.connect_timeout",
            "scheduler.connect_timeout",
        ],
    },
    Moved {
        from: "upstream.request_timeout_ms",
        to: &["core.timeout", "search.timeout", "scheduler.timeout"],
    },
];

impl ServiceSettings for Settings {
    const MOVED: &'static [Moved] = MOVED;

    fn common(&self) -> &CommonSettings {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_defaults_point_at_the_local_services() {
        let defaults = Settings::default();
        assert_eq!(defaults.common.http.port, 8080);
        assert_eq!(defaults.core.url, "http://127.0.0.1:50051");
        defaults.validate().unwrap();
    }

    #[test]
    fn the_old_upstream_keys_are_still_read_with_a_note_each() {
        let old = "[upstream]\ncore_url = \"http://core:50051\"\nrequest_timeout_ms = 2500\n\
                   [login_throttle]\nwindow_secs = 60";
        let loaded: settings::Loaded<Settings> =
            settings::from_toml_layers(&[DEFAULTS, old], Settings::MOVED).unwrap();
        let upgraded = loaded.settings;
        assert_eq!(upgraded.core.url, "http://core:50051");
        assert_eq!(upgraded.search.url, "http://127.0.0.1:50052");
        for upstream in [&upgraded.core, &upgraded.search, &upgraded.scheduler] {
            assert_eq!(upstream.timeout, Duration::from_millis(2500));
            assert_eq!(upstream.connect_timeout, Duration::from_secs(1));
        }
        assert_eq!(upgraded.login_throttle.window, Duration::from_secs(60));
        assert_eq!(loaded.notes.len(), 3, "{:?}", loaded.notes);
        upgraded.validate().unwrap();
    }
}
