//! The runner against the real PostgreSQL: several replicas on one database, each a
//! [`Runner`] of its own with its own connections, as separate processes would be.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use spruce_platform::settings::DatabaseSettings;
use spruce_testkit::{TestDb, eventually};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::runner::{Runner, RunnerSettings, ScheduledJob};
use crate::{
    domain::{
        jobs::{Job, JobFuture, Options, Outcome, Run, RunContext, RunReport, Trigger},
        schedule::Schedule,
    },
    store::jobs as store,
};

/// What the test jobs did: (replica, tick) per finished run.
type Log = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;

/// Records its tick after `work`; counts how many of it run at once.
struct Recording {
    replica: String,
    log: Log,
    work: Duration,
    running: Arc<AtomicU32>,
    most_at_once: Arc<AtomicU32>,
}

impl Job for Recording {
    fn run(&self, context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.work).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.log
                .lock()
                .unwrap()
                .push((self.replica.clone(), context.tick));
            Ok(RunReport {
                items: 1,
                detail: Some(format!("ran on {}", self.replica)),
            })
        })
    }
}

/// Fails its first `failures` attempts of every run.
struct Flaky {
    failures: u32,
}

impl Job for Flaky {
    fn run(&self, context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            if context.attempt <= self.failures {
                anyhow::bail!("attempt {} failed on purpose", context.attempt);
            }
            Ok(RunReport::default())
        })
    }
}

/// The scheduler's schema in a database of the test's own, dropped with it.
struct TestDatabase {
    settings: DatabaseSettings,
    pool: PgPool,
    _database: TestDb,
}

impl TestDatabase {
    async fn new() -> Self {
        let (database, settings, pool) = crate::store::test_database("jobs").await;
        TestDatabase {
            settings,
            pool,
            _database: database,
        }
    }

    async fn runs(&self, job: &str) -> Vec<Run> {
        let mut connection = self.pool.acquire().await.unwrap();
        let mut runs = store::list_runs(&mut connection, job, None, 1_000)
            .await
            .unwrap();
        runs.reverse();
        runs
    }
}

fn fast() -> RunnerSettings {
    RunnerSettings {
        poll: Duration::from_millis(50),
        max_attempts: 3,
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        heartbeat: Duration::from_millis(200),
        ..RunnerSettings::default()
    }
}

fn scheduled(name: &'static str, cron: &str, enabled: bool, job: Arc<dyn Job>) -> ScheduledJob {
    ScheduledJob {
        name,
        schedule: Schedule::parse(cron, "UTC").unwrap(),
        enabled,
        job,
    }
}

/// Starts a replica; aborting the handle is a replica killed (its connections drop).
async fn start(
    database: &TestDatabase,
    replica: &str,
    jobs: Vec<ScheduledJob>,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let runner = Runner::new(database.settings.clone(), replica.to_owned(), fast(), jobs);
    runner
        .register(&mut database.pool.acquire().await.unwrap())
        .await
        .unwrap();
    tokio::spawn(runner.run(shutdown.clone()))
}

struct Recorders {
    log: Log,
    running: Arc<AtomicU32>,
    most_at_once: Arc<AtomicU32>,
}

impl Recorders {
    fn new() -> Self {
        Recorders {
            log: Log::default(),
            running: Arc::default(),
            most_at_once: Arc::default(),
        }
    }

    fn job(&self, replica: &str, work: Duration) -> Arc<dyn Job> {
        Arc::new(Recording {
            replica: replica.to_owned(),
            log: self.log.clone(),
            work,
            running: self.running.clone(),
            most_at_once: self.most_at_once.clone(),
        })
    }

    fn ticks(&self) -> Vec<DateTime<Utc>> {
        let mut ticks: Vec<_> = self
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, tick)| *tick)
            .collect();
        ticks.sort();
        ticks
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let look = || {
        let seen = done();
        async move { seen.then_some(()).ok_or("not yet") }
    };
    eventually(what, Duration::from_secs(30), look).await;
}

#[tokio::test]
async fn three_replicas_run_every_enabled_job_once_per_tick() {
    let database = TestDatabase::new().await;
    let shutdown = CancellationToken::new();
    let every_second = Recorders::new();
    let switched_off = Recorders::new();
    let mut replicas = Vec::new();
    for replica in ["replica-a", "replica-b", "replica-c"] {
        let jobs = vec![
            scheduled(
                "every-second",
                "* * * * * *",
                true,
                every_second.job(replica, Duration::from_millis(100)),
            ),
            scheduled(
                "switched-off",
                "* * * * * *",
                false,
                switched_off.job(replica, Duration::ZERO),
            ),
        ];
        replicas.push(start(&database, replica, jobs, &shutdown).await);
    }
    wait_for("ten ticks", || every_second.ticks().len() >= 10).await;
    shutdown.cancel();
    for replica in replicas {
        replica.await.unwrap();
    }

    let ticks = every_second.ticks();
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(distinct, ticks, "a tick ran twice");
    // Consecutive seconds: no tick was skipped.
    for pair in ticks.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::seconds(1), "{ticks:?}");
    }
    assert_eq!(every_second.most_at_once.load(Ordering::SeqCst), 1);
    assert!(switched_off.ticks().is_empty(), "a switched-off job ran");
    let runs = database.runs("every-second").await;
    let finished: Vec<_> = runs
        .iter()
        .filter(|run| run.outcome == Outcome::Succeeded)
        .collect();
    assert_eq!(finished.len(), ticks.len());
    assert!(finished.iter().all(|run| run.trigger == Trigger::Schedule
        && run.items == 1
        && run.attempts == 1
        && run.replica.is_some()));
}

#[tokio::test]
async fn a_replica_killed_mid_run_leaves_the_next_tick_to_the_others() {
    let database = TestDatabase::new().await;
    let shutdown = CancellationToken::new();
    let recorders = Recorders::new();
    // Replica A takes the first tick and hangs in it.
    let doomed = start(
        &database,
        "replica-a",
        vec![scheduled(
            "slow",
            "* * * * * *",
            true,
            recorders.job("replica-a", Duration::from_secs(3_600)),
        )],
        &shutdown,
    )
    .await;
    wait_for("replica A to start a run", || {
        recorders.running.load(Ordering::SeqCst) == 1
    })
    .await;
    let survivor = start(
        &database,
        "replica-b",
        vec![scheduled(
            "slow",
            "* * * * * *",
            true,
            recorders.job("replica-b", Duration::from_millis(10)),
        )],
        &shutdown,
    )
    .await;
    // While A lives and holds the lock, B runs nothing.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(recorders.ticks().is_empty());
    doomed.abort();
    wait_for("replica B to run a tick", || !recorders.ticks().is_empty()).await;
    shutdown.cancel();
    survivor.await.unwrap();

    let runs = database.runs("slow").await;
    assert_eq!(runs[0].replica.as_deref(), Some("replica-a"));
    assert_eq!(runs[0].outcome, Outcome::Abandoned);
    assert!(runs[0].error.as_deref().unwrap().contains("replica"));
    let log = recorders.log.lock().unwrap().clone();
    assert!(log.iter().all(|(replica, _)| replica == "replica-b"));
    // B's first run is for a tick after A's: A's tick did not run twice.
    assert!(log[0].1 > runs[0].tick);
}

#[tokio::test]
async fn missed_ticks_run_once_and_a_long_run_is_never_doubled() {
    let database = TestDatabase::new().await;
    let shutdown = CancellationToken::new();
    let hourly = Recorders::new();
    let long = Recorders::new();
    let jobs = |replica: &str| {
        vec![
            scheduled(
                "hourly",
                "0 * * * *",
                true,
                hourly.job(replica, Duration::ZERO),
            ),
            scheduled(
                "long",
                "* * * * * *",
                true,
                long.job(replica, Duration::from_millis(2_500)),
            ),
        ]
    };
    // Down for five hours: the last tick it ran is long gone.
    let mut connection = database.pool.acquire().await.unwrap();
    let five_hours_ago = Utc::now() - chrono::Duration::hours(5);
    store::register(&mut connection, "hourly", five_hours_ago)
        .await
        .unwrap();
    drop(connection);
    let started = Utc::now();
    let a = start(&database, "replica-a", jobs("replica-a"), &shutdown).await;
    let b = start(&database, "replica-b", jobs("replica-b"), &shutdown).await;
    wait_for("two long runs", || long.ticks().len() >= 2).await;
    shutdown.cancel();
    a.await.unwrap();
    b.await.unwrap();

    let due = |time| {
        Schedule::parse("0 * * * *", "UTC")
            .unwrap()
            .latest_due(time)
            .unwrap()
    };
    let expected: Vec<_> = if due(started) == due(Utc::now()) {
        vec![due(started)]
    } else {
        vec![due(started), due(Utc::now())]
    };
    assert_eq!(hourly.ticks(), expected, "one catch-up run, not five");
    // The long job outlived ticks; they waited for it and never overlapped.
    assert_eq!(long.most_at_once.load(Ordering::SeqCst), 1);
    let ticks = long.ticks();
    assert!(
        ticks[1] - ticks[0] >= chrono::Duration::seconds(2),
        "{ticks:?}"
    );
}

#[tokio::test]
async fn failed_attempts_are_retried_and_manual_runs_are_queued_for_any_replica() {
    let database = TestDatabase::new().await;
    let shutdown = CancellationToken::new();
    // Both switched off: only manual runs run, whatever the clock says.
    let jobs = vec![
        scheduled(
            "recovers",
            "* * * * * *",
            false,
            Arc::new(Flaky { failures: 2 }),
        ),
        scheduled(
            "broken",
            "* * * * * *",
            false,
            Arc::new(Flaky { failures: 99 }),
        ),
    ];
    let replica = start(&database, "replica-a", jobs, &shutdown).await;
    let mut connection = database.pool.acquire().await.unwrap();
    let mut queued = BTreeMap::new();
    for job in ["recovers", "broken"] {
        let run = store::queue_manual(&mut connection, job, &Options::new())
            .await
            .unwrap();
        assert_eq!(run.outcome, Outcome::Queued);
        assert_eq!(run.trigger, Trigger::Manual);
        queued.insert(job, run.id);
    }
    for (job, id) in &queued {
        for _ in 0..200 {
            let run = store::find_run(&mut connection, *id)
                .await
                .unwrap()
                .unwrap();
            if matches!(run.outcome, Outcome::Succeeded | Outcome::Failed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let run = store::find_run(&mut connection, *id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.attempts, 3, "{job}");
        if *job == "recovers" {
            assert_eq!(run.outcome, Outcome::Succeeded);
        } else {
            assert_eq!(run.outcome, Outcome::Failed);
            assert_eq!(run.error.as_deref(), Some("attempt 3 failed on purpose"));
        }
        assert_eq!(run.replica.as_deref(), Some("replica-a"));
    }
    // Switched off: no scheduled run happened meanwhile.
    assert_eq!(database.runs("recovers").await.len(), 1);
    drop(connection);
    shutdown.cancel();
    replica.await.unwrap();
}
