//! The `notifications`, `recipients` and `bookings` tables.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use spruce_platform::paging::Cursor;

use crate::domain::notifications::{
    Channel, Message, Notification, Recipient, templates::BookingFacts,
};

/// Records `message` once per channel; a notification recorded before (the same event
/// again) is left as it is. Returns how many were new.
pub async fn record(
    connection: &mut PgConnection,
    message: &Message,
    channels: &[Channel],
) -> sqlx::Result<u64> {
    if channels.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = channels.iter().map(|_| Uuid::new_v4()).collect();
    let names: Vec<&str> = channels.iter().map(|channel| channel.as_str()).collect();
    let dedupe_keys: Vec<String> = channels
        .iter()
        .map(|channel| message.dedupe_key(*channel))
        .collect();
    // One row per channel, in one statement.
    let done = sqlx::query(
        "INSERT INTO notifications (id, user_id, channel, kind, subject, body, dedupe_key) \
         SELECT id, $2, channel, $4, $5, $6, dedupe_key \
         FROM unnest($1::uuid[], $3::text[], $7::text[]) AS t(id, channel, dedupe_key) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&ids)
    .bind(message.user_id)
    .bind(&names)
    .bind(&message.kind)
    .bind(&message.subject)
    .bind(&message.body)
    .bind(&dedupe_keys)
    .execute(connection)
    .await?;
    Ok(done.rows_affected())
}

spruce_db::named_row! {
    /// A notification as stored.
    struct StoredNotification {
        id: Uuid,
        user_id: Uuid,
        channel: String,
        kind: String,
        subject: String,
        body: String,
        delivery: String,
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
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredNotification> = sqlx::query_as(
        "SELECT id, user_id, channel, kind, subject, body, delivery, created_at \
         FROM notifications \
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
            let bad = |error: String| {
                sqlx::Error::Decode(format!("stored notification {id}: {error}").into())
            };
            Ok(Notification {
                id,
                user_id: row.user_id,
                channel: row.channel.parse().map_err(bad)?,
                kind: row.kind,
                subject: row.subject,
                body: row.body,
                delivery: row.delivery.parse().map_err(bad)?,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// Stores who a new user is (again, if the event comes twice).
pub async fn upsert_recipient(
    connection: &mut PgConnection,
    recipient: &Recipient,
) -> sqlx::Result<()> {
    write_recipient(
        connection,
        recipient,
        "INSERT INTO recipients (user_id, email, full_name, role, timezone) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET email = $2, \
         full_name = $3, role = $4, timezone = $5, updated_at = now()",
    )
    .await
}

/// Keeps `recipient` unless one is already known: what core answered may be older than a
/// user event the consumer stored meanwhile.
pub async fn insert_recipient_if_missing(
    connection: &mut PgConnection,
    recipient: &Recipient,
) -> sqlx::Result<()> {
    write_recipient(
        connection,
        recipient,
        "INSERT INTO recipients (user_id, email, full_name, role, timezone) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING",
    )
    .await
}

/// Runs `statement` with the recipient's fields as $1..$5.
async fn write_recipient(
    connection: &mut PgConnection,
    recipient: &Recipient,
    statement: &'static str,
) -> sqlx::Result<()> {
    sqlx::query(statement)
        .bind(recipient.user_id)
        .bind(&recipient.email)
        .bind(&recipient.full_name)
        .bind(&recipient.role)
        .bind(&recipient.timezone)
        .execute(connection)
        .await?;
    Ok(())
}

spruce_db::named_row! {
    /// A recipient as stored.
    struct StoredRecipient {
        user_id: Uuid,
        email: String,
        full_name: String,
        role: String,
        timezone: String,
        device_token: Option<String>,
    }
}

/// Returns a recipient, `None` before their user.registered arrived.
pub async fn find_recipient(
    connection: &mut PgConnection,
    user_id: Uuid,
) -> sqlx::Result<Option<Recipient>> {
    Ok(find_recipients(connection, &[user_id]).await?.pop())
}

/// Returns the recipients among `user_ids` that are known, in no particular order.
pub async fn find_recipients(
    connection: &mut PgConnection,
    user_ids: &[Uuid],
) -> sqlx::Result<Vec<Recipient>> {
    let rows: Vec<StoredRecipient> = sqlx::query_as(
        "SELECT user_id, email, full_name, role, timezone, device_token FROM recipients \
         WHERE user_id = ANY($1)",
    )
    .bind(user_ids)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Recipient {
            user_id: row.user_id,
            email: row.email,
            full_name: row.full_name,
            role: row.role,
            timezone: row.timezone,
            device_token: row.device_token,
        })
        .collect())
}

/// Sets (or, with `None`, clears) a user's push device; false when the user is unknown.
pub async fn set_device(
    connection: &mut PgConnection,
    user_id: Uuid,
    token: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE recipients SET device_token = $2, updated_at = now() WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(token)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps `facts` with `status` as the booking's state unless a newer version is held;
/// returns whether it was newer.
pub async fn apply_booking(
    connection: &mut PgConnection,
    facts: &BookingFacts,
    status: &str,
    version: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO bookings (id, customer_id, cleaner_id, service, starts_at, status, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
         customer_id = $2, cleaner_id = $3, service = $4, starts_at = $5, status = $6, \
         version = $7 WHERE bookings.version < $7",
    )
    .bind(facts.booking_id)
    .bind(facts.customer_id)
    .bind(facts.cleaner_id)
    .bind(&facts.service)
    .bind(facts.starts_at)
    .bind(status)
    .bind(version)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

spruce_db::named_row! {
    /// A booking of the mirror.
    struct StoredBooking {
        id: Uuid,
        customer_id: Uuid,
        cleaner_id: Option<Uuid>,
        service: String,
        starts_at: DateTime<Utc>,
    }
}

/// Takes up to `limit` confirmed bookings starting before `until` (and after now) whose
/// reminders are not recorded yet, marking them reminded: the caller records the reminders
/// in the same transaction. Like every claim of a batch from a table that fills and empties,
/// the batch's ids are taken once and the statement is planned afresh at each call (a plan
/// cached while the table was empty re-reads the batch for every row, see spruce_bus's relay).
pub async fn take_due_reminders(
    connection: &mut PgConnection,
    until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<BookingFacts>> {
    let rows: Vec<StoredBooking> = sqlx::query_as(
        "UPDATE bookings SET reminded_at = now() WHERE id = ANY(ARRAY( \
             SELECT id FROM bookings WHERE status = 'confirmed' AND reminded_at IS NULL \
             AND starts_at > now() AND starts_at <= $1 ORDER BY starts_at LIMIT $2 \
             FOR UPDATE SKIP LOCKED)) \
         RETURNING id, customer_id, cleaner_id, service, starts_at",
    )
    .bind(until)
    .bind(limit)
    .persistent(false)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| BookingFacts {
            booking_id: row.id,
            customer_id: row.customer_id,
            cleaner_id: row.cleaner_id,
            service: row.service,
            starts_at: row.starts_at,
            reason: String::new(),
        })
        .collect())
}

/// A notification claimed for sending, with where it goes.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: Uuid,
    pub user_id: Uuid,
    pub channel: Channel,
    pub subject: String,
    pub body: String,
    /// Attempts including this one.
    pub attempts: u32,
    /// The recipient's address for the channel; `None` when it is unknown.
    pub address: Option<String>,
}

spruce_db::named_row! {
    /// A claimed notification as read.
    struct StoredOutgoing {
        id: Uuid,
        user_id: Uuid,
        channel: String,
        subject: String,
        body: String,
        attempts: i32,
        email: Option<String>,
        device_token: Option<String>,
    }
}

/// Claims up to `limit` notifications due for sending (and any whose sender's lease ran
/// out) for `lease_secs`; planned afresh at each call, as [`take_due_reminders`].
pub async fn claim_due(
    connection: &mut PgConnection,
    limit: i64,
    lease_secs: f64,
) -> sqlx::Result<Vec<Outgoing>> {
    let rows: Vec<StoredOutgoing> = sqlx::query_as(
        "WITH claimed AS ( \
             UPDATE notifications SET delivery = 'sending', attempts = attempts + 1, \
             lease_until = now() + make_interval(secs => $2) \
             WHERE id = ANY(ARRAY(SELECT id FROM notifications \
                          WHERE (delivery = 'pending' AND next_attempt_at <= now()) \
                             OR (delivery = 'sending' AND lease_until < now()) \
                          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)) \
             RETURNING id, user_id, channel, subject, body, attempts) \
         SELECT c.id, c.user_id, c.channel, c.subject, c.body, c.attempts, r.email, r.device_token \
         FROM claimed c LEFT JOIN recipients r ON r.user_id = c.user_id",
    )
    .bind(limit)
    .bind(lease_secs)
    .persistent(false)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let channel: Channel = row
                .channel
                .parse()
                .map_err(|error: String| sqlx::Error::Decode(error.into()))?;
            let address = match channel {
                Channel::Email => row.email,
                Channel::Push => row.device_token,
            };
            Ok(Outgoing {
                id: row.id,
                user_id: row.user_id,
                channel,
                subject: row.subject,
                body: row.body,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                address,
            })
        })
        .collect()
}

/// Records that a notification went out.
pub async fn mark_sent(connection: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET delivery = 'sent', sent_at = now(), lease_until = NULL, \
         last_error = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(connection)
    .await?;
    Ok(())
}

/// Replaces the body of notification `id` with `instead` when its kind is one of
/// `secret_kinds`: once an email with a code or link is sent (or given up), the secret has
/// no reason to stay.
pub async fn forget_secret(
    connection: &mut PgConnection,
    id: Uuid,
    secret_kinds: &[&str],
    instead: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE notifications SET body = $3 WHERE id = $1 AND kind = ANY($2)")
        .bind(id)
        .bind(secret_kinds)
        .bind(instead)
        .execute(connection)
        .await?;
    Ok(())
}

/// Records a failed attempt: tried again at `retry_at`, or (`None`) given up.
pub async fn mark_failed(
    connection: &mut PgConnection,
    id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET delivery = CASE WHEN $3::timestamptz IS NULL THEN 'failed' \
         ELSE 'pending' END, next_attempt_at = coalesce($3, next_attempt_at), \
         lease_until = NULL, last_error = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .execute(connection)
    .await?;
    Ok(())
}

/// Returns what the scheduler holds about `user_id` as a JSON object: `recipient` (email,
/// name, zone, device token) and `notifications` (bodies of the `secret_kinds` read
/// `redacted`).
pub async fn export(
    connection: &mut PgConnection,
    user_id: Uuid,
    secret_kinds: &[&str],
    redacted: &str,
) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "SELECT json_build_object( \
           'recipient', (SELECT row_to_json(r) FROM (SELECT email, full_name, role, timezone, \
               device_token, updated_at FROM recipients WHERE user_id = $1) r), \
           'notifications', (SELECT coalesce(json_agg(n ORDER BY n.created_at), '[]') FROM ( \
               SELECT id, channel, kind, subject, \
               CASE WHEN kind = ANY($3) THEN $2 ELSE body END AS body, delivery, created_at \
               FROM notifications WHERE user_id = $1) n) \
         )::text",
    )
    .bind(user_id)
    .bind(redacted)
    .bind(secret_kinds)
    .fetch_one(connection)
    .await
}

/// Forgets a user who deleted their account: who they are, their device, every
/// notification to them, and their name in what others were told (replaced by `instead`).
pub async fn forget_user(
    connection: &mut PgConnection,
    user_id: Uuid,
    full_name: &str,
    instead: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM notifications WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM recipients WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    if !full_name.trim().is_empty() {
        sqlx::query(
            "UPDATE notifications SET subject = replace(subject, $1, $2), \
             body = replace(body, $1, $2) WHERE position($1 in subject) > 0 OR position($1 in body) > 0",
        )
        .bind(full_name)
        .bind(instead)
        .execute(connection)
        .await?;
    }
    Ok(())
}
