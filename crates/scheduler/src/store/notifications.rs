//! The `notifications` table.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use spruce_platform::paging::Cursor;

use crate::notifications::Notification;

/// Records a notification.
pub async fn insert_notification(
    connection: &mut PgConnection,
    notification: &Notification,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, channel, kind, subject, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(notification.id)
    .bind(notification.user_id)
    .bind(notification.channel.as_str())
    .bind(&notification.kind)
    .bind(&notification.subject)
    .bind(&notification.body)
    .bind(notification.created_at)
    .execute(connection)
    .await?;
    Ok(())
}

spruce_platform::named_row! {
    /// A notification as stored.
    struct StoredNotification {
        id: Uuid,
        user_id: Uuid,
        channel: String,
        kind: String,
        subject: String,
        body: String,
        created_at: DateTime<Utc>,
    }
}

/// Returns up to `limit` of a user's notifications, newest first, after `after`.
pub async fn list_notifications(
    connection: &mut PgConnection,
    user_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    let (after_time, after_id) = after.map_or((None, None), |cursor| {
        (Some(cursor.created_at), Some(cursor.id))
    });
    let rows: Vec<StoredNotification> = sqlx::query_as(
        "SELECT id, user_id, channel, kind, subject, body, created_at FROM notifications \
         WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(user_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            let channel = row.channel.parse().map_err(|error: String| {
                sqlx::Error::Decode(format!("stored notification {id}: {error}").into())
            })?;
            Ok(Notification {
                id,
                user_id: row.user_id,
                channel,
                kind: row.kind,
                subject: row.subject,
                body: row.body,
                created_at: row.created_at,
            })
        })
        .collect()
}
