//! The `account_secrets` table: one-time secrets sent by email, stored as hashes.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::secret::{NewSecret, Purpose, StoredSecret},
    error::CoreError,
};

spruce_db::named_row! {
    /// A secret as stored.
    struct SecretRow {
        id: Uuid,
        user_id: Uuid,
        code_hash: Option<Vec<u8>>,
        failed_tries: i32,
        expires_at: DateTime<Utc>,
    }
}

fn into_secret(row: SecretRow) -> StoredSecret {
    StoredSecret {
        id: row.id,
        user_id: row.user_id,
        code_hash: row.code_hash,
        failed_tries: row.failed_tries,
        expires_at: row.expires_at,
    }
}

/// Stores `secret` for `user_id`, ending the user's earlier unused secrets for `purpose`:
/// only the newest email works.
pub async fn replace(
    connection: &mut PgConnection,
    user_id: Uuid,
    purpose: Purpose,
    secret: &NewSecret,
) -> Result<(), CoreError> {
    sqlx::query(
        "UPDATE account_secrets SET used_at = now() \
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO account_secrets (id, user_id, purpose, token_hash, code_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(&secret.token_hash)
    .bind(secret.code_hash.as_ref())
    .bind(secret.expires_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Returns the unused, unexpired secret for `purpose` whose token hashes to `token_hash`,
/// and locks it until the transaction ends.
pub async fn find_by_token(
    connection: &mut PgConnection,
    purpose: Purpose,
    token_hash: &[u8],
) -> Result<Option<StoredSecret>, CoreError> {
    let row: Option<SecretRow> = sqlx::query_as(
        "SELECT id, user_id, code_hash, failed_tries, expires_at FROM account_secrets \
         WHERE purpose = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > now() \
         FOR UPDATE",
    )
    .bind(purpose.as_str())
    .bind(token_hash)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(into_secret))
}

/// Returns the user's unused secret for `purpose` (the newest), and locks it until the
/// transaction ends.
pub async fn find_live(
    connection: &mut PgConnection,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<Option<StoredSecret>, CoreError> {
    let row: Option<SecretRow> = sqlx::query_as(
        "SELECT id, user_id, code_hash, failed_tries, expires_at FROM account_secrets \
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL \
         ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .fetch_optional(connection)
    .await?;
    Ok(row.map(into_secret))
}

/// Counts a wrong code against a secret.
pub async fn count_failure(connection: &mut PgConnection, id: Uuid) -> Result<(), CoreError> {
    sqlx::query("UPDATE account_secrets SET failed_tries = failed_tries + 1 WHERE id = $1")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}

/// Uses a secret up.
pub async fn use_up(connection: &mut PgConnection, id: Uuid) -> Result<(), CoreError> {
    sqlx::query("UPDATE account_secrets SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(connection)
        .await?;
    Ok(())
}
