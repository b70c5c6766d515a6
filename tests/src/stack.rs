//! The four services as child processes, configured only through environment variables,
//! exactly as an operator would run them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use spruce_platform::settings::{BusSettings, DatabaseSettings};
use spruce_testkit::{TestDb, free_port, try_eventually};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// A running stack; dropping it kills the processes.
pub struct Stack {
    pub gateway_url: String,
    /// Core's gRPC address, for checks only a service may make.
    pub core_url: String,
    children: Vec<Child>,
    /// The folder holding each child's output, `<index>-<service>.log`.
    logs: PathBuf,
    /// What each child is: its service and environment, in `children`'s order.
    launched: Vec<(String, HashMap<String, String>)>,
    binaries: PathBuf,
    /// Each service's database, dropped with the stack.
    databases: Vec<TestDb>,
    exchange: String,
    /// The gateway's Redis key prefix.
    throttle_prefix: String,
}

/// A replica [`Stack::add_replica`] started.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its number, for [`Stack::terminate`] and [`Stack::restart`].
    pub index: usize,
    /// Its HTTP side (the gateway's API; a service's `/healthz`, `/readyz`, `/metrics`).
    pub http: String,
    /// Its gRPC address (not the gateway).
    pub grpc: Option<String>,
}

/// The folder holding the workspace's binaries (`target/debug`), found from this test's own
/// executable in `target/debug/deps`.
fn binaries_folder() -> anyhow::Result<PathBuf> {
    let executable = std::env::current_exe()?;
    let folder = executable
        .parent()
        .and_then(Path::parent)
        .context("test executable has no parent folder")?;
    Ok(folder.to_path_buf())
}

/// Loads the curated data set into core's still empty database, as `make run` does. Seeding
/// brings the schema along even where services are set not to migrate at start.
async fn seed(binaries: &Path, environment: &HashMap<String, String>) -> anyhow::Result<()> {
    let status = Command::new(binaries.join("spruce-core"))
        .arg("seed")
        .envs(environment)
        .env("SPRUCE__DATABASE__MIGRATE_ON_START", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .context("failed to run spruce-core seed")?;
    if !status.success() {
        bail!("spruce-core seed exited with {status}");
    }
    Ok(())
}

impl Stack {
    /// Starts core, search, scheduler and gateway, exporting traces to `otlp_port`, and
    /// waits until every one is ready.
    ///
    /// # Errors
    /// Fails when a binary is missing (run `cargo build --bins` first; `make test` does) or
    /// a service does not become ready.
    pub async fn start(otlp_port: u16) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let binaries = binaries_folder()?;
        let mut common = HashMap::from([
            (
                "SPRUCE_CONFIG_DIR".to_owned(),
                format!("/nonexistent/spruce-e2e-{id}"),
            ),
            (
                "SPRUCE__BUS__EXCHANGE".to_owned(),
                format!("spruce.e2e.{id}"),
            ),
            // A stack lives seconds; its quorum queues should not outlive it by much (a few
            // hundred left over from repeated runs slow the broker down enough that a new
            // stack's services miss their 30 s to become ready).
            ("SPRUCE__BUS__QUEUE_EXPIRES".to_owned(), "60s".to_owned()),
            ("SPRUCE__BUS__UNROUTED_EXPIRES".to_owned(), "60s".to_owned()),
            (
                "SPRUCE__TELEMETRY__LOG_FORMAT".to_owned(),
                "json".to_owned(),
            ),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                format!("http://127.0.0.1:{otlp_port}"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        ]);
        if std::env::var_os("RUST_LOG").is_none() {
            common.insert("RUST_LOG".to_owned(), "info".to_owned());
        }
        let mut stack = Stack {
            gateway_url: String::new(),
            core_url: String::new(),
            children: Vec::new(),
            logs: std::env::temp_dir().join(format!("spruce-stack-{id}")),
            launched: Vec::new(),
            binaries: binaries.clone(),
            databases: Vec::new(),
            exchange: format!("spruce.e2e.{id}"),
            throttle_prefix: format!("spruce:test:{id}:"),
        };
        // Every port is chosen first: core and search call each other.
        let mut grpc_ports: HashMap<&str, u16> = HashMap::new();
        for service in ["core", "search", "scheduler"] {
            grpc_ports.insert(service, free_port());
        }
        let grpc_urls: HashMap<&str, String> = grpc_ports
            .iter()
            .map(|(service, port)| (*service, format!("http://127.0.0.1:{port}")))
            .collect();
        stack.core_url = grpc_urls["core"].clone();
        let mut ready_urls = Vec::new();
        for service in ["core", "search", "scheduler"] {
            let (grpc_port, http_port) = (grpc_ports[service], free_port());
            let database = TestDb::new(service);
            let mut environment = common.clone();
            environment.extend([
                ("SPRUCE__GRPC__HOST".to_owned(), "127.0.0.1".to_owned()),
                ("SPRUCE__GRPC__PORT".to_owned(), grpc_port.to_string()),
                ("SPRUCE__HTTP__HOST".to_owned(), "127.0.0.1".to_owned()),
                ("SPRUCE__HTTP__PORT".to_owned(), http_port.to_string()),
                (
                    "SPRUCE__DATABASE__NAME".to_owned(),
                    database.name().to_owned(),
                ),
                (
                    "SPRUCE__BUS__QUEUE_PREFIX".to_owned(),
                    format!("{service}-{id}"),
                ),
            ]);
            if service != "core" {
                environment.insert("SPRUCE__CORE__URL".to_owned(), grpc_urls["core"].clone());
            }
            if service != "search" {
                environment.insert(
                    "SPRUCE__SEARCH__URL".to_owned(),
                    grpc_urls["search"].clone(),
                );
            }
            if service == "scheduler" {
                // Jobs run when a test asks (POST /v1/admin/jobs/{name}/run), not on the clock.
                environment.insert("SPRUCE__RUNNER__POLL".to_owned(), "200ms".to_owned());
                for job in [
                    "booking-reminders",
                    "expire-unconfirmed",
                    "auto-assign",
                    "retrain-duration-model",
                    "export-analytics",
                ] {
                    environment.insert(
                        format!("SPRUCE__JOBS__{}__ENABLED", job.to_uppercase()),
                        "false".to_owned(),
                    );
                }
            }
            stack.databases.push(database);
            if service == "core" {
                seed(&binaries, &environment).await?;
            }
            stack.spawn(&binaries, service, &environment)?;
            ready_urls.push(format!("http://127.0.0.1:{http_port}/readyz"));
        }
        let gateway_port = free_port();
        let mut environment = common;
        environment.extend([
            ("SPRUCE__HTTP__HOST".to_owned(), "127.0.0.1".to_owned()),
            ("SPRUCE__HTTP__PORT".to_owned(), gateway_port.to_string()),
            // Throttle counts of its own: a client address throttled on a running
            // `make run` must not fail the suite, nor the suite throttle it.
            (
                "SPRUCE__REDIS__KEY_PREFIX".to_owned(),
                stack.throttle_prefix.clone(),
            ),
            ("SPRUCE__CORE__URL".to_owned(), grpc_urls["core"].clone()),
            (
                "SPRUCE__SEARCH__URL".to_owned(),
                grpc_urls["search"].clone(),
            ),
            (
                "SPRUCE__SCHEDULER__URL".to_owned(),
                grpc_urls["scheduler"].clone(),
            ),
        ]);
        stack.spawn(&binaries, "gateway", &environment)?;
        stack.gateway_url = format!("http://127.0.0.1:{gateway_port}");
        ready_urls.push(format!("{}/readyz", stack.gateway_url));
        for url in ready_urls {
            stack.wait_until_ready(&url).await?;
        }
        Ok(stack)
    }

    fn spawn(
        &mut self,
        binaries: &Path,
        service: &str,
        environment: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        let log = log_file(&self.logs, self.children.len(), service);
        let child = launch(binaries, service, environment, &log)?;
        self.children.push(child);
        self.launched
            .push((service.to_owned(), environment.clone()));
        Ok(())
    }

    /// The exchange the stack's services publish to and consume from.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    fn index_of(&self, service: &str) -> anyhow::Result<usize> {
        self.launched
            .iter()
            .position(|(name, _)| name == service)
            .with_context(|| format!("{service} is not in the stack"))
    }

    /// Starts one more replica of `service` beside the stack's own, with the same settings
    /// on ports of its own and `overrides`, and waits until it is ready; returns the
    /// replica's number (for [`Stack::terminate`] and [`Stack::restart`]) and the URLs of
    /// its HTTP side and (not the gateway) its gRPC port.
    ///
    /// # Errors
    /// Fails when it cannot start or does not become ready.
    pub async fn add_replica(
        &mut self,
        service: &str,
        overrides: &[(&str, &str)],
    ) -> anyhow::Result<Replica> {
        let index = self.index_of(service)?;
        let mut environment = self.launched[index].1.clone();
        let http = free_port();
        environment.insert("SPRUCE__HTTP__PORT".to_owned(), http.to_string());
        let grpc = if service == "gateway" {
            None
        } else {
            let port = free_port();
            environment.insert("SPRUCE__GRPC__PORT".to_owned(), port.to_string());
            Some(format!("http://127.0.0.1:{port}"))
        };
        for (key, value) in overrides {
            environment.insert((*key).to_owned(), (*value).to_owned());
        }
        self.spawn(&self.binaries.clone(), service, &environment)?;
        let http = format!("http://127.0.0.1:{http}");
        self.wait_until_ready(&format!("{http}/readyz")).await?;
        Ok(Replica {
            index: self.children.len() - 1,
            http,
            grpc,
        })
    }

    /// Sends replica `index` SIGTERM, as Kubernetes does, without waiting.
    ///
    /// # Errors
    /// Fails when it has exited or cannot be signalled.
    pub async fn signal_stop(&self, index: usize) -> anyhow::Result<()> {
        let pid = self
            .children
            .get(index)
            .and_then(Child::id)
            .context("the replica has exited")?;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        Ok(())
    }

    /// Sends replica `index` SIGTERM and waits for it to exit; returns whether it exited 0.
    ///
    /// # Errors
    /// Fails when it cannot be signalled or does not exit within 20 s.
    pub async fn terminate(&mut self, index: usize) -> anyhow::Result<bool> {
        self.signal_stop(index).await?;
        self.wait_for_exit(index).await
    }

    /// Waits up to 20 s for replica `index` to exit; returns whether it exited 0.
    ///
    /// # Errors
    /// Fails when it does not exit in time.
    pub async fn wait_for_exit(&mut self, index: usize) -> anyhow::Result<bool> {
        let child = self.children.get_mut(index).context("no such replica")?;
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .context("the replica did not exit within 20 s")??;
        Ok(status.success())
    }

    /// Starts replica `index` again with its environment and waits until it is ready.
    ///
    /// # Errors
    /// Fails when it cannot start or does not become ready.
    pub async fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        let (service, environment) = self.launched.get(index).context("no such replica")?.clone();
        let log = log_file(&self.logs, index, &service);
        self.children[index] = launch(&self.binaries, &service, &environment, &log)?;
        let port = environment
            .get("SPRUCE__HTTP__PORT")
            .context("no ops port")?;
        self.wait_until_ready(&format!("http://127.0.0.1:{port}/readyz"))
            .await
    }

    /// Kills `service` with SIGKILL, as a crash or an OOM kill would: no shutdown runs.
    ///
    /// # Errors
    /// Fails when the service is unknown or cannot be killed.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        let index = self.index_of(service)?;
        self.children[index].kill().await?;
        Ok(())
    }

    /// Starts a killed `service` again with its environment and waits until it is ready.
    ///
    /// # Errors
    /// Fails when it cannot start or does not become ready.
    pub async fn start_again(&mut self, service: &str) -> anyhow::Result<()> {
        let index = self.index_of(service)?;
        self.restart(index).await
    }

    /// Waits up to 30 s for `url` to answer 200, failing at once when a service exits.
    async fn wait_until_ready(&mut self, url: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let (children, launched, logs) = (&mut self.children, &self.launched, &self.logs);
        // Ok(None): ready; Ok(Some(why)): a service exited; Err: not yet.
        let answer = try_eventually(Duration::from_secs(30), || {
            let exited = children
                .iter_mut()
                .enumerate()
                .find_map(|(index, child)| Some((index, child.try_wait().ok()??)));
            let exited = exited.map(|(index, status)| {
                let service = &launched[index].0;
                let output =
                    std::fs::read_to_string(log_file(logs, index, service)).unwrap_or_default();
                // The error a binary ends with, else what it wrote last.
                let lines: Vec<&str> = output.lines().collect();
                let from = lines
                    .iter()
                    .position(|line| line.starts_with("Error: "))
                    .unwrap_or(lines.len().saturating_sub(15));
                let tail = lines[from..(from + 15).min(lines.len())].join("\n");
                format!("{service} exited early with {status}:\n{tail}")
            });
            let client = client.clone();
            async move {
                if exited.is_some() {
                    return Ok(exited);
                }
                match client.get(url).send().await {
                    Ok(response) if response.status().is_success() => Ok(None),
                    Ok(response) => Err(response.status().to_string()),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await;
        match answer {
            Ok(None) => Ok(()),
            Ok(Some(exited)) => bail!(exited),
            Err(seen) => bail!("{url} did not become ready within 30 s: {seen}"),
        }
    }

    /// Moves the booking `booking_id` in core's database to start in ten minutes, keeping
    /// its length, as if the days until it had passed: so that its cleaner may start it.
    ///
    /// # Errors
    /// Fails when core's database cannot be reached or holds no such booking.
    pub async fn bring_forward(&self, booking_id: &str) -> anyhow::Result<()> {
        let core = self
            .databases
            .iter()
            .find(|database| database.name().ends_with("_core"))
            .context("the stack has no core database")?;
        let settings = DatabaseSettings {
            name: core.name().to_owned(),
            ..DatabaseSettings::default()
        };
        let pool = spruce_db::connect(&settings).await?;
        let moved = sqlx::query(
            "UPDATE bookings SET starts_at = now() + interval '10 minutes', \
             ends_at = now() + interval '10 minutes' + (ends_at - starts_at) WHERE id = $1::uuid",
        )
        .bind(booking_id)
        .execute(&pool)
        .await?;
        pool.close().await;
        if moved.rows_affected() != 1 {
            bail!("no booking {booking_id} in {}", core.name());
        }
        Ok(())
    }

    /// Stops the services with SIGTERM, as Kubernetes does, and drops their databases.
    ///
    /// # Errors
    /// Fails when a service does not exit cleanly within 10 s of the signal.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for child in &mut self.children {
            // A replica a test stopped and did not start again.
            if child.try_wait()?.is_some() {
                continue;
            }
            let Some(pid) = child.id() else { continue };
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => failures.push(format!("pid {pid} exited with {status}")),
                Ok(Err(error)) => failures.push(format!("pid {pid}: {error}")),
                Err(_) => {
                    child.kill().await.ok();
                    failures.push(format!("pid {pid} ignored SIGTERM for 10 s"));
                }
            }
        }
        std::fs::remove_dir_all(&self.logs).ok();
        let bus = BusSettings {
            exchange: self.exchange.clone(),
            ..BusSettings::default()
        };
        spruce_bus::delete_exchange(&bus).await.ok();
        let mut gateway = spruce_gateway::settings::Settings::default();
        gateway.redis.key_prefix = self.throttle_prefix.clone();
        if let Ok(throttle) = spruce_gateway::throttle::Throttle::new(&gateway) {
            throttle.clear().await.ok();
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "services did not shut down cleanly: {}",
                failures.join("; ")
            )
        }
    }
}

/// Where the child at `index` in a stack writes its output.
fn log_file(logs: &Path, index: usize, service: &str) -> PathBuf {
    logs.join(format!("{index}-{service}.log"))
}

/// Starts `spruce-<service> serve` from `binaries` with `environment`, its output going to
/// `log` (or to the test's own with `TEST_LOG` set).
fn launch(
    binaries: &Path,
    service: &str,
    environment: &HashMap<String, String>,
    log: &Path,
) -> anyhow::Result<Child> {
    let binary = binaries.join(format!("spruce-{service}"));
    if !binary.exists() {
        bail!(
            "{} is missing: run `cargo build --bins` first (`make test` does)",
            binary.display()
        );
    }
    let (stdout, stderr) = if std::env::var_os("TEST_LOG").is_some() {
        (Stdio::inherit(), Stdio::inherit())
    } else {
        if let Some(folder) = log.parent() {
            std::fs::create_dir_all(folder)?;
        }
        let file = std::fs::File::create(log)?;
        (Stdio::from(file.try_clone()?), Stdio::from(file))
    };
    let child = Command::new(&binary)
        .arg("serve")
        .envs(environment)
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    Ok(child)
}
