//! Search's settings; every key has a local default.

use std::time::Duration;

use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    cli::ServiceSettings,
    keys,
    settings::{
        self, BusSettings, CallerSettings, CommonSettings, DatabaseSettings, IdentitySettings,
        ListenSettings, RedisSettings, SettingsError, Upstream, UserTokenSettings, Validate,
        positive,
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

[bus]
# Each replica consumes a queue of its own, `search.<replica>.events`, that lives as long as
# its connection to the broker; the replicas share `search.events.parked`.
queue_prefix = "search"

[redis]
key_prefix = "spruce:search:"

# Core's snapshot streams fill the read model; `timeout` bounds each request of them.
[core]
url = "http://127.0.0.1:50051"
connect_timeout = "2s"
timeout = "30s"
"#;

/// Everything search reads at start.
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
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The services whose own tokens are accepted.
    #[serde(default)]
    pub callers: CallerSettings,
    /// Search's own key, for the service tokens it calls core with.
    #[serde(default = "development_identity")]
    pub identity: IdentitySettings,
    /// Where core is.
    pub core: Upstream,
    #[serde(default)]
    pub read_model: ReadModelSettings,
    /// The recommendation cache.
    #[serde(default)]
    pub redis: RedisSettings,
    #[serde(default)]
    pub recommendations: RecommendationSettings,
    #[serde(default)]
    pub model: ModelSettings,
}

/// The duration model's training.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
    /// Threads a retraining uses; 0: one fewer than the cores (at least one), so that
    /// searches keep a core while the model trains.
    pub training_threads: usize,
    /// Train a first model at start when none is stored (and core has enough completed
    /// bookings), rather than waiting for the nightly job.
    pub train_at_start: bool,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            training_threads: 0,
            train_at_start: true,
        }
    }
}

impl ModelSettings {
    /// Returns the threads a retraining uses (see `training_threads`).
    pub fn training_threads(&self) -> usize {
        if self.training_threads > 0 {
            return self.training_threads;
        }
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .saturating_sub(1)
            .max(1)
    }
}

/// How recommendations are cached.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RecommendationSettings {
    /// How long a customer's affinities stay cached (a booking of theirs forgets them
    /// sooner), in whole seconds.
    #[serde(deserialize_with = "settings::duration")]
    pub cache_ttl: Duration,
}

impl Default for RecommendationSettings {
    fn default() -> Self {
        RecommendationSettings {
            cache_ttl: Duration::from_secs(3_600),
        }
    }
}

/// The read model's upkeep.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReadModelSettings {
    /// This replica's name in its queue names (`<bus.queue_prefix>.<replica>.events`).
    /// Empty: the `HOSTNAME` variable (the pod's name on Kubernetes), else a random name.
    pub replica: String,
    /// Between the sweeps that forget bookings long over.
    #[serde(deserialize_with = "settings::duration")]
    pub prune_interval: Duration,
}

impl Default for ReadModelSettings {
    fn default() -> Self {
        ReadModelSettings {
            replica: String::new(),
            prune_interval: Duration::from_secs(300),
        }
    }
}

impl ReadModelSettings {
    /// Returns this replica's name: the setting, else `HOSTNAME`, else a random one.
    pub fn replica_name(&self) -> String {
        settings::replica_name(&self.replica)
    }
}

fn development_identity() -> IdentitySettings {
    IdentitySettings::development(keys::dev::SEARCH_PRIVATE_KEY)
}

impl Settings {
    /// Returns the verifier of every gRPC call.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        self.auth.verifier(&self.callers.service_keys()?, "search")
    }
}

impl Default for Settings {
    fn default() -> Self {
        settings::from_toml(DEFAULTS).expect("built-in defaults are valid")
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate()?;
        self.grpc.address("grpc")?;
        self.database.validate()?;
        self.bus.validate()?;
        if self.bus.queue_prefix.is_empty() {
            return Err(SettingsError::invalid(
                "bus.queue_prefix",
                "must not be empty",
            ));
        }
        self.core.validate("core")?;
        positive("read_model.prune_interval", self.read_model.prune_interval)?;
        self.redis.validate()?;
        if self.model.training_threads > 256 {
            return Err(SettingsError::invalid(
                "model.training_threads",
                "must be from 0 (automatic) to 256",
            ));
        }
        if self.recommendations.cache_ttl < Duration::from_secs(1) {
            return Err(SettingsError::invalid(
                "recommendations.cache_ttl",
                "must be at least 1s",
            ));
        }
        self.verifier()?;
        self.identity.signer("search")?;
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
        assert_eq!(defaults.database.name, "spruce_search");
        assert_eq!(defaults.grpc.port, 50052);
        defaults.validate().unwrap();
    }

    #[test]
    fn replica_names_are_safe_in_queue_names() {
        let named = ReadModelSettings {
            replica: "search-7d9f/../x y".to_owned(),
            ..ReadModelSettings::default()
        };
        assert_eq!(named.replica_name(), "search-7d9fxy");
        let unnamed = ReadModelSettings {
            replica: "//".to_owned(),
            ..ReadModelSettings::default()
        };
        assert_eq!(unnamed.replica_name().len(), 32);
    }
}
