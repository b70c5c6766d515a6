//! The `users` table.

use chrono::{DateTime, Utc};
use spruce_platform::identity::Role;
use sqlx::PgConnection;
use uuid::Uuid;

use super::violated_constraint;
use crate::{domain::user::User, error::CoreError};

type UserRow = (Uuid, String, String, String, DateTime<Utc>);

fn into_user((id, email, full_name, role, created_at): UserRow) -> Result<User, CoreError> {
    let role: Role = role
        .parse()
        .map_err(|error| CoreError::Unexpected(anyhow::anyhow!("stored user {id}: {error}")))?;
    Ok(User {
        id,
        email,
        full_name,
        role,
        created_at,
    })
}

/// Inserts a user; [`CoreError::EmailTaken`] when the email is in use.
pub async fn insert_user(
    connection: &mut PgConnection,
    id: Uuid,
    email: &str,
    password_hash: &str,
    full_name: &str,
    role: Role,
) -> Result<User, CoreError> {
    let row: UserRow = sqlx::query_as(
        "INSERT INTO users (id, email, password_hash, full_name, role) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, email, full_name, role, created_at",
    )
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(full_name)
    .bind(role.as_str())
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
    let row: Option<(Uuid, String, String, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT id, email, full_name, role, created_at, password_hash FROM users \
         WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(connection)
    .await?;
    row.map(|(id, email, full_name, role, created_at, hash)| {
        into_user((id, email, full_name, role, created_at)).map(|user| (user, hash))
    })
    .transpose()
}

/// Returns a user by id.
pub async fn find_user(connection: &mut PgConnection, id: Uuid) -> Result<Option<User>, CoreError> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, full_name, role, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(connection)
            .await?;
    row.map(into_user).transpose()
}
