//! The analytics archive as a deployment runs it: the scheduler's binary (and the writer it
//! starts), killed while it writes, started again, and its Parquet files read back by
//! pyarrow and DuckDB.

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

/// The scheduler's binary with `command`, on `database` and the settings in `config`,
/// quiet unless TEST_LOG is set.
fn scheduler(command: &str, database: &TestDb, config: &TempFolder) -> Command {
    let quiet = std::env::var_os("TEST_LOG").is_none();
    let output = || {
        if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        }
    };
    let mut scheduler = Command::new(env!("CARGO_BIN_EXE_spruce-scheduler"));
    scheduler
        .arg(command)
        .env("SPRUCE_ENV", "local")
        .env("SPRUCE_CONFIG_DIR", config.path())
        .env("SPRUCE__DATABASE__NAME", database.name())
        .stdout(output())
        .stderr(output());
    scheduler
}

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
    let child = scheduler("serve", database, config)
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
        .spawn()
        .expect("the scheduler's binary starts");
    (child, format!("http://127.0.0.1:{http_port}/readyz"))
}

/// How many archive writers (`spruce-scheduler write-archive`) run on `database`.
fn writers_on(database: &str) -> usize {
    let ours = format!("SPRUCE__DATABASE__NAME={database}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let process = entry.ok()?.path();
            let command = std::fs::read(process.join("cmdline")).ok()?;
            let environment = std::fs::read(process.join("environ")).ok()?;
            let has = |all: &[u8], wanted: &str| {
                all.split(|byte| *byte == 0)
                    .any(|part| part == wanted.as_bytes())
            };
            (has(&command, "write-archive") && has(&environment, &ours)).then_some(())
        })
        .count()
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
    let customer = Uuid::new_v4();
    let mut events: Vec<spruce_bus::Envelope> = (1..EVENTS)
        .map(|number| {
            let booking = Uuid::new_v4();
            spruce_bus::envelope(
                "booking.created",
                booking,
                1,
                Payload::BookingChanged(BookingChanged {
                    booking_id: booking.to_string(),
                    customer_id: customer.to_string(),
                    service: "standard".to_owned(),
                    starts_at: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() + 86_400,
                        nanos: 0,
                    }),
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

    // The scheduler's queue, which the archive takes every event from, exists before
    // anything is published.
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

    // Killed as the first files appear, with most events still to write, while the child
    // process that writes them runs.
    eventually(
        "the first file is written by a writer still running",
        Duration::from_secs(60),
        || async {
            match (parquet_files(files.path()), writers_on(database.name())) {
                (0, _) => Err("no file yet"),
                (_, 0) => Err("no writer running"),
                _ => Ok(()),
            }
        },
    )
    .await;
    scheduler.kill().unwrap();
    scheduler.wait().unwrap();
    // The writer sees its input close and ends: it does not outlive the scheduler.
    eventually(
        "the writer ends with its scheduler",
        Duration::from_secs(10),
        || async {
            match writers_on(database.name()) {
                0 => Ok(()),
                running => Err(running),
            }
        },
    )
    .await;
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

/// The scheduler's schema in a database of the test's own, and a pool on it.
async fn scheduler_database() -> (TestDb, sqlx::PgPool) {
    let database = TestDb::new("scheduler");
    let pool = spruce_db::connect_and_migrate(
        &spruce_db::testing::settings(&database),
        spruce_scheduler::store::MIGRATIONS,
    )
    .await
    .unwrap();
    (database, pool)
}

/// A store in `files`.
fn local_storage(files: &TempFolder) -> spruce_storage::Storage {
    spruce_storage::Storage::new(&spruce_storage::StorageSettings {
        url: files.url(),
        ..spruce_storage::StorageSettings::default()
    })
    .unwrap()
}

/// Records an event as the archive did before envelopes were kept (its payload's
/// JSON), received `ago` (an interval) ago.
async fn record_as_json(pool: &sqlx::PgPool, payload: &str, ago: &str) {
    sqlx::query(
        "INSERT INTO analytics_events (event_id, event_type, occurred_at, aggregate_id, \
         aggregate_version, payload, received_at) \
         VALUES ($1, 'user.registered', now(), 'u0', 1, $2, now() - $3::interval)",
    )
    .bind(Uuid::new_v4())
    .bind(payload)
    .bind(ago)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_writer_whose_scheduler_has_gone_ends_though_its_store_never_answers() {
    let (database, pool) = scheduler_database().await;
    let config = TempFolder::new("config");
    // Waiting an hour: due.
    record_as_json(&pool, "{}", "1 hour").await;
    // An S3 endpoint that takes the connection and never answers.
    let store = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", store.local_addr().unwrap());

    let mut writer = scheduler("write-archive", &database, &config)
        .env("SPRUCE__STORAGE__URL", "s3://archive")
        .env("SPRUCE__STORAGE__ENDPOINT", &endpoint)
        .env("SPRUCE__STORAGE__REGION", "eu-central-1")
        .env("SPRUCE__STORAGE__ACCESS_KEY_ID", "test")
        .env("SPRUCE__STORAGE__SECRET_ACCESS_KEY", "test")
        .stdin(Stdio::piped())
        .spawn()
        .expect("the writer starts");
    let (_connection, _) = tokio::task::spawn_blocking(move || store.accept())
        .await
        .unwrap()
        .expect("the writer puts its file");
    assert!(writer.try_wait().unwrap().is_none(), "the put never ends");

    drop(writer.stdin.take());
    let status = eventually(
        "the writer ends once its input closes",
        Duration::from_secs(10),
        || {
            let status = writer.try_wait().unwrap();
            async move { status.ok_or("still running") }
        },
    )
    .await;
    assert!(!status.success(), "it ends with an error: {status}");
}

#[tokio::test]
async fn events_recorded_before_envelopes_were_kept_are_archived_as_they_were_and_contents_go_once_written()
 {
    use parquet::{
        file::reader::{FileReader as _, SerializedFileReader},
        record::RowAccessor as _,
    };
    use spruce_bus::EventHandler as _;
    use spruce_scheduler::{
        events::SchedulerEvents,
        usecases::archive::{ArchiveSettings, Archiver, Archiving},
    };

    let (_database, pool) = scheduler_database().await;
    let files = TempFolder::new("archive");
    let storage = local_storage(&files);
    // As recorded before: the payload's JSON, without personal data already.
    record_as_json(&pool, r#"{"user_registered":{}}"#, "0 s").await;
    // As recorded now: the envelope (a signup, with an email and a name).
    let event = events().pop().unwrap();
    let handler = Archiving::new(
        SchedulerEvents::new("http://app.test", storage.clone()),
        pool.clone(),
    );
    let mut transaction = pool.begin().await.unwrap();
    handler.handle(&mut transaction, &event).await.unwrap();
    transaction.commit().await.unwrap();

    let archiver = Archiver::new(pool.clone(), storage, ArchiveSettings::default()).unwrap();
    assert_eq!(archiver.flush(true).await.unwrap(), 2);
    // Once written, the table keeps the events' ids only: no personal data waits there.
    let kept: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(envelope) + count(payload) FROM analytics_events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept, (2, 0));

    let mut payloads = Vec::new();
    for day in std::fs::read_dir(files.path().join("analytics/events")).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            for row in reader.get_row_iter(None).unwrap() {
                payloads.push(row.unwrap().get_string(5).unwrap().clone());
            }
        }
    }
    payloads.sort();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    assert_eq!(payloads[1], r#"{"user_registered":{}}"#);
    // The envelope read when the file was built, the personal data taken out then.
    let read: serde_json::Value = serde_json::from_str(&payloads[0]).unwrap();
    let email = read["user_registered"]["email"].as_str().unwrap();
    assert!(email.starts_with("hmac-sha256:"), "{read}");
    assert_eq!(read["user_registered"]["role"], "customer");
    assert!(!payloads[0].contains("Ann"), "{read}");
}

#[tokio::test]
async fn a_writer_run_by_hand_writes_what_is_due_and_ends() {
    let (database, pool) = scheduler_database().await;
    let config = TempFolder::new("config");
    let files = TempFolder::new("archive");
    record_as_json(&pool, "{}", "1 hour").await;

    let status = scheduler("write-archive", &database, &config)
        .env("SPRUCE__STORAGE__URL", files.url())
        .stdin(Stdio::null())
        .status()
        .expect("the writer runs");
    assert!(status.success(), "{status}");
    assert_eq!(parquet_files(files.path()), 1);
}

#[tokio::test]
async fn every_event_is_archived_once_though_the_scheduler_wants_it_not_or_fails_on_it() {
    use spruce_bus::EventHandler as _;
    use spruce_proto::events::v1::CleanerUpdated;
    use spruce_scheduler::{events::SchedulerEvents, usecases::archive::Archiving};

    let (_database, pool) = scheduler_database().await;
    let files = TempFolder::new("archive");
    let storage = local_storage(&files);
    let handler = Archiving::new(
        SchedulerEvents::new("http://app.test", storage),
        pool.clone(),
    );
    assert_eq!(handler.routing_keys(), ["#"]);
    let apply = |event: spruce_bus::Envelope| {
        let (pool, handler) = (pool.clone(), &handler);
        async move {
            let mut transaction = pool.begin().await.unwrap();
            let applied = handler.handle(&mut transaction, &event).await;
            if applied.is_ok() {
                transaction.commit().await.unwrap();
            }
            applied
        }
    };
    let archived = || async {
        sqlx::query_as::<_, (String,)>("SELECT event_type FROM analytics_events ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(event_type,)| event_type)
            .collect::<Vec<_>>()
    };

    // Not the scheduler's (search's): archived, and not handed on, where it would fail as
    // a payload the scheduler does not know.
    let cleaner = Uuid::new_v4();
    let updated = spruce_bus::envelope(
        "cleaner.updated",
        cleaner,
        1,
        Payload::CleanerUpdated(CleanerUpdated {
            cleaner_id: cleaner.to_string(),
            ..CleanerUpdated::default()
        }),
    );
    apply(updated).await.expect("archived only");

    // The scheduler's, but it cannot apply it: its transaction rolls back for the retry,
    // and the archive has it all the same, once however often it is tried.
    let broken = spruce_bus::envelope(
        "booking.created",
        cleaner,
        1,
        Payload::BookingChanged(BookingChanged {
            customer_id: "not a uuid".to_owned(),
            ..BookingChanged::default()
        }),
    );
    for _ in 0..2 {
        let failed = apply(broken.clone()).await;
        assert!(failed.is_err(), "{failed:?}");
    }
    assert_eq!(archived().await, ["booking.created", "cleaner.updated"]);

    // With the archive off, only the scheduler's own events reach it and nothing is
    // archived.
    let off = Archiving::off(SchedulerEvents::new(
        "http://app.test",
        local_storage(&files),
    ));
    assert!(
        !off.routing_keys().contains(&"#"),
        "{:?}",
        off.routing_keys()
    );
    let mut transaction = pool.begin().await.unwrap();
    off.handle(&mut transaction, &events().pop().unwrap())
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(archived().await.len(), 2);
}
