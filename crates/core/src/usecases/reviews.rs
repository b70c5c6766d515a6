//! Reviews: the use cases behind `ReviewService`.

use spruce_platform::{
    identity::Caller,
    paging::{Cursor, split_page},
};
use spruce_proto::events::v1::{ReviewCreated, envelope::Payload};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    authz::authenticated,
    domain::{
        booking::{BookingStatus, Party},
        review::{Review, ReviewInput},
    },
    error::CoreError,
    store::{bookings, cleaners, reviews, users},
    usecases::cleaners::cleaner_updated,
};

/// The review use cases.
#[derive(Clone)]
pub struct Reviews {
    pool: PgPool,
}

impl Reviews {
    /// Creates the use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Reviews { pool }
    }

    /// Reviews a completed booking, once, as its customer; the cleaner's rating changes in
    /// the same transaction.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id))]
    pub async fn create(
        &self,
        caller: Option<Caller>,
        booking_id: Uuid,
        input: ReviewInput,
    ) -> Result<Review, CoreError> {
        let caller = authenticated(caller)?;
        let mut transaction = self.pool.begin().await?;
        let booking = bookings::lock_booking(&mut transaction, booking_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        match booking.party_of(caller.user_id, false) {
            Some(Party::Customer) => {}
            Some(_) => {
                return Err(CoreError::PermissionDenied(
                    "only the booking's customer can review it",
                ));
            }
            None => return Err(CoreError::NotFound),
        }
        let Some(cleaner_id) = booking
            .cleaner_id
            .filter(|_| booking.status == BookingStatus::Completed)
        else {
            return Err(CoreError::NotReviewable(
                "a booking can be reviewed once it is completed",
            ));
        };
        let created_at = reviews::insert_review(
            &mut transaction,
            booking_id,
            cleaner_id,
            caller.user_id,
            &input,
        )
        .await?;
        let profile = cleaners::find_profile(&mut transaction, cleaner_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let customer = users::find_user(&mut transaction, caller.user_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let created = spruce_bus::envelope(
            "review.created",
            booking_id,
            1,
            Payload::ReviewCreated(ReviewCreated {
                booking_id: booking_id.to_string(),
                cleaner_id: cleaner_id.to_string(),
                customer_id: caller.user_id.to_string(),
                rating: u32::from(input.rating),
                comment: input.comment.clone(),
                rating_avg: profile.rating_avg(),
                rating_count: u32::try_from(profile.rating_count).unwrap_or(0),
            }),
        );
        spruce_bus::enqueue(&mut transaction, &created).await?;
        let updated = spruce_bus::envelope(
            "cleaner.updated",
            cleaner_id,
            profile.version,
            Payload::CleanerUpdated(cleaner_updated(&profile)),
        );
        spruce_bus::enqueue(&mut transaction, &updated).await?;
        transaction.commit().await?;
        Ok(Review {
            booking_id,
            cleaner_id,
            customer_name: customer.full_name,
            rating: input.rating,
            comment: input.comment,
            created_at,
        })
    }

    /// Returns a page of a cleaner's reviews, newest first, and the next page's cursor.
    pub async fn list(
        &self,
        caller: Option<Caller>,
        cleaner_id: Uuid,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<Review>, Option<Cursor>), CoreError> {
        authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        let rows = reviews::list_reviews(&mut connection, cleaner_id, after, limit + 1).await?;
        Ok(split_page(rows, limit, |review| Cursor {
            created_at: review.created_at,
            id: review.booking_id,
        }))
    }
}
