//! `POST /v1/bookings/{id}/review` and `GET /v1/cleaners/{id}/reviews`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use spruce_proto::core::v1::{CreateReviewRequest, ListReviewsRequest, Review};

use super::{AppState, PageQuery, page, page_limit, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
};

/// `POST /v1/bookings/{id}/review` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReviewRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewBody {
    #[serde(default)]
    #[schema(required = true, minimum = 1, maximum = 5)]
    rating: u32,
    /// Line breaks and tabs are the only control characters allowed; format characters
    /// (bidirectional overrides, zero-width ones) are refused.
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: String,
}

/// A review as the mobile apps see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Review)]
pub(super) struct ReviewResponse {
    #[schema(format = Uuid)]
    booking_id: String,
    #[schema(format = Uuid)]
    cleaner_id: String,
    customer_name: String,
    rating: u32,
    comment: String,
    #[schema(format = DateTime)]
    created_at: Option<String>,
}

page! {
    /// A cleaner's reviews, newest first.
    ReviewPage of ReviewResponse
}

impl From<Review> for ReviewResponse {
    fn from(review: Review) -> Self {
        ReviewResponse {
            created_at: review.created_at.as_ref().and_then(rfc3339),
            booking_id: review.booking_id,
            cleaner_id: review.cleaner_id,
            customer_name: review.customer_name,
            rating: review.rating,
            comment: review.comment,
        }
    }
}

/// Reviews a completed booking, once, as its customer.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/review",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the completed booking")),
    request_body = ReviewBody,
    security(("bearer" = [])),
    responses(
        (
            status = 201,
            description = "the review; the cleaner's rating moved",
            body = ReviewResponse
        ),
        (status = 403, description = "the role may not do this"),
        (status = 404, description = "no such resource (or not yours)"),
        (status = 409, description = "conflict")
    )
)]
pub(super) async fn create_review(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<(StatusCode, Json<ReviewResponse>), ApiError> {
    let message = CreateReviewRequest {
        booking_id,
        rating: body.rating,
        comment: body.comment,
    };
    let review = state
        .upstreams
        .reviews
        .clone()
        .create_review(user.request(message))
        .await?;
    Ok((StatusCode::CREATED, Json(review.into_inner().into())))
}

/// Lists a cleaner's reviews, newest first.
#[utoipa::path(
    get,
    path = "/v1/cleaners/{id}/reviews",
    tag = "cleaners",
    params(("id" = Uuid, Path, description = "the cleaner's user id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cleaner's reviews, newest first", body = ReviewPage),
        (status = 404, description = "no such resource (or not yours)")
    )
)]
pub(super) async fn list_reviews(
    State(state): State<AppState>,
    user: AuthUser,
    Path(cleaner_id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ReviewPage>, ApiError> {
    let message = ListReviewsRequest {
        cleaner_id,
        limit: page_limit(page.limit)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let response = state
        .upstreams
        .reviews
        .clone()
        .list_reviews(user.request(message))
        .await?
        .into_inner();
    Ok(Json(ReviewPage::new(
        response.reviews.into_iter().map(Into::into).collect(),
        response.next_cursor,
    )))
}
