//! The OpenAPI 3.1 document, generated from the routes themselves (each handler carries
//! its `#[utoipa::path]`), and the docs page that renders it with locally served assets.

use spruce_domain::text::{allowed_class, is_forbidden_character, is_forbidden_in_line};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, KnownFormat, Object, Ref, RefOr, ResponseBuilder, Schema, SchemaFormat,
        header::HeaderBuilder,
        path::Operation,
        schema::{ArrayItems, ObjectBuilder, SchemaType, Type},
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

/// A string schema taking one of `values` (the names a server-side list reads, so the
/// document and the server never disagree).
pub(crate) fn string_enum<'a>(
    description: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// Declares on every text a client sends what the gateway refuses in it (control and
/// invisible format characters, `spruce_domain::text`), as a `pattern` generated from the
/// same rule, so that a client can check before it sends and the document never allows
/// what the server refuses. A string field the routes mark `format = "line"` (a name, a
/// street) also refuses line breaks and must not be blank. Strings with a format of their
/// own (uuid, date-time, email), an enum or a pattern already are left as they are.
pub(crate) struct TextInputs;

/// The custom format marking one line of text; replaced by its pattern.
const LINE: &str = "line";

impl TextInputs {
    fn patterns() -> &'static (String, String) {
        static PATTERNS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        PATTERNS.get_or_init(|| {
            let text = allowed_class(is_forbidden_character);
            let line = allowed_class(is_forbidden_in_line);
            let refused_or_space = format!("{}\\s]", &line[..line.len() - 1]);
            (
                format!("^{text}*$"),
                format!("^{line}*{refused_or_space}{line}*$"),
            )
        })
    }

    fn string(object: &mut Object) {
        let (text, line) = Self::patterns();
        if !matches!(object.schema_type, SchemaType::Type(Type::String))
            || object.enum_values.is_some()
            || object.pattern.is_some()
        {
            return;
        }
        match &object.format {
            Some(SchemaFormat::Custom(format)) if format == LINE => {
                object.format = None;
                object.pattern = Some(line.clone());
            }
            None | Some(SchemaFormat::KnownFormat(KnownFormat::Password)) => {
                object.pattern = Some(text.clone());
            }
            Some(_) => {}
        }
    }

    fn schema(schema: &mut Schema) {
        match schema {
            Schema::Object(object) => {
                Self::string(object);
                for property in object.properties.values_mut() {
                    if let RefOr::T(property) = property {
                        Self::schema(property);
                    }
                }
            }
            Schema::Array(array) => {
                if let ArrayItems::RefOrSchema(items) = &mut array.items
                    && let RefOr::T(items) = items.as_mut()
                {
                    Self::schema(items);
                }
            }
            Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|item| {
                if let RefOr::T(item) = item {
                    Self::schema(item);
                }
            }),
            Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(|item| {
                if let RefOr::T(item) = item {
                    Self::schema(item);
                }
            }),
            _ => {}
        }
    }

    /// The components a request body names, and those they name, transitively.
    fn request_components(openapi: &utoipa::openapi::OpenApi) -> Vec<String> {
        fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(fields) => {
                    if let Some(serde_json::Value::String(target)) = fields.get("$ref")
                        && let Some(name) = target.strip_prefix("#/components/schemas/")
                        && !found.iter().any(|known| known == name)
                    {
                        found.push(name.to_owned());
                    }
                    fields.values().for_each(|field| refs(field, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        for item in openapi.paths.paths.values() {
            for operation in [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                if let Ok(body) = serde_json::to_value(&operation.request_body) {
                    refs(&body, &mut found);
                }
            }
        }
        let schemas = openapi.components.as_ref().map(|c| &c.schemas);
        let mut next = 0;
        while next < found.len() {
            if let Some(RefOr::T(schema)) = schemas.and_then(|s| s.get(&found[next]))
                && let Ok(value) = serde_json::to_value(schema)
            {
                refs(&value, &mut found);
            }
            next += 1;
        }
        found
    }
}

impl Modify for TextInputs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let requested = Self::request_components(openapi);
        if let Some(components) = openapi.components.as_mut() {
            for name in &requested {
                if let Some(RefOr::T(schema)) = components.schemas.get_mut(name) {
                    Self::schema(schema);
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && let Some(RefOr::T(schema)) = &mut parameter.schema
                    {
                        Self::schema(schema);
                    }
                }
                if let Some(RefOr::T(body)) = &mut operation.request_body {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content
                            && let Some(RefOr::T(schema)) = &mut content.schema
                        {
                            Self::schema(schema);
                        }
                    }
                }
            }
        }
    }
}
