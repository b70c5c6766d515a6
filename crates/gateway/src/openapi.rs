//! The OpenAPI 3.1 document, generated from the routes themselves (each handler carries
//! its `#[utoipa::path]`), and the docs page that renders it with locally served assets.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};

pub use crate::error::Problem;
pub use spruce_platform::reason::FieldError;

/// The document's fixed parts; paths and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Spruce API",
        version = "1",
        description = "The REST API of the Spruce home-cleaning marketplace for the mobile apps. \
            Sign up or log in (`/v1/auth/*`) to get an access token, send it as \
            `Authorization: Bearer <token>`, refresh it with the refresh token before it expires \
            (15 minutes). JSON in and out, snake_case, RFC 3339 times in UTC, money in integer \
            cents with a currency. Lists are paged with `limit` and an opaque `cursor` (pass back \
            `next_cursor`). Errors are RFC 9457 problems (`application/problem+json`). \
            \n\nTo book: `POST /v1/me/addresses` (customer), pick a cleaner \
            (`GET /v1/cleaners/{id}`), `POST /v1/bookings` with an `Idempotency-Key` header and \
            a payment token (`tok_visa` in development; `tok_chargeDeclined` shows a 402). The \
            cleaner then confirms, starts and completes it; the customer reviews it."
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "me", description = "The signed-in user"),
        (name = "cleaners", description = "Cleaner profiles and reviews"),
        (name = "bookings", description = "Booking, the state machine, reviews")
    )
)]
pub struct ApiDoc;

/// Declares the bearer access token every protected operation names as `bearer`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
