//! The analytics archive as a deployment runs it: the scheduler's binary, killed while it
//! writes, started again, and its Parquet files read back by pyarrow and DuckDB.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use spruce_bus::{OutboxRelay, testing::TestExchange};
use spruce_proto::events::v1::{BookingChanged, UserRegistered, envelope::Payload};
use spruce_testkit::{TempFolder, TestDb, eventually, free_port, wait_until_ready};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The outbox of a producer of events, as core has it.
const PRODUCER_MIGRATIONS: &[spruce_db::MigrationSource] = &[
    (
        1,
        "outbox",
        include_str!("../../../core/migrations/0001_outbox.sql"),
    ),
    (
        7,
        "outbox parked",
        include_str!("../../../core/migrations/0007_outbox_parked.sql"),
    ),
];

const EVENTS: usize = 10_000;
const PER_FILE: usize = 500;

/// Starts the scheduler's binary on `database`, the exchange and `files`; returns it and
/// its readiness URL.
fn start_scheduler(
    exchange: &TestExchange,
    database: &TestDb,
    files: &TempFolder,
    config: &TempFolder,
) -> (Child, String) {
    let http_port = free_port();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let bus = exchange.settings();
    let quiet = std::env::var_os("TEST_LOG").is_none();
    let child = Command::new(env!("CARGO_BIN_EXE_spruce-scheduler"))
        .arg("serve")
        .env("SPRUCE_ENV", "local")
        .env("SPRUCE_CONFIG_DIR", config.path())
        .env("SPRUCE__DATABASE__NAME", database.name())
        .env("SPRUCE__BUS__EXCHANGE", &bus.exchange)
        .env("SPRUCE__BUS__QUEUE_PREFIX", &bus.queue_prefix)
        .env("SPRUCE__BUS__QUEUE_EXPIRES", "120s")
        .env("SPRUCE__BUS__UNROUTED_EXPIRES", "120s")
        .env("SPRUCE__GRPC__PORT", "0")
        .env("SPRUCE__HTTP__PORT", http_port.to_string())
        .env("SPRUCE__CORE__URL", &nowhere)
        .env("SPRUCE__SEARCH__URL", &nowhere)
        .env("SPRUCE__STORAGE__URL", files.url())
        .env("SPRUCE__ANALYTICS__MAX_EVENTS", PER_FILE.to_string())
        .env("SPRUCE__ANALYTICS__MAX_AGE", "1s")
        .env("SPRUCE__ANALYTICS__WRITE_LEASE", "2s")
        .stdout(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .stderr(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("the scheduler's binary starts");
    (child, format!("http://127.0.0.1:{http_port}/readyz"))
}

/// The Parquet files under `root`.
fn parquet_files(root: &Path) -> usize {
    let days = root.join("analytics/events");
    std::fs::read_dir(days)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|day| {
            std::fs::read_dir(day.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|file| file.path().extension().is_some_and(|ext| ext == "parquet"))
        .count()
}

/// 10,000 events as core writes them: bookings, one signup with an email and a name, and
/// a few from yesterday (another day's partition).
fn events() -> Vec<spruce_bus::Envelope> {
    let mut events: Vec<spruce_bus::Envelope> = (1..EVENTS)
        .map(|number| {
            let booking = Uuid::new_v4();
            spruce_bus::envelope(
                "booking.created",
                booking,
                1,
                Payload::BookingChanged(BookingChanged {
                    booking_id: booking.to_string(),
                    price_cents: i64::try_from(number).unwrap(),
                    status: "requested".to_owned(),
                    ..BookingChanged::default()
                }),
            )
        })
        .collect();
    let user = Uuid::new_v4();
    events.push(spruce_bus::envelope(
        "user.registered",
        user,
        1,
        Payload::UserRegistered(UserRegistered {
            user_id: user.to_string(),
            email: "ann.lee@example.org".to_owned(),
            full_name: "Ann Lee".to_owned(),
            role: "customer".to_owned(),
            ..UserRegistered::default()
        }),
    ));
    for event in events.iter_mut().take(3) {
        let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
        event.occurred_at = Some(prost_types::Timestamp {
            seconds: yesterday.timestamp(),
            nanos: 0,
        });
    }
    events
}

#[tokio::test]
async fn ten_thousand_events_are_archived_once_each_though_the_archiver_is_killed_mid_way() {
    spruce_platform::telemetry::init_for_tests();
    let exchange = TestExchange::new(&Uuid::new_v4().simple().to_string());
    let database = TestDb::new("scheduler");
    let producer = TestDb::new("producer");
    let files = TempFolder::new("archive");
    let config = TempFolder::new("config");

    // The archive's queue exists before anything is published.
    let (mut scheduler, ready) = start_scheduler(&exchange, &database, &files, &config);
    wait_until_ready(&ready).await;

    let producer_pool = spruce_db::connect_and_migrate(
        &spruce_db::testing::settings(&producer),
        PRODUCER_MIGRATIONS,
    )
    .await
    .unwrap();
    let events = events();
    for chunk in events.chunks(1_000) {
        let mut transaction = producer_pool.begin().await.unwrap();
        spruce_bus::enqueue_many(&mut transaction, chunk)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    }
    let stop_relay = CancellationToken::new();
    let relay = OutboxRelay::new(
        producer_pool.clone(),
        exchange.settings().clone(),
        "producer",
    );
    let relay_task = tokio::spawn(relay.run(stop_relay.clone()));

    // Killed as the first files appear, with most events still to write.
    eventually(
        "the first file is written",
        Duration::from_secs(60),
        || async {
            if parquet_files(files.path()) > 0 {
                Ok(())
            } else {
                Err("no file yet")
            }
        },
    )
    .await;
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    let written_before = parquet_files(files.path());
    assert!(
        written_before < EVENTS / PER_FILE,
        "the archiver was killed after writing {written_before} files: too late to tell"
    );

    let (mut scheduler, ready) = start_scheduler(&exchange, &database, &files, &config);
    wait_until_ready(&ready).await;
    let scheduler_pool = spruce_db::connect(&spruce_db::testing::settings(&database))
        .await
        .unwrap();
    eventually(
        "every event is archived",
        Duration::from_secs(120),
        || async {
            let (events, unwritten): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM analytics_events WHERE batch IS NOT NULL), \
             (SELECT count(*) FROM analytics_batches WHERE written_at IS NULL)",
            )
            .fetch_one(&scheduler_pool)
            .await
            .unwrap();
            if events == EVENTS as i64 && unwritten == 0 {
                Ok(())
            } else {
                Err((events, unwritten))
            }
        },
    )
    .await;
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    stop_relay.cancel();
    relay_task.await.unwrap();

    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/read-archive.py"
        ))
        .arg(files.path())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "reading the archive failed (make test installs pyarrow and duckdb): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for reader in ["pyarrow", "duckdb"] {
        assert_eq!(found[reader]["rows"], EVENTS, "{reader}: {found}");
        assert_eq!(
            found[reader]["distinct_event_ids"], EVENTS,
            "{reader}: {found}"
        );
    }
    let pyarrow = &found["pyarrow"];
    assert_eq!(
        pyarrow["types"],
        serde_json::json!(["booking.created", "user.registered"])
    );
    assert_eq!(pyarrow["days"].as_array().unwrap().len(), 2, "{pyarrow}");
    assert_eq!(pyarrow["payloads_with_at_sign"], 0, "no email is archived");
}
