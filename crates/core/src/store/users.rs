//! The `users` table.

use chrono::{DateTime, Utc};
use spruce_platform::identity::Role;
use sqlx::PgConnection;
use uuid::Uuid;

use super::violated_constraint;
use crate::{domain::user::User, error::CoreError};

spruce_db::named_row! {
    /// A user as stored, with the password hash where a query selects it.
    struct StoredUser {
        id: Uuid,
        email: String,
        full_name: String,
        role: String,
        timezone: String,
        created_at: DateTime<Utc>,
        email_verified_at: Option<DateTime<Utc>>,
    }
}

spruce_db::named_row! {
    /// A user's credentials as stored.
    struct StoredCredentials {
        id: Uuid,
        email: String,
        full_name: String,
        role: String,
        timezone: String,
        created_at: DateTime<Utc>,
        email_verified_at: Option<DateTime<Utc>>,
        password_hash: String,
    }
}

fn into_user(row: StoredUser) -> Result<User, CoreError> {
    let id = row.id;
    let role: Role = row
        .role
        .parse()
        .map_err(|error| CoreError::Unexpected(anyhow::anyhow!("stored user {id}: {error}")))?;
    Ok(User {
        id,
        email: row.email,
        full_name: row.full_name,
        role,
        timezone: row.timezone,
        created_at: row.created_at,
        email_verified: row.email_verified_at.is_some(),
    })
}

/// The columns of [`StoredUser`].
macro_rules! user_columns {
    () => {
        "id, email, full_name, role, timezone, created_at, email_verified_at"
    };
}

/// Inserts a user, its email not yet verified; [`CoreError::EmailTaken`] when the email is
/// in use.
pub async fn insert_user(
    connection: &mut PgConnection,
    id: Uuid,
    email: &str,
    password_hash: &str,
    full_name: &str,
    role: Role,
    timezone: &str,
) -> Result<User, CoreError> {
    let row: StoredUser = sqlx::query_as(concat!(
        "INSERT INTO users (id, email, password_hash, full_name, role, timezone) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        user_columns!()
    ))
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(full_name)
    .bind(role.as_str())
    .bind(timezone)
    .fetch_one(connection)
    .await
    .map_err(|error| match violated_constraint(&error) {
        Some("users_email_key") => CoreError::EmailTaken,
        _ => error.into(),
    })?;
    into_user(row)
}

/// Returns a user and their password hash by email.
pub async fn find_credentials(
    connection: &mut PgConnection,
    email: &str,
) -> Result<Option<(User, String)>, CoreError> {
    let row: Option<StoredCredentials> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users WHERE lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(connection)
    .await?;
    row.map(|row| {
        let user = StoredUser {
            id: row.id,
            email: row.email,
            full_name: row.full_name,
            role: row.role,
            timezone: row.timezone,
            created_at: row.created_at,
            email_verified_at: row.email_verified_at,
        };
        into_user(user).map(|user| (user, row.password_hash))
    })
    .transpose()
}

/// Returns a user by id.
pub async fn find_user(connection: &mut PgConnection, id: Uuid) -> Result<Option<User>, CoreError> {
    let row: Option<StoredUser> = sqlx::query_as(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(into_user).transpose()
}

/// Returns a user's password hash.
pub async fn password_hash(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<String>, CoreError> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(connection)
            .await?,
    )
}

/// Replaces a user's password hash.
pub async fn set_password_hash(
    connection: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), CoreError> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(connection)
        .await?;
    Ok(())
}

/// Marks a user's email verified (kept as it was when it already is) and returns the user.
pub async fn mark_email_verified(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<User>, CoreError> {
    let row: Option<StoredUser> = sqlx::query_as(concat!(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), \
         updated_at = now() WHERE id = $1 RETURNING ",
        user_columns!()
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(into_user).transpose()
}
