//! `GET /v1/search/cleaners`, `GET /v1/recommendations` and `POST /v1/quotes`.

use std::str::FromStr;

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spruce_domain::reason::FieldError;
use spruce_platform::time::to_timestamp;
use spruce_proto::{
    core::v1::{AddressInput, GetAddressRequest},
    search::v1::{
        CleanerHit, EstimateDurationRequest, RecommendCleanersRequest, SearchCleanersRequest,
    },
};

use super::{AppState, page};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
};

/// The query of a search, as text: each field is parsed here so that a malformed one is
/// named (ranges are the search service's to judge).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchParams {
    /// Where the cleaning is: latitude.
    #[param(required = true, value_type = f64, minimum = -90.0, maximum = 90.0)]
    lat: Option<String>,
    /// Longitude.
    #[param(required = true, value_type = f64, minimum = -180.0, maximum = 180.0)]
    lng: Option<String>,
    /// Kilometres around the point, 1 to 100; 10 when absent.
    #[param(value_type = Option<f64>, minimum = 1.0, maximum = 100.0)]
    radius_km: Option<String>,
    /// Only cleaners offering this service.
    #[param(value_type = Option<super::bookings::ServiceKind>)]
    service: Option<String>,
    /// Only cleaners free from then (RFC 3339, in the future) for `duration_min`.
    #[param(value_type = Option<String>, format = DateTime)]
    starts_at: Option<String>,
    /// Minutes the cleaner must be free for (with `starts_at`); 120 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 720)]
    duration_min: Option<String>,
    /// Lowest mean rating.
    #[param(value_type = Option<f64>, minimum = 0.0, maximum = 5.0)]
    min_rating: Option<String>,
    /// Highest hourly rate, in cents.
    #[param(value_type = Option<i64>, minimum = 1)]
    max_rate_cents: Option<String>,
    /// Words in the cleaner's name or bio, whatever the case and accents.
    #[param(max_length = 100)]
    q: Option<String>,
    /// Page size, 20 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A cleaner found, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CleanerHit)]
pub(super) struct CleanerHitBody {
    #[schema(format = Uuid)]
    cleaner_id: String,
    full_name: String,
    /// From the searched point to the cleaner's public point (300 to 800 m from their home,
    /// which is never shown), rounded to 0.1 km.
    distance_km: f64,
    /// The ranking score, 0 to 1 (rating with a prior, nearness, price).
    score: f64,
    rating_avg: f64,
    rating_count: u32,
    hourly_rate_cents: i64,
}

page! {
    /// Cleaners found, best first.
    CleanerHitPage of CleanerHitBody
}

impl From<CleanerHit> for CleanerHitBody {
    fn from(hit: CleanerHit) -> Self {
        CleanerHitBody {
            cleaner_id: hit.cleaner_id,
            full_name: hit.full_name,
            distance_km: hit.distance_km,
            score: hit.score,
            rating_avg: hit.rating_avg,
            rating_count: hit.rating_count,
            hourly_rate_cents: hit.hourly_rate_cents,
        }
    }
}

/// Collects every malformed field at once.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn number<T: FromStr>(&mut self, field: &str, text: Option<&str>, what: &str) -> Option<T> {
        let text = text?;
        let parsed = text.trim().parse().ok();
        if parsed.is_none() {
            self.0
                .push(FieldError::new(field, format!("must be {what}")));
        }
        parsed
    }

    fn required<T>(&mut self, field: &str, value: Option<T>, given: bool) -> T
    where
        T: Default,
    {
        if !given {
            self.0.push(FieldError::new(field, "is required"));
        }
        value.unwrap_or_default()
    }
}

impl SearchParams {
    fn into_request(self) -> Result<SearchCleanersRequest, ApiError> {
        let mut fields = Fields::default();
        let lat = fields.number::<f64>("lat", self.lat.as_deref(), "a number");
        let lat = fields.required("lat", lat, self.lat.is_some());
        let lng = fields.number::<f64>("lng", self.lng.as_deref(), "a number");
        let lng = fields.required("lng", lng, self.lng.is_some());
        let starts_at = self.starts_at.as_deref().and_then(|text| {
            let parsed = DateTime::parse_from_rfc3339(text.trim()).ok();
            if parsed.is_none() {
                fields.0.push(FieldError::new(
                    "starts_at",
                    "must be an RFC 3339 time, e.g. 2030-06-03T09:00:00Z",
                ));
            }
            parsed.map(|time| to_timestamp(time.with_timezone(&Utc)))
        });
        let request = SearchCleanersRequest {
            lat,
            lng,
            radius_km: fields
                .number("radius_km", self.radius_km.as_deref(), "a number")
                .unwrap_or(0.0),
            service: self.service.unwrap_or_default(),
            starts_at,
            duration_min: fields
                .number(
                    "duration_min",
                    self.duration_min.as_deref(),
                    "a whole number of minutes from 1 to 720",
                )
                .unwrap_or(0),
            min_rating: fields
                .number("min_rating", self.min_rating.as_deref(), "a number")
                .unwrap_or(0.0),
            max_rate_cents: fields
                .number(
                    "max_rate_cents",
                    self.max_rate_cents.as_deref(),
                    "a positive whole number",
                )
                .unwrap_or(0),
            q: self.q.unwrap_or_default(),
            limit: fields
                .number(
                    "limit",
                    self.limit.as_deref(),
                    "a whole number from 1 to 100",
                )
                .unwrap_or(0),
            cursor: self.cursor.unwrap_or_default(),
        };
        // Zero means "not given" on the wire: say what the caller sent instead.
        for (field, text) in [
            ("radius_km", &self.radius_km),
            ("duration_min", &self.duration_min),
            ("max_rate_cents", &self.max_rate_cents),
            ("limit", &self.limit),
        ] {
            let zero = text
                .as_deref()
                .and_then(|text| text.trim().parse::<f64>().ok())
                .is_some_and(|value| value == 0.0);
            if zero {
                fields.0.push(FieldError::new(field, "must be more than 0"));
            }
        }
        if fields.0.is_empty() {
            Ok(request)
        } else {
            Err(ApiError::validation(fields.0))
        }
    }
}

/// Finds cleaners near a point, ranked by a documented score, with cursor paging.
#[utoipa::path(get, path = "/v1/search/cleaners", tag = "search", params(SearchParams), security(("bearer" = [])), responses((status = 200, description = "cleaners best first, each with distance_km and score", body = CleanerHitPage), (status = 429, description = "too many searches by this user (Retry-After)"), (status = 503, description = "search is still loading or down; retry after the Retry-After seconds")))]
pub(super) async fn search_cleaners(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<CleanerHitPage>, ApiError> {
    let message = params.into_request()?;
    throttle_search(&state, &user).await?;
    let response = state
        .upstreams
        .search
        .clone()
        .search_cleaners(user.request(message))
        .await?
        .into_inner();
    Ok(Json(CleanerHitPage::new(
        response.cleaners.into_iter().map(Into::into).collect(),
        response.next_cursor,
    )))
}

/// Counts a search or recommendation request against the user's limit.
async fn throttle_search(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    state
        .throttle
        .search_attempt(user.caller.user_id)
        .await
        .map_err(|blocked| ApiError::too_many_attempts(blocked.retry_after_secs))
}

/// `GET /v1/recommendations` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RecommendationParams {
    /// One of the customer's addresses: recommendations serve it.
    #[param(required = true, format = Uuid)]
    address_id: Option<String>,
    /// How many, 10 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    limit: Option<String>,
}

/// A recommended cleaner and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Recommendation)]
pub(super) struct RecommendationBody {
    #[serde(flatten)]
    cleaner: CleanerHitBody,
    /// Why, in words fit for the app, e.g. "Customers who booked Ann Lee also booked Zoë Roth".
    reason: String,
}

/// The recommendations, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Recommendations {
    items: Vec<RecommendationBody>,
}

/// Recommends cleaners for one of the customer's addresses: who customers with the same
/// cleaners also booked (two cleaners count as booked together once at least 3 other
/// customers booked both), blended with rating, nearness and price.
#[utoipa::path(get, path = "/v1/recommendations", tag = "search", params(RecommendationParams), security(("bearer" = [])), responses((status = 200, description = "cleaners best first, each with a reason", body = Recommendations), (status = 403, description = "only customers get recommendations"), (status = 404, description = "no such address of yours"), (status = 429, description = "too many searches by this user (Retry-After)"), (status = 503, description = "search is still loading or down; retry after the Retry-After seconds")))]
pub(super) async fn recommendations(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<RecommendationParams>,
) -> Result<Json<Recommendations>, ApiError> {
    let mut fields = Fields::default();
    let limit = fields
        .number::<u32>(
            "limit",
            params.limit.as_deref(),
            "a whole number from 1 to 50",
        )
        .unwrap_or(0);
    if params.limit.is_some() && limit == 0 && fields.0.is_empty() {
        fields
            .0
            .push(FieldError::new("limit", "must be more than 0"));
    }
    let Some(address_id) = params.address_id.filter(|id| !id.is_empty()) else {
        fields.0.push(FieldError::new("address_id", "is required"));
        return Err(ApiError::validation(fields.0));
    };
    if !fields.0.is_empty() {
        return Err(ApiError::validation(fields.0));
    }
    throttle_search(&state, &user).await?;
    let details = home_of(&state, &user, address_id).await?;
    let response = state
        .upstreams
        .search
        .clone()
        .recommend_cleaners(user.request(RecommendCleanersRequest {
            lat: details.lat,
            lng: details.lng,
            limit,
        }))
        .await?
        .into_inner();
    Ok(Json(Recommendations {
        items: response
            .recommendations
            .into_iter()
            .filter_map(|item| {
                Some(RecommendationBody {
                    cleaner: item.cleaner?.into(),
                    reason: item.reason,
                })
            })
            .collect(),
    }))
}

/// Returns one of the caller's addresses (core answers 404 for anyone else's).
async fn home_of(
    state: &AppState,
    user: &AuthUser,
    address_id: String,
) -> Result<AddressInput, ApiError> {
    let address = state
        .upstreams
        .addresses
        .clone()
        .get_address(user.request(GetAddressRequest { address_id }))
        .await?
        .into_inner();
    Ok(address.details.unwrap_or_default())
}

/// `POST /v1/quotes` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = QuoteRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct QuoteBody {
    /// One of the customer's addresses: its size, rooms and pets count.
    #[serde(default)]
    #[schema(required = true, format = Uuid)]
    address_id: String,
    #[serde(default)]
    #[schema(required = true, value_type = super::bookings::ServiceKind)]
    service: String,
    /// The cleaner whose pace and rate count; the default rate without one.
    #[serde(default)]
    #[schema(format = Uuid)]
    cleaner_id: Option<String>,
}

/// What a cleaning would take and cost.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Quote)]
pub(super) struct QuoteResponse {
    /// In quarter hours, 60 to 600.
    estimated_duration_min: u32,
    price_cents: i64,
    currency: String,
    /// What estimated it: `model` (the learned duration model) or `rule_of_thumb` (before
    /// any model is trained).
    estimated_by: String,
    /// The duration model's version that estimated it; null for the rule of thumb.
    model_version: Option<i64>,
}

/// Quotes a cleaning at one of the customer's addresses with the learned duration model (or,
/// before one is trained, the rule of thumb bookings use too).
#[utoipa::path(post, path = "/v1/quotes", tag = "search", request_body = QuoteBody, security(("bearer" = [])), responses((status = 200, description = "the estimate and its price", body = QuoteResponse), (status = 403, description = "only customers get quotes"), (status = 404, description = "no such address of yours, or no such cleaner"), (status = 503, description = "search is down; retry after the Retry-After seconds")))]
pub(super) async fn quote(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<QuoteBody>,
) -> Result<Json<QuoteResponse>, ApiError> {
    if body.address_id.is_empty() {
        return Err(ApiError::invalid_field("address_id", "is required"));
    }
    let home = home_of(&state, &user, body.address_id).await?;
    let estimate = state
        .upstreams
        .search
        .clone()
        .estimate_duration(user.request(EstimateDurationRequest {
            service: body.service,
            size_m2: home.size_m2,
            bedrooms: home.bedrooms,
            bathrooms: home.bathrooms,
            has_pets: home.has_pets,
            cleaner_id: body.cleaner_id.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Ok(Json(QuoteResponse {
        estimated_duration_min: estimate.estimated_duration_min,
        price_cents: estimate.price_cents,
        currency: estimate.currency,
        estimated_by: estimate.estimated_by,
        model_version: Some(estimate.model_version).filter(|version| *version > 0),
    }))
}
