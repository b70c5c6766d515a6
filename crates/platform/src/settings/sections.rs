//! The sections several services share: listeners, PostgreSQL, Redis, RabbitMQ, telemetry
//! and where another service is.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{SettingsError, Validate, at_least_one, grpc_url, positive, production_like};

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
    #[serde(deserialize_with = "super::duration")]
    pub drain: Duration,
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
            drain: Duration::ZERO,
        }
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
    #[serde(deserialize_with = "super::duration")]
    pub password_recheck: Duration,
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
            password_recheck: Duration::from_secs(15),
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
        positive("database.password_recheck", self.password_recheck)?;
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
    /// How long a connect or a command may take.
    #[serde(deserialize_with = "super::duration")]
    pub timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: SecretString::from("redis://127.0.0.1:6379"),
            ca: None,
            key_prefix: "spruce:".to_owned(),
            timeout: Duration::from_millis(500),
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
        positive("redis.timeout", self.timeout)
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
    #[serde(deserialize_with = "super::durations")]
    pub retry_delays: Vec<Duration>,
    /// Deletes this service's queues after this long unused (0 keeps them): tests'.
    #[serde(deserialize_with = "super::duration")]
    pub queue_expires: Duration,
    /// Deletes the exchange's unrouted queue (shared by every service) after this long
    /// unused: for tests, whose exchanges are their own. 0, the default, keeps it, since it
    /// holds the events no queue was bound to until they are replayed.
    #[serde(deserialize_with = "super::duration")]
    pub unrouted_expires: Duration,
    /// How long the outbox relay keeps published rows before deleting them (a week: time
    /// to look into what was sent), in whole hours; and how long an inbox consumer keeps
    /// its records of processed events (at least the producers' retention).
    #[serde(deserialize_with = "super::duration")]
    pub outbox_retention: Duration,
    /// How often a consumer reports how many messages wait in its queue and its parked
    /// queue (`messaging_queue_messages_ready`): the broker's own metrics are not there
    /// everywhere (Amazon MQ has no Prometheus endpoint).
    #[serde(deserialize_with = "super::duration")]
    pub queue_stats: Duration,
}

impl Default for BusSettings {
    fn default() -> Self {
        BusSettings {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            exchange: "spruce.events".to_owned(),
            queue_prefix: String::new(),
            prefetch: 32,
            retry_delays: [1, 10, 60].map(Duration::from_secs).to_vec(),
            queue_expires: Duration::ZERO,
            unrouted_expires: Duration::ZERO,
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            queue_stats: Duration::from_secs(15),
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
        positive("bus.queue_stats", self.queue_stats)?;
        if self.outbox_retention < Duration::from_secs(3600) {
            return Err(SettingsError::invalid(
                "bus.outbox_retention",
                "must be at least 1h",
            ));
        }
        if self.retry_delays.contains(&Duration::ZERO) {
            return Err(SettingsError::invalid(
                "bus.retry_delays",
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

/// Where another Spruce service is (`http://host:port`) and how long a connect and one call
/// to it may take: `[core]`, `[search]`, `[scheduler]` in the services that call them. Each
/// service's built-in defaults give all three keys for the local addresses.
#[derive(Debug, Clone, Deserialize)]
pub struct Upstream {
    pub url: String,
    #[serde(deserialize_with = "super::duration")]
    pub connect_timeout: Duration,
    #[serde(deserialize_with = "super::duration")]
    pub timeout: Duration,
}

impl Upstream {
    /// Checks the upstream at `key`.
    ///
    /// # Errors
    /// Names the first key that is unusable.
    pub fn validate(&self, key: &str) -> Result<(), SettingsError> {
        grpc_url(&format!("{key}.url"), &self.url)?;
        positive(&format!("{key}.connect_timeout"), self.connect_timeout)?;
        positive(&format!("{key}.timeout"), self.timeout)
    }
}
