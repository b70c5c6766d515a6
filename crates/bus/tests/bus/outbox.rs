//! The outbox relay publishes exactly what was committed, and only marks what the broker
//! acknowledged.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::helpers::{TestBus, event, eventually};

/// The ids of published outbox rows, once there are any.
async fn published_ids(test: &TestBus) -> Option<Vec<Uuid>> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM outbox WHERE published_at IS NOT NULL")
            .fetch_all(&test.pool)
            .await
            .unwrap();
    (!ids.is_empty()).then_some(ids)
}

#[tokio::test]
async fn committed_rows_are_published_and_rolled_back_rows_are_not() {
    let test = TestBus::new().await;
    let mut watcher = test.watch_exchange().await;
    let committed = event("test.committed");
    let rolled_back = event("test.rolled_back");
    test.enqueue(&rolled_back, false).await;
    test.enqueue(&committed, true).await;

    let relay = test.start_relay();

    let first = watcher.next_message_id(Duration::from_secs(10)).await;
    assert_eq!(first.as_deref(), Some(committed.event_id.as_str()));
    let second = watcher.next_message_id(Duration::from_secs(2)).await;
    assert_eq!(second, None, "nothing else may be published");

    // The broker routes the message before the relay commits `published_at`.
    let committed_id: Uuid = committed.event_id.parse().unwrap();
    let published = eventually(Duration::from_secs(5), || published_ids(&test)).await;
    assert_eq!(published, Some(vec![committed_id]));

    relay.stop().await;
}

/// How many outbox rows and `applied` rows carry `event_id`.
async fn rows_of(test: &TestBus, event_id: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE event_id = $1), \
                (SELECT count(*) FROM applied WHERE event_id = $1)",
    )
    .bind(event_id)
    .fetch_one(&test.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_change_and_its_event_are_written_together_or_not_at_all() {
    let test = TestBus::new().await;
    // The change records the event's own id, so both rows can be counted by it.
    let change = "INSERT INTO applied (event_id, event_type) VALUES ($5, $6)";
    let id_of = |envelope: &spruce_bus::Envelope| -> Uuid { envelope.event_id.parse().unwrap() };
    let stored = |envelope: &spruce_bus::Envelope| rows_of(&test, id_of(envelope));

    for commit in [true, false] {
        let envelope = event("test.changed");
        let mut transaction = test.pool.begin().await.unwrap();
        spruce_bus::enqueue_with(&envelope, change)
            .unwrap()
            .bind(id_of(&envelope))
            .bind("test.changed")
            .execute(&mut *transaction)
            .await
            .unwrap();
        if commit {
            transaction.commit().await.unwrap();
            assert_eq!(stored(&envelope).await, (1, 1), "committed");
        } else {
            transaction.rollback().await.unwrap();
            assert_eq!(stored(&envelope).await, (0, 0), "rolled back");
        }
    }

    // A change that fails takes its event with it.
    let envelope = event("test.failed");
    let failed = spruce_bus::enqueue_with(&envelope, change)
        .unwrap()
        .bind(id_of(&envelope))
        .bind(None::<String>)
        .execute(&test.pool)
        .await;
    assert!(failed.is_err(), "event_type may not be null");
    assert_eq!(stored(&envelope).await, (0, 0));
}

/// What the relay recorded of the only outbox row.
struct RowState {
    attempts: i32,
    last_error: Option<String>,
    published: bool,
}

/// Waits up to `limit` until the only outbox row's state passes `until`, and returns it.
async fn only_row_once(
    test: &TestBus,
    limit: Duration,
    until: fn(&RowState) -> bool,
) -> Option<RowState> {
    test.eventually(limit, |pool| async move {
        let (attempts, last_error, published) =
            sqlx::query_as("SELECT attempts, last_error, published_at IS NOT NULL FROM outbox")
                .fetch_one(&pool)
                .await
                .unwrap();
        let row = RowState {
            attempts,
            last_error,
            published,
        };
        until(&row).then_some(row)
    })
    .await
}

#[tokio::test]
async fn a_row_the_broker_did_not_accept_stays_unpublished_and_is_retried() {
    let test = TestBus::new().await;
    // An exchange from before the alternate exchange, which cannot be given one by declaring
    // it again: no queue is bound to it, so the broker returns the mandatory message instead
    // of routing it.
    test.declare_exchange_without_alternate().await;
    let unroutable = event("test.nobody_listens");
    test.enqueue(&unroutable, true).await;

    let relay = test.start_relay();

    let tried = only_row_once(&test, Duration::from_secs(10), |row| row.attempts >= 1)
        .await
        .expect("the relay tried to publish");
    assert!(
        !tried.published,
        "a returned message must not be marked published"
    );
    assert!(tried.last_error.unwrap_or_default().contains("unroutable"));

    // Once someone listens, the retry goes through.
    let mut watcher = test.watch_exchange().await;
    let delivered = watcher.next_message_id(Duration::from_secs(10)).await;
    assert_eq!(delivered.as_deref(), Some(unroutable.event_id.as_str()));
    let published = eventually(Duration::from_secs(5), || published_ids(&test)).await;
    assert_eq!(published, Some(vec![unroutable.event_id.parse().unwrap()]));

    relay.stop().await;
}

#[tokio::test]
async fn an_event_no_queue_is_bound_to_waits_in_the_unrouted_queue_until_replayed() {
    let test = TestBus::new().await;
    let unroutable = event("test.nobody_listens_yet");
    test.enqueue(&unroutable, true).await;
    let relay = test.start_relay();

    // The broker kept it (alternate exchange): the publish was confirmed, and is final.
    let published = only_row_once(&test, Duration::from_secs(10), |row| row.published)
        .await
        .expect("the relay published the event");
    assert_eq!(published.attempts, 0, "published at the first try");
    assert!(
        eventually(Duration::from_secs(5), || async {
            (test.unrouted_count().await == 1).then_some(())
        })
        .await
        .is_some(),
        "the event waits in the unrouted queue"
    );

    // Once someone listens, replay-unrouted delivers it through the exchange.
    let mut watcher = test.watch_exchange().await;
    let moved = spruce_bus::replay_unrouted(&test.bus).await.unwrap();
    assert_eq!(moved, 1);
    let delivered = watcher.next_message_id(Duration::from_secs(10)).await;
    assert_eq!(delivered.as_deref(), Some(unroutable.event_id.as_str()));
    assert_eq!(test.unrouted_count().await, 0);
    assert_eq!(spruce_bus::replay_unrouted(&test.bus).await.unwrap(), 0);

    relay.stop().await;
}

#[tokio::test]
async fn rows_past_their_retention_are_deleted_unless_they_still_wait_to_be_published() {
    let test = TestBus::new().await;
    // Written eight days ago (the retention is a week): published, parked (by versions
    // before the alternate exchange), still retrying;
    // and a published row from today.
    for (key, state) in [
        (
            "test.old_published",
            "published_at = now() - interval '8 days'",
        ),
        ("test.old_parked", "next_attempt_at = 'infinity'"),
        (
            "test.old_retrying",
            "next_attempt_at = now() + interval '1 hour'",
        ),
        ("test.new_published", "published_at = now()"),
    ] {
        test.enqueue(&event(key), true).await;
        let age = if key.contains("old") {
            "interval '8 days'"
        } else {
            "interval '0'"
        };
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE outbox SET created_at = now() - {age}, {state} WHERE routing_key = '{key}'"
        )))
        .execute(&test.pool)
        .await
        .unwrap();
    }

    let relay = test.start_relay();
    let kept = test
        .eventually(Duration::from_secs(10), |pool| async move {
            let keys: Vec<String> =
                sqlx::query_scalar("SELECT routing_key FROM outbox ORDER BY id")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            (keys.len() == 2).then_some(keys)
        })
        .await;
    assert_eq!(
        kept,
        Some(vec![
            "test.old_retrying".to_owned(),
            "test.new_published".to_owned()
        ])
    );

    relay.stop().await;
}

#[tokio::test]
async fn a_burst_is_published_once_in_order_and_a_relay_gone_quiet_still_publishes() {
    let test = TestBus::new().await;
    let mut watcher = test.watch_exchange().await;
    let relay = test.start_relay();

    // More rows than one batch takes, committed one by one while the relay works.
    let burst: Vec<_> = (0..300).map(|_| event("test.burst")).collect();
    for envelope in &burst {
        test.enqueue(envelope, true).await;
    }
    for envelope in &burst {
        let delivered = watcher.next_message_id(Duration::from_secs(10)).await;
        assert_eq!(delivered.as_deref(), Some(envelope.event_id.as_str()));
    }
    let extra = watcher.next_message_id(Duration::from_secs(1)).await;
    assert_eq!(extra, None, "every event is published once");

    // After a quiet spell the relay looks less often, but it still looks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = event("test.late");
    test.enqueue(&late, true).await;
    let delivered = watcher.next_message_id(Duration::from_secs(10)).await;
    assert_eq!(delivered.as_deref(), Some(late.event_id.as_str()));
    assert!(
        test.every_row_marked_published().await,
        "every published row is marked published"
    );

    relay.stop().await;
}

/// Buffer reads of the outbox table and its indexes that the statistics have recorded so far
/// (each backend reports its own within about a second of going idle).
async fn outbox_buffer_reads(test: &TestBus) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(heap_blks_hit, 0) + coalesce(heap_blks_read, 0) \
              + coalesce(idx_blks_hit, 0) + coalesce(idx_blks_read, 0) \
         FROM pg_statio_user_tables WHERE relname = 'outbox'",
    )
    .fetch_one(&test.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_backlog_costs_each_row_a_few_reads_though_the_relay_began_on_an_empty_table() {
    let test = TestBus::new().await;
    // Statistics that say the table is empty, and a relay that looks at it many times: a
    // plan cached now would believe the table small for good.
    sqlx::query("ANALYZE outbox")
        .execute(&test.pool)
        .await
        .unwrap();
    let relay = test.start_relay();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = outbox_buffer_reads(&test).await;

    const BACKLOG: i64 = 3_000;
    let template = event("test.backlog");
    let mut transaction = test.pool.begin().await.unwrap();
    spruce_bus::enqueue(&mut transaction, &template)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, payload) \
         SELECT gen_random_uuid(), routing_key, payload FROM outbox, generate_series(2, $1)",
    )
    .bind(BACKLOG)
    .execute(&mut *transaction)
    .await
    .unwrap();
    transaction.commit().await.unwrap();

    // Looked for through the partial index, so the looks themselves read little.
    let drained = test
        .eventually(Duration::from_secs(30), |pool| async move {
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT FROM outbox \
                 WHERE published_at IS NULL AND next_attempt_at < 'infinity')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (!waiting).then_some(())
        })
        .await;
    assert!(drained.is_some(), "the backlog is published");
    relay.stop().await;
    // Every backend has reported its reads once the statistics stop moving.
    let mut after = outbox_buffer_reads(&test).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let now = outbox_buffer_reads(&test).await;
        if now == after {
            break;
        }
        after = now;
    }

    // Writing a row and publishing it read about 25 buffers each (heap and three indexes,
    // twice); a plan that re-reads the batch for every row of the table reads thousands.
    let per_row = (after - before) / BACKLOG;
    assert!(
        per_row < 100,
        "{per_row} buffer reads a row ({} in all)",
        after - before
    );
}
