//! A stream every replica of a service reads from its own offset: each replica sees every
//! event written since shortly before it started, resumes where it left off when the broker
//! drops its connection, and a replica that is gone leaves no queue behind.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use spruce_bus::{
    BusStatus, Consumer, Envelope, EventSink, Failure, Outcome, QueueNames, unrouted_name,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{TestBus, event, eventually};

/// The ids of the events a replica was given, in order, as its in-memory state would hold.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    async fn holds(&self, events: &[&Envelope]) -> bool {
        let seen = self.clone();
        let wanted: Vec<String> = events.iter().map(|event| event.event_id.clone()).collect();
        eventually(Duration::from_secs(20), || {
            let ids = seen.ids();
            let found = wanted.iter().all(|id| ids.contains(id));
            async move { found.then_some(()) }
        })
        .await
        .is_some()
    }
}

impl EventSink for Seen {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["test.#"]
    }

    async fn apply(&self, _event_id: Uuid, event: &Envelope) -> Result<Outcome, Failure> {
        self.0.lock().unwrap().push(event.event_id.clone());
        Ok(Outcome::Applied)
    }
}

/// Starts a replica named `reader` following the test's stream until `stop` is cancelled.
fn follow(
    test: &TestBus,
    reader: &str,
    stop: &CancellationToken,
) -> (Seen, BusStatus, JoinHandle<()>) {
    let seen = Seen::default();
    let consumer = Consumer::following(test.bus.clone(), reader, seen.clone());
    let status = consumer.status();
    (seen, status, tokio::spawn(consumer.run(stop.clone())))
}

async fn connected(status: &BusStatus) {
    let up = eventually(Duration::from_secs(30), || async {
        status.is_connected().then_some(())
    })
    .await;
    assert!(up.is_some(), "the replica never connected");
}

#[tokio::test]
async fn replicas_following_a_stream_see_every_event_once_and_leave_nothing_behind() {
    let test = TestBus::with_own_vhost().await;
    let relay = test.start_relay();
    let shutdown = CancellationToken::new();

    // Five replicas come and go, as a rollout replaces pods one by one.
    let mut written = Vec::new();
    for n in 1..=5 {
        let stop = shutdown.child_token();
        let (seen, status, task) = follow(&test, &format!("r{n}"), &stop);
        connected(&status).await;
        let rollout = event("test.rollout");
        test.enqueue(&rollout, true).await;
        assert!(seen.holds(&[&rollout]).await, "replica r{n}");
        written.push(rollout.event_id.clone());
        stop.cancel();
        task.await.unwrap();
    }

    // Two live replicas, and the broker drops every connection between two events.
    let (a, a_status, a_task) = follow(&test, "a", &shutdown);
    let (b, b_status, b_task) = follow(&test, "b", &shutdown);
    connected(&a_status).await;
    connected(&b_status).await;
    let before = event("test.before");
    test.enqueue(&before, true).await;
    assert!(a.holds(&[&before]).await && b.holds(&[&before]).await);
    test.close_all_connections();
    let dropped = eventually(Duration::from_secs(5), || async {
        (!a_status.is_connected() && !b_status.is_connected()).then_some(())
    })
    .await;
    assert!(dropped.is_some(), "closing the connections was noticed");
    let during = event("test.during");
    test.enqueue(&during, true).await;
    connected(&a_status).await;
    connected(&b_status).await;
    let after = event("test.after");
    test.enqueue(&after, true).await;
    written.extend([&before, &during, &after].map(|event| event.event_id.clone()));
    for (name, seen) in [("a", &a), ("b", &b)] {
        assert!(seen.holds(&[&during, &after]).await, "replica {name}");
        // Each event once: after the reconnect the replica went on from its offset rather
        // than reading again (the earlier replicas' events it read, from the seconds before
        // it started, count too).
        let mut ids = seen.ids();
        ids.sort();
        let read = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), read, "replica {name} read an event twice");
        assert!(ids.iter().all(|id| written.contains(id)), "replica {name}");
    }
    shutdown.cancel();
    a_task.await.unwrap();
    b_task.await.unwrap();
    relay.stop().await;

    // Seven replicas have come and gone: the broker holds the service's stream and parked
    // queue, and the exchange's unrouted queue, nothing of any replica's own.
    let names = QueueNames::new(&test.bus.queue_prefix, 0);
    let mut expected = vec![names.main, names.parked, unrouted_name(&test.bus.exchange)];
    expected.sort();
    assert_eq!(test.queues(), expected);
}
