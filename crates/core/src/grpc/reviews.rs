//! `spruce.core.v1.ReviewService`.

use spruce_platform::{
    identity::Caller,
    paging::{Cursor, page_limit},
    time::to_timestamp,
};
use spruce_proto::core::v1::{
    CreateReviewRequest, ListReviewsRequest, ListReviewsResponse, Review as WireReview,
    review_service_server::ReviewService,
};
use tonic::{Request, Response, Status};

use super::path_id;
use crate::{
    domain::review::{Review, ReviewInput},
    error::CoreError,
    usecases::reviews::Reviews,
};

/// The gRPC face of [`Reviews`].
pub struct ReviewApi {
    reviews: Reviews,
}

impl ReviewApi {
    /// Wraps the review use cases.
    pub fn new(reviews: Reviews) -> Self {
        ReviewApi { reviews }
    }
}

fn to_wire(review: Review) -> WireReview {
    WireReview {
        booking_id: review.booking_id.to_string(),
        cleaner_id: review.cleaner_id.to_string(),
        customer_name: review.customer_name,
        rating: u32::from(review.rating),
        comment: review.comment,
        created_at: Some(to_timestamp(review.created_at)),
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn create_review(
        &self,
        request: Request<CreateReviewRequest>,
    ) -> Result<Response<WireReview>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let booking_id = path_id(&wire.booking_id)?;
        let input =
            ReviewInput::parse(wire.rating, &wire.comment).map_err(CoreError::Validation)?;
        Ok(Response::new(to_wire(
            self.reviews.create(caller, booking_id, input).await?,
        )))
    }

    async fn list_reviews(
        &self,
        request: Request<ListReviewsRequest>,
    ) -> Result<Response<ListReviewsResponse>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let cleaner_id = path_id(&wire.cleaner_id)?;
        let limit =
            page_limit(wire.limit).map_err(|message| CoreError::invalid("limit", message))?;
        let after = Cursor::from_wire(&wire.cursor)
            .map_err(|message| CoreError::invalid("cursor", message))?;
        let (page, next) = self.reviews.list(caller, cleaner_id, after, limit).await?;
        Ok(Response::new(ListReviewsResponse {
            reviews: page.into_iter().map(to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }
}
