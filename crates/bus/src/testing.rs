//! An exchange of the test's own, a replica's queue held away from it and a listener on the
//! exchange (the `testing` feature, for dev-dependencies only).

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use prost::Message as _;
use secrecy::ExposeSecret as _;
use spruce_platform::settings::BusSettings;

use crate::Envelope;

/// Bus settings naming an exchange and queues of one test's own on the local broker, with
/// queues that expire two minutes after their last consumer; the exchange is deleted when
/// this is dropped, also when the test fails.
pub struct TestExchange {
    settings: BusSettings,
}

impl TestExchange {
    /// Names `spruce.test.<id>` and queues `test-<id>…`.
    pub fn new(id: &str) -> Self {
        TestExchange {
            settings: BusSettings {
                exchange: format!("spruce.test.{id}"),
                queue_prefix: format!("test-{id}"),
                queue_expires: Duration::from_secs(120),
                unrouted_expires: Duration::from_secs(120),
                ..BusSettings::default()
            },
        }
    }

    /// The settings that reach it.
    pub fn settings(&self) -> &BusSettings {
        &self.settings
    }
}

impl Drop for TestExchange {
    fn drop(&mut self) {
        let settings = self.settings.clone();
        spruce_testkit::run_aside(async move { crate::delete_exchange(&settings).await.ok() });
    }
}

/// A connection of the test's own holding an exclusive queue under a replica's queue name,
/// so that the replica cannot subscribe until it is released: what is published meanwhile
/// never reaches that replica.
pub struct HeldQueue {
    connection: Connection,
}

impl HeldQueue {
    /// Declares `name` exclusive on a connection of its own; `None` while another
    /// connection holds it.
    ///
    /// # Panics
    /// When the broker cannot be reached.
    pub async fn try_hold(settings: &BusSettings, name: &str) -> Option<Self> {
        let connection = connect(settings).await;
        let channel = connection.create_channel().await.expect("a channel");
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        match channel
            .queue_declare(name.into(), options, FieldTable::default())
            .await
        {
            Ok(_) => Some(HeldQueue { connection }),
            Err(_) => {
                connection.close(200, "held elsewhere".into()).await.ok();
                None
            }
        }
    }

    /// Closes the connection, and the queue goes with it.
    pub async fn release(self) {
        self.connection.close(200, "released".into()).await.ok();
    }
}

/// The events published on an exchange with a routing key, from the moment it listens.
pub struct Listener {
    _connection: Connection,
    deliveries: lapin::Consumer,
}

impl Listener {
    /// Listens on `settings`' exchange (declared as the services declare it) for
    /// `routing_key`.
    ///
    /// # Panics
    /// When the broker cannot be reached.
    pub async fn start(settings: &BusSettings, routing_key: &str) -> Self {
        let connection = connect(settings).await;
        let channel = connection.create_channel().await.expect("a channel");
        crate::topology::declare_exchange(&connection, &channel, settings)
            .await
            .expect("the exchange is declared");
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .expect("a queue");
        channel
            .queue_bind(
                queue.name().clone(),
                settings.exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bound");
        let deliveries = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consuming");
        Listener {
            _connection: connection,
            deliveries,
        }
    }

    /// The next event, or `None` after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Envelope> {
        let delivery = tokio::time::timeout(wait, self.deliveries.next())
            .await
            .ok()??
            .ok()?;
        Envelope::decode(delivery.data.as_slice()).ok()
    }
}

async fn connect(settings: &BusSettings) -> Connection {
    Connection::connect(
        settings.url.expose_secret(),
        ConnectionProperties::default(),
    )
    .await
    .expect("the broker answers")
}
