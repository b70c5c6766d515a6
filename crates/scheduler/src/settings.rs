//! The scheduler's settings; every key has a local default.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use secrecy::SecretString;

use spruce_storage::StorageSettings;

use crate::{
    domain::{jobs::JOB_NAMES, matching::engine::Mode, schedule::Schedule},
    usecases::{
        archive::ArchiveSettings,
        delivery::{
            DeliverySettings, EmailSettings, EmailTransport, HttpPushSender, LogSender, Sender,
            Senders, SmtpSender,
        },
        jobs::{assign::AssignSettings, runner::RunnerSettings},
    },
};
use serde::Deserialize;
use spruce_platform::{
    auth::TokenVerifier,
    cli::ServiceSettings,
    keys,
    settings::{
        self, BusSettings, CallerSettings, CommonSettings, DatabaseSettings, IdentitySettings,
        ListenSettings, Moved, SettingsError, Upstream, UserTokenSettings, Validate, positive,
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

# `timeout` is the deadline of one call (retraining the model has its own, [retrain]).
[core]
url = "http://127.0.0.1:50051"
connect_timeout = "2s"
timeout = "10s"

[search]
url = "http://127.0.0.1:50052"
connect_timeout = "2s"
timeout = "10s"

# Clock jobs: a cron expression (five fields, or six with seconds first) read in time_zone.
[jobs.booking-reminders]
schedule = "*/5 * * * *"

[jobs.expire-unconfirmed]
schedule = "*/5 * * * *"

[jobs.auto-assign]
schedule = "* * * * *"

[jobs.retrain-duration-model]
schedule = "0 3 * * *"

# Closes the analytics archive's files at the top of each hour (they are also written every
# analytics.max_events events or analytics.max_age).
[jobs.export-analytics]
schedule = "0 * * * *"
"#;

/// Everything the scheduler reads at start.
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
    /// Per-job schedules and switches, `[jobs.<name>] schedule, enabled, time_zone` (the
    /// chart's `scheduler.jobs`).
    #[serde(default)]
    pub jobs: BTreeMap<String, JobSettings>,
    #[serde(default)]
    pub runner: RunnerSettings,
    /// Core: the jobs expire and assign bookings through it.
    pub core: Upstream,
    /// Search: candidates for matching, and the duration model's retraining.
    pub search: Upstream,
    /// The nightly retraining of the duration model.
    #[serde(default)]
    pub retrain: RetrainSettings,
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
    pub delivery: DeliverySettings,
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
    /// Where users' files are kept (the gateway's store): a deleted account's are removed.
    /// The analytics archive is written there too.
    #[serde(default)]
    pub storage: StorageSettings,
    #[serde(default)]
    pub analytics: ArchiveSettings,
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

/// Which push provider: `http` (an FCM HTTP v1–style API) or `log` (development: each push
/// is written to the log and nothing is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushProvider {
    Log,
    Http,
}

/// `[push]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PushSettings {
    pub provider: PushProvider,
    /// e.g. `https://fcm.googleapis.com/v1/projects/<project>/messages:send`.
    pub url: String,
    /// The provider's bearer token; or `token_file`.
    pub token: SecretString,
    #[serde(deserialize_with = "settings::duration")]
    pub timeout: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            provider: PushProvider::Log,
            url: String::new(),
            token: SecretString::from(""),
            timeout: Duration::from_secs(5),
        }
    }
}

/// `[reminders]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReminderSettings {
    /// Bookings starting within this long are reminded (once).
    #[serde(deserialize_with = "settings::duration")]
    pub lead: Duration,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        ReminderSettings {
            lead: Duration::from_secs(24 * 3600),
        }
    }
}

/// `[retrain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetrainSettings {
    /// The deadline of search's `RetrainModel` call.
    #[serde(deserialize_with = "settings::duration")]
    pub timeout: Duration,
}

impl Default for RetrainSettings {
    fn default() -> Self {
        RetrainSettings {
            timeout: Duration::from_secs(15 * 60),
        }
    }
}

impl Settings {
    /// Returns each channel's provider.
    ///
    /// # Errors
    /// Names the key that is unusable.
    pub fn senders(&self) -> Result<Senders, SettingsError> {
        let email: Arc<dyn Sender> = match self.email.transport {
            EmailTransport::Log if settings::production_like() => {
                return Err(SettingsError::invalid(
                    "email.transport",
                    "is \"log\", which sends nothing; production-like environments need \"smtp\"",
                ));
            }
            EmailTransport::Log => Arc::new(LogSender { channel: "email" }),
            EmailTransport::Smtp => Arc::new(
                SmtpSender::new(&self.email)
                    .map_err(|error| SettingsError::invalid("email", format!("{error:#}")))?,
            ),
        };
        let push: Arc<dyn Sender> = match self.push.provider {
            // It would write device tokens and messages to the logs and call them sent.
            PushProvider::Log if settings::production_like() => {
                return Err(SettingsError::invalid(
                    "push.provider",
                    "is \"log\", which sends nothing; production-like environments need \"http\"",
                ));
            }
            PushProvider::Log => Arc::new(LogSender { channel: "push" }),
            PushProvider::Http => {
                settings::grpc_url("push.url", &self.push.url)?;
                Arc::new(
                    HttpPushSender::new(&self.push.url, self.push.token.clone(), self.push.timeout)
                        .map_err(|error| SettingsError::invalid("push", format!("{error:#}")))?,
                )
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
    pub mode: Mode,
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
            mode: Mode::Cheapest,
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
            mode: self.mode,
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
        self.common.validate()?;
        self.grpc.address("grpc")?;
        self.database.validate()?;
        self.bus.validate()?;
        self.storage.validate()?;
        self.analytics.validate(settings::production_like())?;
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
        self.core.validate("core")?;
        self.search.validate("search")?;
        positive("retrain.timeout", self.retrain.timeout)?;
        self.identity.signer("scheduler")?;
        self.matching.assign_settings()?;
        self.senders()?;
        let delivery = &self.delivery;
        for (key, value) in [
            ("delivery.batch", delivery.batch),
            ("delivery.max_attempts", delivery.max_attempts),
            ("runner.max_attempts", self.runner.max_attempts),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be at least 1"));
            }
        }
        if delivery.concurrency == 0 {
            return Err(SettingsError::invalid(
                "delivery.concurrency",
                "must be at least 1",
            ));
        }
        let runner = &self.runner;
        for (key, value) in [
            ("delivery.poll", delivery.poll),
            ("delivery.retry_base", delivery.retry_base),
            ("delivery.lease", delivery.lease),
            ("reminders.lead", self.reminders.lead),
            ("runner.poll", runner.poll),
            ("runner.retry_base", runner.retry_base),
            ("runner.retry_max", runner.retry_max),
            ("runner.heartbeat", runner.heartbeat),
        ] {
            positive(key, value)?;
        }
        if self.bus.queue_prefix.is_empty() {
            return Err(SettingsError::invalid(
                "bus.queue_prefix",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

impl ServiceSettings for Settings {
    const MOVED: &'static [Moved] = &[Moved {
        from: "search.retrain_timeout_ms",
        to: &["retrain.timeout"],
    }];

    fn common(&self) -> &CommonSettings {
        &self.common
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
        settings.runner.poll = Duration::ZERO;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .to_string()
                .contains("runner.poll")
        );
        let error = settings::from_toml::<Settings>("[email]\ntransport = \"carrier-pigeon\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("email.transport"), "{error}");
        let mut settings = Settings::default();
        settings.push.provider = PushProvider::Http;
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
