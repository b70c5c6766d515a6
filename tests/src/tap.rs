//! A queue of the test's own bound to everything on a stack's exchange: the events exactly
//! as the services publish them, for checking against docs/asyncapi.yaml.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use prost::Message as _;
use spruce_proto::events::v1::Envelope;
use tokio::task::JoinHandle;

/// One message as a consumer receives it.
#[derive(Debug, Clone)]
pub struct Published {
    pub routing_key: String,
    pub content_type: Option<String>,
    pub message_id: Option<String>,
    /// The AMQP headers whose values are text.
    pub headers: HashMap<String, String>,
    /// The body read as an Envelope; `None` when it does not decode.
    pub envelope: Option<Envelope>,
}

/// Everything published on one exchange since [`Tap::bind`].
pub struct Tap {
    received: std::sync::Arc<std::sync::Mutex<Vec<Published>>>,
    task: JoinHandle<()>,
    _connection: Connection,
}

impl Tap {
    /// Binds an exclusive queue to every routing key of `exchange` (which must exist) on the
    /// local broker and starts collecting.
    ///
    /// # Errors
    /// When the broker cannot be reached or the exchange does not exist.
    pub async fn bind(exchange: &str) -> anyhow::Result<Self> {
        let connection = Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            ConnectionProperties::default(),
        )
        .await?;
        let channel = connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = received.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let properties = &delivery.properties;
                let headers = properties
                    .headers()
                    .as_ref()
                    .map(|table| {
                        table
                            .inner()
                            .iter()
                            .filter_map(|(key, value)| match value {
                                AMQPValue::LongString(text) => {
                                    Some((key.to_string(), text.to_string()))
                                }
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let published = Published {
                    routing_key: delivery.routing_key.to_string(),
                    content_type: properties.content_type().as_ref().map(ToString::to_string),
                    message_id: properties.message_id().as_ref().map(ToString::to_string),
                    headers,
                    envelope: Envelope::decode(delivery.data.as_slice()).ok(),
                };
                collected
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .push(published);
            }
        });
        Ok(Tap {
            received,
            task,
            _connection: connection,
        })
    }

    /// What arrived so far.
    pub fn received(&self) -> Vec<Published> {
        self.received
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The routing keys docs/asyncapi.yaml documents (its channels' addresses).
///
/// # Errors
/// When the document cannot be read.
pub fn documented_routing_keys() -> anyhow::Result<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/asyncapi.yaml");
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| line.strip_prefix("    address: "))
        .map(str::to_owned)
        .collect())
}
