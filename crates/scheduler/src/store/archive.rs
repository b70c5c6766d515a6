//! The `analytics_events` and `analytics_batches` tables: events waiting for the archive,
//! the batches they are cut into, and which batches' files are written.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use sqlx::PgConnection;
use uuid::Uuid;

/// An event as the archive's queue delivered it, its envelope still encoded.
pub struct Received {
    pub event_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    /// The whole envelope, protobuf.
    pub envelope: Vec<u8>,
    pub trace_id: Option<String>,
}

/// Adds `events` that are not there yet; returns the ids of those added (the rest were
/// seen before: redeliveries).
pub async fn add(connection: &mut PgConnection, events: &[Received]) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let column = |text: fn(&Received) -> &str| -> Vec<&str> { events.iter().map(text).collect() };
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|event| event.occurred_at).collect();
    let versions: Vec<i64> = events.iter().map(|event| event.aggregate_version).collect();
    let envelopes: Vec<&[u8]> = events
        .iter()
        .map(|event| event.envelope.as_slice())
        .collect();
    let traces: Vec<Option<&str>> = events
        .iter()
        .map(|event| event.trace_id.as_deref())
        .collect();
    sqlx::query_scalar(
        "INSERT INTO analytics_events (event_id, event_type, occurred_at, aggregate_id, \
         aggregate_version, envelope, trace_id) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], \
         $5::bigint[], $6::bytea[], $7::text[]) \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(&ids)
    .bind(column(|event| &event.event_type))
    .bind(&occurred)
    .bind(column(|event| &event.aggregate_id))
    .bind(&versions)
    .bind(&envelopes)
    .bind(&traces)
    .fetch_all(connection)
    .await
}

/// How many events wait for a batch, and since when the oldest.
pub async fn waiting(connection: &mut PgConnection) -> sqlx::Result<(i64, Option<DateTime<Utc>>)> {
    sqlx::query_as("SELECT count(*), min(received_at) FROM analytics_events WHERE batch IS NULL")
        .fetch_one(connection)
        .await
}

/// Cuts up to `limit` of the oldest waiting events into a new batch; returns it, or `None`
/// when none waits. Inside a transaction: a batch and its rows appear together.
pub async fn cut_batch(connection: &mut PgConnection, limit: i64) -> sqlx::Result<Option<i64>> {
    let batch: i64 =
        sqlx::query_scalar("INSERT INTO analytics_batches DEFAULT VALUES RETURNING id")
            .fetch_one(&mut *connection)
            .await?;
    // Planned afresh each time: a plan cached while the table was empty would read it
    // again for every row.
    let taken = sqlx::query(
        "UPDATE analytics_events SET batch = $1 WHERE seq = ANY(ARRAY( \
         SELECT seq FROM analytics_events WHERE batch IS NULL ORDER BY seq LIMIT $2 \
         FOR UPDATE SKIP LOCKED))",
    )
    .persistent(false)
    .bind(batch)
    .bind(limit)
    .execute(&mut *connection)
    .await?;
    if taken.rows_affected() == 0 {
        sqlx::query("DELETE FROM analytics_batches WHERE id = $1")
            .bind(batch)
            .execute(connection)
            .await?;
        return Ok(None);
    }
    Ok(Some(batch))
}

/// Takes the oldest batch whose files are not written and that nobody holds, holding it
/// for `lease`.
pub async fn claim_unwritten(
    connection: &mut PgConnection,
    lease: Duration,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE analytics_batches SET leased_until = now() + $1 WHERE id = ( \
         SELECT id FROM analytics_batches WHERE written_at IS NULL \
         AND (leased_until IS NULL OR leased_until < now()) \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
    )
    .bind(lease)
    .fetch_optional(connection)
    .await
}

spruce_db::named_row! {
    /// An event of a batch as it was recorded.
    pub struct StoredEvent {
        pub event_id: Uuid,
        pub event_type: String,
        pub occurred_at: DateTime<Utc>,
        pub aggregate_id: String,
        pub aggregate_version: i64,
        /// The envelope, protobuf; or, for events recorded before envelopes were kept,
        /// [`StoredEvent::payload`]. Neither once the batch's files are written.
        pub envelope: Option<Vec<u8>>,
        /// The payload as JSON without personal data.
        pub payload: Option<String>,
        pub trace_id: Option<String>,
    }
}

/// The events of `batch`, in the order they came, as PostgreSQL sends them: a batch is
/// never held in memory whole.
pub fn events_of(
    connection: &mut PgConnection,
    batch: i64,
) -> impl Stream<Item = sqlx::Result<StoredEvent>> + Send + '_ {
    sqlx::query_as(
        "SELECT event_id, event_type, occurred_at, aggregate_id, aggregate_version, envelope, \
         payload, trace_id FROM analytics_events WHERE batch = $1 ORDER BY seq",
    )
    .bind(batch)
    .fetch(connection)
}

/// The database's clock.
pub async fn now(connection: &mut PgConnection) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(connection)
        .await
}

/// How many events are in batches whose files were written since `since`.
pub async fn archived_since(
    connection: &mut PgConnection,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM analytics_events WHERE batch IN \
         (SELECT id FROM analytics_batches WHERE written_at >= $1)",
    )
    .bind(since)
    .fetch_one(connection)
    .await
}

/// Whether a batch's files wait to be written by whoever takes them.
pub async fn unwritten_waiting(connection: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM analytics_batches WHERE written_at IS NULL \
         AND (leased_until IS NULL OR leased_until < now()))",
    )
    .fetch_one(connection)
    .await
}

/// Marks `batch`'s files written, and forgets its events' contents (the files hold them;
/// their ids are kept to recognise redeliveries).
pub async fn mark_written(connection: &mut PgConnection, batch: i64) -> sqlx::Result<()> {
    sqlx::query(
        "WITH written AS (UPDATE analytics_batches SET written_at = now() WHERE id = $1) \
         UPDATE analytics_events SET envelope = NULL, payload = NULL WHERE batch = $1",
    )
    .bind(batch)
    .execute(connection)
    .await?;
    Ok(())
}

/// Forgets the events of batches written more than `kept` ago (a redelivery older than
/// that would be archived again); returns how many.
pub async fn prune(connection: &mut PgConnection, kept: Duration) -> sqlx::Result<u64> {
    let pruned = sqlx::query(
        "WITH old AS (SELECT id FROM analytics_batches WHERE written_at < now() - $1), \
         gone AS (DELETE FROM analytics_events WHERE batch IN (SELECT id FROM old)) \
         DELETE FROM analytics_batches WHERE id IN (SELECT id FROM old)",
    )
    .bind(kept)
    .execute(connection)
    .await?;
    Ok(pruned.rows_affected())
}
