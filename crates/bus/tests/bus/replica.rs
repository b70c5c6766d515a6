//! A replica's consumer: a queue of its own that the broker deletes with the replica's
//! connection, a new subscription counted after each reconnection, failures parked at once
//! in the queue the replicas share.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use spruce_bus::{Consumer, Envelope, EventSink, Failure, Outcome, QueueNames};
use spruce_proto::events::v1::envelope::Payload;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{TestBus, event, eventually};

/// Keeps the ids of the events it is given in memory; fails `test.refused`.
#[derive(Clone, Default)]
struct Held {
    ids: Arc<Mutex<Vec<Uuid>>>,
}

impl Held {
    /// Waits up to 10 s for `event` to be applied; whether it was.
    async fn receives(&self, event: &Envelope) -> bool {
        let id: Uuid = event.event_id.parse().unwrap();
        eventually(Duration::from_secs(10), || async {
            self.ids.lock().unwrap().contains(&id).then_some(())
        })
        .await
        .is_some()
    }
}

impl EventSink for Held {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["test.#"]
    }

    async fn apply(&self, event_id: Uuid, event: &Envelope) -> Result<Outcome, Failure> {
        if event.r#type == "test.refused" {
            return Err(Failure::Transient(anyhow::anyhow!("refused")));
        }
        self.ids.lock().unwrap().push(event_id);
        Ok(Outcome::Applied)
    }
}

#[tokio::test]
async fn a_replicas_queue_lives_as_long_as_its_connection() {
    let test = TestBus::with_own_vhost().await;
    let names = QueueNames::replica(&test.bus.queue_prefix, "r1");
    let held = Held::default();
    let consumer = Consumer::for_replica(test.bus.clone(), "r1", held.clone());
    let status = consumer.status();
    let mut subscriptions = status.subscriptions();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    let relay = test.start_relay();
    let subscribed = tokio::time::timeout(
        Duration::from_secs(30),
        subscriptions.wait_for(|count| *count >= 1),
    )
    .await
    .is_ok();
    assert!(subscribed, "the replica never subscribed");
    assert_eq!(
        test.queues(),
        vec![names.parked.clone(), names.main.clone()]
    );
    // Its connection and the relay's asked for frames of 8 KiB, not the broker's 128 KiB
    // (the client keeps 32 frames of buffer each way). On a loaded machine a connection
    // attempt that timed out may still be listed: every one asked the same.
    let frame_sizes = test.frame_sizes();
    assert!(
        frame_sizes.len() >= 2 && frame_sizes.iter().all(|size| *size == 8 * 1024),
        "{frame_sizes:?}"
    );

    let applied = event("test.applied");
    test.enqueue(&applied, true).await;
    assert!(
        held.receives(&applied).await,
        "the event never reached the replica"
    );

    // An event many frames long is published and delivered whole (it is decoded by id).
    let mut large = event("test.applied");
    if let Some(Payload::UserRegistered(user)) = &mut large.payload {
        user.full_name = "a".repeat(100 * 1024);
    }
    test.enqueue(&large, true).await;
    assert!(
        held.receives(&large).await,
        "the large event never reached the replica"
    );

    // A failure is parked at once, in the shared parked queue: no retry queue exists.
    let refused = event("test.refused");
    test.enqueue(&refused, true).await;
    let parked = test.first_parked(&names, Duration::from_secs(10)).await;
    let parked = parked.expect("the failed event is parked");
    assert_eq!(
        parked
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string),
        Some(refused.event_id.clone())
    );

    // The connection cut: the queue goes with it, and the consumer subscribes again to a
    // new one.
    test.close_all_connections();
    let subscribed = tokio::time::timeout(
        Duration::from_secs(30),
        subscriptions.wait_for(|count| *count >= 2),
    )
    .await
    .is_ok();
    assert!(subscribed, "the replica never subscribed again");
    let again = event("test.applied");
    test.enqueue(&again, true).await;
    assert!(
        held.receives(&again).await,
        "the event never reached the resubscribed replica"
    );

    // Stopped, it leaves only the shared parked queue behind.
    shutdown.cancel();
    task.await.unwrap();
    relay.stop().await;
    let gone = eventually(Duration::from_secs(10), || async {
        (test.queues() == vec![names.parked.clone()]).then_some(())
    })
    .await;
    assert!(gone.is_some(), "left behind: {:?}", test.queues());
}
