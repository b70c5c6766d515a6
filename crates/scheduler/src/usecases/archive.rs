//! The analytics archive's work: every event of the exchange is taken from the scheduler's
//! queue into `analytics_events` as it came, with the scheduler's own work on it
//! ([`Archiving`]; a redelivery is recognised by its id and left out), cut into batches
//! every `max_events` events or `max_age`, and each batch read, redacted and written to
//! object storage as Parquet (`domain::archive`), in the service by a child process of its
//! own ([`FileWriter`]). `export-analytics` cuts and writes everything waiting at once.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{TryStreamExt as _, stream::TryChunksError};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use spruce_bus::{Decoded, Envelope, EventHandler};
use spruce_platform::{
    settings::{SettingsError, duration},
    telemetry::trace_id_of,
    time::from_timestamp,
};
use spruce_storage::{Key, Storage};
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    domain::{
        archive::{self, ArchivedEvent, BatchFiles},
        jobs::{Job, JobFuture, RunContext, RunReport},
    },
    store::{self, archive::StoredEvent},
};

/// How often the archiver looks for work.
const TICK: Duration = Duration::from_secs(1);

/// `[analytics]`: the archive of every event for analysts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ArchiveSettings {
    /// Whether this replica archives (consumes its queue and writes files).
    pub enabled: bool,
    /// A file is written once this many events wait...
    pub max_events: u32,
    /// ... or once the oldest has waited this long.
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
    /// How long archived events' ids are kept to recognise a redelivery.
    #[serde(deserialize_with = "duration")]
    pub dedup_window: Duration,
    /// How long a replica holds a batch while it writes the batch's files; one that dies
    /// meanwhile leaves the batch to another replica (or itself, restarted) after this.
    #[serde(deserialize_with = "duration")]
    pub write_lease: Duration,
    /// The key of the hashes that stand for names and emails (or `hash_key_file`). Keep it
    /// secret and keep it: a new key gives everybody new hashes.
    pub hash_key: SecretString,
    /// Where files are built: the binary's `serve` sets a child process of its own; never
    /// read from the configuration.
    #[serde(skip)]
    pub writer: FileWriter,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            enabled: true,
            max_events: 5_000,
            max_age: Duration::from_secs(300),
            dedup_window: Duration::from_secs(7 * 24 * 3600),
            write_lease: Duration::from_secs(120),
            hash_key: SecretString::from(DEVELOPMENT_HASH_KEY),
            writer: FileWriter::InProcess,
        }
    }
}

/// The local default of `analytics.hash_key`, refused in production-like environments.
pub const DEVELOPMENT_HASH_KEY: &str = "spruce-local-analytics-hash-key";

impl ArchiveSettings {
    /// Checks the limits, and that a production-like environment has a key of its own.
    ///
    /// # Errors
    /// Names the key at fault.
    pub fn validate(&self, production_like: bool) -> Result<(), SettingsError> {
        if !(1..=1_000_000).contains(&self.max_events) {
            return Err(SettingsError::invalid(
                "analytics.max_events",
                "must be from 1 to 1000000",
            ));
        }
        if self.max_age < Duration::from_secs(1)
            || self.write_lease < Duration::from_secs(1)
            || self.dedup_window < Duration::from_secs(60)
        {
            return Err(SettingsError::invalid(
                "analytics",
                "max_age and write_lease must be at least 1s, dedup_window at least 1m",
            ));
        }
        let key = self.hash_key.expose_secret();
        if key.len() < 16 || (production_like && key == DEVELOPMENT_HASH_KEY) {
            return Err(SettingsError::invalid(
                "analytics.hash_key",
                "must be at least 16 characters, and not the development key outside local",
            ));
        }
        Ok(())
    }
}

/// The scheduler's event handler with the archive in front: every event of the exchange
/// (`#`) is recorded into `analytics_events` as it came, in the inbox's transaction, and
/// those `inner` wants (its routing keys) are handed on. Reading an event's payload, and
/// taking the personal data out, waits for its batch's files ([`PayloadReader`]).
///
/// An event `inner` fails to apply is retried, and its transaction rolls back: so that the
/// archive does not wait on the retries (or on a replay, once it is parked), it is recorded
/// at once on a connection of its own. Its id keeps it from being recorded twice.
pub struct Archiving<H> {
    inner: H,
    /// `None` when the archive is off: `inner`'s events only.
    pool: Option<PgPool>,
}

impl<H: EventHandler> Archiving<H> {
    /// Archives every event into `pool` and hands `inner` its own.
    pub fn new(inner: H, pool: PgPool) -> Self {
        Archiving {
            inner,
            pool: Some(pool),
        }
    }

    /// Hands `inner` its events, archiving none.
    pub fn off(inner: H) -> Self {
        Archiving { inner, pool: None }
    }

    /// Hands `event` to `inner` if its routing keys match it (a queue bound to `#` once
    /// keeps that binding with the archive off).
    async fn hand_on(
        &self,
        transaction: &mut PgConnection,
        event: &Envelope,
    ) -> anyhow::Result<()> {
        let wanted = self
            .inner
            .routing_keys()
            .iter()
            .any(|pattern| spruce_bus::topic_matches(pattern, &event.r#type));
        if wanted {
            self.inner.handle(transaction, event).await
        } else {
            Ok(())
        }
    }

    /// Records `event` on a connection of its own, when `inner` failed to apply it.
    async fn record_alone(pool: &PgPool, event: store::archive::Received) {
        let recorded = async {
            let mut connection = pool.acquire().await?;
            store::archive::add(&mut connection, std::slice::from_ref(&event)).await
        };
        if let Err(error) = recorded.await {
            // Its retry records it with the scheduler's work.
            tracing::warn!(event_id = %event.event_id, error = %error, "failed to archive an event its handler failed");
        }
    }
}

/// The archive's row of `event` (whose id is `event_id`), received now within the trace
/// `trace_id`: one without `occurred_at` (never written by the outbox) is filed under the
/// time it arrived.
fn received(
    event_id: Uuid,
    event: &Envelope,
    trace_id: Option<String>,
) -> store::archive::Received {
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(from_timestamp)
        .unwrap_or_else(Utc::now);
    store::archive::Received {
        event_id,
        event_type: event.r#type.clone(),
        occurred_at,
        aggregate_id: event.aggregate_id.clone(),
        aggregate_version: event.aggregate_version,
        envelope: event.encode_to_vec(),
        trace_id,
    }
}

impl<H: EventHandler> EventHandler for Archiving<H> {
    fn routing_keys(&self) -> &'static [&'static str] {
        if self.pool.is_some() {
            &["#"]
        } else {
            self.inner.routing_keys()
        }
    }

    async fn handle(&self, transaction: &mut PgConnection, event: &Envelope) -> anyhow::Result<()> {
        let handled = self.hand_on(transaction, event).await;
        let Some(pool) = &self.pool else {
            return handled;
        };
        // The inbox has read the id already: this cannot fail for an event it hands over.
        let event_id = event
            .event_id
            .parse()
            .context("the event's id is not a UUID")?;
        let row = received(event_id, event, trace_id_of(&tracing::Span::current()));
        match handled {
            Ok(()) => {
                store::archive::add(transaction, std::slice::from_ref(&row)).await?;
                Ok(())
            }
            Err(error) => {
                Self::record_alone(pool, row).await;
                Err(error)
            }
        }
    }

    /// `inner`'s work on each, and one insert for all into the archive.
    async fn handle_together(
        &self,
        transaction: &mut PgConnection,
        events: &[&Decoded],
    ) -> anyhow::Result<()> {
        for event in events {
            self.hand_on(transaction, &event.envelope)
                .instrument(event.span.clone())
                .await?;
        }
        if self.pool.is_some() {
            let rows: Vec<_> = events
                .iter()
                .map(|event| received(event.event_id, &event.envelope, trace_id_of(&event.span)))
                .collect();
            store::archive::add(transaction, &rows).await?;
        }
        Ok(())
    }
}

/// Reads a recorded event's payload for the archive: as JSON, named by the payload's field
/// (e.g. `{"booking_changed": {...}}`), without personal data.
pub struct PayloadReader {
    envelope: MessageDescriptor,
    hash_key: SecretString,
}

impl PayloadReader {
    /// Hashing personal data with `hash_key`.
    ///
    /// # Errors
    /// When the events' descriptors cannot be read (a build fault).
    pub fn new(hash_key: SecretString) -> anyhow::Result<Self> {
        let pool_of_types = DescriptorPool::decode(spruce_proto::FILE_DESCRIPTOR_SET)
            .context("failed to read the protobuf descriptors")?;
        let envelope = pool_of_types
            .get_message_by_name("spruce.events.v1.Envelope")
            .context("the descriptors lack spruce.events.v1.Envelope")?;
        Ok(PayloadReader { envelope, hash_key })
    }

    /// The row `event` becomes in the archive's files.
    ///
    /// # Errors
    /// When its envelope cannot be read.
    pub fn archived(&self, event: StoredEvent) -> anyhow::Result<ArchivedEvent> {
        let payload = match (event.payload, event.envelope) {
            (Some(payload), _) => payload,
            (None, Some(envelope)) => self.payload(&envelope)?,
            (None, None) => anyhow::bail!("event {} has no payload", event.event_id),
        };
        Ok(ArchivedEvent {
            event_id: event.event_id.to_string(),
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            aggregate_id: event.aggregate_id,
            aggregate_version: event.aggregate_version,
            payload,
            trace_id: event.trace_id,
        })
    }

    fn payload(&self, envelope: &[u8]) -> anyhow::Result<String> {
        let message = DynamicMessage::decode(self.envelope.clone(), envelope)
            .context("failed to read the envelope by its descriptor")?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .stringify_64_bit_integers(false);
        let mut json = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .context("failed to write the event as JSON")?;
        if let serde_json::Value::Object(fields) = &mut json {
            for header in [
                "event_id",
                "type",
                "occurred_at",
                "aggregate_id",
                "aggregate_version",
            ] {
                fields.remove(header);
            }
        }
        archive::redact(&mut json, self.hash_key.expose_secret().as_bytes());
        Ok(json.to_string())
    }
}

/// Where the archive's files are built.
#[derive(Debug, Clone, Default)]
pub enum FileWriter {
    /// In this process, on tokio's blocking threads.
    #[default]
    InProcess,
    /// By `<program> write-archive`, a child process started when files are due that ends
    /// once they are written. The memory building them takes goes back to the system with
    /// it, and the code that builds them never runs in the service (which would keep both:
    /// about 8 MB, BENCHMARKS.md).
    ChildProcess(PathBuf),
}

/// The subcommand of the scheduler's binary that writes the archive's files that are due
/// (`--everything`: all that waits) and ends; it ends too once its standard input closes.
pub const WRITE_ARCHIVE: &str = "write-archive";
/// [`WRITE_ARCHIVE`]'s flag for everything that waits.
pub const EVERYTHING: &str = "--everything";

/// Cuts waiting events into batches and writes the batches' files.
#[derive(Clone)]
pub struct Archiver {
    pool: PgPool,
    storage: Storage,
    settings: ArchiveSettings,
    writer: Writer,
}

#[derive(Clone)]
enum Writer {
    InProcess(Arc<PayloadReader>),
    Child(PathBuf),
}

impl Archiver {
    /// Archives from `pool` into `storage`, building files where `settings.writer` says.
    ///
    /// # Errors
    /// When the events' descriptors cannot be read (a build fault).
    pub fn new(pool: PgPool, storage: Storage, settings: ArchiveSettings) -> anyhow::Result<Self> {
        let writer = match &settings.writer {
            FileWriter::InProcess => {
                Writer::InProcess(Arc::new(PayloadReader::new(settings.hash_key.clone())?))
            }
            FileWriter::ChildProcess(program) => Writer::Child(program.clone()),
        };
        Ok(Archiver {
            pool,
            storage,
            settings,
            writer,
        })
    }

    /// Writes files as they come due until `shutdown` (which stops a writer midway: what it
    /// wrote stays written, the rest is written again).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(TICK);
        let mut pruned_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let flushed = tokio::select! {
                () = shutdown.cancelled() => return,
                flushed = self.flush(false) => flushed,
            };
            if let Err(error) = flushed {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "archiving failed, trying again"
                );
            }
            if pruned_at.elapsed() > Duration::from_secs(60) {
                pruned_at = tokio::time::Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::warn!(%error, "pruning archived events failed");
                }
            }
        }
    }

    /// Writes every batch whose files are not written yet, then cuts and writes new ones:
    /// all that waits when `everything`, otherwise only once `max_events` wait or the oldest
    /// has waited `max_age`. Returns how many events it wrote.
    ///
    /// # Errors
    /// When the database, the store or the writer fails; what is done stays done.
    pub async fn flush(&self, everything: bool) -> anyhow::Result<u64> {
        match &self.writer {
            Writer::InProcess(reader) => self.flush_here(reader, everything).await,
            Writer::Child(program) => self.flush_in_child(program, everything).await,
        }
    }

    async fn flush_here(
        &self,
        reader: &Arc<PayloadReader>,
        everything: bool,
    ) -> anyhow::Result<u64> {
        let mut written = self.write_unwritten(reader).await?;
        let limit = i64::from(self.settings.max_events);
        loop {
            let (waiting, oldest) =
                store::archive::waiting(&mut *self.pool.acquire().await?).await?;
            if waiting == 0 || !(everything || self.batch_due(waiting, oldest)) {
                return Ok(written);
            }
            let mut transaction = self.pool.begin().await?;
            let batch = store::archive::cut_batch(&mut transaction, limit).await?;
            transaction.commit().await?;
            if batch.is_none() {
                return Ok(written);
            }
            written += self.write_unwritten(reader).await?;
        }
    }

    /// Whether `waiting` events, the oldest received at `oldest`, make a batch.
    fn batch_due(&self, waiting: i64, oldest: Option<DateTime<Utc>>) -> bool {
        let too_old = oldest.is_some_and(|oldest| {
            Utc::now() - oldest
                >= chrono::Duration::from_std(self.settings.max_age).unwrap_or_default()
        });
        too_old || waiting >= i64::from(self.settings.max_events)
    }

    /// Starts `program write-archive` when files are due (always when `everything`) and
    /// waits for it; returns how many events were archived meanwhile.
    async fn flush_in_child(&self, program: &Path, everything: bool) -> anyhow::Result<u64> {
        let mut connection = self.pool.acquire().await?;
        if !everything && !store::archive::unwritten_waiting(&mut connection).await? {
            let (waiting, oldest) = store::archive::waiting(&mut connection).await?;
            if waiting == 0 || !self.batch_due(waiting, oldest) {
                return Ok(0);
            }
        }
        let started = store::archive::now(&mut connection).await?;
        drop(connection);
        let mut child = tokio::process::Command::new(program)
            .arg(WRITE_ARCHIVE)
            .args(everything.then_some(EVERYTHING))
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {}", program.display()))?;
        // The writer ends once this pipe closes: it never outlives the service.
        let lifeline = child.stdin.take();
        let status = child.wait().await?;
        drop(lifeline);
        anyhow::ensure!(status.success(), "the archive's writer ended with {status}");
        let archived =
            store::archive::archived_since(&mut *self.pool.acquire().await?, started).await?;
        Ok(u64::try_from(archived).unwrap_or_default())
    }

    /// Writes the files of every batch not written yet that nobody else is writing.
    async fn write_unwritten(&self, reader: &Arc<PayloadReader>) -> anyhow::Result<u64> {
        let mut written = 0;
        let mut connection = self.pool.acquire().await?;
        while let Some(batch) =
            store::archive::claim_unwritten(&mut connection, self.settings.write_lease).await?
        {
            let mut files = BatchFiles::new(batch);
            let mut count = 0;
            let mut groups = store::archive::events_of(&mut connection, batch)
                .try_chunks(archive::ROWS_PER_GROUP)
                .map_err(|TryChunksError(_, error)| error);
            while let Some(group) = groups.try_next().await? {
                count += group.len();
                let reader = Arc::clone(reader);
                files = tokio::task::spawn_blocking(move || {
                    let events = group
                        .into_iter()
                        .map(|event| reader.archived(event))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    files.add(&events)?;
                    anyhow::Ok(files)
                })
                .await??;
            }
            drop(groups);
            let files = tokio::task::spawn_blocking(move || files.finish()).await??;
            for (key, bytes) in files {
                self.storage
                    .put(&Key::new(key)?, Bytes::from(bytes))
                    .await?;
            }
            store::archive::mark_written(&mut connection, batch).await?;
            tracing::info!(batch, events = count, "analytics batch archived");
            written += count as u64;
        }
        Ok(written)
    }

    async fn prune(&self) -> sqlx::Result<u64> {
        store::archive::prune(&mut *self.pool.acquire().await?, self.settings.dedup_window).await
    }
}

/// `write-archive [--everything]` (started by the scheduler's archiver): writes the files
/// that are due, or all that waits, and ends; ends early, with an error, once its standard
/// input (a pipe) closes, as it does when the scheduler that started it has gone.
///
/// # Errors
/// When writing fails, or the scheduler has gone.
pub async fn write_archive(
    pool: PgPool,
    storage: Storage,
    mut settings: ArchiveSettings,
    everything: bool,
) -> anyhow::Result<()> {
    settings.writer = FileWriter::InProcess;
    let archiver = Archiver::new(pool, storage, settings)?;
    tokio::select! {
        written = archiver.flush(everything) => {
            tracing::info!(events = written?, "the archive's due files are written");
            Ok(())
        }
        () = input_closed() => anyhow::bail!("the scheduler that started this writer has gone"),
    }
}

/// Resolves once standard input is at its end, when it is a pipe (as the archiver starts
/// the writer); never otherwise (a terminal, or /dev/null when run by hand).
async fn input_closed() {
    use std::os::unix::fs::FileTypeExt as _;
    let piped = std::fs::metadata("/proc/self/fd/0").is_ok_and(|input| input.file_type().is_fifo());
    if !piped {
        return std::future::pending().await;
    }
    let (closed, is_closed) = oneshot::channel();
    let reader = std::thread::Builder::new()
        .name("stdin".to_owned())
        .spawn(move || {
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink()).ok();
            closed.send(()).ok();
        });
    if reader.is_ok() {
        is_closed.await.ok();
    } else {
        std::future::pending::<()>().await;
    }
}

/// `export-analytics`: writes everything waiting for the archive now.
pub struct ExportAnalytics {
    archiver: Archiver,
}

impl ExportAnalytics {
    /// Flushes through `archiver`.
    pub fn new(archiver: Archiver) -> Self {
        ExportAnalytics { archiver }
    }
}

impl Job for ExportAnalytics {
    fn run(&self, _context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let written = self.archiver.flush(true).await?;
            Ok(RunReport {
                items: written,
                detail: Some(format!("{written} events archived")),
            })
        })
    }
}
