//! Core's SQL, one module per aggregate. Functions take a connection so that callers choose
//! the transaction.

pub mod addresses;
pub mod bookings;
pub mod cleaners;
pub mod export;
pub mod reviews;
pub mod secrets;
pub mod sessions;
pub mod users;

/// Embedded migrations, applied by `spruce-core migrate` and at start in development.
pub const MIGRATIONS: &[spruce_db::MigrationSource] = &[
    (
        1,
        "outbox",
        include_str!("../../migrations/0001_outbox.sql"),
    ),
    (2, "users", include_str!("../../migrations/0002_users.sql")),
    (
        3,
        "cleaners and addresses",
        include_str!("../../migrations/0003_cleaners_addresses.sql"),
    ),
    (
        4,
        "bookings",
        include_str!("../../migrations/0004_bookings.sql"),
    ),
    (
        5,
        "reviews",
        include_str!("../../migrations/0005_reviews.sql"),
    ),
    (
        6,
        "booking address owner",
        include_str!("../../migrations/0006_booking_address_owner.sql"),
    ),
    (
        7,
        "outbox parked",
        include_str!("../../migrations/0007_outbox_parked.sql"),
    ),
    (
        8,
        "email nfkc",
        include_str!("../../migrations/0008_email_nfkc.sql"),
    ),
    (
        9,
        "booking estimate",
        include_str!("../../migrations/0009_booking_estimate.sql"),
    ),
    (
        10,
        "requested bookings",
        include_str!("../../migrations/0010_requested_bookings.sql"),
    ),
    (
        11,
        "user timezone",
        include_str!("../../migrations/0011_user_timezone.sql"),
    ),
    (
        12,
        "payment holds",
        include_str!("../../migrations/0012_payment_holds.sql"),
    ),
    (
        13,
        "cleaner area",
        include_str!("../../migrations/0013_cleaner_area.sql"),
    ),
    (
        14,
        "account recovery",
        include_str!("../../migrations/0014_account_recovery.sql"),
    ),
    (
        15,
        "cleaner photo",
        include_str!("../../migrations/0015_cleaner_photo.sql"),
    ),
    (
        16,
        "bookings hot updates",
        include_str!("../../migrations/0016_bookings_hot_updates.sql"),
    ),
];

/// Begins a read-only transaction whose every query sees the same snapshot (REPEATABLE
/// READ): what a long stream of rows must read from.
pub async fn begin_snapshot(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

/// Returns the name of the constraint `error` violated, if it is a constraint violation.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(database_error) => database_error.constraint(),
        _ => None,
    }
}
