//! Declares the exchange and a consuming service's queues: the main quorum queue, retry
//! queues whose messages return to it after a delay, and the parked queue.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use crate::settings::BusSettings;

/// Messages redelivered more often than this (a handler that crashes the process, say) are
/// dead-lettered to the parked queue by the broker itself.
const DELIVERY_LIMIT: i32 = 20;

/// The queue names of one consuming service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// `<prefix>.events`: bound to the exchange, consumed.
    pub main: String,
    /// `<prefix>.events.retry.N`, one per configured delay.
    pub retries: Vec<String>,
    /// `<prefix>.events.parked`: messages that exhausted their retries.
    pub parked: String,
}

impl QueueNames {
    /// Returns the names for `prefix` with `retry_count` retry queues.
    pub fn new(prefix: &str, retry_count: usize) -> Self {
        let main = format!("{prefix}.events");
        QueueNames {
            retries: (1..=retry_count)
                .map(|n| format!("{main}.retry.{n}"))
                .collect(),
            parked: format!("{main}.parked"),
            main,
        }
    }
}

/// Declares the durable topic exchange.
pub(crate) async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
}

/// Declares the exchange and every queue of `names`, binding the main queue to `routing_keys`.
pub(crate) async fn declare_consumer_topology(
    channel: &Channel,
    settings: &BusSettings,
    names: &QueueNames,
    routing_keys: &[&str],
) -> lapin::Result<()> {
    declare_exchange(channel, &settings.exchange).await?;

    declare_queue(channel, &names.parked, quorum_arguments(settings)).await?;

    let mut main = quorum_arguments(settings);
    dead_letter_to(&mut main, &names.parked);
    main.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(DELIVERY_LIMIT),
    );
    declare_queue(channel, &names.main, main).await?;
    for routing_key in routing_keys {
        channel
            .queue_bind(
                names.main.as_str().into(),
                settings.exchange.as_str().into(),
                (*routing_key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    for (retry, delay_ms) in names.retries.iter().zip(&settings.retry_delays_ms) {
        let mut arguments = quorum_arguments(settings);
        dead_letter_to(&mut arguments, &names.main);
        let ttl = i64::try_from(*delay_ms).unwrap_or(i64::MAX);
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        declare_queue(channel, retry, arguments).await?;
    }
    Ok(())
}

fn quorum_arguments(settings: &BusSettings) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if settings.queue_expires_ms > 0 {
        let expires = i64::try_from(settings.queue_expires_ms).unwrap_or(i64::MAX);
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires));
    }
    arguments
}

/// Routes dead letters through the default exchange to `queue`, with broker-side confirms
/// (at-least-once) so that a dead-lettered message cannot be lost in between.
fn dead_letter_to(arguments: &mut FieldTable, queue: &str) {
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(queue.into()),
    );
    arguments.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
}

async fn declare_queue(channel: &Channel, name: &str, arguments: FieldTable) -> lapin::Result<()> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(ShortString::from(name), options, arguments)
        .await
        .map(|_| ())
}
