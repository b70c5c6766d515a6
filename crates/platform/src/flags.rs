//! Feature flags through OpenFeature, evaluated in process by flagd's engine.
//!
//! The flags come from a flagd flag file (`[flags] file`, watched: an edit applies within a
//! second) or a flagd sync service (`[flags] sync`, `host:port`, streamed). Every flag has
//! a default in code ([`Flag`]), which answers while there is no flag source (none set, a
//! file missing or broken at start: one warning, and the source is tried again every few
//! seconds), and whenever the flag is missing, disabled, of another type or its targeting
//! fails. A file broken later keeps the flags last read from it.
//!
//! Flags are read per request for a [`Subject`]: flagd's targeting sees `targetingKey` (the
//! user id), `role` and `environment` (`SPRUCE_ENV`). Answers are remembered for a second
//! (a flag without targeting once for everyone), so a change reaches every reader within a
//! second of flagd reading it.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use open_feature::{EvaluationContext, EvaluationReason, provider::FeatureProvider};
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use serde::Deserialize;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::identity::Caller;

/// Where the flags come from: `[flags]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FlagSettings {
    /// A flagd flag file (JSON), read in process and watched for changes.
    pub file: String,
    /// A flagd sync service, `host:port`, the flags are streamed from instead of a file.
    pub sync: String,
}

/// A flag: its key in the flag source and the value used when the source cannot answer.
#[derive(Debug, Clone, Copy)]
pub struct Flag<T> {
    pub key: &'static str,
    pub default: T,
}

/// Recommendations are served (off: an empty list marked `disabled`).
pub const RECOMMENDATIONS_ENABLED: Flag<bool> = Flag {
    key: "recommendations-enabled",
    default: true,
};
/// The scheduler's auto-assign job matches open bookings at its ticks.
pub const AUTO_ASSIGN_ENABLED: Flag<bool> = Flag {
    key: "auto-assign-enabled",
    default: true,
};
/// The lowest mean rating a search asks for when the app sends none.
pub const SEARCH_MIN_RATING_DEFAULT: Flag<f64> = Flag {
    key: "search-min-rating-default",
    default: 0.0,
};
/// Fault injection: the share (0 to 1) of cleaner searches the gateway answers with 503.
pub const FAULT_GATEWAY_SEARCH_ERROR_RATE: Flag<f64> = Flag {
    key: "fault-gateway-search-error-rate",
    default: 0.0,
};
/// Fault injection: milliseconds core waits before each booking call.
pub const FAULT_CORE_LATENCY_MS: Flag<i64> = Flag {
    key: "fault-core-latency-ms",
    default: 0,
};
/// Fault injection: every notification delivery fails (and is retried).
pub const FAULT_SCHEDULER_NOTIFICATIONS_FAIL: Flag<bool> = Flag {
    key: "fault-scheduler-notifications-fail",
    default: false,
};

/// Who a flag is read for: nobody in particular (a job), or a signed-in caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Subject {
    pub user_id: Option<Uuid>,
    pub role: Option<&'static str>,
}

impl From<&Caller> for Subject {
    fn from(caller: &Caller) -> Self {
        Subject {
            user_id: Some(caller.user_id),
            role: Some(caller.role.as_str()),
        }
    }
}

/// How long to wait before looking for a flag source that was missing or broken.
const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// How long an answer is remembered: a change of the source reaches every reader within this
/// (after flagd has read it).
const MEMO_LIFETIME: Duration = Duration::from_secs(1);
/// The most answers remembered at once; past it, the memo starts afresh.
const MEMO_CAPACITY: usize = 10_000;

/// The flags of one service; cheap to clone.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Inner>,
}

struct Inner {
    provider: OnceCell<FlagdProvider>,
    environment: String,
    /// Answers of the last [`MEMO_LIFETIME`]: a flag without targeting under its key alone
    /// (`subject: None`), a targeted one under its key and subject. flagd's evaluation
    /// builds and clones maps for every call (about a microsecond); a remembered answer is
    /// a hash lookup.
    memo: RwLock<HashMap<(&'static str, Option<Subject>), Answer>>,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Bool(bool),
    Float(f64),
    Int(i64),
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("loaded", &self.inner.provider.initialized())
            .field("environment", &self.inner.environment)
            .finish_non_exhaustive()
    }
}

impl Flags {
    /// Every flag at its default, for good: no source.
    pub fn defaults() -> Flags {
        Flags::new("")
    }

    fn new(environment: &str) -> Flags {
        Flags {
            inner: Arc::new(Inner {
                provider: OnceCell::new(),
                environment: environment.to_owned(),
                memo: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Starts reading the flags of `settings` in the background (for as long as a clone of
    /// the answer lives); every flag answers its default until the source has been read. No
    /// source: [`defaults`]. Needs a Tokio runtime.
    ///
    /// [`defaults`]: Flags::defaults
    pub fn start(settings: &FlagSettings, environment: &str) -> Flags {
        let flags = Flags::new(environment);
        let Some(options) = options(settings) else {
            return flags;
        };
        let inner = Arc::downgrade(&flags.inner);
        tokio::spawn(async move {
            let mut warned = false;
            let provider = loop {
                // A missing or unreadable file is found here, quietly: flagd's provider
                // would log errors of its own at every try.
                let opened = match readable_file(&options) {
                    Ok(()) => FlagdProvider::new(options.clone())
                        .await
                        .map_err(|error| error.to_string()),
                    Err(error) => Err(error),
                };
                match opened {
                    Ok(provider) => break provider,
                    Err(error) if !warned => {
                        tracing::warn!(
                            source = %describe(&options),
                            %error,
                            "flags cannot be read: every flag is at its default until they can"
                        );
                        warned = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(RETRY_INTERVAL).await;
                if inner.strong_count() == 0 {
                    return;
                }
            };
            if warned {
                tracing::info!(source = %describe(&options), "flags read");
            }
            let Some(flags) = inner.upgrade() else { return };
            let _ = flags.provider.set(provider);
            flags.forget();
            drop(flags);
            loop {
                tokio::time::sleep(MEMO_LIFETIME).await;
                let Some(flags) = inner.upgrade() else { return };
                flags.forget();
            }
        });
        flags
    }

    /// Whether the flag source has been read.
    pub fn loaded(&self) -> bool {
        self.inner.provider.initialized()
    }

    /// The value of a boolean flag for `who`.
    pub async fn enabled(&self, flag: &Flag<bool>, who: Subject) -> bool {
        match self.answer(flag.key, Answer::Bool(flag.default), who).await {
            Answer::Bool(value) => value,
            _ => flag.default,
        }
    }

    /// The value of a number flag for `who` (a whole number in the source is read too).
    pub async fn number(&self, flag: &Flag<f64>, who: Subject) -> f64 {
        match self
            .answer(flag.key, Answer::Float(flag.default), who)
            .await
        {
            Answer::Float(value) => value,
            #[allow(clippy::cast_precision_loss)]
            Answer::Int(value) => value as f64,
            Answer::Bool(_) => flag.default,
        }
    }

    /// The value of a whole-number flag for `who`.
    pub async fn integer(&self, flag: &Flag<i64>, who: Subject) -> i64 {
        match self.answer(flag.key, Answer::Int(flag.default), who).await {
            Answer::Int(value) => value,
            _ => flag.default,
        }
    }

    /// The remembered answer, or flagd's (remembered), or `default` when flagd has none.
    async fn answer(&self, key: &'static str, default: Answer, who: Subject) -> Answer {
        let Some(provider) = self.inner.provider.get() else {
            return default;
        };
        if let Some(answer) = self.inner.remembered(key, who) {
            return answer;
        }
        let context = self.context(who);
        let resolved = match default {
            Answer::Bool(_) => provider
                .resolve_bool_value(key, &context)
                .await
                .map(|details| (Answer::Bool(details.value), details.reason)),
            Answer::Float(_) => match provider.resolve_float_value(key, &context).await {
                Ok(details) => Ok((Answer::Float(details.value), details.reason)),
                Err(_) => provider
                    .resolve_int_value(key, &context)
                    .await
                    .map(|details| (Answer::Int(details.value), details.reason)),
            },
            Answer::Int(_) => provider
                .resolve_int_value(key, &context)
                .await
                .map(|details| (Answer::Int(details.value), details.reason)),
        };
        let (answer, reason) = resolved.unwrap_or((default, None));
        // flagd says "static" when the flag has no targeting: one answer for everyone.
        let subject = (reason != Some(EvaluationReason::Static)).then_some(who);
        self.inner.remember(key, subject, answer);
        answer
    }

    fn context(&self, who: Subject) -> EvaluationContext {
        let mut context = EvaluationContext::default()
            .with_custom_field("environment", self.inner.environment.as_str());
        if let Some(user_id) = who.user_id {
            context = context.with_targeting_key(user_id.to_string());
        }
        if let Some(role) = who.role {
            context = context.with_custom_field("role", role);
        }
        context
    }
}

impl Inner {
    fn remembered(&self, key: &'static str, who: Subject) -> Option<Answer> {
        let memo = self.memo.read().unwrap_or_else(PoisonError::into_inner);
        memo.get(&(key, None))
            .or_else(|| memo.get(&(key, Some(who))))
            .copied()
    }

    fn remember(&self, key: &'static str, subject: Option<Subject>, answer: Answer) {
        let mut memo = self.memo.write().unwrap_or_else(PoisonError::into_inner);
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert((key, subject), answer);
    }

    fn forget(&self) {
        self.memo
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// For a file source: whether the file can be read and holds JSON.
fn readable_file(options: &FlagdOptions) -> Result<(), String> {
    let Some(path) = options
        .source_configuration
        .as_ref()
        .filter(|_| options.resolver_type == ResolverType::File)
    else {
        return Ok(());
    };
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|_| ())
        .map_err(|error| format!("{path} is not JSON: {error}"))
}

/// The provider's options for `settings`' source, if one is set.
fn options(settings: &FlagSettings) -> Option<FlagdOptions> {
    if !settings.sync.is_empty() {
        let (host, port) = settings
            .sync
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .unwrap_or((settings.sync.as_str(), 8015));
        return Some(FlagdOptions {
            host: host.to_owned(),
            port,
            resolver_type: ResolverType::InProcess,
            cache_settings: None,
            ..FlagdOptions::default()
        });
    }
    if settings.file.is_empty() {
        return None;
    }
    Some(FlagdOptions {
        resolver_type: ResolverType::File,
        source_configuration: Some(settings.file.clone()),
        cache_settings: None,
        ..FlagdOptions::default()
    })
}

fn describe(options: &FlagdOptions) -> String {
    match &options.source_configuration {
        Some(path) if options.resolver_type == ResolverType::File => {
            Path::new(path).display().to_string()
        }
        _ => format!("flagd sync at {}:{}", options.host, options.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: &str = r#"{"flags": {"recommendations-enabled": {"state": "ENABLED",
        "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#;

    fn scratch_file() -> std::path::PathBuf {
        let folder = std::env::temp_dir().join(format!("spruce-flags-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        folder.join("flags.json")
    }

    /// Flags on the file at `path`, which cannot be read yet: not loaded, at the defaults.
    async fn started_at_defaults(path: &std::path::Path) -> Flags {
        let settings = FlagSettings {
            file: path.display().to_string(),
            ..FlagSettings::default()
        };
        let flags = Flags::start(&settings, "local");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!flags.loaded());
        assert!(
            flags
                .enabled(&RECOMMENDATIONS_ENABLED, Subject::default())
                .await
        );
        flags
    }

    async fn recommendations_enabled_within(flags: &Flags, want: bool) -> bool {
        for _ in 0..100 {
            if flags
                .enabled(&RECOMMENDATIONS_ENABLED, Subject::default())
                .await
                == want
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_missing_file_leaves_the_defaults_until_it_appears() {
        let path = scratch_file();
        let flags = started_at_defaults(&path).await;
        std::fs::write(&path, OFF).unwrap();
        assert!(recommendations_enabled_within(&flags, false).await);
        assert!(flags.loaded());
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[tokio::test]
    async fn a_broken_file_or_an_unknown_flag_answers_the_defaults() {
        let path = scratch_file();
        std::fs::write(&path, "{ not json").unwrap();
        let flags = started_at_defaults(&path).await;
        // Read at last, the file has no such flag: its default answers.
        std::fs::write(&path, OFF).unwrap();
        assert!(recommendations_enabled_within(&flags, false).await);
        let rate = flags
            .number(&FAULT_GATEWAY_SEARCH_ERROR_RATE, Subject::default())
            .await;
        assert!(rate.abs() < f64::EPSILON);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
