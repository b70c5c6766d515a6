//! A private database and bus namespace per test.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::FieldTable,
};
use secrecy::ExposeSecret as _;
use spruce_bus::{Envelope, EventHandler, OutboxRelay, QueueNames};
use spruce_platform::settings::BusSettings;
use spruce_proto::events::v1::{UserRegistered, envelope::Payload};
use spruce_testkit::{TestDb, add_vhost, rabbitmqctl, run_aside};
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The real table definitions of the services that own them.
const MIGRATIONS: &[spruce_db::MigrationSource] = &[
    (
        1,
        "outbox",
        include_str!("../../../core/migrations/0001_outbox.sql"),
    ),
    (
        2,
        "inbox",
        include_str!("../../../scheduler/migrations/0001_inbox.sql"),
    ),
    (
        3,
        "outbox parked",
        include_str!("../../../core/migrations/0007_outbox_parked.sql"),
    ),
    (
        4,
        "applied",
        "CREATE TABLE applied (event_id uuid NOT NULL, event_type text NOT NULL)",
    ),
    (
        5,
        "processed events by time",
        include_str!("../../../scheduler/migrations/0008_processed_events_by_time.sql"),
    ),
];

/// An outbox relay running in the background of a test.
pub(crate) struct RunningRelay {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningRelay {
    /// Stops the relay and waits until it has.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

pub(crate) struct TestBus {
    pub(crate) pool: PgPool,
    pub(crate) bus: BusSettings,
    vhost: Option<String>,
    /// Dropped with the test, after the pool.
    _database: TestDb,
}

impl TestBus {
    /// A fresh database and uniquely named exchange and queues on the default vhost.
    pub(crate) async fn new() -> Self {
        Self::create(None).await
    }

    /// Same, on a virtual host of its own, so its connections can be closed by force
    /// without touching anyone else's.
    pub(crate) async fn with_own_vhost() -> Self {
        let vhost = format!("spruce-test-{}", Uuid::new_v4().simple());
        add_vhost(&vhost);
        Self::create(Some(vhost)).await
    }

    async fn create(vhost: Option<String>) -> Self {
        spruce_platform::telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("bus");
        let settings = spruce_db::testing::settings(&database);
        let pool = spruce_db::connect(&settings)
            .await
            .expect("database reachable");
        spruce_db::apply_migrations(&pool, MIGRATIONS)
            .await
            .expect("migrations apply");
        let url = match &vhost {
            Some(vhost) => format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
            None => "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        };
        let bus = BusSettings {
            url: url.into(),
            exchange: format!("spruce.test.{id}"),
            queue_prefix: format!("test-{id}"),
            prefetch: 8,
            retry_delays: vec![Duration::from_millis(200), Duration::from_millis(400)],
            queue_expires: Duration::from_millis(120_000),
            unrouted_expires: Duration::from_millis(120_000),
            queue_stats: Duration::from_millis(200),
            // Parked after tries at about 0, 1 and 3 s.
            ..BusSettings::default()
        };
        TestBus {
            pool,
            bus,
            vhost,
            _database: database,
        }
    }

    /// Starts an outbox relay on this bus; [`RunningRelay::stop`] ends it.
    pub(crate) fn start_relay(&self) -> RunningRelay {
        let shutdown = CancellationToken::new();
        let relay = OutboxRelay::new(self.pool.clone(), self.bus.clone(), "test");
        RunningRelay {
            task: tokio::spawn(relay.run(shutdown.clone())),
            shutdown,
        }
    }

    /// [`eventually`], handing `check` the test's pool for each look.
    pub(crate) async fn eventually<T, F, Fut>(&self, limit: Duration, check: F) -> Option<T>
    where
        F: Fn(PgPool) -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        eventually(limit, || check(self.pool.clone())).await
    }

    /// Waits until the relay has marked every outbox row published. The broker routes a
    /// message before it confirms it, so a delivered event's row is marked a moment later.
    pub(crate) async fn every_row_marked_published(&self) -> bool {
        self.eventually(Duration::from_secs(5), |pool| async move {
            let unpublished: i64 =
                sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            (unpublished == 0).then_some(())
        })
        .await
        .is_some()
    }

    /// Declares the exchange as versions before the alternate exchange did: without one.
    pub(crate) async fn declare_exchange_without_alternate(&self) {
        let connection = self.connect().await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        self.declare_exchange(&channel, FieldTable::default())
            .await
            .unwrap();
        connection.close(200, "declared".into()).await.ok();
    }

    /// Declares the test's durable topic exchange with `arguments` on `channel`.
    async fn declare_exchange(
        &self,
        channel: &lapin::Channel,
        arguments: FieldTable,
    ) -> lapin::Result<()> {
        channel
            .exchange_declare(
                self.bus.exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                arguments,
            )
            .await
    }

    /// Returns how many messages wait in the exchange's unrouted queue.
    pub(crate) async fn unrouted_count(&self) -> u32 {
        let connection = self.connect().await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                spruce_bus::unrouted_name(&self.bus.exchange)
                    .as_str()
                    .into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        connection.close(200, "counted".into()).await.ok();
        queue.message_count()
    }

    pub(crate) async fn connect(&self) -> lapin::Result<Connection> {
        Connection::connect(
            self.bus.url.expose_secret(),
            ConnectionProperties::default(),
        )
        .await
    }

    /// The `frame_max` the broker agreed with each named client connection on the test's
    /// vhost: the services' own (the test's helpers open unnamed ones, which may still be
    /// closing).
    pub(crate) fn frame_sizes(&self) -> Vec<u32> {
        let vhost = self.vhost.as_deref().expect("test has its own vhost");
        rabbitmqctl(&[
            "list_connections",
            "-p",
            vhost,
            "--no-table-headers",
            "frame_max",
            "client_properties",
        ])
        .lines()
        .filter(|line| line.contains("connection_name"))
        .map(|line| {
            let frame_max = line.split_whitespace().next().unwrap_or_default();
            frame_max.parse().expect("a frame size")
        })
        .collect()
    }

    /// Closes every connection of this test's vhost, as a broker restart would.
    pub(crate) fn close_all_connections(&self) {
        let vhost = self.vhost.as_deref().expect("test has its own vhost");
        rabbitmqctl(&[
            "close_all_connections",
            "-p",
            vhost,
            "test closes connections",
        ]);
    }

    /// Takes the first message from the parked queue of `names`, waiting up to `wait` for
    /// one.
    pub(crate) async fn first_parked(
        &self,
        names: &QueueNames,
        wait: Duration,
    ) -> Option<lapin::message::BasicGetMessage> {
        let connection = self.connect().await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let parked = eventually(wait, || {
            let channel = channel.clone();
            let parked_queue = names.parked.clone();
            async move {
                let options = BasicGetOptions { no_ack: true };
                channel
                    .basic_get(parked_queue.as_str().into(), options)
                    .await
                    .unwrap()
            }
        })
        .await;
        connection.close(200, "done".into()).await.ok();
        parked
    }

    /// The names of this test's queues on its virtual host, sorted.
    pub(crate) fn queues(&self) -> Vec<String> {
        let vhost = self.vhost.as_deref().unwrap_or("/");
        spruce_testkit::queues_named(vhost, &self.bus.queue_prefix)
    }

    /// Writes `envelope` to the outbox in a transaction that commits or rolls back.
    pub(crate) async fn enqueue(&self, envelope: &Envelope, commit: bool) {
        let mut transaction = self.pool.begin().await.unwrap();
        spruce_bus::enqueue(&mut transaction, envelope)
            .await
            .unwrap();
        if commit {
            transaction.commit().await.unwrap();
        } else {
            transaction.rollback().await.unwrap();
        }
    }

    /// Returns the event ids the handler applied, with repeats.
    pub(crate) async fn applied(&self) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT event_id FROM applied ORDER BY event_id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Watches everything published on the test exchange.
    pub(crate) async fn watch_exchange(&self) -> Watcher {
        let connection = self.connect().await.unwrap();
        // Declared as the services declare it, with its alternate exchange, unless the test
        // made it without one (the broker then refuses, closing only this channel).
        let probe = connection.create_channel().await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut arguments = FieldTable::default();
        arguments.insert(
            "alternate-exchange".into(),
            lapin::types::AMQPValue::LongString(
                spruce_bus::unrouted_name(&self.bus.exchange).into(),
            ),
        );
        self.declare_exchange(&probe, arguments).await.ok();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.name().clone(),
                self.bus.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Watcher {
            _connection: connection,
            consumer,
        }
    }
}

pub(crate) struct Watcher {
    _connection: Connection,
    consumer: lapin::Consumer,
}

impl Watcher {
    /// Returns the next message's id, or `None` after `wait`.
    pub(crate) async fn next_message_id(&mut self, wait: Duration) -> Option<String> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        delivery.acker.ack(BasicAckOptions::default()).await.ok();
        delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
    }
}

/// An event of `event_type` with a fresh id.
pub(crate) fn event(event_type: &str) -> Envelope {
    let user_id = Uuid::new_v4();
    spruce_bus::envelope(
        event_type,
        user_id,
        1,
        Payload::UserRegistered(UserRegistered {
            user_id: user_id.to_string(),
            email: "ann@example.com".to_owned(),
            full_name: "Ann".to_owned(),
            role: "customer".to_owned(),
            timezone: "UTC".to_owned(),
            ..UserRegistered::default()
        }),
    )
}

/// Records every event it applies; refuses the event types in `refuse` until healed.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    refuse: &'static [&'static str],
    healed: Arc<AtomicBool>,
}

impl Recorder {
    /// A recorder that applies everything.
    pub(crate) fn accepting() -> Self {
        Recorder::default()
    }

    /// A recorder that fails the given event types.
    pub(crate) fn refusing(refuse: &'static [&'static str]) -> Self {
        Recorder {
            refuse,
            healed: Arc::default(),
        }
    }

    /// From now on, accepts everything (the cause of the failures was fixed).
    pub(crate) fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }
}

impl EventHandler for Recorder {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["test.#"]
    }

    async fn handle(&self, transaction: &mut PgConnection, event: &Envelope) -> anyhow::Result<()> {
        let healed = self.healed.load(Ordering::SeqCst);
        if !healed && self.refuse.contains(&event.r#type.as_str()) {
            anyhow::bail!("the recorder refuses {}", event.r#type);
        }
        sqlx::query("INSERT INTO applied (event_id, event_type) VALUES ($1, $2)")
            .bind(event.event_id.parse::<Uuid>()?)
            .bind(&event.r#type)
            .execute(transaction)
            .await?;
        Ok(())
    }
}

impl Drop for TestBus {
    /// Removes the exchange or the vhost; the database goes with its field.
    fn drop(&mut self) {
        match &self.vhost {
            Some(vhost) => {
                rabbitmqctl(&["delete_vhost", vhost]);
            }
            None => {
                let bus = self.bus.clone();
                run_aside(async move { spruce_bus::delete_exchange(&bus).await.ok() });
            }
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    spruce_testkit::try_eventually(limit, || {
        let look = check();
        async move { look.await.ok_or(()) }
    })
    .await
    .ok()
}
