//! The scheduler's SQL.

pub mod archive;
pub mod jobs;
pub mod notifications;

/// Embedded migrations, applied by `spruce-scheduler migrate` and at start in development.
pub const MIGRATIONS: &[spruce_db::MigrationSource] = &[
    (1, "inbox", include_str!("../../migrations/0001_inbox.sql")),
    (
        2,
        "notifications",
        include_str!("../../migrations/0002_notifications.sql"),
    ),
    (3, "jobs", include_str!("../../migrations/0003_jobs.sql")),
    (
        4,
        "delivery",
        include_str!("../../migrations/0004_delivery.sql"),
    ),
    (
        5,
        "run options",
        include_str!("../../migrations/0005_run_options.sql"),
    ),
    (
        6,
        "analytics",
        include_str!("../../migrations/0006_analytics.sql"),
    ),
    (
        7,
        "analytics envelopes",
        include_str!("../../migrations/0007_analytics_envelopes.sql"),
    ),
    (
        8,
        "processed events by time",
        include_str!("../../migrations/0008_processed_events_by_time.sql"),
    ),
];

/// The scheduler's schema in a database of the test's own (named for `purpose`), dropped
/// with the returned `TestDb`; its settings and a pool on it.
#[cfg(test)]
pub(crate) async fn test_database(
    purpose: &str,
) -> (
    spruce_testkit::TestDb,
    spruce_platform::settings::DatabaseSettings,
    sqlx::PgPool,
) {
    let database = spruce_testkit::TestDb::new(purpose);
    let settings = spruce_platform::settings::DatabaseSettings {
        max_connections: 4,
        ..spruce_db::testing::settings(&database)
    };
    let pool = spruce_db::connect_and_migrate(&settings, MIGRATIONS)
        .await
        .expect("the scheduler's test database");
    (database, settings, pool)
}
