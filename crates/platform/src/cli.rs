//! The shape every service binary shares: load settings, start telemetry, run one
//! subcommand, log how it ended and flush traces.
//!
//! Every binary also answers `healthcheck`: it asks its own running process for
//! `/healthz` on the ops HTTP port and exits 0 when that says 200. Container images carry no
//! shell or curl, so Docker's and compose's health checks run the binary itself. And
//! `check-config`: load and validate the settings (files, secrets, environment) and exit,
//! like `nginx -t`; the chart's tests run it on every rendered configuration. A service
//! with a database also answers `migrate` (`spruce_db::migrate_command`), which reads only
//! the `[database]` and `[telemetry]` settings (see [`with_database`]): the migrations Job
//! holds the database login and no other secret.

use std::{
    future::Future,
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use serde::de::DeserializeOwned;

use crate::{
    settings::{
        self, CommonSettings, DatabaseSettings, Loaded, Moved, SettingsError, TelemetrySettings,
        Validate,
    },
    telemetry,
};

/// Settings of a service binary.
pub trait ServiceSettings: DeserializeOwned + Validate {
    /// The keys this service moved, still read for one release (see [`Moved`]).
    const MOVED: &'static [Moved] = &[];

    /// Returns the sections every service has: the HTTP listener and telemetry.
    fn common(&self) -> &CommonSettings;
}

/// A gRPC service as `serve` runs it: built from its settings, listening for gRPC and for
/// ops HTTP, running until told to stop.
pub trait GrpcService: Sized {
    /// Its settings.
    type Settings: ServiceSettings;

    /// Binds its listeners and connects what it needs.
    fn build(settings: Self::Settings) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// The bound gRPC port.
    fn grpc_port(&self) -> u16;

    /// The bound ops HTTP port.
    fn http_port(&self) -> u16;

    /// Runs until `shutdown` is cancelled, then drains and stops.
    fn run_until_stopped(
        self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Implements [`GrpcService`] for `$application` (with settings `$settings`) through its
/// inherent `build`, `grpc_port`, `http_port` and `run_until_stopped`, which keep serving
/// callers that do not name the trait (tests).
#[macro_export]
macro_rules! grpc_service {
    ($application:ty, $settings:ty) => {
        impl $crate::cli::GrpcService for $application {
            type Settings = $settings;

            async fn build(settings: $settings) -> ::anyhow::Result<Self> {
                <$application>::build(settings).await
            }

            fn grpc_port(&self) -> u16 {
                <$application>::grpc_port(self)
            }

            fn http_port(&self) -> u16 {
                <$application>::http_port(self)
            }

            async fn run_until_stopped(
                self,
                shutdown: ::tokio_util::sync::CancellationToken,
            ) -> ::anyhow::Result<()> {
                <$application>::run_until_stopped(self, shutdown).await
            }
        }
    };
}

/// `serve`: builds `S` from `settings`, says where it listens, and runs it until SIGTERM or
/// Ctrl-C, draining for `http.drain`.
///
/// # Errors
/// Fails when it cannot be built or a server fails.
pub async fn serve<S: GrpcService>(
    service: &'static str,
    settings: S::Settings,
) -> anyhow::Result<()> {
    let drain = settings.common().http.drain;
    let application = S::build(settings).await?;
    tracing::info!(
        grpc_port = application.grpc_port(),
        http_port = application.http_port(),
        "{service} listening"
    );
    application
        .run_until_stopped(crate::shutdown::on_signal(drain))
        .await
}

/// What a database-only command reads: the database and how to log, nothing else.
#[derive(serde::Deserialize)]
struct DatabaseCommandSettings {
    #[serde(default)]
    database: DatabaseSettings,
    #[serde(flatten)]
    common: CommonSettings,
}

impl Validate for DatabaseCommandSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.database.validate()
    }
}

/// Runs `command` (the first argument; `None` means `serve`) of `service` with settings
/// layered over `built_in`.
///
/// # Errors
/// Returns the settings error or what the command failed with, after logging it.
pub async fn run<S, F, Fut>(service: &'static str, built_in: &str, command: F) -> anyhow::Result<()>
where
    S: ServiceSettings,
    F: FnOnce(S, Option<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let command_name = self::command();
    let Loaded { settings, notes } = settings::load::<S>(built_in, S::MOVED)?;
    match command_name.as_deref() {
        Some("healthcheck") => {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.common().http.port));
            return healthcheck(address);
        }
        // Settings loaded, secret files read and validated: nothing else to do.
        Some("check-config") => {
            for note in &notes {
                eprintln!("{service}: warning: {note}");
            }
            println!("{service}: configuration ok");
            return Ok(());
        }
        _ => {}
    }
    let telemetry = settings.common().telemetry.clone();
    traced(service, &telemetry, &notes, command(settings, command_name)).await
}

/// Runs `work` with telemetry started (logging the settings' `notes` first), logs how it
/// ended and flushes traces.
async fn traced(
    service: &'static str,
    telemetry: &TelemetrySettings,
    notes: &[String],
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let guard = telemetry::init(service, telemetry)?;
    for note in notes {
        tracing::warn!("settings: {note}");
    }
    let result = work.await;
    if let Err(error) = &result {
        tracing::error!(
            error = format!("{error:#}"),
            "{service} stopped with an error"
        );
    }
    guard.shutdown();
    result
}

/// Runs a command that needs the database alone (`migrate`, core's `seed`) with the
/// `[database]` and `[telemetry]` settings layered over `built_in`: the Jobs that run them
/// hold the database login and no other secret.
///
/// # Errors
/// Returns the settings error or what `command` failed with, after logging it.
pub async fn with_database<F, Fut>(
    service: &'static str,
    built_in: &str,
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(DatabaseSettings) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Loaded { settings, notes } = settings::load::<DatabaseCommandSettings>(built_in, &[])?;
    traced(
        service,
        &settings.common.telemetry,
        &notes,
        command(settings.database),
    )
    .await
}

/// The error for a subcommand the binary does not have; `own` lists the binary's own
/// subcommands (the ones every binary answers are added).
/// The subcommand the binary was started with (its first argument), if any.
pub fn command() -> Option<String> {
    std::env::args().nth(1)
}

pub fn unknown_command(command: &str, own: &[&str]) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown command {command:?}; expected {}, healthcheck or check-config",
        own.join(", ")
    )
}

/// Asks `address` for `/healthz` and succeeds on a 200 answer within two seconds.
///
/// # Errors
/// Fails when nothing answers or the answer is not 200.
pub fn healthcheck(address: SocketAddr) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| anyhow::anyhow!("nothing answers on {address}: {error}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nhost: localhost\r\n\r\n")?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.x 200"
    if head.ends_with(b" 200") {
        Ok(())
    } else {
        anyhow::bail!(
            "{address} answered {:?}",
            String::from_utf8_lossy(&head).trim()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn answer_once(response: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 64];
            let _ = stream.read(&mut request);
            stream.write_all(response).unwrap();
        });
        address
    }

    #[test]
    fn healthcheck_passes_on_200_only() {
        let healthy = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        healthcheck(healthy).unwrap();
        let sick = answer_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let error = healthcheck(sick).unwrap_err().to_string();
        assert!(error.contains("503"), "{error}");
    }

    #[test]
    fn an_unknown_command_lists_every_command_the_binary_has() {
        let error = unknown_command("serv", &["serve", "migrate"]).to_string();
        assert_eq!(
            error,
            "unknown command \"serv\"; expected serve, migrate, healthcheck or check-config"
        );
    }

    #[test]
    fn healthcheck_fails_when_nothing_listens() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        assert!(healthcheck(address).is_err());
    }
}
