//! The read model as the running service holds it: loaded from core's snapshot once the
//! event queue is bound, then kept current by events, swept of old bookings on a clock.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::Utc;
use spruce_platform::{
    auth::ServiceTokenSigner,
    bus::{Backoff, BusStatus, Envelope, EventSink, Failure, Outcome},
    grpc::request_with_token,
    time::from_timestamp,
};
use spruce_proto::{
    core::v1::{
        StreamBookingPairsRequest, StreamCleanersRequest,
        read_model_service_client::ReadModelServiceClient,
    },
    events::v1::envelope::Payload,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{
    cache::AffinityCache,
    domain::readmodel::{Applied, ReadModel, SnapshotBuilder},
    error::SearchError,
    metrics::{EVENT_LAG_SECONDS, READ_MODEL_BOOKINGS, READ_MODEL_CLEANERS, SNAPSHOT_LOAD_SECONDS},
    wire,
};

/// The shared read model and whether it is loaded.
pub struct LiveModel {
    model: RwLock<ReadModel>,
    loaded: watch::Sender<bool>,
}

impl LiveModel {
    /// An empty model, not loaded.
    pub fn new() -> Arc<Self> {
        Arc::new(LiveModel {
            model: RwLock::new(ReadModel::default()),
            loaded: watch::Sender::new(false),
        })
    }

    /// Whether the snapshot is in.
    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Runs `read` on the model.
    ///
    /// # Errors
    /// [`SearchError::NotReady`] until the snapshot is in.
    pub fn read<R>(&self, read: impl FnOnce(&ReadModel) -> R) -> Result<R, SearchError> {
        if !self.is_loaded() {
            return Err(SearchError::NotReady);
        }
        let model = self
            .model
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok(read(&model))
    }

    fn write<R>(&self, write: impl FnOnce(&mut ReadModel) -> R) -> R {
        let mut model = self
            .model
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let result = write(&mut model);
        READ_MODEL_CLEANERS.set(i64::try_from(model.index().len()).unwrap_or(i64::MAX));
        READ_MODEL_BOOKINGS.set(i64::try_from(model.bookings_len()).unwrap_or(i64::MAX));
        result
    }

    fn replace(&self, loaded: ReadModel) {
        self.write(|model| *model = loaded);
        self.loaded.send_replace(true);
    }

    async fn wait_until_loaded(&self) {
        let mut loaded = self.loaded.subscribe();
        // The sender lives as long as self, so this cannot fail.
        loaded.wait_for(|loaded| *loaded).await.ok();
    }
}

/// Applies `cleaner.updated`, `booking.*` and `user.deleted` to the model, once it is loaded (until then
/// deliveries wait, and the queue holds the rest); a booking change also forgets its
/// customer's cached affinities.
pub struct ReadModelEvents {
    live: Arc<LiveModel>,
    cache: AffinityCache,
}

impl ReadModelEvents {
    /// Applies events to `live`, forgetting what `cache` holds for customers who booked.
    pub fn new(live: Arc<LiveModel>, cache: AffinityCache) -> Self {
        ReadModelEvents { live, cache }
    }
}

impl EventSink for ReadModelEvents {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["cleaner.updated", "booking.*", "user.deleted"]
    }

    async fn apply(&self, _event_id: Uuid, event: &Envelope) -> Result<Outcome, Failure> {
        self.live.wait_until_loaded().await;
        let version = event.aggregate_version;
        let applied = match &event.payload {
            Some(Payload::CleanerUpdated(updated)) if !updated.listed => {
                let id = updated
                    .cleaner_id
                    .parse()
                    .map_err(|error| Failure::Permanent(anyhow::anyhow!("cleaner_id: {error}")))?;
                self.live.write(|model| model.withdraw_cleaner(version, id))
            }
            Some(Payload::CleanerUpdated(updated)) => {
                let cleaner = wire::cleaner(updated).map_err(Failure::Permanent)?;
                self.live
                    .write(|model| model.apply_cleaner(version, cleaner))
            }
            Some(Payload::UserDeleted(deleted)) => {
                let id: Uuid = deleted
                    .user_id
                    .parse()
                    .map_err(|error| Failure::Permanent(anyhow::anyhow!("user_id: {error}")))?;
                let cache = self.cache.clone();
                tokio::spawn(async move { cache.forget(id).await });
                if deleted.role != "cleaner" {
                    return Ok(Outcome::Applied);
                }
                // Gone for good: no later profile version may list them again.
                self.live
                    .write(|model| model.withdraw_cleaner(i64::MAX, id))
            }
            Some(Payload::BookingChanged(changed)) => {
                let (id, booking, pair) =
                    wire::booking_change(changed, version).map_err(Failure::Permanent)?;
                let (held, counted) = self.live.write(|model| {
                    (
                        model.apply_booking(id, booking, Utc::now()),
                        model.apply_pair(id, pair),
                    )
                });
                if counted == Applied::Changed {
                    // In the background: a slow or unreachable Redis must not hold back the
                    // read model (the TTL bounds a forget that fails).
                    let cache = self.cache.clone();
                    tokio::spawn(async move { cache.forget(pair.customer_id).await });
                }
                if held == Applied::Changed || counted == Applied::Changed {
                    Applied::Changed
                } else {
                    Applied::Stale
                }
            }
            other => {
                return Err(Failure::Permanent(anyhow::anyhow!(
                    "event {} of type {} has an unexpected payload {other:?}",
                    event.event_id,
                    event.r#type
                )));
            }
        };
        if let Some(occurred) = event.occurred_at.as_ref().and_then(from_timestamp) {
            let lag = (Utc::now() - occurred).num_milliseconds().max(0);
            EVENT_LAG_SECONDS.observe(lag as f64 / 1_000.0);
        }
        Ok(match applied {
            Applied::Changed => Outcome::Applied,
            Applied::Stale => Outcome::Duplicate,
        })
    }
}

/// Loads the model once the event queue is bound (so nothing that changes meanwhile is
/// missed), retrying while core is unreachable, then sweeps old bookings every
/// `prune_interval` until `shutdown`.
pub async fn maintain(
    live: Arc<LiveModel>,
    core: ReadModelServiceClient<Channel>,
    signer: ServiceTokenSigner,
    subscribed: BusStatus,
    prune_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new();
    while !subscribed.is_connected() {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    loop {
        let started = Instant::now();
        let loaded = tokio::select! {
            () = shutdown.cancelled() => return,
            loaded = load_snapshot(core.clone(), &signer) => loaded,
        };
        match loaded {
            Ok(model) => {
                let cleaners = model.index().len();
                live.replace(model);
                let seconds = started.elapsed().as_secs_f64();
                SNAPSHOT_LOAD_SECONDS.set(seconds);
                tracing::info!(cleaners, seconds, "read model loaded from core's snapshot");
                break;
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot load the snapshot from core, retrying"
                );
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    let mut sweeps = tokio::time::interval(prune_interval);
    sweeps.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = sweeps.tick() => {
                let forgotten = live.write(|model| model.prune(Utc::now()));
                tracing::debug!(forgotten, "swept bookings that ended");
            }
        }
    }
}

/// Streams every cleaner from core and builds the model from them.
async fn load_snapshot(
    mut core: ReadModelServiceClient<Channel>,
    signer: &ServiceTokenSigner,
) -> anyhow::Result<ReadModel> {
    let token = signer
        .token("core")
        .context("cannot sign search's service token")?;
    let mut stream = core
        .stream_cleaners(request_with_token(StreamCleanersRequest {}, &token))
        .await
        .context("core refused the snapshot")?
        .into_inner();
    let mut builder = SnapshotBuilder::default();
    let mut skipped = 0_u64;
    while let Some(batch) = stream
        .message()
        .await
        .context("the snapshot stream broke")?
    {
        for state in &batch.cleaners {
            match wire::cleaner_state(state) {
                Ok(Some((cleaner, bookings))) => builder.add(state.version, cleaner, bookings),
                Ok(None) => {}
                Err(error) => {
                    // One bad record must not keep every other cleaner unsearchable.
                    skipped += 1;
                    tracing::error!(
                        error = format!("{error:#}"),
                        "skipped a cleaner core sent that search cannot read"
                    );
                }
            }
        }
    }
    let token = signer
        .token("core")
        .context("cannot sign search's service token")?;
    let mut stream = core
        .stream_booking_pairs(request_with_token(StreamBookingPairsRequest {}, &token))
        .await
        .context("core refused the booking history")?
        .into_inner();
    while let Some(batch) = stream
        .message()
        .await
        .context("the booking history stream broke")?
    {
        for pair in &batch.pairs {
            match wire::snapshot_pair(pair) {
                Ok((id, pair)) => builder.add_pair(id, pair),
                Err(error) => {
                    skipped += 1;
                    tracing::error!(
                        error = format!("{error:#}"),
                        "skipped a booking core sent that search cannot read"
                    );
                }
            }
        }
    }
    if skipped > 0 {
        tracing::error!(skipped, "records left out of the read model");
    }
    Ok(builder.finish())
}
