//! Events no queue was bound to when they were published wait in the exchange's unrouted
//! queue (its alternate exchange's); once a consumer's queue exists, `replay-unrouted` sends
//! them through the exchange again.

use anyhow::Context as _;
use lapin::{
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::{consumer::publish_to_exchange_confirmed, open_channel, topology};
use crate::settings::BusSettings;

/// Publishes every event now in the exchange's unrouted queue through the exchange again,
/// with its routing key, each confirmed before it leaves the unrouted queue; returns how many
/// moved. An event that still no queue is bound to comes back to the end of the unrouted
/// queue: it is counted, and not tried twice in one run.
///
/// # Errors
/// Fails when the broker cannot be reached or refuses a message (which then stays where it
/// was).
pub async fn replay_unrouted(settings: &BusSettings) -> anyhow::Result<usize> {
    let (connection, channel) = open_channel(settings, "replay-unrouted").await?;
    topology::declare_exchange(&connection, &channel, settings).await?;
    let queue = topology::unrouted_name(&settings.exchange);
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let waiting = channel
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .with_context(|| format!("queue {queue} does not exist"))?
        .message_count();
    let mut moved = 0;
    for _ in 0..waiting {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        // The alternate exchange keeps the routing key the event was published with.
        publish_to_exchange_confirmed(
            &channel,
            &settings.exchange,
            delivery.routing_key.as_str(),
            &delivery.data,
            delivery.properties.clone(),
        )
        .await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    connection.close(200, "replay done".into()).await.ok();
    Ok(moved)
}
