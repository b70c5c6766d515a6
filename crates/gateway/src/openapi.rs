//! The OpenAPI 3.1 document, generated from the routes themselves (each handler carries
//! its `#[utoipa::path]`), and the docs page that renders it with locally served assets.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, Ref, RefOr, ResponseBuilder,
        header::HeaderBuilder,
        path::Operation,
        schema::{ObjectBuilder, Type},
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};

pub use crate::error::Problem;
pub use spruce_domain::reason::FieldError;

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
            \n\nTo book: `POST /v1/me/addresses` (customer), find a cleaner \
            (`GET /v1/search/cleaners`, then `GET /v1/cleaners/{id}`), `POST /v1/bookings` with an `Idempotency-Key` header and \
            a payment token (`tok_visa` in development; `tok_chargeDeclined` shows a 402). The \
            cleaner then confirms, starts and completes it; the customer reviews it."
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "me", description = "The signed-in user"),
        (name = "cleaners", description = "Cleaner profiles and reviews"),
        (name = "bookings", description = "Booking, the state machine, reviews"),
        (name = "search", description = "Finding cleaners"),
        (name = "admin", description = "Operators: the scheduler's clock jobs (admins only)")
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

/// Declares the problem answers once for every operation: what any operation may answer
/// (503, and 400/413/422 with a body or parameters, 401 with a token) is added where the
/// route did not describe it itself, and every 4xx/5xx answer gets the `Problem` body as
/// `application/problem+json` (with `Retry-After` on 429 and 503). Routes name only the
/// answers particular to them (402, 403, 404, 409, 429), by status and description. Applied
/// to the finished document (the routes' paths are added after `ApiDoc`'s own modifiers run).
pub(crate) struct ProblemResponses;

impl ProblemResponses {
    fn add_common(operation: &mut Operation) {
        let has_body = operation.request_body.is_some();
        let has_parameters = operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
        let secured = operation
            .security
            .as_ref()
            .is_some_and(|requirements| !requirements.is_empty());
        let common = [
            (has_body, "400", "malformed body (not JSON)"),
            (
                has_body || has_parameters,
                "422",
                "invalid input, with errors[] naming each field",
            ),
            (has_body, "413", "the body is larger than 64 KiB"),
            (secured, "401", "no, bad or expired access token"),
            (true, "503", "a service is down or busy (Retry-After)"),
        ];
        for (applies, status, description) in common {
            if applies && !operation.responses.responses.contains_key(status) {
                operation.responses.responses.insert(
                    status.to_owned(),
                    RefOr::T(ResponseBuilder::new().description(description).build()),
                );
            }
        }
    }

    fn add_problem_bodies(operation: &mut Operation) {
        for (status, response) in &mut operation.responses.responses {
            let RefOr::T(response) = response else {
                continue;
            };
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            response.content.insert(
                "application/problem+json".to_owned(),
                RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
            );
            if status == "429" || status == "503" {
                let seconds = ObjectBuilder::new().schema_type(Type::Integer).build();
                response.headers.insert(
                    "Retry-After".to_owned(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(seconds))
                            .description(Some("seconds to wait before trying again"))
                            .build(),
                    ),
                );
            }
        }
    }
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                Self::add_common(operation);
                Self::add_problem_bodies(operation);
            }
        }
    }
}
