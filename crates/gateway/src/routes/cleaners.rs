//! `/v1/me/cleaner-profile` and `/v1/cleaners/{id}`.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use spruce_proto::{
    core::v1::{
        AvailabilityWindow, CleanerProfile, GeoPoint, GetCleanerRequest,
        ServiceKind as WireServiceKind, UpsertCleanerProfileRequest,
    },
    services_or_strings,
};

use super::AppState;
use crate::{auth::AuthUser, error::ApiError, extract::ApiJson, uploads::Uploads};

/// A point on the map.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Point {
    #[schema(minimum = -90.0, maximum = 90.0)]
    lat: f64,
    #[schema(minimum = -180.0, maximum = 180.0)]
    lng: f64,
}

/// A weekly window in the cleaner's time zone.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Window {
    #[serde(default)]
    #[schema(required = true, value_type = Weekday)]
    weekday: String,
    /// "HH:MM".
    #[serde(default)]
    #[schema(required = true, pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    start: String,
    /// "HH:MM" (up to "24:00"), after `start`.
    #[serde(default)]
    #[schema(required = true, pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    end: String,
}

/// A day of the week in the document: the names core reads (`spruce_platform::time::WEEKDAYS`),
/// from the one list.
pub(super) struct Weekday;

impl utoipa::PartialSchema for Weekday {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum("A day of the week.", spruce_platform::time::WEEKDAYS)
    }
}

impl utoipa::ToSchema for Weekday {
    fn name() -> std::borrow::Cow<'static, str> {
        "Weekday".into()
    }
}

/// `PUT /v1/me/cleaner-profile` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CleanerProfileRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileBody {
    /// Line breaks and tabs are the only control characters allowed; format characters
    /// (bidirectional overrides, zero-width ones) are refused.
    #[serde(default)]
    #[schema(max_length = 2000)]
    bio: String,
    #[serde(default)]
    #[schema(required = true, minimum = 500, maximum = 50000)]
    hourly_rate_cents: i64,
    /// Each at most once.
    #[serde(default)]
    #[schema(required = true, value_type = Vec<crate::routes::bookings::ServiceKind>, min_items = 1)]
    services: Vec<String>,
    #[schema(required = true, value_type = Point)]
    home: Option<Point>,
    #[serde(default)]
    #[schema(required = true, minimum = 1.0, maximum = 100.0)]
    service_radius_km: f64,
    /// Windows of one day must not overlap.
    #[serde(default)]
    #[schema(required = true)]
    weekly_availability: Vec<Window>,
    /// An IANA time zone, e.g. "Europe/Berlin".
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    timezone: String,
}

/// A cleaner's profile; `home` only for the cleaner themselves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CleanerProfile)]
pub(crate) struct ProfileResponse {
    #[schema(format = Uuid)]
    id: String,
    full_name: String,
    bio: String,
    hourly_rate_cents: i64,
    currency: String,
    services: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home: Option<Point>,
    service_radius_km: f64,
    weekly_availability: Vec<Window>,
    timezone: String,
    rating_avg: f64,
    rating_count: u32,
    /// Where the app reads the profile photo: a URL of the gateway, or a pre-signed S3 URL
    /// that expires (fetch the profile again for a fresh one). Absent without a photo.
    photo_url: Option<String>,
}

impl ProfileResponse {
    /// The profile as the app sees it, its photo's key made a URL that reads it.
    pub(super) async fn with_photo_url(
        profile: CleanerProfile,
        uploads: &Uploads,
    ) -> Result<ProfileResponse, ApiError> {
        let photo_url = match profile.photo_key.as_str() {
            "" => None,
            key => Some(uploads.photo_url(key).await?),
        };
        Ok(ProfileResponse {
            photo_url,
            ..profile.into()
        })
    }
}

impl From<CleanerProfile> for ProfileResponse {
    fn from(profile: CleanerProfile) -> Self {
        let services = services_or_strings(&profile.service_kinds, &profile.services);
        ProfileResponse {
            id: profile.cleaner_id,
            full_name: profile.full_name,
            bio: profile.bio,
            hourly_rate_cents: profile.hourly_rate_cents,
            currency: profile.currency,
            services,
            home: profile.home.map(|home| Point {
                lat: home.lat,
                lng: home.lng,
            }),
            service_radius_km: profile.service_radius_km,
            weekly_availability: profile
                .weekly_availability
                .into_iter()
                .map(|window| Window {
                    weekday: window.weekday,
                    start: window.start,
                    end: window.end,
                })
                .collect(),
            timezone: profile.timezone,
            rating_avg: profile.rating_avg,
            rating_count: profile.rating_count,
            photo_url: None,
        }
    }
}

/// Creates or replaces the signed-in cleaner's profile.
#[utoipa::path(
    put,
    path = "/v1/me/cleaner-profile",
    tag = "cleaners",
    request_body = ProfileBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the profile as saved", body = ProfileResponse),
        (status = 403, description = "the role may not do this")
    )
)]
pub(super) async fn upsert_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<ProfileResponse>, ApiError> {
    let service_kinds = body
        .services
        .iter()
        .map(|service| WireServiceKind::from_wire_name(service).into())
        .collect();
    let message = UpsertCleanerProfileRequest {
        bio: body.bio,
        hourly_rate_cents: body.hourly_rate_cents,
        services: body.services,
        service_kinds,
        home: body.home.map(|home| GeoPoint {
            lat: home.lat,
            lng: home.lng,
        }),
        service_radius_km: body.service_radius_km,
        weekly_availability: body
            .weekly_availability
            .into_iter()
            .map(|window| AvailabilityWindow {
                weekday: window.weekday,
                start: window.start,
                end: window.end,
            })
            .collect(),
        timezone: body.timezone,
    };
    let profile = state
        .upstreams
        .cleaners
        .clone()
        .upsert_cleaner_profile(user.request(message))
        .await?;
    Ok(Json(
        ProfileResponse::with_photo_url(profile.into_inner(), &state.uploads).await?,
    ))
}

/// Returns a cleaner's public profile.
#[utoipa::path(
    get,
    path = "/v1/cleaners/{id}",
    tag = "cleaners",
    params(("id" = Uuid, Path, description = "the cleaner's user id")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "the public profile (home only for the cleaner)",
            body = ProfileResponse
        ),
        (status = 404, description = "no such resource (or not yours)")
    )
)]
pub(super) async fn get_cleaner(
    State(state): State<AppState>,
    user: AuthUser,
    Path(cleaner_id): Path<String>,
) -> Result<Json<ProfileResponse>, ApiError> {
    let message = GetCleanerRequest { cleaner_id };
    let profile = state
        .upstreams
        .cleaners
        .clone()
        .get_cleaner(user.request(message))
        .await?;
    Ok(Json(
        ProfileResponse::with_photo_url(profile.into_inner(), &state.uploads).await?,
    ))
}
