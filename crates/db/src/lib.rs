//! PostgreSQL: the pool, creating a service's database when it is missing, and migrations
//! embedded in the binary.

#[cfg(feature = "testing")]
pub mod testing;

use std::{borrow::Cow, time::Duration};

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::{
    ConnectOptions, Connection, Executor, PgPool, SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgSslMode},
};

use spruce_platform::settings::{DatabaseSettings, SslMode};

/// A pooled connection idle longer than this is pinged before it is handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// One embedded migration: version, description and SQL.
pub type MigrationSource = (i64, &'static str, &'static str);

/// Builds a migrator from migrations embedded with `include_str!`.
pub fn migrator(sources: &[MigrationSource]) -> Migrator {
    let migrations = sources
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Returns connection options for the configured database.
pub fn connect_options(settings: &DatabaseSettings) -> PgConnectOptions {
    let ssl_mode = match settings.ssl_mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    };
    let options = PgConnectOptions::new()
        .host(&settings.host)
        .port(settings.port)
        .username(&settings.user)
        .password(settings.password.expose_secret())
        .database(&settings.name)
        .ssl_mode(ssl_mode)
        .log_statements(tracing::log::LevelFilter::Trace);
    if settings.ssl_root_cert.is_empty() {
        options
    } else {
        options.ssl_root_cert(&settings.ssl_root_cert)
    }
}

/// Connects to the service's database, creating it first when allowed and missing.
///
/// # Errors
/// Fails when PostgreSQL cannot be reached or the database cannot be created.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    if settings.create_if_missing {
        create_database_if_missing(settings).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out: one more round trip per request. Only a
        // connection that sat idle a while (PostgreSQL may have restarted meanwhile) is
        // checked; under load none are, and a broken one fails its query and is dropped.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_PING {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect_options(settings))
        .await
        .with_context(|| format!("failed to connect to database {}", settings.name))?;
    if settings.password_path.is_some() || settings.user_path.is_some() {
        tokio::spawn(follow_login_files(pool.clone(), settings.clone()));
    }
    Ok(pool)
}

/// Gives `pool` the user and password their files hold whenever they change (read every
/// `password_recheck`), until the pool is closed; open connections stay logged in. A
/// file that cannot be read, or is empty, keeps the last value (the mount may be
/// mid-update). The kubelet swaps a Secret's files together, so a rotation to the other
/// user arrives with its password; the user is read on both sides of the password, and a
/// pair read across a swap (the user changed in between) waits for the next look.
async fn follow_login_files(pool: PgPool, settings: DatabaseSettings) {
    // A few bytes from a mounted file: not worth a blocking-pool hop.
    let read = |path: &Option<std::path::PathBuf>, last: &str| {
        path.as_deref()
            .and_then(|path| spruce_platform::settings::read_secret_file(path).ok())
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| last.to_owned())
    };
    let mut user = settings.user.clone();
    let mut password = settings.password.expose_secret().to_owned();
    let mut ticks = tokio::time::interval(settings.password_recheck);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        ticks.tick().await;
        let (new_user, new_password) = (
            read(&settings.user_path, &user),
            read(&settings.password_path, &password),
        );
        if read(&settings.user_path, &user) != new_user {
            continue;
        }
        if new_user != user || new_password != password {
            pool.set_connect_options(
                connect_options(&settings)
                    .username(&new_user)
                    .password(&new_password),
            );
            tracing::info!(user = %new_user, "database login changed; new connections use it");
            (user, password) = (new_user, new_password);
        }
    }
}

/// Connects, and applies `migrations` when the settings ask for it at start.
///
/// # Errors
/// Fails when the database is unreachable or a migration fails.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
    migrations: &[MigrationSource],
) -> anyhow::Result<PgPool> {
    let pool = connect(settings).await?;
    if settings.migrate_on_start {
        apply_migrations(&pool, migrations).await?;
    }
    Ok(pool)
}

/// Applies the `migrations` that `pool`'s database has not had yet.
///
/// # Errors
/// Fails when a migration fails, or when the database has had a migration that
/// `migrations` does not hold (it belongs to a newer build).
pub async fn apply_migrations(pool: &PgPool, migrations: &[MigrationSource]) -> anyhow::Result<()> {
    migrator(migrations)
        .run(pool)
        .await
        .context("failed to apply migrations")
}

/// Connects and applies `migrations`, for the `migrate` subcommand.
///
/// # Errors
/// Fails when the database is unreachable or a migration fails.
pub async fn migrate(
    settings: &DatabaseSettings,
    migrations: &[MigrationSource],
) -> anyhow::Result<()> {
    let pool = connect(settings).await?;
    apply_migrations(&pool, migrations).await?;
    pool.close().await;
    Ok(())
}

async fn create_database_if_missing(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let maintenance = connect_options(settings).database("postgres");
    let mut connection = PgConnection::connect_with(&maintenance)
        .await
        .context("failed to connect to the postgres maintenance database")?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&settings.name)
        .fetch_optional(&mut connection)
        .await?;
    if exists.is_none() {
        // The name was validated to [a-z0-9_-], so quoting it is enough.
        let statement = format!("CREATE DATABASE \"{}\"", settings.name);
        match connection.execute(sqlx::AssertSqlSafe(statement)).await {
            Ok(_) => tracing::info!(database = %settings.name, "created database"),
            // Another replica created it between our check and our CREATE.
            Err(sqlx::Error::Database(error))
                if matches!(error.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(error) => return Err(error).context("failed to create database"),
        }
    }
    connection.close().await.ok();
    Ok(())
}

/// Drops a database; used by test harnesses to clean up after themselves.
///
/// # Errors
/// Fails when PostgreSQL cannot be reached.
pub async fn drop_database(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let maintenance = connect_options(settings).database("postgres");
    let mut connection = PgConnection::connect_with(&maintenance).await?;
    let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", settings.name);
    connection.execute(sqlx::AssertSqlSafe(statement)).await?;
    Ok(())
}

/// The `migrate` subcommand of `service`: applies `migrations` to the database its
/// `[database]` settings (over `built_in`) name, reading no other setting.
///
/// # Errors
/// Fails when the settings are invalid, the database is unreachable or a migration fails.
pub async fn migrate_command(
    service: &'static str,
    built_in: &str,
    migrations: &[MigrationSource],
) -> anyhow::Result<()> {
    spruce_platform::cli::with_database(service, built_in, |database| async move {
        migrate(&database, migrations).await
    })
    .await
}

/// Ready when PostgreSQL answers `SELECT 1` on `pool`.
pub fn readiness(pool: PgPool) -> spruce_platform::ops::ReadinessCheck {
    spruce_platform::ops::ReadinessCheck::new("postgres", move || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    })
}

/// Maps an unexpected error: UNAVAILABLE (reason `database_unavailable`) when anything in its
/// cause chain says the database cannot be reached right now, otherwise an opaque INTERNAL.
/// Logs the whole cause chain either way. The one mapping of unexpected errors for every
/// gRPC service.
pub fn unexpected(error: &anyhow::Error) -> tonic::Status {
    if database_unreachable_in(error) {
        tracing::warn!(error = format!("{error:#}"), "database unavailable");
        return spruce_platform::status::status(
            spruce_domain::reason::Reason::DatabaseUnavailable,
            "the database is unavailable, try again shortly",
            &[],
        );
    }
    tracing::error!(error = format!("{error:#}"), "internal error");
    tonic::Status::internal("internal error")
}

/// Returns whether anything in `error`'s cause chain is a [`database_unreachable`] error.
pub fn database_unreachable_in(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(database_unreachable)
}

/// Returns whether `error` means the database cannot be reached right now (down, restarting,
/// out of connections, or no pooled connection within the pool's timeout), as opposed to a
/// query that is wrong.
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // Class 08: connection exceptions; 53300: too many connections; 57P01-57P03:
            // the server is shutting down or starting up.
            code.starts_with("08") || ["53300", "57P01", "57P02", "57P03"].contains(&&*code)
        }),
        _ => false,
    }
}

/// Declares a struct read from a query row by column name (`sqlx::FromRow` without sqlx's
/// proc-macros, which would cost every build): each field takes the column of its name.
///
/// ```ignore
/// spruce_db::named_row! {
///     /// A user as stored.
///     struct StoredUser { id: Uuid, email: String }
/// }
/// ```
#[macro_export]
macro_rules! named_row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $type:ty),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $type),*
        }

        impl<'r> ::sqlx::FromRow<'r, ::sqlx::postgres::PgRow> for $name {
            fn from_row(row: &'r ::sqlx::postgres::PgRow) -> ::sqlx::Result<Self> {
                use ::sqlx::Row as _;
                Ok($name {
                    $($field: row.try_get(stringify!($field))?),*
                })
            }
        }
    };
}
