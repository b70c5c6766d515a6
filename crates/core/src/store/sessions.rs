//! The `refresh_tokens` table.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{domain::session::StoredToken, error::CoreError};

/// Stores a refresh token's hash in `family_id`; a family goes on with the device its
/// first token named (`device` counts for a new family only).
pub async fn insert_token(
    connection: &mut PgConnection,
    family_id: Uuid,
    user_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
    device: &str,
) -> Result<(), CoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at, device) \
         VALUES ($1, $2, $3, $4, $5, coalesce((SELECT device FROM refresh_tokens \
           WHERE family_id = $2 ORDER BY created_at LIMIT 1), $6))",
    )
    .bind(Uuid::new_v4())
    .bind(family_id)
    .bind(user_id)
    .bind(token_hash)
    .bind(expires_at)
    .bind(device)
    .execute(connection)
    .await?;
    Ok(())
}

spruce_db::named_row! {
    /// A refresh token's row.
    struct TokenRow {
        id: Uuid,
        family_id: Uuid,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
        rotated_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    }
}

/// Finds a token by hash and locks its row until the transaction ends, so two concurrent
/// refreshes with the same token cannot both rotate it.
pub async fn find_token_for_update(
    connection: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<StoredToken>, CoreError> {
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT id, family_id, user_id, expires_at, rotated_at, revoked_at FROM refresh_tokens \
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| StoredToken {
        id: row.id,
        family_id: row.family_id,
        user_id: row.user_id,
        expires_at: row.expires_at,
        rotated_at: row.rotated_at,
        revoked_at: row.revoked_at,
    }))
}

/// Marks a token as used up by rotation.
pub async fn mark_rotated(connection: &mut PgConnection, id: Uuid) -> Result<(), CoreError> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Revokes every token of a family.
pub async fn revoke_family(
    connection: &mut PgConnection,
    family_id: Uuid,
) -> Result<(), CoreError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Revokes the user's live sessions (families whose current token is neither rotated,
/// revoked nor expired) beyond the `keep` most recently used; returns how many.
pub async fn revoke_beyond(
    connection: &mut PgConnection,
    user_id: Uuid,
    keep: i64,
) -> Result<u64, CoreError> {
    let revoked = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id IN ( \
           SELECT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL \
           AND rotated_at IS NULL AND expires_at > now() ORDER BY created_at DESC OFFSET $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(connection)
    .await?;
    Ok(revoked.rows_affected())
}

/// Deletes up to `limit` refresh tokens that expired before `before`; returns how many.
pub async fn delete_expired(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, CoreError> {
    let deleted = sqlx::query(
        "DELETE FROM refresh_tokens WHERE id IN ( \
           SELECT id FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected())
}

/// A live session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: Uuid,
    pub device: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// Returns the user's live sessions (families whose current token is neither rotated,
/// revoked nor expired), the most recently used first.
pub async fn list_live(
    connection: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<SessionRow>, CoreError> {
    let rows: Vec<(Uuid, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT family_id, min(device), min(created_at), max(created_at) FROM refresh_tokens \
         WHERE user_id = $1 AND family_id IN (SELECT family_id FROM refresh_tokens \
           WHERE user_id = $1 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > now()) \
         GROUP BY family_id ORDER BY max(created_at) DESC",
    )
    .bind(user_id)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, device, created_at, last_used_at)| SessionRow {
            id,
            device,
            created_at,
            last_used_at,
        })
        .collect())
}

/// Revokes the user's session `family_id`; returns whether it was theirs and live.
pub async fn revoke_session(
    connection: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
) -> Result<bool, CoreError> {
    let revoked = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() \
         WHERE user_id = $1 AND family_id = $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(family_id)
    .execute(connection)
    .await?;
    Ok(revoked.rows_affected() > 0)
}

/// Revokes every session of the user but `keep` (every one when `None`).
pub async fn revoke_all_but(
    connection: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<(), CoreError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL \
         AND ($2::uuid IS NULL OR family_id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(connection)
    .await?;
    Ok(())
}
