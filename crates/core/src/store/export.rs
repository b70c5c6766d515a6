//! Everything core holds about one user, as one JSON document built by PostgreSQL.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::CoreError;

/// Returns the user's data as a JSON object: `user`, `addresses`, `cleaner_profile`,
/// `bookings` (as customer or cleaner, with their payments), `reviews_written`,
/// `reviews_received` and `sessions`.
pub async fn user_document(
    connection: &mut PgConnection,
    user_id: Uuid,
) -> Result<String, CoreError> {
    let document: String = sqlx::query_scalar(
        "SELECT json_build_object( \
           'user', (SELECT row_to_json(u) FROM (SELECT id, email, full_name, role, timezone, \
               created_at, email_verified_at FROM users WHERE id = $1) u), \
           'addresses', (SELECT coalesce(json_agg(a ORDER BY a.created_at), '[]') FROM ( \
               SELECT id, label, line1, city, postal_code, lat, lng, size_m2, bedrooms, \
               bathrooms, has_pets, created_at FROM addresses WHERE customer_id = $1) a), \
           'cleaner_profile', (SELECT row_to_json(p) FROM (SELECT bio, hourly_rate_cents, \
               currency, services, home_lat, home_lng, area_lat, area_lng, service_radius_km, \
               weekly_availability, timezone, rating_sum, rating_count, photo_key, updated_at \
               FROM cleaner_profiles WHERE cleaner_id = $1) p), \
           'bookings', (SELECT coalesce(json_agg(b ORDER BY b.created_at), '[]') FROM ( \
               SELECT b.id, b.customer_id, b.cleaner_id, b.address_id, b.service, b.starts_at, \
               b.ends_at, b.duration_min, b.actual_duration_min, b.price_cents, b.currency, \
               b.status, p.status AS payment_status, b.created_at FROM bookings b \
               LEFT JOIN payments p ON p.booking_id = b.id \
               WHERE (b.customer_id = $1 OR b.cleaner_id = $1) \
               AND b.status <> 'pending_payment') b), \
           'reviews_written', (SELECT coalesce(json_agg(r ORDER BY r.created_at), '[]') FROM ( \
               SELECT booking_id, cleaner_id, rating, comment, created_at FROM reviews \
               WHERE customer_id = $1) r), \
           'reviews_received', (SELECT coalesce(json_agg(r ORDER BY r.created_at), '[]') FROM ( \
               SELECT booking_id, customer_id, rating, comment, created_at FROM reviews \
               WHERE cleaner_id = $1) r), \
           'sessions', (SELECT coalesce(json_agg(s ORDER BY s.created_at), '[]') FROM ( \
               SELECT family_id AS id, min(device) AS device, min(created_at) AS created_at, \
               max(created_at) AS last_used_at FROM refresh_tokens WHERE user_id = $1 \
               GROUP BY family_id) s) \
         )::text",
    )
    .bind(user_id)
    .fetch_one(connection)
    .await?;
    Ok(document)
}

/// Erases the personal data of a user who deleted their account, keeping a tombstone: the
/// user row (bookings and reviews point at it) without email, name or password; their
/// addresses without street, label or coordinates; the text of their reviews; their cleaner
/// profile, sessions and emailed secrets; and published events that name them.
pub async fn erase_person(
    connection: &mut PgConnection,
    user_id: Uuid,
    email: &str,
    full_name: &str,
) -> Result<(), CoreError> {
    for statement in [
        "UPDATE users SET email = 'deleted-' || id || '@deleted.invalid', \
         full_name = 'Deleted user', password_hash = '!', timezone = 'UTC', \
         email_verified_at = NULL, deleted_at = now(), updated_at = now() WHERE id = $1",
        "UPDATE addresses SET label = '', line1 = '', city = '', postal_code = '', lat = 0, lng = 0 \
         WHERE customer_id = $1",
        "UPDATE reviews SET comment = '' WHERE customer_id = $1",
        "DELETE FROM cleaner_profiles WHERE cleaner_id = $1",
        "DELETE FROM refresh_tokens WHERE user_id = $1",
        "DELETE FROM account_secrets WHERE user_id = $1",
    ] {
        sqlx::query(statement)
            .bind(user_id)
            .execute(&mut *connection)
            .await?;
    }
    // Events that carry the email (theirs alone: the signup, the emails with codes, sent or
    // not: nobody is there to read them now), and published events that carry the name.
    sqlx::query(
        "DELETE FROM outbox WHERE position(convert_to($1, 'UTF8') in payload) > 0 \
         OR (published_at IS NOT NULL AND position(convert_to($2, 'UTF8') in payload) > 0)",
    )
    .bind(email)
    .bind(full_name)
    .execute(connection)
    .await?;
    Ok(())
}
