//! The event bus over RabbitMQ (DESIGN.md §3.4): topology, the transactional outbox and its
//! relay, and the idempotent consumer with retry and parked queues.

mod consumer;
pub mod metrics;
mod outbox;
mod propagation;
mod republish;
#[cfg(feature = "testing")]
pub mod testing;
mod topology;
mod unrouted;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use lapin::{
    Channel, Connection, ConnectionProperties, options::ConfirmSelectOptions, types::FieldTable,
};
use secrecy::ExposeSecret;
use tokio::sync::watch;

pub use consumer::{
    Consumer, Decoded, EventHandler, EventSink, Failure, Inbox, Outcome, replay_parked,
};
pub use outbox::{OutboxRelay, enqueue, enqueue_guarded, enqueue_many, enqueue_with};
pub use spruce_proto::events::v1::Envelope;
pub use topology::{QueueNames, topic_matches, unrouted_name};
pub use unrouted::replay_unrouted;

use spruce_platform::settings::BusSettings;

/// `content_type` of every event message.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Whether a bus client holds a working broker connection now, whether it ever did
/// (a consumer's queues are then declared and bound), and how many times it has subscribed.
/// Reported as the gauge `messaging_broker_connected{client}`.
#[derive(Debug, Clone)]
pub struct BusStatus {
    client: Arc<str>,
    connected: Arc<AtomicBool>,
    ever: Arc<AtomicBool>,
    subscriptions: Arc<watch::Sender<u64>>,
}

impl BusStatus {
    /// A readiness check that passes once the client has been connected (a consumer's
    /// queues declared and bound) at least once since it started: an event published before
    /// then would miss this service's queue. A later broker outage does not make it unready.
    pub fn readiness(&self) -> spruce_platform::ops::ReadinessCheck {
        let status = self.clone();
        spruce_platform::ops::ReadinessCheck::new("rabbitmq", move || {
            let subscribed = status.has_connected();
            async move {
                if subscribed {
                    Ok(())
                } else {
                    Err("queues not bound yet".to_owned())
                }
            }
        })
    }

    fn new(client: &str) -> Self {
        let status = BusStatus {
            client: client.into(),
            connected: Arc::default(),
            ever: Arc::default(),
            subscriptions: Arc::new(watch::Sender::new(0)),
        };
        status.set_connected(false);
        status
    }

    /// Returns whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Returns whether the client has been connected at least once since it started.
    pub fn has_connected(&self) -> bool {
        self.ever.load(Ordering::Relaxed)
    }

    /// Counts the consumer's subscriptions (0 before the first): each one starts after its
    /// queues are declared and bound. A replica's queue lives as long as its connection
    /// ([`Consumer::for_replica`]), so what was published between two subscriptions never
    /// reached it: its owner reloads its state after each one. The count never skips a
    /// subscription, however quickly a connection is lost and made again.
    pub fn subscriptions(&self) -> watch::Receiver<u64> {
        self.subscriptions.subscribe()
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
        if connected {
            self.ever.store(true, Ordering::Relaxed);
            self.subscriptions.send_modify(|count| *count += 1);
        }
        metrics::MESSAGING_BROKER_CONNECTED
            .with_label_values(&[&*self.client])
            .set(i64::from(connected));
    }
}

/// Builds an envelope with a fresh event id, stamped now.
pub fn envelope(
    event_type: &str,
    aggregate_id: uuid::Uuid,
    aggregate_version: i64,
    payload: spruce_proto::events::v1::envelope::Payload,
) -> Envelope {
    let now = chrono::Utc::now();
    Envelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        r#type: event_type.to_owned(),
        occurred_at: Some(spruce_platform::time::to_timestamp(now)),
        aggregate_id: aggregate_id.to_string(),
        aggregate_version,
        payload: Some(payload),
    }
}

/// Deletes the exchange named in `settings`, its alternate exchange and unrouted queue; for
/// test harnesses that made their own.
///
/// # Errors
/// Fails when the broker cannot be reached.
pub async fn delete_exchange(settings: &BusSettings) -> anyhow::Result<()> {
    let (connection, channel) = open_channel(settings, "teardown").await?;
    let unrouted = unrouted_name(&settings.exchange);
    for exchange in [settings.exchange.as_str(), unrouted.as_str()] {
        channel
            .exchange_delete(
                exchange.into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await?;
    }
    channel
        .queue_delete(
            unrouted.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await?;
    connection.close(200, "teardown done".into()).await.ok();
    Ok(())
}

/// Retires the queues `names` of a consumer that is gone: unbinds the main queue from the
/// exchange's `routing_keys`, so that nothing more arrives, and deletes each queue that is
/// empty. Returns the queues left because they still hold messages, with their counts.
///
/// The retry queues go first: what they hold returns to the main queue, which is kept while
/// any of them is. Quorum queues cannot be deleted "if empty", so each is counted first.
///
/// # Errors
/// Fails when the broker cannot be reached.
pub async fn retire_queues(
    settings: &BusSettings,
    names: &QueueNames,
    routing_keys: &[&str],
) -> anyhow::Result<Vec<(String, u32)>> {
    let (connection, _) = open_channel(settings, "retire-queues").await?;
    let mut kept = Vec::new();
    let queues = names.retries.iter().chain([&names.parked, &names.main]);
    for queue in queues {
        // A channel each: asking for a queue that is not there closes its channel.
        let channel = connection.create_channel().await?;
        if republish::waiting_in(&channel, queue).await.is_err() {
            continue;
        }
        if *queue == names.main {
            for routing_key in routing_keys {
                channel
                    .queue_unbind(
                        queue.as_str().into(),
                        settings.exchange.as_str().into(),
                        (*routing_key).into(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        let held = republish::waiting_in(&channel, queue).await?;
        let feeds_main = kept.iter().any(|(name, _)| names.retries.contains(name));
        if held > 0 || (*queue == names.main && feeds_main) {
            kept.push((queue.clone(), held));
        } else {
            channel
                .queue_delete(
                    queue.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await?;
        }
    }
    connection.close(200, "retired".into()).await.ok();
    Ok(kept)
}

/// The largest AMQP frame a connection proposes, unless its URL sets `frame_max`: the
/// smallest lapin allows. lapin keeps a zero-filled buffer of 32 frames each way per
/// connection: at the broker's default (128 KiB) that is 8 MiB resident a connection, at
/// this 512 KiB. An event is a few KiB; a larger message is split into frames.
const FRAME_MAX: u32 = 8 * 1024;

/// Opens a connection and a channel with publisher confirms enabled.
async fn open_channel(settings: &BusSettings, name: &str) -> lapin::Result<(Connection, Channel)> {
    let properties = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    let mut uri: lapin::uri::AMQPUri = settings
        .url
        .expose_secret()
        .parse()
        .map_err(|error: String| lapin::Error::from(std::io::Error::other(error)))?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    let connection = Connection::connect_uri(uri, properties).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok((connection, channel))
}

/// How often the outbox relay and an inbox consumer delete what is past its retention, and
/// how many rows one statement deletes, so that no statement holds many locks.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 5_000;

/// Runs `batch`, a statement deleting at most [`PRUNE_BATCH`] rows, until it deletes fewer;
/// returns how many it deleted in all.
async fn delete_in_batches<F, Batch>(mut batch: F) -> sqlx::Result<u64>
where
    F: FnMut() -> Batch,
    Batch: std::future::Future<Output = sqlx::Result<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < PRUNE_BATCH.unsigned_abs() {
            return Ok(total);
        }
    }
}

/// Exponential backoff between reconnection attempts, capped.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(10);

    /// Starts at the first delay (200 ms).
    pub fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Returns the delay before the next attempt: doubling, at most 10 s.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}
