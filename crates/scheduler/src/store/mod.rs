//! The scheduler's SQL.

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
];
