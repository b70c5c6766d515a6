//! The transactional outbox: events are written in the business transaction and a relay
//! publishes them with publisher confirms, marking a row sent only once the broker acked it.
//!
//! The table (each producing service has it in its migrations):
//! `outbox(id bigserial, event_id uuid unique, routing_key, payload bytea, traceparent,
//! created_at, published_at, attempts, next_attempt_at, last_error)`. A row is waiting while
//! `published_at` is null; published once it is set (a confirmed publish is final: an event
//! no queue is bound to goes to the exchange's alternate exchange, see
//! [`crate::unrouted_name`]). The relay deletes published rows after their retention. Rows
//! with `next_attempt_at = 'infinity'` were parked by earlier versions (no alternate exchange
//! then); they are deleted after the retention too.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::BasicPublishOptions,
    types::{FieldTable, ShortString},
};
use prost::Message as _;
use sqlx::{
    AssertSqlSafe, PgConnection, PgPool, Postgres, SqlSafeStr, postgres::PgArguments, query::Query,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    Backoff, BusStatus, CONTENT_TYPE, Envelope, PRUNE_BATCH, PRUNE_INTERVAL, delete_in_batches,
    open_channel, topology,
};
use crate::{
    metrics::{OUTBOX_OLDEST_AGE, OUTBOX_PENDING, OUTBOX_RETURNED},
    propagation,
};
use spruce_platform::settings::BusSettings;

/// Rows taken per round.
const BATCH_SIZE: i64 = 200;
/// How soon the relay looks again after a round that found rows (and fewer than a full
/// batch). Every round costs a transaction and a burst to the broker whatever its size, so
/// under load a longer gathering delay means fewer, fuller rounds: at 1,500 events/s, 25 ms
/// gathers about 40 events a round where 5 ms gathered 8 (a small gain, measured in
/// BENCHMARKS.md). While the relay is busy, an event waits at most this long.
const BUSY_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// The longest the relay waits between looks: after rounds that found nothing, the wait
/// doubles from [`BUSY_POLL_INTERVAL`] up to this. It bounds how long an event written after
/// a quiet spell waits to be published.
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often the backlog gauges are refreshed.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(1);

/// The outbox row of an event; `$1`–`$4` are bound by [`with_event`].
/// The outbox row's insert, without its source of values: the one place its columns are named.
macro_rules! outbox_columns {
    () => {
        "INSERT INTO outbox (event_id, routing_key, payload, traceparent)"
    };
}
const OUTBOX_COLUMNS: &str = outbox_columns!();
const OUTBOX_INSERT: &str = concat!(outbox_columns!(), " VALUES ($1, $2, $3, $4)");

/// Writes `envelope` to the outbox inside the caller's transaction; the relay finds it once
/// the transaction commits. The current span's trace context is stored with it.
///
/// No `NOTIFY`: PostgreSQL serializes the commits of all transactions that notify (each
/// holds one database-wide lock through its commit and WAL flush), which capped the rate of
/// every writer. The relay polls instead.
///
/// # Errors
/// Fails when the insert fails; the caller's transaction should then roll back.
pub async fn enqueue(connection: &mut PgConnection, envelope: &Envelope) -> sqlx::Result<()> {
    with_event(envelope, OUTBOX_INSERT)?
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Writes every one of `envelopes` to the outbox in one statement (see [`enqueue`]): a
/// batch of changes costs one round trip for its events, not one each.
///
/// # Errors
/// Fails when an event id is not a UUID or the insert fails; the caller's transaction
/// should then roll back.
pub async fn enqueue_many(
    connection: &mut PgConnection,
    envelopes: &[Envelope],
) -> sqlx::Result<()> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let ids = envelopes
        .iter()
        .map(event_id)
        .collect::<sqlx::Result<Vec<Uuid>>>()?;
    let types: Vec<&str> = envelopes
        .iter()
        .map(|envelope| envelope.r#type.as_str())
        .collect();
    let payloads: Vec<Vec<u8>> = envelopes
        .iter()
        .map(prost::Message::encode_to_vec)
        .collect();
    let traceparent = propagation::current_traceparent();
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, payload, traceparent) \
         SELECT id, routing_key, payload, $4 FROM unnest($1::uuid[], $2::text[], $3::bytea[]) \
         AS e(id, routing_key, payload)",
    )
    .bind(ids)
    .bind(types)
    .bind(payloads)
    .bind(traceparent)
    .execute(connection)
    .await?;
    Ok(())
}

/// Like [`enqueue`], and in the same statement (one round trip) the caller's own `change`:
/// an `INSERT`, `UPDATE` or `DELETE` whose placeholders start at `$5` (`$1`–`$4` are the
/// event's). Bind the change's values on the returned query, then execute it in the
/// caller's transaction.
///
/// # Errors
/// Fails when the envelope's event id is not a UUID.
pub fn enqueue_with(
    envelope: &Envelope,
    change: &'static str,
) -> sqlx::Result<Query<'static, Postgres, PgArguments>> {
    // Only literals go into the statement; every value is a bound parameter.
    let statement = format!("WITH outbox_row AS ({OUTBOX_INSERT}) {change}");
    with_event(envelope, AssertSqlSafe(statement))
}

/// Like [`enqueue_with`], with the event written only when `guard` (an `INSERT`, `UPDATE`
/// or `DELETE … RETURNING`, placeholders from `$5`) returns a row; `change` may read those
/// rows as `guard`. One statement, so it needs no transaction of its own: the guard, the
/// event and the change commit together or not at all.
///
/// # Errors
/// Fails when the envelope's event id is not a UUID.
pub fn enqueue_guarded(
    envelope: &Envelope,
    guard: &'static str,
    change: &'static str,
) -> sqlx::Result<Query<'static, Postgres, PgArguments>> {
    // Only literals go into the statement; every value is a bound parameter.
    let statement = format!(
        "WITH guard AS ({guard}), outbox_row AS ({OUTBOX_COLUMNS} SELECT $1, $2, $3, $4 FROM guard LIMIT 1) {change}"
    );
    with_event(envelope, AssertSqlSafe(statement))
}

/// `statement` with the event's four values bound as `$1`–`$4`.
fn with_event(
    envelope: &Envelope,
    statement: impl SqlSafeStr,
) -> sqlx::Result<Query<'static, Postgres, PgArguments>> {
    Ok(sqlx::query(statement)
        .bind(event_id(envelope)?)
        .bind(envelope.r#type.clone())
        .bind(envelope.encode_to_vec())
        .bind(propagation::current_traceparent()))
}

/// The envelope's event id, the outbox row's key.
fn event_id(envelope: &Envelope) -> sqlx::Result<Uuid> {
    envelope
        .event_id
        .parse()
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// Publishes committed outbox rows; several replicas can run side by side.
pub struct OutboxRelay {
    pool: PgPool,
    settings: BusSettings,
    status: BusStatus,
    database: String,
}

/// `(id, event_id, routing_key, payload, traceparent)` as selected.
type OutboxTuple = (i64, Uuid, String, Vec<u8>, Option<String>);

/// The rows of a batch the broker did not take, as arrays for one `UPDATE … unnest`.
#[derive(Default)]
struct Failed {
    ids: Vec<i64>,
    reasons: Vec<String>,
}

impl Failed {
    fn push(&mut self, id: i64, reason: String) {
        self.ids.push(id);
        self.reasons.push(reason);
    }
}

struct OutboxRow {
    id: i64,
    event_id: Uuid,
    routing_key: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

impl OutboxRelay {
    /// Creates a relay for the outbox in `pool`'s database; `database` labels its metrics.
    pub fn new(pool: PgPool, settings: BusSettings, database: &str) -> Self {
        // From zero: the first return is a rise `rate()` sees, and the series is there to
        // find before anything went wrong.
        OUTBOX_RETURNED.with_label_values(&[database]);
        OutboxRelay {
            pool,
            settings,
            status: BusStatus::new(&format!("outbox:{database}")),
            database: database.to_owned(),
        }
    }

    /// Returns the relay's broker connection status.
    pub fn status(&self) -> BusStatus {
        self.status.clone()
    }

    /// Relays until `shutdown` is cancelled, reconnecting to the broker with backoff, and
    /// meanwhile deletes rows past their retention (broker or not).
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(self.publish_loop(&shutdown), self.prune_loop(&shutdown));
    }

    async fn publish_loop(&self, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new();
        while !shutdown.is_cancelled() {
            match open_channel(&self.settings, "outbox-relay").await {
                Ok((connection, channel)) => {
                    let outcome =
                        match topology::declare_exchange(&connection, &channel, &self.settings)
                            .await
                        {
                            Ok(()) => {
                                self.status.set_connected(true);
                                backoff.reset();
                                self.relay_until_failure(&channel, shutdown).await
                            }
                            Err(error) => Err(error.into()),
                        };
                    self.status.set_connected(false);
                    if let Err(error) = outcome {
                        let lost = if spruce_db::database_unreachable_in(&error) {
                            "the database"
                        } else {
                            "the broker"
                        };
                        tracing::warn!(
                            error = format!("{error:#}"),
                            lost,
                            "outbox relay lost a dependency, reconnecting"
                        );
                    }
                    connection.close(200, "relay stopping".into()).await.ok();
                }
                Err(error) => tracing::warn!(%error, "outbox relay cannot reach the broker"),
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    async fn relay_until_failure(
        &self,
        channel: &Channel,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut wait = BUSY_POLL_INTERVAL;
        let mut backlog_recorded: Option<Instant> = None;
        loop {
            // Noticed within a poll interval even when there is nothing to publish, so
            // readiness reports the broker as down promptly.
            if !channel.status().connected() {
                anyhow::bail!("the broker connection was lost");
            }
            let relayed = self.relay_batch(channel).await?;
            // The backlog gauges cost a query; once a second is plenty for a scrape.
            if backlog_recorded.is_none_or(|at| at.elapsed() >= BACKLOG_INTERVAL) {
                self.record_backlog().await;
                backlog_recorded = Some(Instant::now());
            }
            if relayed == BATCH_SIZE as usize {
                continue;
            }
            // Busy: look again soon. Quiet: wait longer after each empty look.
            wait = if relayed > 0 {
                BUSY_POLL_INTERVAL
            } else {
                (wait * 2).min(IDLE_POLL_INTERVAL)
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Publishes one batch and returns how many rows it took. The batch is taken and marked
    /// published in one statement, in a transaction that commits only after the broker
    /// answered: other relays skip the locked rows meanwhile, a crash rolls the mark back,
    /// and the rows the broker did not ack are unmarked and pushed back with a growing delay
    /// before the commit.
    async fn relay_batch(&self, channel: &Channel) -> anyhow::Result<usize> {
        let mut transaction = self.pool.begin().await?;
        // `< 'infinity'` matches the index, which leaves parked rows out (migration 0007).
        // The batch's ids are taken once (the `ARRAY` sub-select runs once, before the
        // update), and the statement is planned afresh each round: a queue table's size
        // swings between empty and thousands of rows, and a plan cached while it was empty
        // (sequential scans costed at nothing, the batch re-read for every row) read tens of
        // thousands of buffers a round under load.
        let mut rows: Vec<OutboxTuple> = sqlx::query_as(
            "UPDATE outbox SET published_at = now() WHERE id = ANY(ARRAY( \
                 SELECT id FROM outbox WHERE published_at IS NULL AND next_attempt_at <= now() \
                 AND next_attempt_at < 'infinity' \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) \
             RETURNING id, event_id, routing_key, payload, traceparent",
        )
        .bind(BATCH_SIZE)
        .persistent(false)
        .fetch_all(&mut *transaction)
        .await?;
        // RETURNING keeps no order; publish in the order the events were written.
        rows.sort_unstable_by_key(|row| row.0);
        let rows: Vec<OutboxRow> = rows
            .into_iter()
            .map(
                |(id, event_id, routing_key, payload, traceparent)| OutboxRow {
                    id,
                    event_id,
                    routing_key,
                    payload,
                    traceparent,
                },
            )
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }

        let mut pending = Vec::with_capacity(rows.len());
        let mut broker_error = None;
        for row in &rows {
            match self.publish(channel, row).await {
                Ok(confirm) => pending.push((row.id, confirm)),
                Err(error) => {
                    broker_error = Some(error);
                    break;
                }
            }
        }
        let sent = pending.len();
        let confirmations = join_all(
            pending
                .into_iter()
                .map(|(id, confirm)| async move { (id, confirm.await) }),
        )
        .await;

        let mut failed = Failed::default();
        for (id, confirmation) in confirmations {
            match confirmation {
                Ok(Confirmation::Ack(None)) => {}
                Ok(Confirmation::Ack(Some(returned))) => {
                    OUTBOX_RETURNED
                        .with_label_values(&[self.database.as_str()])
                        .inc();
                    failed.push(
                        id,
                        format!(
                            "unroutable ({}): {}",
                            returned.delivery.routing_key, returned.reply_text
                        ),
                    );
                }
                Ok(other) => failed.push(id, format!("not confirmed: {other:?}")),
                Err(error) => {
                    failed.push(id, error.to_string());
                    broker_error.get_or_insert(error);
                }
            }
        }

        // Rows never handed to the broker (it failed part-way) go back untouched.
        let unsent: Vec<i64> = rows[sent..].iter().map(|row| row.id).collect();
        if !unsent.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = NULL WHERE id = ANY($1)")
                .bind(&unsent)
                .execute(&mut *transaction)
                .await?;
        }
        if !failed.ids.is_empty() {
            self.push_back(&mut transaction, &failed).await?;
        }
        transaction.commit().await?;
        match broker_error {
            Some(error) => Err(error.into()),
            None => Ok(rows.len()),
        }
    }

    /// Unmarks the rows the broker did not take and sets when each is tried again: after a
    /// delay that doubles with every try, up to a minute.
    async fn push_back(
        &self,
        transaction: &mut PgConnection,
        failed: &Failed,
    ) -> anyhow::Result<()> {
        let outcomes: Vec<(i64, String, i32, String)> = sqlx::query_as(
            "UPDATE outbox AS o SET published_at = NULL, attempts = o.attempts + 1, \
                 last_error = f.reason, \
                 next_attempt_at = now() + make_interval(secs => least(power(2, o.attempts), 60)) \
             FROM unnest($1::bigint[], $2::text[]) AS f (id, reason) \
             WHERE o.id = f.id \
             RETURNING o.id, o.routing_key, o.attempts, f.reason",
        )
        .bind(&failed.ids)
        .bind(&failed.reasons)
        .fetch_all(&mut *transaction)
        .await?;
        for (id, routing_key, attempts, reason) in outcomes {
            tracing::warn!(
                outbox_id = id,
                %routing_key,
                attempts,
                %reason,
                "event not published, will retry"
            );
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &Channel,
        row: &OutboxRow,
    ) -> lapin::Result<lapin::PublisherConfirm> {
        let mut headers = FieldTable::default();
        let sampled = row
            .traceparent
            .as_deref()
            .is_some_and(propagation::is_sampled);
        if !sampled {
            // Nothing would record a producer span: pass the writer's trace context on as
            // it is, so the consumer still joins the trace.
            if let Some(traceparent) = &row.traceparent {
                propagation::traceparent_into_amqp(&mut headers, traceparent);
            }
            return self.send(channel, row, headers).await;
        }
        let span = tracing::info_span!(
            "publish",
            otel.name = %format!("{} publish", row.routing_key),
            otel.kind = "producer",
            messaging.system = "rabbitmq",
            messaging.destination.name = %self.settings.exchange,
            messaging.message.id = %row.event_id,
        );
        if let Some(traceparent) = &row.traceparent {
            propagation::set_parent_from_traceparent(&span, traceparent);
        }
        async {
            propagation::inject_into_amqp(&mut headers);
            self.send(channel, row, headers).await
        }
        .instrument(span)
        .await
    }

    async fn send(
        &self,
        channel: &Channel,
        row: &OutboxRow,
        headers: FieldTable,
    ) -> lapin::Result<lapin::PublisherConfirm> {
        let properties = BasicProperties::default()
            .with_message_id(ShortString::from(row.event_id.to_string()))
            .with_content_type(CONTENT_TYPE.into())
            .with_type(row.routing_key.as_str().into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        channel
            .basic_publish(
                self.settings.exchange.as_str().into(),
                row.routing_key.as_str().into(),
                options,
                &row.payload,
                properties,
            )
            .await
    }

    /// Deletes published and parked rows older than `bus.outbox_retention`, once at
    /// start and then every [`PRUNE_INTERVAL`], a batch per statement so no statement holds
    /// many locks. Rows still waiting to be published are kept, however old.
    async fn prune_loop(&self, shutdown: &CancellationToken) {
        loop {
            match self.prune().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "outbox rows past their retention deleted"),
                Err(error) => tracing::warn!(%error, "outbox pruning failed, will try again"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_INTERVAL) => {}
            }
        }
    }

    async fn prune(&self) -> sqlx::Result<u64> {
        let hours =
            i32::try_from(self.settings.outbox_retention.as_secs() / 3600).unwrap_or(i32::MAX);
        // Rows are in id order of writing: the first row inside the retention bounds the
        // scan, so it reads only what it deletes and what waits to be published. Planned
        // afresh each time, with the batch taken once (as in `relay_batch`).
        delete_in_batches(|| async {
            Ok(sqlx::query(
                "DELETE FROM outbox WHERE id = ANY(ARRAY( \
                     SELECT id FROM outbox \
                     WHERE id < coalesce(( \
                         SELECT id FROM outbox \
                         WHERE created_at >= now() - make_interval(hours => $1) \
                         ORDER BY id LIMIT 1), 9223372036854775807) \
                     AND (published_at IS NOT NULL OR next_attempt_at = 'infinity') \
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED))",
            )
            .persistent(false)
            .bind(hours)
            .bind(PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected())
        })
        .await
    }

    /// Parked rows are not counted: they wait for someone to listen, not for the relay.
    async fn record_backlog(&self) {
        let backlog: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 \
             FROM outbox WHERE published_at IS NULL AND next_attempt_at < 'infinity'",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((pending, oldest)) = backlog {
            OUTBOX_PENDING
                .with_label_values(&[self.database.as_str()])
                .set(pending);
            #[allow(clippy::cast_possible_truncation)]
            let oldest = oldest.unwrap_or(0.0) as i64;
            OUTBOX_OLDEST_AGE
                .with_label_values(&[self.database.as_str()])
                .set(oldest);
        }
    }
}
