//! Events no queue was bound to when they were published wait in the exchange's unrouted
//! queue (its alternate exchange's); once a consumer's queue exists, `replay-unrouted` sends
//! them through the exchange again.

use crate::{open_channel, republish, topology};
use spruce_platform::settings::BusSettings;

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
    // The alternate exchange keeps the routing key each event was published with.
    let moved = republish::move_waiting(&channel, &queue, |delivery| republish::Target {
        exchange: settings.exchange.clone(),
        routing_key: delivery.routing_key.to_string(),
        properties: delivery.properties.clone(),
    })
    .await?;
    connection.close(200, "replay done".into()).await.ok();
    Ok(moved)
}
