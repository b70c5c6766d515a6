//! Layered configuration shared by every service.
//!
//! Sources, later ones winning: the built-in defaults of each settings struct,
//! `config/default.toml`, `config/$SPRUCE_ENV.toml`, then `SPRUCE__SECTION__KEY` environment
//! variables. Any string key `foo_file` is replaced by the contents of the file it names and
//! becomes `foo`: that is how a Kubernetes Secret mount or Vault's agent hands over secrets.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    auth::{ServiceTokenSigner, TokenVerifier},
    keys::{self, PrivateKey, PublicKey},
};

/// Why settings could not be loaded. Messages name the offending key and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration is invalid: {0}")]
    Load(#[from] config::ConfigError),
    #[error("cannot read secret file for `{key}` at {path}: {source}")]
    SecretFile {
        key: String,
        path: String,
        source: std::io::Error,
    },
    #[error("`{key}` {problem}")]
    Invalid { key: String, problem: String },
}

impl SettingsError {
    /// Builds a validation error for `key`.
    pub fn invalid(key: &str, problem: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Refuses a count of zero for `key`.
fn at_least_one(key: &str, value: impl Into<u64>) -> Result<(), SettingsError> {
    if value.into() == 0 {
        return Err(SettingsError::invalid(key, "must be at least 1"));
    }
    Ok(())
}

/// Settings that can check themselves after loading.
pub trait Validate {
    /// Returns the first rule broken, naming its key.
    fn validate(&self) -> Result<(), SettingsError>;
}

/// Loads `T` from the layered sources described in the module documentation, starting from
/// the service's `built_in` TOML defaults, and validates it.
///
/// # Errors
/// Fails naming the key that is missing, mistyped or invalid, or the secret file that
/// cannot be read.
pub fn load<T: DeserializeOwned + Validate>(built_in: &str) -> Result<T, SettingsError> {
    let directory = std::env::var("SPRUCE_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
    let environment = std::env::var("SPRUCE_ENV").unwrap_or_else(|_| "local".to_owned());
    let directory = PathBuf::from(directory);
    let sources = Config::builder()
        .add_source(File::from_str(built_in, FileFormat::Toml))
        .add_source(File::from(directory.join("default.toml")).required(false))
        .add_source(File::from(directory.join(format!("{environment}.toml"))).required(false))
        .add_source(
            Environment::with_prefix("SPRUCE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    let settings: T = from_builder(sources)?;
    settings.validate()?;
    Ok(settings)
}

/// Reads `T` from TOML text alone, without validating it: for built-in defaults and tests.
///
/// # Errors
/// Fails naming the key that is mistyped, or the secret file that cannot be read.
pub fn from_toml<T: DeserializeOwned>(toml: &str) -> Result<T, SettingsError> {
    from_builder(Config::builder().add_source(File::from_str(toml, FileFormat::Toml)))
}

fn from_builder<T: DeserializeOwned>(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
) -> Result<T, SettingsError> {
    let merged = builder.clone().build()?;
    let mut secret_files = Vec::new();
    let table: config::Map<String, config::Value> = merged.try_deserialize()?;
    collect_secret_files("", &table, &mut secret_files);
    let mut builder = builder;
    for (key, path) in secret_files {
        let contents = read_secret_file(&path).map_err(|source| SettingsError::SecretFile {
            key: key.clone(),
            path: path.clone(),
            source,
        })?;
        if key == "database.password" || key == "database.user" {
            // The pool reads them again for new connections, so a rotated login arrives.
            builder = builder.set_override(format!("{key}_path"), path.clone())?;
        }
        builder = builder.set_override(key, contents)?;
    }
    // The `*_file` keys have done their work: without them, a map of secrets (such as
    // `callers.service_keys`) holds only the values read.
    let mut table: config::Map<String, config::Value> = builder.build()?.try_deserialize()?;
    drop_secret_file_keys(&mut table);
    Ok(config::Value::from(table).try_deserialize()?)
}

/// Reads a secret from a mounted file, without the line ending an editor or `echo` leaves.
///
/// # Errors
/// When the file cannot be read.
pub fn read_secret_file(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    let mut contents = std::fs::read_to_string(path)?;
    contents.truncate(contents.trim_end_matches(['\n', '\r']).len());
    Ok(contents)
}

fn drop_secret_file_keys(table: &mut config::Map<String, config::Value>) {
    table.retain(|key, value| {
        !(key.ends_with("_file") && matches!(value.kind, config::ValueKind::String(_)))
    });
    for value in table.values_mut() {
        if let config::ValueKind::Table(nested) = &mut value.kind {
            drop_secret_file_keys(nested);
        }
    }
}

fn collect_secret_files(
    prefix: &str,
    table: &config::Map<String, config::Value>,
    found: &mut Vec<(String, String)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match &value.kind {
            config::ValueKind::Table(nested) => collect_secret_files(&path, nested, found),
            config::ValueKind::String(file) if key.ends_with("_file") && !file.is_empty() => {
                let target = path.strip_suffix("_file").unwrap_or(&path).to_owned();
                found.push((target, file.clone()));
            }
            _ => {}
        }
    }
}

/// The environments that must run like production (`SPRUCE_ENV`): no built-in development
/// keys, no fake payment provider, no seeding with the shared development password.
pub const PRODUCTION_LIKE: [&str; 4] = ["e2e", "staging", "prod", "production"];

/// Returns whether `SPRUCE_ENV` names a production-like environment (see [`PRODUCTION_LIKE`]).
pub fn production_like() -> bool {
    std::env::var("SPRUCE_ENV")
        .is_ok_and(|environment| PRODUCTION_LIKE.contains(&environment.as_str()))
}

/// Checks that the setting `key` holds the `http://` or `https://` URL of a gRPC server.
///
/// # Errors
/// Names `key` when it does not.
pub fn grpc_url(key: &str, url: &str) -> Result<(), SettingsError> {
    if url.parse::<http::Uri>().is_err()
        || !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(SettingsError::invalid(
            key,
            "must be an http:// or https:// URL",
        ));
    }
    Ok(())
}

/// Reads the public key at `key`, refusing a built-in development key where production-like.
///
/// # Errors
/// Names `key` when it is not an Ed25519 public key or is a development key out of place.
pub fn public_key(key: &str, pem: &str) -> Result<PublicKey, SettingsError> {
    let public =
        PublicKey::from_pem(pem).map_err(|error| SettingsError::invalid(key, error.to_string()))?;
    refuse_development_key(key, public)?;
    Ok(public)
}

/// Reads the private key at `key`, refusing a built-in development key where production-like.
///
/// # Errors
/// Names `key` when it is not an Ed25519 private key or is a development key out of place.
pub fn private_key(key: &str, pem: &SecretString) -> Result<PrivateKey, SettingsError> {
    let private = PrivateKey::from_pem(pem)
        .map_err(|error| SettingsError::invalid(key, error.to_string()))?;
    refuse_development_key(key, private.public_key())?;
    Ok(private)
}

fn refuse_development_key(key: &str, public: PublicKey) -> Result<(), SettingsError> {
    if public.is_development() && production_like() {
        return Err(SettingsError::invalid(
            key,
            "is a built-in development key, refused in e2e, staging and prod; provide a real key (a *_file key)",
        ));
    }
    Ok(())
}

/// How to verify users' access tokens (core signs them): `[auth]` of every service but core.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UserTokenSettings {
    /// PEM-encoded Ed25519 public key of core's signing key (not a secret).
    pub public_key: String,
    pub issuer: String,
    pub audience: String,
}

impl Default for UserTokenSettings {
    fn default() -> Self {
        UserTokenSettings {
            public_key: keys::dev::CORE_PUBLIC_KEY.to_owned(),
            issuer: "spruce".to_owned(),
            audience: "spruce-mobile".to_owned(),
        }
    }
}

impl UserTokenSettings {
    /// Returns a verifier of users' access tokens for the service `own_name` that also
    /// accepts the service tokens of `services` (see [`CallerSettings::service_keys`])
    /// addressed to it.
    ///
    /// # Errors
    /// Names `auth.public_key` when it is unusable here.
    pub fn verifier(
        &self,
        services: &[(String, PublicKey)],
        own_name: &str,
    ) -> Result<TokenVerifier, SettingsError> {
        let key = public_key("auth.public_key", &self.public_key)?;
        Ok(TokenVerifier::new(
            &key,
            &self.issuer,
            &self.audience,
            services,
            own_name,
        ))
    }
}

/// The services a gRPC server accepts service tokens from: `[callers.service_keys]`, one
/// PEM public key per service name (`gateway_file = "/path"` reads it from a file). By
/// default every service's development key locally, and none where production-like.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CallerSettings {
    pub service_keys: BTreeMap<String, String>,
}

impl Default for CallerSettings {
    fn default() -> Self {
        if production_like() {
            return CallerSettings {
                service_keys: BTreeMap::new(),
            };
        }
        // Core signs its own service tokens with the key it signs users' tokens with.
        let service_keys = [
            ("core", keys::dev::CORE_PUBLIC_KEY),
            ("gateway", keys::dev::GATEWAY_PUBLIC_KEY),
            ("scheduler", keys::dev::SCHEDULER_PUBLIC_KEY),
            ("search", keys::dev::SEARCH_PUBLIC_KEY),
        ]
        .into_iter()
        .map(|(name, key)| (name.to_owned(), key.to_owned()))
        .collect();
        CallerSettings { service_keys }
    }
}

impl CallerSettings {
    /// Returns each named service with its public key.
    ///
    /// # Errors
    /// Names the first `callers.service_keys.<name>` that is unusable here.
    pub fn service_keys(&self) -> Result<Vec<(String, PublicKey)>, SettingsError> {
        self.service_keys
            .iter()
            .map(|(name, pem)| {
                let key = public_key(&format!("callers.service_keys.{name}"), pem)?;
                Ok((name.clone(), key))
            })
            .collect()
    }
}

/// A service's own signing key, for the calls it makes on its own behalf: `[identity]`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    /// PEM-encoded Ed25519 private key (PKCS#8); use `private_key_file` in deployments.
    pub private_key: SecretString,
}

impl IdentitySettings {
    /// Returns the settings holding the built-in development key `pem`.
    pub fn development(pem: &str) -> Self {
        IdentitySettings {
            private_key: SecretString::from(pem),
        }
    }

    /// Returns a signer of `service`'s tokens.
    ///
    /// # Errors
    /// Names `identity.private_key` when it is unusable here.
    pub fn signer(&self, service: &str) -> Result<ServiceTokenSigner, SettingsError> {
        let key = private_key("identity.private_key", &self.private_key)?;
        Ok(ServiceTokenSigner::new(service, key))
    }
}

/// Returns a replica's name: `configured`, else the `HOSTNAME` variable (the pod's name on
/// Kubernetes), else a random one; at most 64 letters, digits, `-` and `_`.
pub fn replica_name(configured: &str) -> String {
    let chosen = if configured.is_empty() {
        std::env::var("HOSTNAME").unwrap_or_default()
    } else {
        configured.to_owned()
    };
    let clean: String = chosen
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if clean.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        clean
    }
}

/// Where a server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ListenSettings {
    pub host: String,
    pub port: u16,
    /// gRPC only: serve server reflection. Unset: on, except where production-like.
    pub reflection: Option<bool>,
    /// Ops HTTP only: after a shutdown signal, how long the service stays up answering 503
    /// on `/readyz` (and NOT_SERVING on gRPC health) before it stops accepting, so that
    /// callers and load balancers move away first (`crate::shutdown`).
    pub drain_ms: u64,
}

impl ListenSettings {
    /// A listener on 127.0.0.1 at a free port the system picks (port 0): tests and tools.
    pub fn loopback() -> Self {
        ListenSettings {
            host: "127.0.0.1".to_owned(),
            ..ListenSettings::default()
        }
    }

    /// Returns a listener setting on all interfaces at `port`.
    pub fn on_port(port: u16) -> Self {
        ListenSettings {
            host: "0.0.0.0".to_owned(),
            port,
            reflection: None,
            drain_ms: 0,
        }
    }

    /// Returns how long to drain after a shutdown signal.
    pub fn drain(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.drain_ms)
    }

    /// Returns whether a gRPC server should serve reflection.
    pub fn reflection(&self) -> bool {
        self.reflection.unwrap_or_else(|| !production_like())
    }

    /// Returns the socket address, or an error naming `key`.
    pub fn address(&self, key: &str) -> Result<SocketAddr, SettingsError> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .map_err(|_| SettingsError::invalid(&format!("{key}.host"), "is not an IP address"))
    }
}

impl Default for ListenSettings {
    fn default() -> Self {
        ListenSettings::on_port(0)
    }
}

/// Whether the database connection uses TLS: `disable`, `prefer`, `require` (encrypted,
/// server not verified) or `verify-full` (the server's certificate chains to
/// `database.ssl_root_cert` and names the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// How logs are written: `auto` (pretty on a terminal, JSON lines otherwise), `json` or
/// `pretty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The file `user` was read from (`user_file`), set by the loader: where every
    /// service has two database users that take turns at a password rotation, the mounted
    /// Secret names the one in use, and the pool reads it again with the password.
    pub user_path: Option<std::path::PathBuf>,
    pub password: SecretString,
    /// The file `password` was read from (`password_file`), set by the loader: the pool
    /// reads it again and new connections use what it holds then, so a password rotated
    /// in the mounted Secret reaches a running service (see `db::connect`).
    pub password_path: Option<std::path::PathBuf>,
    /// How often that file is read again. Kubernetes refreshes a mounted Secret within
    /// about a minute, so a rotation reaches new connections within that and this; open
    /// connections stay logged in.
    pub password_recheck_ms: u64,
    /// The database this service owns (`spruce_core`, ...).
    pub name: String,
    pub max_connections: u32,
    pub ssl_mode: SslMode,
    /// PEM file of the certificate authorities `verify-full` trusts (on AWS, the RDS CA
    /// bundle); empty: the system's.
    pub ssl_root_cert: String,
    /// Creates the database when it does not exist (dev and tests).
    pub create_if_missing: bool,
    /// Applies migrations at start; production runs `migrate` from a Helm hook instead.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            host: "127.0.0.1".to_owned(),
            port: 5432,
            user: "postgres".to_owned(),
            user_path: None,
            password: SecretString::from(""),
            password_path: None,
            password_recheck_ms: 15_000,
            name: String::new(),
            max_connections: 10,
            ssl_mode: SslMode::Prefer,
            ssl_root_cert: String::new(),
            create_if_missing: true,
            migrate_on_start: true,
        }
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_name {
            return Err(SettingsError::invalid(
                "database.name",
                "must be lowercase letters, digits, `_` or `-`",
            ));
        }
        at_least_one("database.max_connections", self.max_connections)?;
        at_least_one("database.password_recheck_ms", self.password_recheck_ms)?;
        if !self.ssl_root_cert.is_empty() && !std::path::Path::new(&self.ssl_root_cert).is_file() {
            return Err(SettingsError::invalid(
                "database.ssl_root_cert",
                "is not a readable file",
            ));
        }
        Ok(())
    }
}

/// Where Redis is (the gateway's rate limits, search's recommendation cache).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`, or `rediss://` for TLS; it can hold a
    /// password, so it is a secret.
    pub url: SecretString,
    /// PEM of the CA that signed a `rediss://` server's certificate, when it is not one the
    /// system or webpki trusts (`ca_file` names a file holding it, as for every setting).
    pub ca: Option<String>,
    /// Prefix of every key the service writes (each service's defaults set its own).
    pub key_prefix: String,
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: SecretString::from("redis://127.0.0.1:6379"),
            ca: None,
            key_prefix: "spruce:".to_owned(),
            timeout_ms: 500,
        }
    }
}

impl Validate for RedisSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let url = self.url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(SettingsError::invalid(
                "redis.url",
                "must start with redis:// or rediss://",
            ));
        }
        // The client the service would open (no connection yet): a scheme this build cannot
        // serve (rediss:// without TLS, say) fails here, in `check-config`, not at start.
        if let Err(error) = redis::Client::open(url) {
            return Err(SettingsError::invalid(
                "redis.url",
                format!("cannot be opened ({:?})", error.kind()),
            ));
        }
        if self.ca.is_some() && !url.starts_with("rediss://") {
            return Err(SettingsError::invalid(
                "redis.ca",
                "is only used with a rediss:// URL",
            ));
        }
        at_least_one("redis.timeout_ms", self.timeout_ms)
    }
}

/// How to reach RabbitMQ and which names to use on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BusSettings {
    /// AMQP URI; it holds the password, so it is a secret.
    pub url: SecretString,
    /// The topic exchange all events go through.
    pub exchange: String,
    /// Prefix of this service's queues (`<prefix>.events`, `.retry.N`, `.parked`);
    /// defaults to the service name.
    pub queue_prefix: String,
    /// Unacknowledged deliveries a consumer holds at once.
    pub prefetch: u16,
    /// Delay before each retry of a failed event; its length is the number of retries.
    pub retry_delays_ms: Vec<u64>,
    /// Deletes this service's queues after this long unused (0 keeps them): search's
    /// per-replica queues, and tests'.
    pub queue_expires_ms: u64,
    /// Deletes the exchange's unrouted queue (shared by every service) after this long
    /// unused: for tests, whose exchanges are their own. 0, the default, keeps it, since it
    /// holds the events no queue was bound to until they are replayed.
    pub unrouted_expires_ms: u64,
    /// Hours the outbox relay keeps published rows before deleting them (a week: time to
    /// look into what was sent).
    pub outbox_retention_hours: u32,
    /// How often a consumer reports how many messages wait in its queue and its parked
    /// queue (`messaging_queue_messages_ready`): the broker's own metrics are not there
    /// everywhere (Amazon MQ has no Prometheus endpoint).
    pub queue_stats_ms: u64,
}

impl Default for BusSettings {
    fn default() -> Self {
        BusSettings {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: "spruce.events".to_owned(),
            queue_prefix: String::new(),
            prefetch: 32,
            retry_delays_ms: vec![1_000, 10_000, 60_000],
            queue_expires_ms: 0,
            unrouted_expires_ms: 0,
            outbox_retention_hours: 168,
            queue_stats_ms: 15_000,
        }
    }
}

impl Validate for BusSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let url = self.url.expose_secret();
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(SettingsError::invalid(
                "bus.url",
                "must start with amqp:// or amqps://",
            ));
        }
        if self.exchange.is_empty() {
            return Err(SettingsError::invalid("bus.exchange", "must not be empty"));
        }
        at_least_one("bus.prefetch", self.prefetch)?;
        at_least_one("bus.queue_stats_ms", self.queue_stats_ms)?;
        at_least_one("bus.outbox_retention_hours", self.outbox_retention_hours)?;
        if self.retry_delays_ms.contains(&0) {
            return Err(SettingsError::invalid(
                "bus.retry_delays_ms",
                "delays must be positive",
            ));
        }
        Ok(())
    }
}

/// Logging and tracing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub log_level: String,
    /// OTLP/gRPC endpoint; empty falls back to `OTEL_EXPORTER_OTLP_ENDPOINT`, and export is
    /// off when both are empty.
    pub otlp_endpoint: String,
    /// Share of new traces recorded and exported (0..=1); a caller's decision is followed.
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_format: LogFormat::Auto,
            log_level: "info".to_owned(),
            otlp_endpoint: String::new(),
            sample_ratio: 1.0,
        }
    }
}

impl Validate for TelemetrySettings {
    fn validate(&self) -> Result<(), SettingsError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(SettingsError::invalid(
                "telemetry.sample_ratio",
                "must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        database: DatabaseSettings,
        bus: BusSettings,
    }

    impl Validate for Sample {
        fn validate(&self) -> Result<(), SettingsError> {
            self.database.validate()?;
            self.bus.validate()
        }
    }

    #[test]
    fn validation_errors_name_the_key() {
        let sample: Sample = from_toml("[database]\nname = \"Bad Name\"").unwrap();
        let error = sample.validate().unwrap_err();
        assert!(error.to_string().contains("database.name"), "{error}");
    }

    #[test]
    fn the_outbox_relay_needs_a_retention() {
        let sample: Sample =
            from_toml("[database]\nname = \"x\"\n[bus]\noutbox_retention_hours = 0").unwrap();
        let error = sample.validate().unwrap_err();
        assert!(
            error.to_string().contains("bus.outbox_retention_hours"),
            "{error}"
        );
        let defaults = BusSettings::default();
        assert_eq!(defaults.outbox_retention_hours, 168);
        defaults.validate().unwrap();
    }

    #[test]
    fn a_redis_ca_goes_with_a_rediss_url_only() {
        let tls = RedisSettings {
            url: SecretString::from("rediss://cache.internal:6379"),
            ca: Some("-----BEGIN CERTIFICATE-----".to_owned()),
            ..RedisSettings::default()
        };
        tls.validate().unwrap();
        let plain = RedisSettings {
            url: SecretString::from("redis://cache.internal:6379"),
            ..tls
        };
        let error = plain.validate().unwrap_err();
        assert!(error.to_string().contains("redis.ca"), "{error}");
    }

    #[test]
    fn a_partial_layer_keeps_the_built_in_values_it_does_not_mention() {
        let builder = Config::builder()
            .add_source(File::from_str(
                "[database]\nname = \"spruce_core\"",
                FileFormat::Toml,
            ))
            .add_source(File::from_str(
                "[database]\nhost = \"db.internal\"",
                FileFormat::Toml,
            ));
        let sample: Sample = from_builder(builder).unwrap();
        assert_eq!(sample.database.name, "spruce_core");
        assert_eq!(sample.database.host, "db.internal");
        assert_eq!(sample.database.port, 5432);
    }

    #[test]
    fn type_errors_name_the_key() {
        let error = from_toml::<Sample>("[database]\nname = \"x\"\nport = \"high\"").unwrap_err();
        assert!(error.to_string().contains("database.port"), "{error}");
    }

    #[test]
    fn secrets_come_from_files_and_are_never_printed() {
        let directory =
            std::env::temp_dir().join(format!("spruce-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("password");
        std::fs::write(&file, "hunter2-secret\n").unwrap();
        let toml = format!(
            "[database]\nname = \"x\"\npassword_file = \"{}\"",
            file.display()
        );
        let sample: Sample = from_toml(&toml).unwrap();
        assert_eq!(sample.database.password.expose_secret(), "hunter2-secret");
        // The pool follows the file (a rotated password); other secrets are read once.
        assert_eq!(
            sample.database.password_path.as_deref(),
            Some(file.as_path())
        );
        assert!(!format!("{sample:?}").contains("hunter2"));
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn a_missing_secret_file_is_reported_with_its_key() {
        let error = from_toml::<Sample>(
            "[bus]\nurl_file = \"/nonexistent/spruce\"\n[database]\nname = \"x\"",
        )
        .unwrap_err();
        assert!(error.to_string().contains("`bus.url`"), "{error}");
    }
}
