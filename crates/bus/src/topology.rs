//! Declares the exchange (with its alternate exchange, where the broker keeps events no queue
//! is bound to) and a consuming service's queues: the main quorum queue, retry queues whose
//! messages return to it after a delay, and the parked queue; or a replica's queue, which
//! lives as long as the replica's connection, beside the parked queue the replicas share.

use lapin::{
    Channel, Connection, ErrorKind, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use std::time::Duration;

use spruce_platform::settings::BusSettings;

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

    /// Returns the names of `replica`'s queues among `prefix`'s: `<prefix>.<replica>.events`,
    /// no retry queue, and the shared `<prefix>.events.parked`.
    pub fn replica(prefix: &str, replica: &str) -> Self {
        QueueNames {
            main: format!("{prefix}.{replica}.events"),
            retries: Vec::new(),
            parked: format!("{prefix}.events.parked"),
        }
    }

    /// The name the consumer gives its broker connection: the main queue's, with
    /// `-consumer` in place of `.events`.
    pub fn connection_name(&self) -> String {
        let queue = &self.main;
        format!(
            "{}-consumer",
            queue.strip_suffix(".events").unwrap_or(queue)
        )
    }
}

/// Returns the name of `exchange`'s alternate exchange and of its one queue:
/// `<exchange>.unrouted`.
pub fn unrouted_name(exchange: &str) -> String {
    format!("{exchange}.unrouted")
}

/// Declares the durable topic exchange of `settings`, with its alternate exchange (fanout)
/// and that exchange's durable quorum queue, both named by [`unrouted_name`]: an event no
/// queue is bound to is kept there, so a confirmed publish is final.
///
/// An exchange declared before it had an alternate exchange cannot be given one by
/// declaring it again (RabbitMQ refuses other arguments for an existing exchange and closes
/// the channel). The declaration is tried on a channel of its own; when refused, the
/// existing exchange is used as it is and a warning says how to fix it (a policy, see
/// docs/operations.md); meanwhile the relay retries events the broker returns.
pub(crate) async fn declare_exchange(
    connection: &Connection,
    channel: &Channel,
    settings: &BusSettings,
) -> lapin::Result<()> {
    let exchange = settings.exchange.as_str();
    let unrouted = unrouted_name(exchange);
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            unrouted.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    // Every service declares this shared queue the same way, whatever its own queues'
    // expiry (search's per-replica queues expire): it holds events until they are replayed,
    // so it expires only where `unrouted_expires` says (tests). One declared otherwise
    // (by a version that gave it search's expiry) is refused on a channel of its own and
    // used as it is.
    let probe = connection.create_channel().await?;
    match declare_queue(
        &probe,
        &unrouted,
        quorum_arguments(settings.unrouted_expires),
    )
    .await
    {
        Ok(()) => {
            probe.close(200, "declared".into()).await.ok();
        }
        Err(error) if is_precondition_failed(&error) => {
            tracing::warn!(
                queue = %unrouted,
                "the unrouted queue exists with other arguments (an older version may have made it expire, losing what it holds): used as it is; delete it while it is empty and the services declare it again"
            );
        }
        Err(error) => return Err(error),
    }
    channel
        .queue_bind(
            unrouted.as_str().into(),
            unrouted.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = FieldTable::default();
    arguments.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(unrouted.as_str().into()),
    );
    let probe = connection.create_channel().await?;
    match probe
        .exchange_declare(exchange.into(), ExchangeKind::Topic, durable, arguments)
        .await
    {
        Ok(()) => {
            probe.close(200, "declared".into()).await.ok();
        }
        Err(error) if is_precondition_failed(&error) => {
            tracing::warn!(
                %exchange,
                alternate_exchange = %unrouted,
                "the exchange exists without its alternate exchange: events no queue is bound to are returned and retried; add the policy in docs/operations.md"
            );
        }
        Err(error) => return Err(error),
    }
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
}

/// Whether the broker refused a declaration because the entity exists with other arguments.
fn is_precondition_failed(error: &lapin::Error) -> bool {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => amqp.get_id() == 406,
        _ => false,
    }
}

/// Declares the exchange and every queue of `names`, binding the main queue to
/// `routing_keys`; a `replica`'s queues as [`declare_replica_topology`] does.
pub(crate) async fn declare_consumer_topology(
    connection: &Connection,
    channel: &Channel,
    settings: &BusSettings,
    names: &QueueNames,
    routing_keys: &[&str],
    replica: bool,
) -> lapin::Result<()> {
    if replica {
        return declare_replica_topology(connection, channel, settings, names, routing_keys).await;
    }
    declare_exchange(connection, channel, settings).await?;

    declare_queue(
        channel,
        &names.parked,
        quorum_arguments(settings.queue_expires),
    )
    .await?;

    let mut main = quorum_arguments(settings.queue_expires);
    dead_letter_to(&mut main, &names.parked);
    main.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongInt(DELIVERY_LIMIT),
    );
    declare_queue(channel, &names.main, main).await?;
    bind(channel, settings, names, routing_keys).await?;

    for (retry, delay) in names.retries.iter().zip(&settings.retry_delays) {
        let mut arguments = quorum_arguments(settings.queue_expires);
        dead_letter_to(&mut arguments, &names.main);
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        declare_queue(channel, retry, arguments).await?;
    }
    Ok(())
}

/// Declares the exchange, the shared parked queue of `names` (durable; deleted after
/// `queue_expires` unused where that is set, as for tests) and `names.main`:
/// a classic queue exclusive to `channel`'s connection, bound to `routing_keys`. The broker
/// deletes it when that connection closes or is lost, so a replica that is gone leaves no
/// queue that goes on receiving events. (The type is explicit: a broker whose default queue
/// type is quorum, as Amazon MQ's 3.13 and later may be, would refuse an exclusive queue.)
async fn declare_replica_topology(
    connection: &Connection,
    channel: &Channel,
    settings: &BusSettings,
    names: &QueueNames,
    routing_keys: &[&str],
) -> lapin::Result<()> {
    declare_exchange(connection, channel, settings).await?;
    declare_queue(
        channel,
        &names.parked,
        quorum_arguments(settings.queue_expires),
    )
    .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(names.main.as_str().into(), options, arguments)
        .await?;
    bind(channel, settings, names, routing_keys).await
}

async fn bind(
    channel: &Channel,
    settings: &BusSettings,
    names: &QueueNames,
    routing_keys: &[&str],
) -> lapin::Result<()> {
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
    Ok(())
}

/// Whether a topic exchange routes `routing_key` to a binding of `pattern`: words split at
/// dots, `*` standing for exactly one word and `#` for any number, none included.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    type Words<'a> = std::str::Split<'a, char>;
    fn matches(mut pattern: Words<'_>, mut key: Words<'_>) -> bool {
        match pattern.next() {
            None => key.next().is_none(),
            Some("#") => loop {
                if matches(pattern.clone(), key.clone()) {
                    return true;
                }
                if key.next().is_none() {
                    return false;
                }
            },
            Some(word) => key
                .next()
                .is_some_and(|first| (word == "*" || word == first) && matches(pattern, key)),
        }
    }
    matches(pattern.split('.'), routing_key.split('.'))
}

/// The arguments of a quorum queue deleted after `expires` unused (zero: never).
fn quorum_arguments(expires: Duration) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if !expires.is_zero() {
        let expires = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
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

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn topic_patterns_route_as_the_broker_does() {
        for (pattern, key, routed) in [
            ("#", "booking.created", true),
            ("#", "user", true),
            ("booking.*", "booking.created", true),
            ("booking.*", "booking", false),
            ("booking.*", "booking.created.again", false),
            ("booking.*", "bookings.created", false),
            ("payment.failed", "payment.failed", true),
            ("payment.failed", "payment.captured", false),
            ("*.created", "review.created", true),
            ("booking.#", "booking", true),
            ("booking.#", "booking.a.b", true),
            ("#.created", "created", true),
            ("a.#.z", "a.b.c.z", true),
            ("a.#.z", "a.b.c", false),
        ] {
            assert_eq!(topic_matches(pattern, key), routed, "{pattern} with {key}");
        }
    }
}
