//! Layered configuration shared by every service.
//!
//! Sources, later ones winning: the built-in defaults of each settings struct,
//! `config/default.toml`, `config/$SPRUCE_ENV.toml`, then `SPRUCE__SECTION__KEY` environment
//! variables. Any string key `foo_file` is replaced by the contents of the file it names and
//! becomes `foo`: that is how a Kubernetes Secret mount or Vault's agent hands over secrets.
//! Durations are written with their unit: "300ms", "15s", "24h", "30d".

mod duration;
mod legacy;
mod sections;
mod tokens;

use std::{path::PathBuf, time::Duration};

use config::{Config, Environment, File, FileFormat, Source};
use secrecy::SecretString;
use serde::{Deserialize, de::DeserializeOwned};

pub use self::{
    duration::{deserialize as duration, list as durations},
    legacy::Moved,
    sections::{
        BusSettings, DatabaseSettings, ListenSettings, LogFormat, RedisSettings, SslMode,
        TelemetrySettings, Upstream,
    },
    tokens::{CallerSettings, IdentitySettings, UserTokenSettings},
};
use crate::keys::{PrivateKey, PublicKey};

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

/// Settings as loaded, with a note for each key of an earlier shape that was read (see
/// [`Moved`]): the service logs them once telemetry is up.
#[derive(Debug)]
pub struct Loaded<T> {
    pub settings: T,
    pub notes: Vec<String>,
}

/// Loads `T` from the layered sources described in the module documentation, starting from
/// the service's `built_in` TOML defaults, and validates it. Keys of an earlier shape are
/// still read: `moved` names the service's own moves, and any `<name>_ms`, `_secs`,
/// `_hours` or `_days` number becomes the duration `<name>` (see [`Moved`]).
///
/// # Errors
/// Fails naming the key that is missing, mistyped or invalid, or the secret file that
/// cannot be read.
pub fn load<T: DeserializeOwned + Validate>(
    built_in: &str,
    moved: &[Moved],
) -> Result<Loaded<T>, SettingsError> {
    let directory = std::env::var("SPRUCE_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
    let environment = environment();
    let directory = PathBuf::from(directory);
    let layers: Vec<Box<dyn Source + Send + Sync>> = vec![
        Box::new(File::from_str(built_in, FileFormat::Toml)),
        Box::new(File::from(directory.join("default.toml")).required(false)),
        Box::new(File::from(directory.join(format!("{environment}.toml"))).required(false)),
        Box::new(
            Environment::with_prefix("SPRUCE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        ),
    ];
    let mut notes = Vec::new();
    let settings: T = from_layers(layers, moved, &mut notes)?;
    settings.validate()?;
    Ok(Loaded { settings, notes })
}

/// Reads `T` from TOML text alone, without validating it: for built-in defaults and tests.
///
/// # Errors
/// Fails naming the key that is mistyped, or the secret file that cannot be read.
pub fn from_toml<T: DeserializeOwned>(toml: &str) -> Result<T, SettingsError> {
    let layer: Box<dyn Source + Send + Sync> = Box::new(File::from_str(toml, FileFormat::Toml));
    from_layers(vec![layer], &[], &mut Vec::new())
}

/// Reads `T` from TOML layers (later ones winning) as [`load`] reads its layers, old keys
/// and `moved` ones included, without validating it: for tests of a service's moved keys.
///
/// # Errors
/// Fails naming the key that is mistyped, or the secret file that cannot be read.
pub fn from_toml_layers<T: DeserializeOwned>(
    layers: &[&str],
    moved: &[Moved],
) -> Result<Loaded<T>, SettingsError> {
    let layers = layers
        .iter()
        .map(|toml| -> Box<dyn Source + Send + Sync> {
            Box::new(File::from_str(toml, FileFormat::Toml))
        })
        .collect();
    let mut notes = Vec::new();
    let settings = from_layers(layers, moved, &mut notes)?;
    Ok(Loaded { settings, notes })
}

/// Merges `layers`, each read in its own shape first (so that an old key in a later layer
/// still wins over a new key in an earlier one), reads the secret files and deserializes.
fn from_layers<T: DeserializeOwned>(
    layers: Vec<Box<dyn Source + Send + Sync>>,
    moved: &[Moved],
    notes: &mut Vec<String>,
) -> Result<T, SettingsError> {
    let mut builder = Config::builder();
    for layer in layers {
        let mut table = vec![layer].collect()?;
        legacy::upgrade(&mut table, moved, notes);
        builder = builder.add_source(legacy::Layer(table));
    }
    from_builder(builder)
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
    let value = config::Value::from(table);
    value.clone().try_deserialize().map_err(|error| {
        // A flattened section ([`CommonSettings`]) reports a mistyped value without its key:
        // reading that section alone names it.
        match value.try_deserialize::<CommonSettings>() {
            Err(keyed) => SettingsError::Load(keyed),
            Ok(_) => SettingsError::Load(error),
        }
    })
}

/// What every service reads the same way: where its HTTP side (the gateway's API, the
/// others' `/healthz`, `/readyz` and `/metrics`) listens, how it logs and traces, and where
/// its feature flags come from. Each service's settings hold it with `#[serde(flatten)]`,
/// so its keys stay `[http]`, `[telemetry]` and `[flags]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CommonSettings {
    pub http: ListenSettings,
    pub telemetry: TelemetrySettings,
    pub flags: crate::flags::FlagSettings,
}

/// The environment's name: `SPRUCE_ENV`, "local" when unset.
pub fn environment() -> String {
    std::env::var("SPRUCE_ENV").unwrap_or_else(|_| "local".to_owned())
}

impl CommonSettings {
    /// Starts reading the service's feature flags (see [`crate::flags`]).
    pub fn flags(&self) -> crate::flags::Flags {
        crate::flags::Flags::start(&self.flags, &environment())
    }

    /// HTTP on 127.0.0.1 at a port the system picks, default telemetry: tests and tools.
    pub fn loopback() -> Self {
        CommonSettings {
            http: ListenSettings::loopback(),
            ..CommonSettings::default()
        }
    }
}

impl Validate for CommonSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.address("http")?;
        self.telemetry.validate()
    }
}

/// Refuses a zero duration for `key`.
///
/// # Errors
/// Names `key` when `value` is zero.
pub fn positive(key: &str, value: Duration) -> Result<(), SettingsError> {
    if value.is_zero() {
        return Err(SettingsError::invalid(key, "must be longer than 0"));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

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
            from_toml("[database]\nname = \"x\"\n[bus]\noutbox_retention = \"30m\"").unwrap();
        let error = sample.validate().unwrap_err();
        assert!(
            error.to_string().contains("bus.outbox_retention"),
            "{error}"
        );
        let defaults = BusSettings::default();
        assert_eq!(defaults.outbox_retention, Duration::from_secs(168 * 3600));
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

    #[derive(Debug, Deserialize)]
    struct Service {
        #[serde(flatten)]
        common: CommonSettings,
        #[serde(default)]
        bus: BusSettings,
    }

    fn layered(layers: &[&str], moved: &[Moved]) -> Result<(Service, Vec<String>), String> {
        let loaded = from_toml_layers(layers, moved).map_err(|error| error.to_string())?;
        Ok((loaded.settings, loaded.notes))
    }

    #[test]
    fn an_old_key_in_a_later_layer_wins_over_a_new_key_in_an_earlier_one() {
        let (service, notes) = layered(
            &[
                "[bus]\nqueue_stats = \"15s\"\n[http]\ndrain = \"5s\"",
                "[bus]\nqueue_stats_ms = 500",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(service.bus.queue_stats, Duration::from_millis(500));
        assert_eq!(service.common.http.drain, Duration::from_secs(5));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("bus.queue_stats_ms"), "{notes:?}");
    }

    #[test]
    fn a_mistyped_key_of_the_common_sections_is_named() {
        let error = layered(&["[http]\nport = \"high\""], &[]).unwrap_err();
        assert!(error.contains("http.port"), "{error}");
        let error = layered(&["[http]\ndrain = 5"], &[]).unwrap_err();
        assert!(
            error.contains("http.drain") && error.contains("5s"),
            "{error}"
        );
    }
}
