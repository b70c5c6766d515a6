//! Feature flags from flagd's sources, evaluated in process.
//!
//! The flags come from a flagd flag file (`[flags] file`, watched: an edit applies as soon as
//! flagd's file watcher reads it) or a flagd sync service (`[flags] sync`, `host:port`,
//! streamed). open-feature-flagd's store reads and parses either; each flag it reports
//! changed is compiled once into this module's table ([`table`]), which answers every read.
//! Every flag has a default in code ([`Flag`]), which answers while there is no flag source
//! (none set, a file missing or broken at start: one warning, and the source is tried again
//! every few seconds), and whenever the flag is missing, disabled, of another type or its
//! targeting fails. A file broken later keeps the flags last read from it.
//!
//! Flags are read per request for a [`Subject`]: targeting sees `targetingKey` (the user
//! id), `role` and `environment` (`SPRUCE_ENV`), as flagd's JsonLogic. An evaluation is a
//! hash lookup, and for a targeted flag one pass over its compiled rules with the context on
//! the stack: no allocation, well under a microsecond (BENCHMARKS.md). OpenFeature's provider
//! interface is not on this path: it takes its context as a map of owned strings, built per
//! call, which alone costs about what the evaluation may.

mod table;

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use open_feature_flagd::{
    FlagdOptions,
    resolver::{
        common::upstream::UpstreamConfig,
        in_process::{
            Connector, FileConnector, FlagStore, GrpcStreamConnector, StorageState,
            StorageStateChange,
        },
    },
};
use serde::Deserialize;
use tokio::sync::mpsc::Receiver;
use uuid::Uuid;

use self::table::{Answer, CompiledFlag, Context};
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
/// flagd's sync port, for a `[flags] sync` without one.
const SYNC_PORT: u16 = 8015;

/// The flags of one service; cheap to clone.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Inner>,
}

struct Inner {
    environment: String,
    /// Whether the source has been read once.
    loaded: AtomicBool,
    /// Every flag of the source, compiled; replaced flag by flag as the source changes.
    table: RwLock<HashMap<String, CompiledFlag>>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flags")
            .field("loaded", &self.loaded())
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
                environment: environment.to_owned(),
                loaded: AtomicBool::new(false),
                table: RwLock::new(HashMap::new()),
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
        let Some(source) = Source::of(settings) else {
            return flags;
        };
        let inner = Arc::downgrade(&flags.inner);
        tokio::spawn(async move {
            let mut warned = false;
            let (store, mut changes) = loop {
                match source.open().await {
                    Ok(opened) => break opened,
                    Err(error) if !warned => {
                        tracing::warn!(
                            source = %source,
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
                tracing::info!(source = %source, "flags read");
            }
            // Each change names the flags it touched; a check every few seconds ends this
            // when the last clone of the flags is gone.
            loop {
                match tokio::time::timeout(RETRY_INTERVAL, changes.recv()).await {
                    Ok(Some(change)) => {
                        let Some(flags) = inner.upgrade() else { break };
                        flags.apply(&store, change, &mut changes).await;
                    }
                    Ok(None) => break,
                    Err(_) if inner.strong_count() == 0 => break,
                    Err(_) => {}
                }
            }
            let _ = store.shutdown().await;
        });
        flags
    }

    /// Whether the flag source has been read.
    pub fn loaded(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire)
    }

    /// The value of a boolean flag for `who`.
    pub fn enabled(&self, flag: &Flag<bool>, who: Subject) -> bool {
        match self.answer(flag.key, who) {
            Some(Answer::Bool(value)) => value,
            _ => flag.default,
        }
    }

    /// The value of a number flag for `who` (a whole number in the source is read too).
    pub fn number(&self, flag: &Flag<f64>, who: Subject) -> f64 {
        match self.answer(flag.key, who) {
            Some(Answer::Float(value)) => value,
            #[allow(clippy::cast_precision_loss)]
            Some(Answer::Int(value)) => value as f64,
            _ => flag.default,
        }
    }

    /// The value of a whole-number flag for `who`.
    pub fn integer(&self, flag: &Flag<i64>, who: Subject) -> i64 {
        match self.answer(flag.key, who) {
            Some(Answer::Int(value)) => value,
            _ => flag.default,
        }
    }

    /// The source's value of `key` for `who`, or `None` where it has none.
    fn answer(&self, key: &str, who: Subject) -> Option<Answer> {
        let table = self
            .inner
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let flag = table.get(key)?;
        let mut text = Uuid::encode_buffer();
        let targeting_key = who
            .user_id
            .map(|id| &*id.hyphenated().encode_lower(&mut text));
        flag.evaluate(
            key,
            Context {
                targeting_key,
                role: who.role,
                environment: &self.inner.environment,
            },
        )
    }
}

impl Inner {
    /// Compiles the flags `change` and every change already waiting name, and puts them in
    /// the table at once.
    async fn apply(
        &self,
        store: &FlagStore,
        change: StorageStateChange,
        waiting: &mut Receiver<StorageStateChange>,
    ) {
        let mut keys = Vec::new();
        let mut next = Some(change);
        while let Some(change) = next {
            if change.storage_state == StorageState::Ok {
                keys.extend(change.changed_flags_keys);
            }
            next = waiting.try_recv().ok();
        }
        keys.sort_unstable();
        keys.dedup();
        let mut compiled = Vec::with_capacity(keys.len());
        for key in keys {
            let flag = store.get_flag(&key).await.feature_flag;
            let flag = flag.map(|flag| CompiledFlag::compile(&key, &flag));
            compiled.push((key, flag));
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        for (key, flag) in compiled {
            match flag {
                Some(flag) => table.insert(key, flag),
                None => table.remove(&key),
            };
        }
        drop(table);
        self.loaded.store(true, Ordering::Release);
    }
}

/// Where the flags are read from.
enum Source {
    /// A flag file, watched.
    File(String),
    /// A flagd sync service, `host:port`.
    Sync(String),
}

impl Source {
    fn of(settings: &FlagSettings) -> Option<Source> {
        if !settings.sync.is_empty() {
            let target = if settings.sync.rsplit_once(':').is_some() {
                settings.sync.clone()
            } else {
                format!("{}:{SYNC_PORT}", settings.sync)
            };
            return Some(Source::Sync(target));
        }
        (!settings.file.is_empty()).then(|| Source::File(settings.file.clone()))
    }

    /// flagd's store on this source, read once, and the changes it reports from then on.
    async fn open(&self) -> Result<(FlagStore, Receiver<StorageStateChange>), String> {
        let connector: Arc<dyn Connector> = match self {
            Source::File(path) => {
                // A missing or unreadable file is found here, quietly: flagd's connector
                // would log errors of its own at every try.
                readable_file(path)?;
                Arc::new(FileConnector::new(path))
            }
            Source::Sync(target) => {
                let upstream = UpstreamConfig::new(target.clone(), true, false, None)
                    .map_err(|error| error.to_string())?;
                Arc::new(GrpcStreamConnector::new(
                    upstream.endpoint().uri().to_string(),
                    None,
                    &FlagdOptions::default(),
                    upstream.authority(),
                ))
            }
        };
        let (store, changes) = FlagStore::new(connector);
        if let Err(error) = store.init().await {
            let _ = store.shutdown().await;
            return Err(error.to_string());
        }
        Ok((store, changes))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", Path::new(path).display()),
            Source::Sync(target) => write!(f, "flagd sync at {target}"),
        }
    }
}

/// Whether the file at `path` can be read and holds JSON.
fn readable_file(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|_| ())
        .map_err(|error| format!("{path} is not JSON: {error}"))
}

#[cfg(test)]
mod tests {
    use open_feature_flagd::flagd::sync::v1::{
        FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse,
        SyncFlagsRequest, SyncFlagsResponse,
        flag_sync_service_server::{FlagSyncService, FlagSyncServiceServer},
    };
    use spruce_testkit::TempFolder;

    use super::*;

    const OFF: &str = r#"{"flags": {"recommendations-enabled": {"state": "ENABLED",
        "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#;

    /// Flags on the file at `path`, which cannot be read yet: not loaded, at the defaults.
    async fn started_at_defaults(path: &Path) -> Flags {
        let flags = started(path);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!flags.loaded());
        assert!(flags.enabled(&RECOMMENDATIONS_ENABLED, Subject::default()));
        flags
    }

    fn started(path: &Path) -> Flags {
        let settings = FlagSettings {
            file: path.display().to_string(),
            ..FlagSettings::default()
        };
        Flags::start(&settings, "local")
    }

    /// Whether `read` answers `want` within 5 s.
    async fn within_seconds<T: PartialEq>(want: T, read: impl Fn() -> T) -> bool {
        for _ in 0..50 {
            if read() == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_missing_file_leaves_the_defaults_until_it_appears() {
        let folder = TempFolder::new("flags");
        let path = folder.path().join("flags.json");
        let flags = started_at_defaults(&path).await;
        std::fs::write(&path, OFF).unwrap();
        let read = || flags.enabled(&RECOMMENDATIONS_ENABLED, Subject::default());
        assert!(within_seconds(false, read).await);
        assert!(flags.loaded());
    }

    #[tokio::test]
    async fn a_broken_file_or_an_unknown_flag_answers_the_defaults() {
        let folder = TempFolder::new("flags");
        let path = folder.path().join("flags.json");
        std::fs::write(&path, "{ not json").unwrap();
        let flags = started_at_defaults(&path).await;
        // Read at last, the file has no such flag: its default answers.
        std::fs::write(&path, OFF).unwrap();
        let read = || flags.enabled(&RECOMMENDATIONS_ENABLED, Subject::default());
        assert!(within_seconds(false, read).await);
        let rate = flags.number(&FAULT_GATEWAY_SEARCH_ERROR_RATE, Subject::default());
        assert!(rate.abs() < f64::EPSILON);
    }

    #[tokio::test]
    async fn an_edit_retargets_a_flag_and_a_flag_taken_out_answers_its_default() {
        let folder = TempFolder::new("flags");
        let path = folder.path().join("flags.json");
        std::fs::write(&path, OFF).unwrap();
        let flags = started(&path);
        let cleaner = Subject {
            user_id: Some(Uuid::new_v4()),
            role: Some("cleaner"),
        };
        let customer = Subject {
            role: Some("customer"),
            ..cleaner
        };
        let flags = &flags;
        let read = |who| move || flags.enabled(&RECOMMENDATIONS_ENABLED, who);
        assert!(within_seconds(false, read(cleaner)).await);

        // Switched on for cleaners only.
        std::fs::write(
            &path,
            r#"{"flags": {"recommendations-enabled": {"state": "ENABLED",
                "variants": {"on": true, "off": false}, "defaultVariant": "off",
                "targeting": {"if": [{"==": [{"var": "role"}, "cleaner"]}, "on"]}}}}"#,
        )
        .unwrap();
        assert!(within_seconds(true, read(cleaner)).await);
        assert!(!flags.enabled(&RECOMMENDATIONS_ENABLED, customer));

        // Gone from the file: the default in code (on) for everyone.
        std::fs::write(&path, r#"{"flags": {}}"#).unwrap();
        assert!(within_seconds(true, read(customer)).await);
    }

    /// A stand-in for flagd's sync service (no flagd here): it streams each flag
    /// configuration `configurations` holds, as flagd does when its source changes.
    struct SyncStandIn {
        configurations: tokio::sync::watch::Receiver<String>,
    }

    type SyncStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<SyncFlagsResponse, tonic::Status>> + Send>,
    >;

    #[tonic::async_trait]
    impl FlagSyncService for SyncStandIn {
        type SyncFlagsStream = SyncStream;

        async fn sync_flags(
            &self,
            _request: tonic::Request<SyncFlagsRequest>,
        ) -> Result<tonic::Response<SyncStream>, tonic::Status> {
            let changes = futures_util::stream::unfold(
                (self.configurations.clone(), true),
                |(mut configurations, first)| async move {
                    if !first {
                        configurations.changed().await.ok()?;
                    }
                    let flag_configuration = configurations.borrow_and_update().clone();
                    let response = SyncFlagsResponse {
                        flag_configuration,
                        sync_context: None,
                    };
                    Some((Ok(response), (configurations, false)))
                },
            );
            Ok(tonic::Response::new(Box::pin(changes)))
        }

        async fn fetch_all_flags(
            &self,
            _request: tonic::Request<FetchAllFlagsRequest>,
        ) -> Result<tonic::Response<FetchAllFlagsResponse>, tonic::Status> {
            Ok(tonic::Response::new(FetchAllFlagsResponse {
                flag_configuration: self.configurations.borrow().clone(),
            }))
        }

        async fn get_metadata(
            &self,
            _request: tonic::Request<GetMetadataRequest>,
        ) -> Result<tonic::Response<GetMetadataResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("not flagd"))
        }
    }

    #[tokio::test]
    async fn flags_stream_from_a_flagd_sync_service_and_follow_its_changes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (configuration, configurations) = tokio::sync::watch::channel(OFF.to_owned());
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(FlagSyncServiceServer::new(SyncStandIn { configurations }))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let settings = FlagSettings {
            sync: address.to_string(),
            ..FlagSettings::default()
        };
        let flags = Flags::start(&settings, "staging");
        let read = || flags.enabled(&RECOMMENDATIONS_ENABLED, Subject::default());
        assert!(within_seconds(false, read).await);
        assert!(flags.loaded());

        // Switched on in staging by targeting, streamed as a new configuration.
        configuration
            .send(
                r#"{"flags": {"recommendations-enabled": {"state": "ENABLED",
                    "variants": {"on": true, "off": false}, "defaultVariant": "off",
                    "targeting": {"if": [{"in": [{"var": "environment"}, ["staging"]]},
                        "on", "off"]}}}}"#
                    .to_owned(),
            )
            .unwrap();
        assert!(within_seconds(true, read).await);
        server.abort();
    }
}
