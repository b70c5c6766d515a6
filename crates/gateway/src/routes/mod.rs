//! The REST routes under `/v1` and the state they share.

mod addresses;
mod auth;
mod bookings;
mod cleaners;
mod me;
mod reviews;

use axum::{
    Router,
    extract::FromRef,
    middleware,
    routing::{get, post, put},
};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use spruce_platform::{auth::TokenVerifier, identity::Role, time::from_timestamp};

use crate::{
    clients::Upstreams, error::ApiError, extract::TrustForwardedFor, telemetry::trace_request,
    throttle::LoginThrottle,
};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub verifier: TokenVerifier,
    pub upstreams: Upstreams,
    pub login_throttle: LoginThrottle,
    pub trust_forwarded_for: bool,
}

impl FromRef<AppState> for TrustForwardedFor {
    fn from_ref(state: &AppState) -> Self {
        TrustForwardedFor(state.trust_forwarded_for)
    }
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Returns the `/v1` API.
pub fn api(state: AppState) -> Router {
    Router::new()
        .route("/v1/auth/signup", post(auth::signup))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/me", get(me::me))
        .route("/v1/me/notifications", get(me::notifications))
        .route("/v1/me/cleaner-profile", put(cleaners::upsert_profile))
        .route(
            "/v1/me/addresses",
            post(addresses::create_address).get(addresses::list_addresses),
        )
        .route("/v1/cleaners/{id}", get(cleaners::get_cleaner))
        .route(
            "/v1/bookings",
            post(bookings::create_booking).get(bookings::list_bookings),
        )
        .route("/v1/bookings/{id}", get(bookings::get_booking))
        .route("/v1/bookings/{id}/review", post(reviews::create_review))
        .route(
            "/v1/bookings/{id}/{action}",
            post(bookings::transition_booking),
        )
        .route("/v1/cleaners/{id}/reviews", get(reviews::list_reviews))
        .route_layer(middleware::from_fn(trace_request))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )
        })
        .with_state(state)
}

/// A user as the mobile apps see it.
#[derive(Debug, Serialize)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub role: &'static str,
    pub created_at: Option<String>,
}

impl From<spruce_proto::core::v1::User> for UserBody {
    fn from(user: spruce_proto::core::v1::User) -> Self {
        UserBody {
            role: Role::from_proto(user.role).map_or("unknown", Role::as_str),
            created_at: user.created_at.as_ref().and_then(rfc3339),
            id: user.id,
            email: user.email,
            full_name: user.full_name,
        }
    }
}

/// Formats a protobuf timestamp as RFC 3339 in UTC.
pub fn rfc3339(timestamp: &prost_types::Timestamp) -> Option<String> {
    from_timestamp(timestamp).map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// `limit` and `cursor` of a paginated list.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One page of a list and the cursor of the next (absent on the last page).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Wraps items and the wire's next cursor (empty on the last page).
    pub fn new(items: Vec<T>, next_cursor: String) -> Self {
        Page {
            items,
            next_cursor: Some(next_cursor).filter(|cursor| !cursor.is_empty()),
        }
    }
}
