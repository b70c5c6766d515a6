//! The scheduler's settings; every key has a local default.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use secrecy::SecretString;

use crate::{
    domain::{jobs::JOB_NAMES, matching::engine::Mode, schedule::Schedule},
    upstream::UpstreamSettings,
    usecases::{
        delivery::{
            DeliverySettings, EmailSettings, HttpPushSender, LogSender, Sender, Senders, SmtpSender,
        },
        jobs::{assign::AssignSettings, runner::RunnerSettings},
    },
};
use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    keys,
    settings::{
        self, BusSettings, CallerSettings, DatabaseSettings, IdentitySettings, ListenSettings,
        SettingsError, TelemetrySettings, UserTokenSettings, Validate,
    },
};

/// The scheduler's built-in defaults: the first configuration layer.
pub const DEFAULTS: &str = r#"
[grpc]
port = 50053

[http]
port = 9093

[database]
name = "spruce_scheduler"

[bus]
queue_prefix = "scheduler"

[core]
url = "http://127.0.0.1:50051"

[search]
url = "http://127.0.0.1:50052"

# Clock jobs: a cron expression (five fields, or six with seconds first) read in time_zone.
[jobs.booking-reminders]
schedule = "*/5 * * * *"

[jobs.expire-unconfirmed]
schedule = "*/5 * * * *"

[jobs.auto-assign]
schedule = "* * * * *"

[jobs.retrain-duration-model]
schedule = "0 3 * * *"
"#;

/// Everything the scheduler reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub grpc: ListenSettings,
    #[serde(default)]
    pub http: ListenSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub bus: BusSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Users' access tokens (core's public key).
    #[serde(default)]
    pub auth: UserTokenSettings,
    /// The services whose own tokens are accepted.
    #[serde(default)]
    pub callers: CallerSettings,
    /// Per-job schedules and switches, `[jobs.<name>] schedule, enabled, time_zone` (the
    /// chart's `scheduler.jobs`).
    #[serde(default)]
    pub jobs: BTreeMap<String, JobSettings>,
    #[serde(default)]
    pub runner: RunnerConfig,
    /// Core: the jobs expire and assign bookings through it.
    pub core: UpstreamSettings,
    /// Search: candidates for matching, and the duration model's retraining.
    pub search: UpstreamSettings,
    /// Email: `transport = "smtp"` sends through an SMTP server, `"log"` (the local
    /// default) writes each email to the log.
    #[serde(default)]
    pub email: EmailSettings,
    /// Push: `provider = "http"` posts to an FCM HTTP v1–style API, `"log"` (the local
    /// default) writes each push to the log.
    #[serde(default)]
    pub push: PushSettings,
    /// How recorded notifications are sent and retried.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// How long before a booking `booking-reminders` reminds its parties.
    #[serde(default)]
    pub reminders: ReminderSettings,
    /// How `auto-assign` finds candidates and decides.
    #[serde(default)]
    pub matching: MatchingSettings,
    /// The scheduler's own signing key, for its calls to core and search.
    #[serde(default = "development_identity")]
    pub identity: IdentitySettings,
    /// Where emailed links point.
    #[serde(default)]
    pub links: LinkSettings,
}

/// `[links]`: emailed links (email verification, password reset) open
/// `{app_url}/verify-email?token=…` and `{app_url}/reset-password?token=…`, pages (or app
/// links) that post the token to the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LinkSettings {
    pub app_url: String,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            app_url: "https://app.spruce.example".to_owned(),
        }
    }
}

/// `[push]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PushSettings {
    pub provider: String,
    /// e.g. `https://fcm.googleapis.com/v1/projects/<project>/messages:send`.
    pub url: String,
    /// The provider's bearer token; or `token_file`.
    pub token: SecretString,
    pub timeout_ms: u64,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            provider: "log".to_owned(),
            url: String::new(),
            token: SecretString::from(""),
            timeout_ms: 5_000,
        }
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    pub poll_ms: u64,
    pub batch: u32,
    pub concurrency: u32,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub lease_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            poll_ms: 500,
            batch: 50,
            concurrency: 8,
            max_attempts: 5,
            retry_base_ms: 2_000,
            retry_max_ms: 600_000,
            lease_secs: 60,
        }
    }
}

impl DeliveryConfig {
    /// Returns the worker's settings.
    pub fn delivery_settings(&self) -> DeliverySettings {
        DeliverySettings {
            poll: Duration::from_millis(self.poll_ms),
            batch: i64::from(self.batch),
            concurrency: self.concurrency as usize,
            max_attempts: self.max_attempts,
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            lease: Duration::from_secs(self.lease_secs),
        }
    }
}

/// `[reminders]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReminderSettings {
    /// Bookings starting within this many hours are reminded (once).
    pub lead_hours: u32,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings { lead_hours: 24 }
    }
}

impl Settings {
    /// Returns each channel's provider.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn senders(&self) -> Result<Senders, SettingsError> {
        let email: Arc<dyn Sender> = match self.email.transport.as_str() {
            "log" if settings::production_like() => {
                return Err(SettingsError::invalid(
                    "email.transport",
                    "is \"log\", which sends nothing; production-like environments need \"smtp\"",
                ));
            }
            "log" => Arc::new(LogSender { channel: "email" }),
            "smtp" => Arc::new(
                SmtpSender::new(&self.email)
                    .map_err(|error| SettingsError::invalid("email", format!("{error:#}")))?,
            ),
            _ => {
                return Err(SettingsError::invalid(
                    "email.transport",
                    "must be \"smtp\" or \"log\"",
                ));
            }
        };
        let push: Arc<dyn Sender> = match self.push.provider.as_str() {
            // It would write device tokens and messages to the logs and call them sent.
            "log" if settings::production_like() => {
                return Err(SettingsError::invalid(
                    "push.provider",
                    "is \"log\", which sends nothing; production-like environments need \"http\"",
                ));
            }
            "log" => Arc::new(LogSender { channel: "push" }),
            "http" => {
                settings::grpc_url("push.url", &self.push.url)?;
                Arc::new(
                    HttpPushSender::new(
                        &self.push.url,
                        self.push.token.clone(),
                        Duration::from_millis(self.push.timeout_ms),
                    )
                    .map_err(|error| SettingsError::invalid("push", format!("{error:#}")))?,
                )
            }
            _ => {
                return Err(SettingsError::invalid(
                    "push.provider",
                    "must be \"http\" or \"log\"",
                ));
            }
        };
        Ok(Senders { email, push })
    }
}

/// How `auto-assign` runs the matching engine: `[matching]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MatchingSettings {
    /// `cheapest` (least total cost) or `stable` (deferred acceptance: cleaners'
    /// preferences count too).
    pub mode: String,
    /// Candidates asked of search per booking.
    pub candidates: u32,
    /// How far from a booking search looks (each cleaner's own radius applies too).
    pub radius_km: f64,
    /// Batch calls to search (500 queries each) or core (250 assignments each) in flight
    /// at once.
    pub concurrency: usize,
}

impl Default for MatchingSettings {
    fn default() -> Self {
        MatchingSettings {
            mode: "cheapest".to_owned(),
            candidates: 20,
            radius_km: 50.0,
            concurrency: 4,
        }
    }
}

impl MatchingSettings {
    /// Returns what the job needs.
    ///
    /// # Errors
    /// Names the key that is out of range.
    pub fn assign_settings(&self) -> Result<AssignSettings, SettingsError> {
        let mode = match self.mode.as_str() {
            "cheapest" => Mode::Cheapest,
            "stable" => Mode::Stable,
            _ => {
                return Err(SettingsError::invalid(
                    "matching.mode",
                    "must be \"cheapest\" or \"stable\"",
                ));
            }
        };
        if !(1..=100).contains(&self.candidates) {
            return Err(SettingsError::invalid(
                "matching.candidates",
                "must be 1 to 100",
            ));
        }
        if !(self.radius_km > 0.0 && self.radius_km <= 100.0) {
            return Err(SettingsError::invalid(
                "matching.radius_km",
                "must be above 0 and at most 100",
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(SettingsError::invalid(
                "matching.concurrency",
                "must be 1 to 64",
            ));
        }
        Ok(AssignSettings {
            mode,
            candidates: self.candidates,
            radius_km: self.radius_km,
            concurrency: self.concurrency,
        })
    }
}

fn development_identity() -> IdentitySettings {
    IdentitySettings::development(keys::dev::SCHEDULER_PRIVATE_KEY)
}

/// One clock job's schedule and switch.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    /// A cron expression: five fields, or six with seconds first.
    #[serde(default)]
    pub schedule: String,
    /// Whether its ticks run (a manual run runs either way).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The IANA zone the expression's wall-clock times are in.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn enabled() -> bool {
    true
}

fn utc() -> String {
    "UTC".to_owned()
}

/// How clock jobs are polled and retried: `[runner]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RunnerConfig {
    /// This replica's name in the run history. Empty: `HOSTNAME` (the pod's name), else a
    /// random name.
    pub replica: String,
    /// Between two looks at each job: how late a tick may start.
    pub poll_ms: u64,
    /// Attempts per run before it counts as failed.
    pub max_attempts: u32,
    /// The wait before the second attempt, doubling after each failure.
    pub retry_base_ms: u64,
    /// The longest wait between attempts.
    pub retry_max_ms: u64,
    /// Between two pings of a running job's lock connection.
    pub heartbeat_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            replica: String::new(),
            poll_ms: 1_000,
            max_attempts: 3,
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
            heartbeat_ms: 5_000,
        }
    }
}

impl RunnerConfig {
    /// Returns the runner's timings.
    pub fn runner_settings(&self) -> RunnerSettings {
        RunnerSettings {
            poll: Duration::from_millis(self.poll_ms),
            max_attempts: self.max_attempts,
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            heartbeat: Duration::from_millis(self.heartbeat_ms),
        }
    }
}

impl Settings {
    /// Returns the verifier of every gRPC call.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        self.auth
            .verifier(&self.callers.service_keys()?, "scheduler")
    }

    /// Returns the clock job `name`'s schedule and whether its ticks run.
    ///
    /// # Errors
    /// Names the job's key when it has no usable schedule.
    pub fn job(&self, name: &str) -> Result<(Schedule, bool), SettingsError> {
        let key = format!("jobs.{name}.schedule");
        let job = self
            .jobs
            .get(name)
            .ok_or_else(|| SettingsError::invalid(&key, "is missing"))?;
        let schedule = Schedule::parse(&job.schedule, &job.time_zone)
            .map_err(|problem| SettingsError::invalid(&key, problem))?;
        Ok((schedule, job.enabled))
    }
}

impl Default for Settings {
    fn default() -> Self {
        settings::from_toml(DEFAULTS).expect("built-in defaults are valid")
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.grpc.address("grpc")?;
        self.http.address("http")?;
        self.database.validate()?;
        self.bus.validate()?;
        self.verifier()?;
        let app_url = &self.links.app_url;
        if !(app_url.starts_with("https://") || app_url.starts_with("http://"))
            || app_url.contains(char::is_whitespace)
        {
            return Err(SettingsError::invalid(
                "links.app_url",
                "must be an http(s) address, e.g. https://app.spruce.example",
            ));
        }
        for name in self.jobs.keys() {
            if !JOB_NAMES.contains(&name.as_str()) {
                return Err(SettingsError::invalid(
                    &format!("jobs.{name}"),
                    format!("is not a job; the jobs are {}", JOB_NAMES.join(", ")),
                ));
            }
        }
        for name in JOB_NAMES {
            self.job(name)?;
        }
        settings::grpc_url("core.url", &self.core.url)?;
        settings::grpc_url("search.url", &self.search.url)?;
        for (key, upstream) in [("core", &self.core), ("search", &self.search)] {
            for (name, value) in [
                ("connect_timeout_ms", upstream.connect_timeout_ms),
                ("timeout_ms", upstream.timeout_ms),
                ("retrain_timeout_ms", upstream.retrain_timeout_ms),
            ] {
                if value == 0 {
                    return Err(SettingsError::invalid(
                        &format!("{key}.{name}"),
                        "must be at least 1",
                    ));
                }
            }
        }
        self.identity.signer("scheduler")?;
        self.matching.assign_settings()?;
        self.senders()?;
        let delivery = &self.delivery;
        for (key, value) in [
            ("delivery.poll_ms", delivery.poll_ms),
            ("delivery.batch", u64::from(delivery.batch)),
            ("delivery.concurrency", u64::from(delivery.concurrency)),
            ("delivery.max_attempts", u64::from(delivery.max_attempts)),
            ("delivery.retry_base_ms", delivery.retry_base_ms),
            ("delivery.lease_secs", delivery.lease_secs),
            ("reminders.lead_hours", u64::from(self.reminders.lead_hours)),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be at least 1"));
            }
        }
        let runner = &self.runner;
        for (key, value) in [
            ("runner.poll_ms", runner.poll_ms),
            ("runner.retry_base_ms", runner.retry_base_ms),
            ("runner.retry_max_ms", runner.retry_max_ms),
            ("runner.heartbeat_ms", runner.heartbeat_ms),
            ("runner.max_attempts", u64::from(runner.max_attempts)),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be at least 1"));
            }
        }
        if self.bus.queue_prefix.is_empty() {
            return Err(SettingsError::invalid(
                "bus.queue_prefix",
                "must not be empty",
            ));
        }
        self.telemetry.validate()
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
    use crate::domain::jobs;

    #[test]
    fn the_built_in_defaults_are_this_services_and_valid() {
        let defaults = Settings::default();
        assert_eq!(defaults.database.name, "spruce_scheduler");
        assert_eq!(defaults.grpc.port, 50053);
        defaults.validate().unwrap();
    }

    #[test]
    fn every_job_has_a_schedule_and_runs_unless_switched_off() {
        let defaults = Settings::default();
        for name in JOB_NAMES {
            let (_, enabled) = defaults.job(name).unwrap();
            assert!(enabled, "{name}");
        }
        let (schedule, _) = defaults.job(jobs::RETRAIN_DURATION_MODEL).unwrap();
        assert_eq!(schedule.expression(), "0 3 * * *");
        let mut settings = defaults.clone();
        settings.jobs.get_mut(jobs::AUTO_ASSIGN).unwrap().enabled = false;
        assert!(!settings.job(jobs::AUTO_ASSIGN).unwrap().1);
    }

    #[test]
    fn unknown_jobs_and_bad_schedules_are_named() {
        let mut settings = Settings::default();
        settings.jobs.insert(
            "reminders".to_owned(),
            JobSettings {
                schedule: "* * * * *".to_owned(),
                enabled: true,
                time_zone: utc(),
            },
        );
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("jobs.reminders")
        );
        let mut settings = Settings::default();
        settings.jobs.get_mut(jobs::AUTO_ASSIGN).unwrap().schedule = "soon".to_owned();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("jobs.auto-assign.schedule")
        );
        let mut settings = Settings::default();
        settings.runner.poll_ms = 0;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("runner.poll_ms")
        );
        let mut settings = Settings::default();
        settings.email.transport = "carrier-pigeon".to_owned();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("email.transport")
        );
        let mut settings = Settings::default();
        settings.push.provider = "http".to_owned();
        settings.push.url = "not a url".to_owned();
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("push.url")
        );
    }
}
