//! `model_versions`: every trained duration model, with its parameters, its metrics and
//! whether it is the one serving.

use sqlx::{Connection as _, PgConnection, PgPool};

/// A trained version to store.
pub struct NewVersion {
    /// JSON: the features and the target.
    pub parameters: String,
    /// JSON: hold-out errors, the panel's shift, why not promoted.
    pub metrics: String,
    /// Whether it serves from now on (the one serving before stops).
    pub promoted: bool,
    /// The model itself, as JSON.
    pub body: String,
}

/// The serving version and its body, if one is promoted.
///
/// # Errors
/// When the database fails.
pub async fn active(pool: &PgPool) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as("SELECT version, model FROM model_versions WHERE active")
        .fetch_optional(pool)
        .await
}

/// Stores `version` in one transaction, demoting the serving one when it is promoted;
/// returns its number.
///
/// A model is megabytes of JSON, and a connection keeps a write buffer as large as the
/// largest message it sent for as long as it lives: the one that carries the model is
/// taken out of the pool and closed afterwards, so the buffer goes with it.
///
/// # Errors
/// When the database fails.
pub async fn insert(pool: &PgPool, version: &NewVersion) -> sqlx::Result<i64> {
    let mut connection = pool.acquire().await?.detach();
    let number = insert_on(&mut connection, version).await?;
    connection.close().await?;
    Ok(number)
}

async fn insert_on(connection: &mut PgConnection, version: &NewVersion) -> sqlx::Result<i64> {
    let mut transaction = connection.begin().await?;
    if version.promoted {
        sqlx::query("UPDATE model_versions SET active = false WHERE active")
            .execute(&mut *transaction)
            .await?;
    }
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO model_versions (parameters, metrics, active, model) \
         VALUES ($1::jsonb, $2::jsonb, $3, $4) RETURNING version",
    )
    .bind(&version.parameters)
    .bind(&version.metrics)
    .bind(version.promoted)
    .bind(&version.body)
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(number)
}
