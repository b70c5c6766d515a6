//! `/v1/me/cleaner-profile` and `/v1/cleaners/{id}`.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use spruce_proto::core::v1::{
    AvailabilityWindow, CleanerProfile, GeoPoint, GetCleanerRequest, UpsertCleanerProfileRequest,
};

use super::AppState;
use crate::{auth::AuthUser, error::ApiError, extract::ApiJson};

/// A point on the map.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
pub(super) struct Point {
    lat: f64,
    lng: f64,
}

/// A weekly window in the cleaner's time zone.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub(super) struct Window {
    /// "monday" .. "sunday".
    #[serde(default)]
    weekday: String,
    /// "HH:MM".
    #[serde(default)]
    start: String,
    /// "HH:MM", after `start`.
    #[serde(default)]
    end: String,
}

/// `PUT /v1/me/cleaner-profile` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct ProfileBody {
    #[serde(default)]
    bio: String,
    #[serde(default)]
    hourly_rate_cents: i64,
    #[serde(default)]
    services: Vec<String>,
    home: Option<Point>,
    #[serde(default)]
    service_radius_km: f64,
    #[serde(default)]
    weekly_availability: Vec<Window>,
    #[serde(default)]
    timezone: String,
}

/// A cleaner's profile; `home` only for the cleaner themselves.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ProfileResponse {
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
}

impl From<CleanerProfile> for ProfileResponse {
    fn from(profile: CleanerProfile) -> Self {
        ProfileResponse {
            id: profile.cleaner_id,
            full_name: profile.full_name,
            bio: profile.bio,
            hourly_rate_cents: profile.hourly_rate_cents,
            currency: profile.currency,
            services: profile.services,
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
        }
    }
}

/// Creates or replaces the signed-in cleaner's profile.
#[utoipa::path(put, path = "/v1/me/cleaner-profile", tag = "cleaners", request_body = ProfileBody, security(("bearer" = [])), responses((status = 200, description = "the profile as saved", body = ProfileResponse), (status = 403, description = "the role may not do this")))]
pub(super) async fn upsert_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<ProfileResponse>, ApiError> {
    let message = UpsertCleanerProfileRequest {
        bio: body.bio,
        hourly_rate_cents: body.hourly_rate_cents,
        services: body.services,
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
    Ok(Json(profile.into_inner().into()))
}

/// Returns a cleaner's public profile.
#[utoipa::path(get, path = "/v1/cleaners/{id}", tag = "cleaners", params(("id" = String, Path, description = "the cleaner's user id")), security(("bearer" = [])), responses((status = 200, description = "the public profile (home only for the cleaner)", body = ProfileResponse), (status = 404, description = "no such resource (or not yours)")))]
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
    Ok(Json(profile.into_inner().into()))
}
