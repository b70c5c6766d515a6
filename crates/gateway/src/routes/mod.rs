//! The REST routes under `/v1` and the state they share.

mod account;
mod addresses;
mod admin;
mod auth;
mod bookings;
mod cleaners;
mod files;
mod me;
mod reviews;
mod search;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    middleware,
};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use spruce_domain::reason::Reason;
use spruce_platform::flags::Flags;
use spruce_platform::{auth::TokenVerifier, identity::Role, time::from_timestamp};

use utoipa::{Modify as _, OpenApi as _};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    clients::Upstreams,
    error::ApiError,
    extract::{BODY_LIMIT_BYTES, TrustedProxies},
    openapi::{ApiDoc, ProblemResponses, TextInputs},
    revocations::Revocations,
    telemetry::trace_request,
    throttle::Throttle,
    uploads::Uploads,
};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub verifier: TokenVerifier,
    pub upstreams: Upstreams,
    pub throttle: Throttle,
    pub revocations: Revocations,
    pub trusted_proxies: u32,
    pub flags: Flags,
    pub uploads: Uploads,
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        TrustedProxies(state.trusted_proxies)
    }
}

impl FromRef<AppState> for Revocations {
    fn from_ref(state: &AppState) -> Self {
        state.revocations.clone()
    }
}

impl FromRef<AppState> for Throttle {
    fn from_ref(state: &AppState) -> Self {
        state.throttle.clone()
    }
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Returns the `/v1` API and its OpenAPI document, both built from the same route list,
/// so every route is documented.
pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, document) = routed();
    // The layers come last so that they wrap the fallbacks too: a 404 or 405 gets its span
    // and trace_id like any routed answer.
    let router = router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(Reason::MethodNotAllowed, "this method is not allowed here")
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(trace_request))
        .with_state(state);
    (router, document)
}

/// The OpenAPI document of the API, as `/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    routed().1
}

/// Every route, and the document generated from them (deprecated routes included: they
/// are served, and documented as deprecated, for a release).
#[allow(deprecated)]
fn routed() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::signup))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(account::verify_email))
        .routes(routes!(account::resend_verification))
        .routes(routes!(account::request_password_reset))
        .routes(routes!(account::confirm_password_reset))
        .routes(routes!(account::change_password))
        .routes(routes!(account::list_sessions))
        .routes(routes!(account::end_session))
        .routes(routes!(account::export))
        .routes(routes!(me::me, account::delete_account))
        .routes(routes!(me::notifications))
        .routes(routes!(me::register_device))
        .routes(routes!(cleaners::upsert_profile))
        .routes(routes!(files::put_photo, files::delete_photo))
        .routes(routes!(files::put_document))
        .routes(routes!(files::get_document))
        .routes(routes!(files::get_file))
        .routes(routes!(
            addresses::create_address,
            addresses::list_addresses
        ))
        .routes(routes!(cleaners::get_cleaner))
        .routes(routes!(reviews::list_reviews))
        .routes(routes!(bookings::create_booking, bookings::list_bookings))
        .routes(routes!(bookings::get_booking))
        .routes(routes!(reviews::create_review))
        .routes(routes!(bookings::confirm_booking))
        .routes(routes!(bookings::start_booking))
        .routes(routes!(bookings::complete_booking))
        .routes(routes!(bookings::cancel_booking))
        .routes(routes!(bookings::transition_booking))
        .routes(routes!(search::search_cleaners))
        .routes(routes!(search::recommendations))
        .routes(routes!(search::quote))
        .routes(routes!(admin::list_jobs))
        .routes(routes!(admin::run_job))
        .routes(routes!(admin::list_runs))
        .split_for_parts();
    ProblemResponses.modify(&mut document);
    TextInputs.modify(&mut document);
    (router, document)
}

/// A user as the mobile apps see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserBody {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Email)]
    pub email: String,
    pub full_name: String,
    pub role: &'static str,
    /// The IANA zone the user reads times in.
    pub timezone: String,
    /// Whether the user entered the code (or opened the link) emailed at signup. Until
    /// then a customer cannot book, and a cleaner is neither found nor booked.
    pub email_verified: bool,
    #[schema(format = DateTime)]
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
            timezone: user.timezone,
            email_verified: user.email_verified,
        }
    }
}

/// Formats a protobuf timestamp as RFC 3339 in UTC.
pub fn rfc3339(timestamp: &prost_types::Timestamp) -> Option<String> {
    from_timestamp(timestamp).map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The page size a list asks core or the scheduler for: 0 (their default, 20) when absent.
///
/// # Errors
/// 422 naming `limit` when it is not from 1 to 100.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(0),
        Some(limit @ 1..=100) => Ok(limit),
        Some(_) => Err(ApiError::invalid_field("limit", "must be from 1 to 100")),
    }
}

/// `limit` and `cursor` of a paginated list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Declares `$name`, one page of a list of `$item`s and the cursor of the next, as a type of
/// its own, so the document names the page and its items (a generated client reads
/// `BookingPage.items` as a list of `Booking`).
macro_rules! page {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub(super) struct $name {
            items: Vec<$item>,
            /// `cursor` for the next page; absent on the last page.
            next_cursor: Option<String>,
        }

        impl $name {
            /// Wraps items and the wire's next cursor (empty on the last page).
            pub(super) fn new(items: Vec<$item>, next_cursor: String) -> Self {
                $name {
                    items,
                    next_cursor: Some(next_cursor).filter(|cursor| !cursor.is_empty()),
                }
            }
        }
    };
}
pub(crate) use page;
