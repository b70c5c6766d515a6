//! The `reviews` table and the ratings it feeds.

use chrono::{DateTime, Utc};
use spruce_platform::paging::Cursor;
use sqlx::PgConnection;
use uuid::Uuid;

use super::violated_constraint;
use crate::{
    domain::review::{Review, ReviewInput},
    error::CoreError,
};

/// Stores a review and adds its rating to the cleaner's, raising the profile's version;
/// returns when it was made. [`CoreError::AlreadyReviewed`] when the booking has one.
pub async fn insert_review(
    connection: &mut PgConnection,
    booking_id: Uuid,
    cleaner_id: Uuid,
    customer_id: Uuid,
    review: &ReviewInput,
) -> Result<DateTime<Utc>, CoreError> {
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO reviews (booking_id, cleaner_id, customer_id, rating, comment) VALUES ($1, $2, $3, $4, $5) \
         RETURNING created_at",
    )
    .bind(booking_id)
    .bind(cleaner_id)
    .bind(customer_id)
    .bind(i16::from(review.rating))
    .bind(&review.comment)
    .fetch_one(&mut *connection)
    .await
    .map_err(|error| match violated_constraint(&error) {
        Some("reviews_pkey") => CoreError::AlreadyReviewed,
        _ => error.into(),
    })?;
    // One statement, so concurrent reviews of one cleaner never lose an update.
    sqlx::query(
        "UPDATE cleaner_profiles SET rating_sum = rating_sum + $2, rating_count = rating_count + 1, \
         version = version + 1, updated_at = now() WHERE cleaner_id = $1",
    )
    .bind(cleaner_id)
    .bind(i64::from(review.rating))
    .execute(connection)
    .await?;
    Ok(created_at)
}

spruce_db::named_row! {
    /// A review as listed, with its customer's name.
    struct StoredReview {
        booking_id: Uuid,
        cleaner_id: Uuid,
        customer_name: String,
        rating: i16,
        comment: String,
        created_at: DateTime<Utc>,
    }
}

/// Returns up to `limit` of a cleaner's reviews, newest first, after `after`.
pub async fn list_reviews(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Review>, CoreError> {
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredReview> = sqlx::query_as(
        "SELECT r.booking_id, r.cleaner_id, u.full_name AS customer_name, r.rating, r.comment, \
         r.created_at \
         FROM reviews r JOIN users u ON u.id = r.customer_id WHERE r.cleaner_id = $1 \
         AND ($2::timestamptz IS NULL OR (r.created_at, r.booking_id) < ($2, $3)) \
         ORDER BY r.created_at DESC, r.booking_id DESC LIMIT $4",
    )
    .bind(cleaner_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Review {
            booking_id: row.booking_id,
            cleaner_id: row.cleaner_id,
            customer_name: row.customer_name,
            rating: u8::try_from(row.rating).unwrap_or(0),
            comment: row.comment,
            created_at: row.created_at,
        })
        .collect())
}
