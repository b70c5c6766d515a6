//! The read model as the running service holds it: loaded from core's snapshot once the
//! event queue is bound, then kept current by events (each applied at most once, by its
//! aggregate's version), swept of old bookings on a clock. The queue lives as long as the
//! replica's broker connection, so the snapshot is loaded again after every new
//! subscription: what was published in between never reached this replica.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use spruce_bus::{Backoff, BusStatus};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        cleaner::Cleaner,
        readmodel::{Applied, Booking, ReadModel},
        recommend::Pair,
    },
    error::SearchError,
    metrics::{READ_MODEL_BOOKINGS, READ_MODEL_CLEANERS, SNAPSHOT_LOAD_SECONDS},
    store::cache::AffinityCache,
    upstream::CoreReadModel,
};

/// The shared read model, whether it was ever loaded (reads are answered from then on) and
/// whether it was loaded since the latest subscription (events are applied only then).
pub struct LiveModel {
    model: RwLock<ReadModel>,
    loaded: watch::Sender<bool>,
    current: watch::Sender<bool>,
}

impl LiveModel {
    /// An empty model, not loaded.
    pub fn new() -> Arc<Self> {
        Arc::new(LiveModel {
            model: RwLock::new(ReadModel::default()),
            loaded: watch::Sender::new(false),
            current: watch::Sender::new(false),
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
        self.current.send_replace(true);
    }

    /// Holds events back until the next snapshot is in; reads go on from the model held.
    fn fall_behind(&self) {
        self.current.send_replace(false);
    }

    /// Waits until the snapshot taken since the latest subscription is in.
    pub async fn wait_until_current(&self) {
        let mut current = self.current.subscribe();
        // The sender lives as long as self, so this cannot fail.
        current.wait_for(|current| *current).await.ok();
    }
}

/// What the events change in the read model; a booking change also forgets its customer's
/// cached affinities.
pub struct ReadModelUpdates {
    live: Arc<LiveModel>,
    cache: AffinityCache,
}

impl ReadModelUpdates {
    /// Changes `live`, forgetting what `cache` holds for customers whose bookings change.
    pub fn new(live: Arc<LiveModel>, cache: AffinityCache) -> Self {
        ReadModelUpdates { live, cache }
    }

    /// Waits until the snapshot taken since the latest subscription is in: events wait
    /// meanwhile (the queue holds the rest), as applied to the model held they would be lost
    /// when the snapshot replaces it.
    pub async fn wait_until_current(&self) {
        self.live.wait_until_current().await;
    }

    /// A cleaner's profile at `version`.
    pub fn cleaner_updated(&self, version: i64, cleaner: Cleaner) -> Applied {
        self.live
            .write(|model| model.apply_cleaner(version, cleaner))
    }

    /// A cleaner unlisted at `version`.
    pub fn cleaner_withdrawn(&self, version: i64, id: Uuid) -> Applied {
        self.live.write(|model| model.withdraw_cleaner(version, id))
    }

    /// A user deleted: their cached affinities forgotten, and a cleaner gone for good (no
    /// later profile version may list them again).
    pub fn user_deleted(&self, id: Uuid, was_cleaner: bool) -> Applied {
        self.forget_affinities(id);
        if was_cleaner {
            self.live
                .write(|model| model.withdraw_cleaner(i64::MAX, id))
        } else {
            Applied::Changed
        }
    }

    /// A booking's new state: the time it holds and who booked whom.
    pub fn booking_changed(&self, id: Uuid, booking: Booking, pair: Pair) -> Applied {
        let (held, counted) = self.live.write(|model| {
            (
                model.apply_booking(id, booking, Utc::now()),
                model.apply_pair(id, pair),
            )
        });
        if counted == Applied::Changed {
            self.forget_affinities(pair.customer_id);
        }
        if held == Applied::Changed || counted == Applied::Changed {
            Applied::Changed
        } else {
            Applied::Stale
        }
    }

    /// In the background: a slow or unreachable Redis must not hold back the read model
    /// (the TTL bounds a forget that fails).
    fn forget_affinities(&self, customer_id: Uuid) {
        let cache = self.cache.clone();
        tokio::spawn(async move { cache.forget(customer_id).await });
    }
}

/// Loads the model from core's snapshot after every subscription of the event queue (so
/// nothing that changes meanwhile is missed), retrying while core is unreachable, and sweeps
/// old bookings every `prune_interval` once loaded, until `shutdown`.
pub async fn maintain(
    live: Arc<LiveModel>,
    core: CoreReadModel,
    subscribed: BusStatus,
    prune_interval: Duration,
    shutdown: CancellationToken,
) {
    let mut subscriptions = subscribed.subscriptions();
    // The consumer may have subscribed before this looks: the count it holds counts too.
    subscriptions.mark_changed();
    let mut sweeps = tokio::time::interval(prune_interval);
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = subscriptions.changed() => {
                // `subscribed` keeps the sender alive, so this cannot fail.
                if changed.is_err() {
                    return;
                }
                let subscription = *subscriptions.borrow_and_update();
                if subscription == 0 {
                    continue;
                }
                live.fall_behind();
                if !load(&live, &core, subscription, &shutdown).await {
                    return;
                }
            }
            _ = sweeps.tick(), if live.is_loaded() => {
                let forgotten = live.write(|model| model.prune(Utc::now()));
                tracing::debug!(forgotten, "swept bookings that ended");
            }
        }
    }
}

/// Loads core's snapshot into `live`, retrying with backoff; false when `shutdown` came
/// first.
async fn load(
    live: &LiveModel,
    core: &CoreReadModel,
    subscription: u64,
    shutdown: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::new();
    loop {
        let started = Instant::now();
        let loaded = tokio::select! {
            () = shutdown.cancelled() => return false,
            loaded = core.snapshot() => loaded,
        };
        match loaded {
            Ok(model) => {
                let cleaners = model.index().len();
                live.replace(model);
                let seconds = started.elapsed().as_secs_f64();
                SNAPSHOT_LOAD_SECONDS.set(seconds);
                tracing::info!(
                    cleaners,
                    seconds,
                    subscription,
                    "read model loaded from core's snapshot"
                );
                return true;
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot load the snapshot from core, retrying"
                );
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
}
