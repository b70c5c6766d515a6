//! The idempotent event consumer: manual acks after the event was applied (a batch at a
//! time under load), bounded prefetch, retries through delay queues, parking after the last
//! attempt. Events go to an [`EventSink`]: usually an [`Inbox`], which applies each in a
//! database transaction with a record (`processed_events`) that makes a redelivered event a
//! no-op, the deliveries already waiting in one transaction together, and which it forgets
//! after the retention; a service whose state lives in memory brings a sink of its own that
//! skips stale events by version.

use std::{
    collections::HashSet,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};
use futures_util::{FutureExt as _, StreamExt as _};
use lapin::{
    Acker, Channel, Connection,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    Backoff, BusStatus, Envelope, PRUNE_BATCH, PRUNE_INTERVAL, QueueNames, delete_in_batches,
    open_channel, republish, topology,
};
use crate::{
    metrics::{MESSAGING_FAILURES, MESSAGING_PROCESS_DURATION, MESSAGING_QUEUE_READY},
    propagation,
};
use spruce_platform::settings::BusSettings;

/// Longest error text carried in the `x-error` header.
const MAX_ERROR_LENGTH: usize = 1_000;

/// The outcomes of a failed event in `messaging_failures_total`.
const RETRIED: &str = "retried";
const PARKED: &str = "parked";

/// Applies events to a service's own database.
pub trait EventHandler: Send + Sync + 'static {
    /// The routing keys (event types) this handler wants.
    fn routing_keys(&self) -> &'static [&'static str];

    /// Applies `event` inside `transaction`, which commits only if this returns `Ok`, together
    /// with the record that the event was processed.
    fn handle(
        &self,
        transaction: &mut PgConnection,
        event: &Envelope,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Applies `events` (deliveries that were already waiting, none of them seen before) in
    /// order inside `transaction`, each inside its own span; the transaction commits only
    /// if this returns `Ok`, and otherwise each is applied again alone through
    /// [`EventHandler::handle`]. The default hands each to `handle`; a handler that can
    /// apply several in fewer statements does so here.
    fn handle_together(
        &self,
        transaction: &mut PgConnection,
        events: &[&Decoded],
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        async move {
            for event in events {
                self.handle(transaction, &event.envelope)
                    .instrument(event.span.clone())
                    .await?;
            }
            Ok(())
        }
    }
}

/// What became of an event a sink was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Seen before, or older than what is held: nothing to do.
    Duplicate,
}

impl Outcome {
    /// The outcome label of `messaging_process_duration_seconds`.
    fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "ok",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// Why an event failed: retried, or parked at once when retrying cannot help.
#[derive(Debug)]
pub enum Failure {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

/// Where a consumer's events go.
pub trait EventSink: Send + Sync + 'static {
    /// The routing keys (event types) this sink wants.
    fn routing_keys(&self) -> &'static [&'static str];

    /// Applies `event` (whose id is `event_id`); the delivery is acknowledged afterwards
    /// whatever the result, a failure being retried or parked first.
    fn apply(
        &self,
        event_id: Uuid,
        event: &Envelope,
    ) -> impl Future<Output = Result<Outcome, Failure>> + Send;

    /// Applies `events` (deliveries that were already waiting) together, in order, each
    /// inside its own span; `None` when they must go one by one through
    /// [`EventSink::apply`] instead, where each failure is retried or parked on its own.
    /// That is the default, and an [`Inbox`]'s answer once any of them failed (their shared
    /// transaction then rolled back, so none was applied).
    fn apply_together(
        &self,
        events: &[Decoded],
    ) -> impl Future<Output = Option<Vec<Outcome>>> + Send {
        let _ = events;
        async { None }
    }

    /// Forgets what it keeps to recognise redeliveries of events applied longer than
    /// `retention` ago; returns how many it forgot. By default it keeps nothing.
    fn prune(&self, retention: Duration) -> impl Future<Output = anyhow::Result<u64>> + Send {
        let _ = retention;
        async { Ok(0) }
    }
}

/// A delivery read as an event, with the span its processing is recorded in.
pub struct Decoded {
    pub event_id: Uuid,
    pub envelope: Envelope,
    pub span: tracing::Span,
}

/// Applies each event with an [`EventHandler`] in a transaction of `pool` that also records
/// its id, so that each is applied once.
pub struct Inbox<H> {
    pool: PgPool,
    handler: H,
}

impl<H: EventHandler> EventSink for Inbox<H> {
    fn routing_keys(&self) -> &'static [&'static str] {
        self.handler.routing_keys()
    }

    async fn apply(&self, event_id: Uuid, envelope: &Envelope) -> Result<Outcome, Failure> {
        let mut transaction = self.pool.begin().await.map_err(transient)?;
        let outcome = self.apply_in(&mut transaction, event_id, envelope).await?;
        if outcome == Outcome::Applied {
            transaction.commit().await.map_err(transient)?;
        }
        Ok(outcome)
    }

    /// One transaction for all: one statement records them processed, then the handler
    /// applies those not seen before, and one commit (one flush of the log) ends the burst.
    async fn apply_together(&self, events: &[Decoded]) -> Option<Vec<Outcome>> {
        let mut transaction = self.pool.begin().await.ok()?;
        let mut ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
        // Each blocks on a concurrent copy of the same event until that one commits or
        // rolls back, taken in one order so that two bursts never wait on each other; an id
        // twice in the burst is recorded once.
        ids.sort_unstable();
        let fresh: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO processed_events (event_id) SELECT * FROM unnest($1::uuid[]) \
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(&ids)
        .fetch_all(&mut *transaction)
        .await
        .ok()?;
        let mut fresh: HashSet<Uuid> = fresh.into_iter().collect();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut applied = Vec::with_capacity(events.len());
        for event in events {
            if fresh.remove(&event.event_id) {
                outcomes.push(Outcome::Applied);
                applied.push(event);
            } else {
                let _entered = event.span.enter();
                tracing::debug!(event_id = %event.event_id, "event already processed");
                outcomes.push(Outcome::Duplicate);
            }
        }
        self.handler
            .handle_together(&mut transaction, &applied)
            .await
            .ok()?;
        transaction.commit().await.ok()?;
        Some(outcomes)
    }

    /// Deletes the records of events processed before `retention`, a batch per statement.
    /// `processed_at` follows insertion order, which a BRIN index on it (the consuming
    /// service's migration) turns into a short scan.
    async fn prune(&self, retention: Duration) -> anyhow::Result<u64> {
        let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        let forgotten = delete_in_batches(|| async {
            Ok(sqlx::query(
                "DELETE FROM processed_events WHERE ctid = ANY(ARRAY( \
                     SELECT ctid FROM processed_events \
                     WHERE processed_at < now() - $1 * interval '1 second' LIMIT $2))",
            )
            .persistent(false)
            .bind(retention)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected())
        })
        .await?;
        Ok(forgotten)
    }
}

fn transient(error: sqlx::Error) -> Failure {
    Failure::Transient(error.into())
}

impl<H: EventHandler> Inbox<H> {
    /// Records `event_id` as processed and applies the event, inside `transaction`; a
    /// recorded one is a duplicate and changes nothing.
    async fn apply_in(
        &self,
        transaction: &mut PgConnection,
        event_id: Uuid,
        envelope: &Envelope,
    ) -> Result<Outcome, Failure> {
        // Blocks on a concurrent copy of the same event until that one commits or rolls back.
        let inserted = sqlx::query(
            "INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(event_id)
        .execute(&mut *transaction)
        .await
        .map_err(transient)?;
        if inserted.rows_affected() == 0 {
            tracing::debug!(event_id = %event_id, "event already processed");
            return Ok(Outcome::Duplicate);
        }
        self.handler
            .handle(transaction, envelope)
            .await
            .map_err(Failure::Transient)?;
        Ok(Outcome::Applied)
    }
}

/// Consumes a service's queue and hands each event to its sink.
pub struct Consumer<S> {
    settings: BusSettings,
    names: QueueNames,
    sink: Arc<S>,
    status: BusStatus,
    replica: bool,
}

impl<H: EventHandler> Consumer<Inbox<H>> {
    /// Creates a consumer for the queues of `settings.queue_prefix` that applies each event
    /// once with `handler`, in a transaction of `pool`.
    pub fn new(pool: PgPool, settings: BusSettings, handler: H) -> Self {
        Consumer::with_sink(settings, Inbox { pool, handler })
    }
}

impl<S: EventSink> Consumer<S> {
    /// Creates a consumer for the queues of `settings.queue_prefix` that hands events to
    /// `sink`.
    pub fn with_sink(settings: BusSettings, sink: S) -> Self {
        let names = QueueNames::new(&settings.queue_prefix, settings.retry_delays.len());
        Self::build(settings, names, sink, false)
    }

    /// Creates a consumer for one replica of a service that keeps its state in memory, each
    /// replica needing every event: it consumes a queue of its own
    /// ([`QueueNames::replica`]) that lives only as long as its broker connection. So
    /// nothing is kept for a replica that is gone, and a replica misses what is published
    /// while it reconnects: its owner reloads its state after every subscription
    /// ([`BusStatus::subscriptions`]). A failed event is parked at once, in the parked
    /// queue the replicas share.
    pub fn for_replica(settings: BusSettings, replica: &str, sink: S) -> Self {
        let names = QueueNames::replica(&settings.queue_prefix, replica);
        Self::build(settings, names, sink, true)
    }

    fn build(settings: BusSettings, names: QueueNames, sink: S, replica: bool) -> Self {
        // From zero: the first failure is a rise `rate()` sees, and the series is there to
        // find before anything failed.
        for outcome in [RETRIED, PARKED] {
            MESSAGING_FAILURES.with_label_values(&[names.main.as_str(), outcome]);
        }
        let status = BusStatus::new(&names.main);
        Consumer {
            settings,
            names,
            sink: Arc::new(sink),
            status,
            replica,
        }
    }

    /// Returns the consumer's broker connection status.
    pub fn status(&self) -> BusStatus {
        self.status.clone()
    }

    /// Returns the names of the queues this consumer uses.
    pub fn queue_names(&self) -> &QueueNames {
        &self.names
    }

    /// Consumes until `shutdown` is cancelled, reconnecting with backoff. Each connection
    /// re-declares the topology, so a broker that lost it gets it back.
    /// Meanwhile, once a minute, the sink forgets what it keeps of events applied longer
    /// ago than `bus.outbox_retention` (their outbox rows, which a redelivery could come
    /// from, are gone by then).
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(self.consume_loop(&shutdown), self.prune_loop(&shutdown));
    }

    async fn prune_loop(&self, shutdown: &CancellationToken) {
        loop {
            match self.sink.prune(self.settings.outbox_retention).await {
                Ok(0) => {}
                Ok(forgotten) => {
                    tracing::info!(queue = %self.names.main, forgotten, "processed events past their retention forgotten");
                }
                Err(error) => {
                    tracing::warn!(queue = %self.names.main, error = format!("{error:#}"), "forgetting processed events failed, will try again");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            }
        }
    }

    async fn consume_loop(&self, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new();
        while !shutdown.is_cancelled() {
            match open_channel(&self.settings, &self.names.connection_name()).await {
                Ok((connection, channel)) => {
                    let outcome = self
                        .consume_until_failure(&connection, &channel, shutdown, &mut backoff)
                        .await;
                    self.status.set_connected(false);
                    if let Err(error) = outcome {
                        tracing::warn!(queue = %self.names.main, error = format!("{error:#}"), "consumer lost the broker, reconnecting");
                    }
                    connection.close(200, "consumer stopping".into()).await.ok();
                }
                Err(error) => {
                    tracing::warn!(queue = %self.names.main, %error, "consumer cannot reach the broker")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    async fn consume_until_failure(
        &self,
        connection: &Connection,
        channel: &Channel,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        topology::declare_consumer_topology(
            connection,
            channel,
            &self.settings,
            &self.names,
            self.sink.routing_keys(),
            self.replica,
        )
        .await
        .context("failed to declare topology")?;
        channel
            .basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await?;
        let mut deliveries = channel
            .basic_consume(
                self.names.main.as_str().into(),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.status.set_connected(true);
        backoff.reset();
        tracing::info!(queue = %self.names.main, "consuming events");
        let mut stats = tokio::time::interval(self.settings.queue_stats);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unacked = Unacked::default();
        let batch = (self.settings.prefetch / 2).max(1);
        loop {
            if shutdown.is_cancelled() {
                unacked.flush().await?;
                return Ok(());
            }
            if stats.tick().now_or_never().is_some() {
                self.report_waiting(channel).await?;
            }
            // A delivery already here is handled at once; before waiting for the next, what
            // was handled is acknowledged.
            let next = match deliveries.next().now_or_never() {
                Some(next) => next,
                None => {
                    unacked.flush().await?;
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        _ = stats.tick() => {
                            self.report_waiting(channel).await?;
                            continue;
                        }
                        next = deliveries.next() => next,
                    }
                }
            };
            // The deliveries already here are handled together, up to half the prefetch; a
            // stream that failed or ended meanwhile is reported after them.
            let mut waiting = Vec::new();
            let mut ended = None;
            let mut item = next;
            loop {
                match item {
                    Some(Ok(delivery)) => waiting.push(delivery),
                    Some(Err(error)) => {
                        ended = Some(anyhow::Error::from(error));
                        break;
                    }
                    None => {
                        ended = Some(anyhow!("the broker cancelled the consumer"));
                        break;
                    }
                }
                if waiting.len() >= usize::from(batch) {
                    break;
                }
                match deliveries.next().now_or_never() {
                    Some(more) => item = more,
                    None => break,
                }
            }
            for acker in self.process_all(channel, waiting).await? {
                unacked.hold(acker);
                if unacked.count >= batch {
                    unacked.flush().await?;
                }
            }
            if let Some(error) = ended {
                return Err(error);
            }
        }
    }

    /// Sets `messaging_queue_messages_ready` for the queue and its parked queue: the alerts
    /// on parked events and consumer lag read it, wherever the broker runs.
    async fn report_waiting(&self, channel: &Channel) -> lapin::Result<()> {
        for queue in [&self.names.main, &self.names.parked] {
            let waiting = republish::waiting_in(channel, queue).await?;
            MESSAGING_QUEUE_READY
                .with_label_values(&[queue.as_str()])
                .set(i64::from(waiting));
        }
        Ok(())
    }

    /// Handles `waiting` in order and returns their acknowledgers: together when there are
    /// several and the sink can, else one by one.
    async fn process_all(
        &self,
        channel: &Channel,
        waiting: Vec<Delivery>,
    ) -> anyhow::Result<Vec<Acker>> {
        if waiting.len() > 1 {
            let started = Instant::now();
            let decoded: Option<Vec<Decoded>> = waiting.iter().map(|d| self.decode(d)).collect();
            let applied = match &decoded {
                Some(events) => self.sink.apply_together(events).await,
                None => None,
            };
            if let Some(outcomes) = applied {
                let elapsed = started.elapsed().as_secs_f64();
                for outcome in outcomes {
                    MESSAGING_PROCESS_DURATION
                        .with_label_values(&[self.names.main.as_str(), outcome.label()])
                        .observe(elapsed);
                }
                return Ok(waiting.into_iter().map(|delivery| delivery.acker).collect());
            }
        }
        let mut ackers = Vec::with_capacity(waiting.len());
        for delivery in waiting {
            ackers.push(self.process(channel, delivery).await?);
        }
        Ok(ackers)
    }

    /// The span a delivery's processing is recorded in, its parent the publisher's.
    fn span_for(&self, delivery: &Delivery) -> tracing::Span {
        let headers = delivery.properties.headers().as_ref();
        let span = tracing::info_span!(
            "process",
            otel.name = %format!("{} process", self.names.main),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.destination.name = %self.names.main,
            messaging.message.id = tracing::field::Empty,
            event_type = tracing::field::Empty,
            attempt = attempt_of(delivery),
        );
        propagation::set_parent_from_amqp(&span, headers);
        span
    }

    /// Reads a delivery as an event; `None` when it is not one (it is then handled alone,
    /// and parked).
    fn decode(&self, delivery: &Delivery) -> Option<Decoded> {
        let (event_id, envelope) = read(&delivery.data).ok()?;
        let span = self.span_for(delivery);
        describe(&span, &envelope);
        Some(Decoded {
            event_id,
            envelope,
            span,
        })
    }

    /// Handles one delivery; returns its acknowledger, for the caller to acknowledge it (with
    /// those before it). Only broker errors are returned: they mean the delivery was not
    /// acknowledged and will come again.
    async fn process(&self, channel: &Channel, delivery: Delivery) -> anyhow::Result<Acker> {
        let started = Instant::now();
        let attempt = attempt_of(&delivery);
        let span = self.span_for(&delivery);
        let result = self.apply(&delivery.data).instrument(span.clone()).await;
        let queue = self.names.main.as_str();
        let outcome = match result {
            Ok(outcome) => outcome.label(),
            Err(failure) => {
                self.reroute(channel, &delivery, attempt, failure)
                    .instrument(span)
                    .await?
            }
        };
        MESSAGING_PROCESS_DURATION
            .with_label_values(&[queue, outcome])
            .observe(started.elapsed().as_secs_f64());
        Ok(delivery.acker)
    }

    async fn apply(&self, data: &[u8]) -> Result<Outcome, Failure> {
        let (event_id, envelope) = read(data)?;
        describe(&tracing::Span::current(), &envelope);
        self.sink.apply(event_id, &envelope).await
    }

    /// Sends a failed delivery to the next retry queue, or parks it; returns the outcome label.
    async fn reroute(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        attempt: i64,
        failure: Failure,
    ) -> anyhow::Result<&'static str> {
        let (error, retry_queue) = match failure {
            Failure::Permanent(error) => (error, None),
            Failure::Transient(error) => {
                let index = usize::try_from(attempt).unwrap_or(usize::MAX);
                (error, self.names.retries.get(index))
            }
        };
        let mut error_text = format!("{error:#}");
        error_text.truncate(MAX_ERROR_LENGTH);
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            "x-error".into(),
            AMQPValue::LongString(error_text.clone().into()),
        );
        let (target, outcome) = match retry_queue {
            Some(queue) => {
                headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(attempt + 1));
                tracing::warn!(attempt, queue = %queue, error = %error_text, "event failed, retrying later");
                (queue.as_str(), RETRIED)
            }
            None => {
                let failed_at = chrono::Utc::now().to_rfc3339();
                headers.insert(
                    "x-failed-at".into(),
                    AMQPValue::LongString(failed_at.into()),
                );
                tracing::error!(attempt, queue = %self.names.parked, error = %error_text, "event parked");
                (self.names.parked.as_str(), PARKED)
            }
        };
        let properties = delivery.properties.clone().with_headers(headers);
        republish::publish_confirmed(channel, "", target, &delivery.data, properties).await?;
        MESSAGING_FAILURES
            .with_label_values(&[self.names.main.as_str(), outcome])
            .inc();
        Ok(outcome)
    }
}

/// Deliveries handled but not yet acknowledged: acknowledged together (`multiple`, up to the
/// latest) once no further delivery is waiting or half the prefetch is held, so a burst costs
/// the broker one acknowledgement a batch rather than one an event. Deliveries are handled
/// in order, so every one up to the latest is done. A connection lost before the
/// acknowledgement brings them again, and a consumer's sink ignores what it has applied.
#[derive(Default)]
struct Unacked {
    latest: Option<Acker>,
    count: u16,
}

impl Unacked {
    fn hold(&mut self, acker: Acker) {
        self.latest = Some(acker);
        self.count += 1;
    }

    async fn flush(&mut self) -> lapin::Result<()> {
        self.count = 0;
        match self.latest.take() {
            Some(acker) => acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Moves every message currently parked for `settings.queue_prefix` back to its main queue,
/// with a fresh attempt count; returns how many moved.
///
/// # Errors
/// Fails when the broker cannot be reached or refuses a message.
pub async fn replay_parked(settings: &BusSettings) -> anyhow::Result<usize> {
    let names = QueueNames::new(&settings.queue_prefix, settings.retry_delays.len());
    let (connection, channel) = open_channel(settings, "replay-parked").await?;
    let moved = republish::move_waiting(&channel, &names.parked, |delivery| {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(0));
        republish::Target {
            exchange: String::new(),
            routing_key: names.main.clone(),
            properties: delivery.properties.clone().with_headers(headers),
        }
    })
    .await?;
    connection.close(200, "replay done".into()).await.ok();
    Ok(moved)
}

/// Reads a delivery's body as an event and its id; a body that is neither cannot be helped by
/// a retry.
fn read(data: &[u8]) -> Result<(Uuid, Envelope), Failure> {
    let envelope = Envelope::decode(data)
        .map_err(|error| Failure::Permanent(anyhow!("undecodable envelope: {error}")))?;
    let event_id = envelope
        .event_id
        .parse()
        .map_err(|error| Failure::Permanent(anyhow!("bad event_id: {error}")))?;
    Ok((event_id, envelope))
}

/// Names the event on the span its processing is recorded in.
fn describe(span: &tracing::Span, envelope: &Envelope) {
    span.record("messaging.message.id", envelope.event_id.as_str());
    span.record("event_type", envelope.r#type.as_str());
}

/// Header a message carries its delivery attempt in (0 for the first delivery).
const ATTEMPT_HEADER: &str = "x-attempt";

/// How many times a delivery was retried before (0 for a first delivery).
fn attempt_of(delivery: &Delivery) -> i64 {
    header_int(delivery.properties.headers().as_ref(), ATTEMPT_HEADER).unwrap_or(0)
}

/// Reads an integer header.
fn header_int(headers: Option<&FieldTable>, key: &str) -> Option<i64> {
    match headers?.inner().get(key)? {
        AMQPValue::LongLongInt(value) => Some(*value),
        AMQPValue::LongInt(value) => Some(i64::from(*value)),
        AMQPValue::ShortInt(value) => Some(i64::from(*value)),
        AMQPValue::LongUInt(value) => Some(i64::from(*value)),
        _ => None,
    }
}
