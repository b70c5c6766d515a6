//! `GET /v1/search/cleaners`, `GET /v1/recommendations` and `POST /v1/quotes`.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spruce_domain::reason::Reason;
use spruce_platform::{
    flags::{
        FAULT_GATEWAY_SEARCH_ERROR_RATE, RECOMMENDATIONS_ENABLED, SEARCH_MIN_RATING_DEFAULT,
        Subject,
    },
    time::to_timestamp,
};
use spruce_proto::{
    core::v1::{AddressInput, GetAddressRequest, ServiceKind as WireServiceKind},
    search::v1::{
        CleanerHit, EstimateDurationRequest, RecommendCleanersRequest, SearchCleanersRequest,
    },
};

use uuid::Uuid;

use super::{
    AppState,
    bookings::{SERVICE_EXPECTED, ServiceKind, TIME_EXPECTED, UUID_EXPECTED},
    page,
};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    fields::{Checks, Field},
};

/// The query of a search. Every field is read leniently and checked together, so that
/// each malformed one is named (ranges are the search service's to judge).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SearchParams {
    /// Where the cleaning is: latitude.
    #[serde(default)]
    #[param(required = true, value_type = f64, minimum = -90.0, maximum = 90.0)]
    lat: Field<f64>,
    /// Longitude.
    #[serde(default)]
    #[param(required = true, value_type = f64, minimum = -180.0, maximum = 180.0)]
    lng: Field<f64>,
    /// Kilometres around the point, 1 to 100; 10 when absent.
    #[serde(default)]
    #[param(value_type = Option<f64>, minimum = 1.0, maximum = 100.0)]
    radius_km: Field<f64>,
    /// Only cleaners offering this service.
    #[serde(default)]
    #[param(value_type = Option<super::bookings::ServiceKind>)]
    service: Field<ServiceKind>,
    /// Only cleaners free from then (RFC 3339, in the future) for `duration_min`.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    starts_at: Field<DateTime<Utc>>,
    /// Minutes the cleaner must be free for (with `starts_at`); 120 when absent.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 720)]
    duration_min: Field<u32>,
    /// Lowest mean rating.
    #[serde(default)]
    #[param(value_type = Option<f64>, minimum = 0.0, maximum = 5.0)]
    min_rating: Field<f64>,
    /// Highest hourly rate, in cents.
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    max_rate_cents: Field<i64>,
    /// Words in the cleaner's name or bio, whatever the case and accents.
    #[param(max_length = 100)]
    q: Option<String>,
    /// Page size, 20 when absent.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Field<u32>,
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

impl SearchParams {
    fn into_request(self) -> Result<SearchCleanersRequest, ApiError> {
        let mut checks = Checks::default();
        let number = "must be a number";
        let lat = checks.required("lat", self.lat, number);
        let lng = checks.required("lng", self.lng, number);
        let starts_at = checks.optional("starts_at", self.starts_at, TIME_EXPECTED);
        let radius_km = checks.optional("radius_km", self.radius_km, number);
        // An unknown service goes on to search, which names it with every field out of
        // range at once.
        let (service, service_kind) = match self.service {
            Field::Valid(kind) => (kind.wire().wire_name().to_owned(), kind.wire()),
            Field::Invalid(sent) => (
                sent.as_str().unwrap_or("?").to_owned(),
                WireServiceKind::Unspecified,
            ),
            Field::Absent => (String::new(), WireServiceKind::Unspecified),
        };
        let duration_min = checks.optional(
            "duration_min",
            self.duration_min,
            "must be a whole number of minutes from 1 to 720",
        );
        let min_rating = checks.optional("min_rating", self.min_rating, number);
        let max_rate_cents = checks.optional(
            "max_rate_cents",
            self.max_rate_cents,
            "must be a positive whole number",
        );
        let limit = checks.optional("limit", self.limit, "must be a whole number from 1 to 100");
        // Zero means "not given" on the wire: say what the caller sent instead.
        for (field, zero) in [
            ("radius_km", radius_km == Some(0.0)),
            ("duration_min", duration_min == Some(0)),
            ("max_rate_cents", max_rate_cents == Some(0)),
            ("limit", limit == Some(0)),
        ] {
            if zero {
                checks.refuse(field, "must be more than 0");
            }
        }
        checks.finish()?;
        Ok(SearchCleanersRequest {
            service_kind: service_kind.into(),
            lat: lat.unwrap_or_default(),
            lng: lng.unwrap_or_default(),
            radius_km: radius_km.unwrap_or_default(),
            service,
            starts_at: starts_at.map(to_timestamp),
            duration_min: duration_min.unwrap_or_default(),
            min_rating: min_rating.unwrap_or_default(),
            max_rate_cents: max_rate_cents.unwrap_or_default(),
            q: self.q.unwrap_or_default(),
            limit: limit.unwrap_or_default(),
            cursor: self.cursor.unwrap_or_default(),
        })
    }
}

/// Finds cleaners near a point, ranked by a documented score, with cursor paging.
#[utoipa::path(
    get,
    path = "/v1/search/cleaners",
    tag = "search",
    params(SearchParams),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "cleaners best first, each with distance_km and score",
            body = CleanerHitPage
        ),
        (status = 429, description = "too many searches by this user (Retry-After)"),
        (
            status = 503,
            description = "search is still loading or down; retry after the Retry-After seconds"
        )
    )
)]
pub(super) async fn search_cleaners(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<CleanerHitPage>, ApiError> {
    let who = Subject::from(&user.caller);
    let mut message = params.into_request()?;
    if message.min_rating == 0.0 {
        message.min_rating = state.flags.number(&SEARCH_MIN_RATING_DEFAULT, who);
    }
    throttle_search(&state, &user).await?;
    let error_rate = state.flags.number(&FAULT_GATEWAY_SEARCH_ERROR_RATE, who);
    if error_rate > 0.0 && rand::random::<f64>() < error_rate {
        return Err(ApiError::new(
            Reason::Unavailable,
            "search is unavailable (a fault injected by fault-gateway-search-error-rate)",
        ));
    }
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
    #[serde(default)]
    #[param(required = true, value_type = String, format = Uuid)]
    address_id: Field<Uuid>,
    /// How many, 10 when absent.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    limit: Field<u32>,
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
    /// Recommendations are switched off for now (the list is empty): the app hides them.
    disabled: bool,
}

/// Recommends cleaners for one of the customer's addresses: who customers with the same
/// cleaners also booked (two cleaners count as booked together once at least 3 other
/// customers booked both), blended with rating, nearness and price.
#[utoipa::path(
    get,
    path = "/v1/recommendations",
    tag = "search",
    params(RecommendationParams),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "cleaners best first, each with a reason",
            body = Recommendations
        ),
        (status = 403, description = "only customers get recommendations"),
        (status = 404, description = "no such address of yours"),
        (status = 429, description = "too many searches by this user (Retry-After)"),
        (
            status = 503,
            description = "search is still loading or down; retry after the Retry-After seconds"
        )
    )
)]
pub(super) async fn recommendations(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<RecommendationParams>,
) -> Result<Json<Recommendations>, ApiError> {
    let mut checks = Checks::default();
    let limit = checks.optional("limit", params.limit, "must be a whole number from 1 to 50");
    if limit == Some(0) {
        checks.refuse("limit", "must be more than 0");
    }
    let address_id = checks.required("address_id", params.address_id, UUID_EXPECTED);
    checks.finish()?;
    let address_id = address_id.map(|id| id.to_string()).unwrap_or_default();
    let limit = limit.unwrap_or_default();
    let who = Subject::from(&user.caller);
    if !state.flags.enabled(&RECOMMENDATIONS_ENABLED, who) {
        return Ok(Json(Recommendations {
            items: Vec::new(),
            disabled: true,
        }));
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
        disabled: false,
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
    #[schema(required = true, value_type = String, format = Uuid)]
    address_id: Field<Uuid>,
    #[serde(default)]
    #[schema(required = true, value_type = ServiceKind)]
    service: Field<ServiceKind>,
    /// The cleaner whose pace and rate count; the default rate without one.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    cleaner_id: Field<Uuid>,
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
#[utoipa::path(
    post,
    path = "/v1/quotes",
    tag = "search",
    request_body = QuoteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the estimate and its price", body = QuoteResponse),
        (status = 403, description = "only customers get quotes"),
        (status = 404, description = "no such address of yours, or no such cleaner"),
        (status = 503, description = "search is down; retry after the Retry-After seconds")
    )
)]
pub(super) async fn quote(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<QuoteBody>,
) -> Result<Json<QuoteResponse>, ApiError> {
    let mut checks = Checks::default();
    let address_id = checks.required("address_id", body.address_id, UUID_EXPECTED);
    let service = checks.required("service", body.service, SERVICE_EXPECTED);
    let cleaner_id = checks.optional("cleaner_id", body.cleaner_id, UUID_EXPECTED);
    checks.finish()?;
    let address_id = address_id.map(|id| id.to_string()).unwrap_or_default();
    let service = service.map(ServiceKind::wire).unwrap_or_default();
    let home = home_of(&state, &user, address_id).await?;
    let estimate = state
        .upstreams
        .search
        .clone()
        .estimate_duration(user.request(EstimateDurationRequest {
            service: service.wire_name().to_owned(),
            service_kind: service.into(),
            size_m2: home.size_m2,
            bedrooms: home.bedrooms,
            bathrooms: home.bathrooms,
            has_pets: home.has_pets,
            cleaner_id: cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
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
