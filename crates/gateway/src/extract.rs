//! Extractors whose rejections are problem responses: JSON bodies (400 when unreadable, 413
//! when too large, 422 when the shape is wrong) and query strings (422), both refusing
//! control characters in any text with 422 naming the field; and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::http::StatusCode;
use axum::{
    extract::{
        ConnectInfo, FromRef, FromRequest, FromRequestParts, Query, Request,
        rejection::JsonRejection,
    },
    http::request::Parts,
};
use serde::de::DeserializeOwned;
use spruce_platform::{
    reason::Reason,
    text::{CONTROL_CHARACTER_MESSAGE, is_forbidden_control},
};

use crate::error::ApiError;

/// A JSON body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::malformed(
                    "expected a JSON body with Content-Type: application/json",
                ));
            }
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    Reason::PayloadTooLarge,
                    format!("the body is larger than {BODY_LIMIT_BYTES} bytes"),
                ));
            }
            Err(rejection) => {
                return Err(ApiError::malformed(format!(
                    "the body is not valid JSON: {}",
                    rejection.body_text()
                )));
            }
        };
        if let Some(field) = control_character_at(&value) {
            return Err(ApiError::invalid_field(&field, CONTROL_CHARACTER_MESSAGE));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|error| ApiError::invalid_field("body", error.to_string()))
    }
}

/// The largest request body the API reads; every body it takes is a few hundred bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Returns the path (`line1`, `weekly_availability[0].start`) of the first string in `value`
/// holding a forbidden control character, keys included.
fn control_character_at(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        let tainted = |text: &str| text.chars().any(is_forbidden_control);
        match value {
            serde_json::Value::String(text) if tainted(text) => {
                Some(if path.is_empty() { "body" } else { path }.to_owned())
            }
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, &format!("{path}[{index}]"))),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, field)| {
                let nested = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if tainted(key) {
                    return Some(if path.is_empty() {
                        "body".to_owned()
                    } else {
                        path.to_owned()
                    });
                }
                walk(field, &nested)
            }),
            _ => None,
        }
    }
    walk(value, "")
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

/// Reads an optional JSON body: an empty (or blank) body is `T::default()`, malformed JSON a
/// 400 and a wrong shape a 422, as with [`ApiJson`].
///
/// # Errors
/// The client's error, as above.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => ApiError::invalid_field("body", error.to_string()),
        _ => ApiError::malformed(format!("the body is not valid JSON: {error}")),
    })
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_field("query", rejection.body_text()))?;
        let tainted = pairs
            .iter()
            .find(|(_, value)| value.chars().any(is_forbidden_control));
        if let Some((name, _)) = tainted {
            return Err(ApiError::invalid_field(name, CONTROL_CHARACTER_MESSAGE));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::invalid_field("query", rejection.body_text()))
    }
}

/// Whether the first `X-Forwarded-For` entry names the client (behind a trusted ingress).
#[derive(Debug, Clone, Copy)]
pub struct TrustForwardedFor(pub bool);

/// The client's IP address: the TCP peer, or the first `X-Forwarded-For` entry when the
/// gateway runs behind an ingress it trusts.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl<S> FromRequestParts<S> for ClientAddress
where
    TrustForwardedFor: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if TrustForwardedFor::from_ref(state).0 {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.trim().parse::<IpAddr>().ok());
            if let Some(address) = forwarded {
                return Ok(ClientAddress(address));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(address)| {
                address.ip()
            });
        Ok(ClientAddress(peer))
    }
}
