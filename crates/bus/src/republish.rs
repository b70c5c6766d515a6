//! Publishing a message again, confirmed: what retries, parking and both replays
//! (`replay-parked`, `replay-unrouted`) share.

use anyhow::{Context as _, anyhow};
use lapin::{
    BasicProperties, Channel, Confirmation,
    message::Delivery,
    options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable,
};

/// Publishes to `exchange` with `routing_key` (mandatory) and waits for the broker's ack; a
/// returned or refused message is an error.
pub(super) async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> anyhow::Result<()> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirmation = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            options,
            payload,
            properties,
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        other => Err(anyhow!(
            "broker did not accept the message for {routing_key}: {other:?}"
        )),
    }
}

/// Where a replayed message goes.
pub(super) struct Target {
    pub(super) exchange: String,
    pub(super) routing_key: String,
    pub(super) properties: BasicProperties,
}

/// How many messages are ready in `queue` (a passive declare: nothing is created).
///
/// # Errors
/// Fails when `queue` does not exist (the broker then closes the channel).
pub(super) async fn waiting_in(channel: &Channel, queue: &str) -> lapin::Result<u32> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    Ok(channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?
        .message_count())
}

/// Moves every message waiting in `queue` now to where `target` says, each confirmed before
/// it leaves `queue`; returns how many moved. Only what waits at the start moves: a message
/// that comes back to `queue` is not tried twice in one run.
///
/// # Errors
/// Fails when `queue` does not exist or the broker refuses a message (which then stays).
pub(super) async fn move_waiting(
    channel: &Channel,
    queue: &str,
    target: impl Fn(&Delivery) -> Target,
) -> anyhow::Result<usize> {
    let waiting = waiting_in(channel, queue)
        .await
        .with_context(|| format!("queue {queue} does not exist"))?;
    let mut moved = 0;
    for _ in 0..waiting {
        let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let Target {
            exchange,
            routing_key,
            properties,
        } = target(delivery);
        publish_confirmed(channel, &exchange, &routing_key, &delivery.data, properties).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    Ok(moved)
}
