//! The consumer applies each event once, retries and parks failures without blocking the
//! queue, and survives the broker dropping its connections.

use std::time::Duration;

use lapin::{
    BasicProperties,
    options::{BasicPublishOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use prost::Message as _;
use spruce_bus::metrics::MESSAGING_QUEUE_READY;
use spruce_bus::{Consumer, OutboxRelay, QueueNames};
use spruce_platform::settings::BusSettings;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{Recorder, TestBus, event, eventually};

async fn wait_until_connected(status: &spruce_bus::BusStatus) {
    // Generous: reconnecting backs off, and a loaded 2-core machine runs dozens of tests.
    let connected = eventually(Duration::from_secs(30), || async {
        status.is_connected().then_some(())
    })
    .await;
    assert!(connected.is_some(), "the consumer never connected");
}

/// Starts a consumer whose recorder applies everything, once it is connected; cancel the
/// token and await the task to stop it.
async fn start_accepting(test: &TestBus) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(test.pool.clone(), test.bus.clone(), Recorder::accepting());
    let status = consumer.status();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until_connected(&status).await;
    (shutdown, task)
}

/// Starts a consumer once and stops it, leaving its queues declared and bound; then
/// publishes `events`, which wait in its queue for the next.
async fn leave_waiting(test: &TestBus, events: &[spruce_bus::Envelope]) {
    let (shutdown, task) = start_accepting(test).await;
    shutdown.cancel();
    task.await.unwrap();
    for waiting in events {
        publish_raw(
            test,
            &waiting.r#type,
            &waiting.encode_to_vec(),
            &waiting.event_id,
        )
        .await;
    }
}

async fn publish_raw(test: &TestBus, routing_key: &str, payload: &[u8], message_id: &str) {
    let connection = test.connect().await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(Default::default()).await.unwrap();
    let properties = BasicProperties::default().with_message_id(message_id.into());
    channel
        .basic_publish(
            test.bus.exchange.as_str().into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            payload,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "done".into()).await.ok();
}

async fn applied_count(test: &TestBus, expected: usize) -> Option<Vec<Uuid>> {
    let applied = test.applied().await;
    (applied.len() >= expected).then_some(applied)
}

#[tokio::test]
async fn the_same_event_delivered_twice_is_applied_once() {
    let test = TestBus::new().await;
    let (shutdown, task) = start_accepting(&test).await;

    let duplicate = event("test.duplicated");
    let sentinel = event("test.sentinel");
    publish_raw(
        &test,
        "test.duplicated",
        &duplicate.encode_to_vec(),
        &duplicate.event_id,
    )
    .await;
    publish_raw(
        &test,
        "test.duplicated",
        &duplicate.encode_to_vec(),
        &duplicate.event_id,
    )
    .await;
    publish_raw(
        &test,
        "test.sentinel",
        &sentinel.encode_to_vec(),
        &sentinel.event_id,
    )
    .await;

    // The sentinel came last on the same queue and one consumer handles deliveries in
    // order, so once it is applied both copies have been handled.
    let sentinel_id: Uuid = sentinel.event_id.parse().unwrap();
    let applied = eventually(Duration::from_secs(10), || async {
        let applied = test.applied().await;
        applied.contains(&sentinel_id).then_some(applied)
    })
    .await
    .expect("the sentinel was applied");
    assert_eq!(applied.len(), 2, "{applied:?}");
    let duplicate_id: Uuid = duplicate.event_id.parse().unwrap();
    assert_eq!(applied.iter().filter(|id| **id == duplicate_id).count(), 1);

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_failing_event_is_retried_then_parked_with_its_error_and_the_queue_keeps_flowing() {
    let test = TestBus::new().await;
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(
        test.pool.clone(),
        test.bus.clone(),
        Recorder::refusing(&["test.poison"]),
    );
    let status = consumer.status();
    let names: QueueNames = consumer.queue_names().clone();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until_connected(&status).await;

    let poison = event("test.poison");
    let healthy = event("test.healthy");
    publish_raw(
        &test,
        "test.poison",
        &poison.encode_to_vec(),
        &poison.event_id,
    )
    .await;
    publish_raw(
        &test,
        "test.healthy",
        &healthy.encode_to_vec(),
        &healthy.event_id,
    )
    .await;

    let applied = eventually(Duration::from_secs(5), || applied_count(&test, 1)).await;
    assert_eq!(
        applied,
        Some(vec![healthy.event_id.parse().unwrap()]),
        "the healthy event must not wait behind the poison one"
    );

    // The consumer reports its parked queue (the alert on parked events reads this).
    let reported = eventually(Duration::from_secs(15), || async {
        let waiting = MESSAGING_QUEUE_READY
            .with_label_values(&[names.parked.as_str()])
            .get();
        (waiting > 0).then_some(waiting)
    })
    .await;
    assert_eq!(reported, Some(1), "one event parked, and reported");
    let parked = test
        .first_parked(&names, Duration::from_secs(15))
        .await
        .expect("the poison event was parked");
    let headers: FieldTable = parked
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    let error = match headers.inner().get("x-error") {
        Some(AMQPValue::LongString(text)) => text.to_string(),
        other => panic!("no x-error header: {other:?}"),
    };
    assert!(
        error.contains("the recorder refuses test.poison"),
        "{error}"
    );
    assert!(headers.inner().contains_key("x-failed-at"));
    assert_eq!(
        headers.inner().get("x-attempt"),
        Some(&AMQPValue::LongLongInt(2)),
        "two retries before parking"
    );
    assert_eq!(
        parked
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string),
        Some(poison.event_id.clone())
    );
    assert_eq!(
        test.applied().await.len(),
        1,
        "the poison event was never applied"
    );
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_undecodable_message_is_parked_at_once() {
    let test = TestBus::new().await;
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(test.pool.clone(), test.bus.clone(), Recorder::accepting());
    let status = consumer.status();
    let names = consumer.queue_names().clone();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until_connected(&status).await;

    publish_raw(&test, "test.garbage", b"\xff\xff not protobuf", "garbage-1").await;

    let parked = test.first_parked(&names, Duration::from_secs(5)).await;
    assert!(
        parked.is_some(),
        "garbage must be parked without waiting for retries"
    );
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn publishing_and_consuming_resume_after_the_broker_closes_every_connection() {
    let test = TestBus::with_own_vhost().await;
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(test.pool.clone(), test.bus.clone(), Recorder::accepting());
    let consumer_status = consumer.status();
    let relay = OutboxRelay::new(test.pool.clone(), test.bus.clone(), "test");
    let relay_status = relay.status();
    let consumer_task = tokio::spawn(consumer.run(shutdown.clone()));
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    wait_until_connected(&consumer_status).await;
    wait_until_connected(&relay_status).await;

    let before = event("test.before");
    test.enqueue(&before, true).await;
    assert!(
        eventually(Duration::from_secs(10), || applied_count(&test, 1))
            .await
            .is_some()
    );

    test.close_all_connections();
    let dropped = eventually(Duration::from_secs(5), || async {
        (!consumer_status.is_connected() || !relay_status.is_connected()).then_some(())
    })
    .await;
    assert!(dropped.is_some(), "closing the connections was noticed");
    // Written while both sides are reconnecting.
    let during = event("test.during");
    test.enqueue(&during, true).await;
    wait_until_connected(&consumer_status).await;
    wait_until_connected(&relay_status).await;
    let after = event("test.after");
    test.enqueue(&after, true).await;

    let applied = eventually(Duration::from_secs(20), || applied_count(&test, 3)).await;
    let mut expected: Vec<Uuid> = [&before, &during, &after]
        .iter()
        .map(|event| event.event_id.parse().unwrap())
        .collect();
    expected.sort();
    assert_eq!(applied, Some(expected), "every event applied exactly once");
    assert!(
        test.every_row_marked_published().await,
        "every outbox row marked published"
    );

    shutdown.cancel();
    consumer_task.await.unwrap();
    relay_task.await.unwrap();
}

#[tokio::test]
async fn replaying_parked_events_applies_them_once_the_cause_is_fixed() {
    let test = TestBus::new().await;
    let shutdown = CancellationToken::new();
    let recorder = Recorder::refusing(&["test.fragile"]);
    let consumer = Consumer::new(test.pool.clone(), test.bus.clone(), recorder.clone());
    let status = consumer.status();
    let names = consumer.queue_names().clone();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until_connected(&status).await;

    let fragile = event("test.fragile");
    publish_raw(
        &test,
        "test.fragile",
        &fragile.encode_to_vec(),
        &fragile.event_id,
    )
    .await;
    let parked_count = eventually(Duration::from_secs(15), || async {
        let connection = test.connect().await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queue = channel
            .queue_declare(names.parked.as_str().into(), passive, FieldTable::default())
            .await
            .unwrap();
        connection.close(200, "done".into()).await.ok();
        (queue.message_count() == 1).then_some(())
    })
    .await;
    assert!(parked_count.is_some(), "the fragile event was parked");
    assert!(test.applied().await.is_empty());

    recorder.heal();
    let moved = spruce_bus::replay_parked(&test.bus).await.unwrap();
    assert_eq!(moved, 1);
    let applied = eventually(Duration::from_secs(10), || applied_count(&test, 1)).await;
    assert_eq!(applied, Some(vec![fragile.event_id.parse().unwrap()]));

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn consumers_whose_queues_expire_differently_share_the_exchange_and_its_unrouted_queue() {
    let test = TestBus::new().await;
    let shutdown = CancellationToken::new();
    // As a service whose queues expire (as search's once did) started before core and the
    // scheduler (queues kept), with the shared unrouted queue kept as in a deployment.
    let expiring = BusSettings {
        queue_expires: Duration::from_millis(60_000),
        unrouted_expires: Duration::ZERO,
        queue_prefix: format!("{}-expiring", test.bus.queue_prefix),
        ..test.bus.clone()
    };
    let kept = BusSettings {
        queue_expires: Duration::ZERO,
        unrouted_expires: Duration::ZERO,
        queue_prefix: format!("{}-kept", test.bus.queue_prefix),
        ..test.bus.clone()
    };
    let mut tasks = Vec::new();
    for settings in [expiring, kept.clone()] {
        let consumer = Consumer::new(test.pool.clone(), settings, Recorder::accepting());
        let status = consumer.status();
        tasks.push(tokio::spawn(consumer.run(shutdown.clone())));
        wait_until_connected(&status).await;
    }
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    let connection = test.connect().await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    // Queues kept forever are the test's to delete, before anything here may fail (the
    // unrouted queue goes with the exchange, at cleanup).
    let names = QueueNames::new(&kept.queue_prefix, kept.retry_delays.len());
    for queue in names.retries.iter().chain([&names.main, &names.parked]) {
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await
            .ok();
    }
    // The unrouted queue does not expire although search declared it first: declaring it
    // again without an expiry is refused (and the channel closed) if it had one.
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            spruce_bus::unrouted_name(&kept.exchange).as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .expect("the unrouted queue was declared without an expiry");
    connection.close(200, "done".into()).await.ok();
}

#[tokio::test]
async fn events_already_waiting_are_applied_together_each_once() {
    let test = TestBus::new().await;
    let events: Vec<_> = (0..40).map(|_| event("test.waiting")).collect();
    leave_waiting(&test, &events).await;
    // One of them twice: the copy is recognised inside the shared transaction.
    publish_raw(
        &test,
        "test.waiting",
        &events[3].encode_to_vec(),
        &events[3].event_id,
    )
    .await;

    let (shutdown, task) = start_accepting(&test).await;
    let applied = eventually(Duration::from_secs(10), || applied_count(&test, 40)).await;
    let mut expected: Vec<Uuid> = events.iter().map(|e| e.event_id.parse().unwrap()).collect();
    expected.sort_unstable();
    assert_eq!(applied, Some(expected));
    // Fewer transactions than events: those waiting went in together.
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM processed_events")
            .fetch_one(&test.pool)
            .await
            .unwrap();
    assert!(
        transactions < 40,
        "{transactions} transactions for 40 events"
    );
    shutdown.cancel();
    task.await.unwrap();
}

/// How many messages `queue` holds, or `None` when it is not there.
async fn held_in(test: &TestBus, queue: &str) -> Option<u32> {
    let connection = test.connect().await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let held = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .ok()
        .map(|queue| queue.message_count());
    connection.close(200, "done".into()).await.ok();
    held
}

#[tokio::test]
async fn a_retired_consumers_queues_are_unbound_and_deleted_once_empty() {
    let test = TestBus::new().await;
    let names = QueueNames::new(&test.bus.queue_prefix, test.bus.retry_delays.len());
    // A consumer that has gone: its queues were declared, bound to `test.#`, and an event
    // waits in the main one.
    let waiting = event("test.waiting");
    leave_waiting(&test, std::slice::from_ref(&waiting)).await;
    assert_eq!(held_in(&test, &names.main).await, Some(1));

    let kept = spruce_bus::retire_queues(&test.bus, &names, &["test.#"])
        .await
        .unwrap();
    assert_eq!(kept, vec![(names.main.clone(), 1)], "what waits is kept");
    for emptied in names.retries.iter().chain([&names.parked]) {
        assert_eq!(held_in(&test, emptied).await, None, "{emptied} is deleted");
    }
    // Unbound: a later event no longer reaches it.
    let later = event("test.later");
    publish_raw(&test, "test.later", &later.encode_to_vec(), &later.event_id).await;
    assert_eq!(held_in(&test, &names.main).await, Some(1));

    // Once what waited is taken, the next retirement deletes it; and one more finds nothing.
    let (shutdown, task) = start_accepting(&test).await;
    let applied = eventually(Duration::from_secs(10), || applied_count(&test, 1)).await;
    assert_eq!(applied, Some(vec![waiting.event_id.parse().unwrap()]));
    shutdown.cancel();
    task.await.unwrap();
    for _ in 0..2 {
        let kept = spruce_bus::retire_queues(&test.bus, &names, &["test.#"])
            .await
            .unwrap();
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(held_in(&test, &names.main).await, None);
    }
}

#[tokio::test]
async fn records_of_processed_events_are_forgotten_after_the_retention() {
    let test = TestBus::new().await;
    let (old, recent) = (Uuid::new_v4(), Uuid::new_v4());
    // The retention is a week by default: one applied eight days ago, one six.
    for (event_id, days) in [(old, 8), (recent, 6)] {
        sqlx::query(
            "INSERT INTO processed_events (event_id, processed_at) \
             VALUES ($1, now() - make_interval(days => $2))",
        )
        .bind(event_id)
        .bind(days)
        .execute(&test.pool)
        .await
        .unwrap();
    }

    let (shutdown, task) = start_accepting(&test).await;
    let kept = eventually(Duration::from_secs(10), || async {
        let kept: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM processed_events")
            .fetch_all(&test.pool)
            .await
            .unwrap();
        (!kept.contains(&old)).then_some(kept)
    })
    .await;
    assert_eq!(
        kept,
        Some(vec![recent]),
        "the older one is forgotten, the other kept"
    );
    shutdown.cancel();
    task.await.unwrap();
}
