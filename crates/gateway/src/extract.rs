//! Extractors whose rejections are problem responses: JSON bodies (400 when unreadable, 413
//! when too large, 422 when the shape is wrong) and query strings (422), both refusing
//! control and invisible format characters in any text with 422 naming the field; and the
//! client's address.

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
use spruce_domain::{
    reason::Reason,
    text::{FORBIDDEN_CHARACTER_MESSAGE, is_forbidden_character},
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
        typed(value).map(ApiJson)
    }
}

/// Reads a JSON request body's `value` as `T`: it must be an object, hold no forbidden
/// character in any text (keys included), and fit `T`'s shape (422 otherwise, naming the
/// field where it can).
fn typed<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    if let Some(field) = control_character_at(&value) {
        return Err(ApiError::invalid_field(&field, FORBIDDEN_CHARACTER_MESSAGE));
    }
    whole_numbers(&mut value);
    serde_json::from_value(value)
        .map_err(|error| ApiError::invalid_field("body", error.to_string()))
}

/// Writes each number with nothing after the point (`5.0`) as the integer it is: JSON, and
/// the document's `integer`, make no difference between them.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Exact: a whole number below 2^53 in magnitude.
                #[allow(clippy::cast_possible_truncation)]
                let whole = float as i64;
                *value = serde_json::Value::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// The largest request body the API reads; every body it takes is a few hundred bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Returns the path (`line1`, `weekly_availability[0].start`) of the first string in `value`
/// holding a forbidden control character, keys included.
fn control_character_at(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        let tainted = |text: &str| text.chars().any(is_forbidden_character);
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

/// The `Idempotency-Key` header of a request a client may repeat safely (a booking): 1 to
/// 255 visible ASCII characters, spaces allowed inside (the pattern `create_booking`'s
/// document gives); 400 when it is missing or unusable.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let visible = |byte: &u8| byte.is_ascii_graphic();
        let usable = (1..=255).contains(&key.len())
            && key.bytes().all(|byte| visible(&byte) || byte == b' ')
            && key.bytes().next().is_some_and(|byte| visible(&byte))
            && key.bytes().last().is_some_and(|byte| visible(&byte));
        if usable {
            Ok(IdempotencyKey(key.to_owned()))
        } else {
            Err(ApiError::malformed(
                "the Idempotency-Key header is required: 1 to 255 visible characters (a UUID, say)",
            ))
        }
    }
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

/// Reads an optional JSON body: an empty (or blank) body or `null` is `T::default()`,
/// malformed JSON a 400 and a wrong shape a 422, as with [`ApiJson`].
///
/// # Errors
/// The client's error, as above.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::malformed(format!("the body is not valid JSON: {error}")))?;
    typed(value)
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
            .find(|(_, value)| value.chars().any(is_forbidden_character));
        if let Some((name, _)) = tainted {
            return Err(ApiError::invalid_field(name, FORBIDDEN_CHARACTER_MESSAGE));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::invalid_field("query", rejection.body_text()))
    }
}

/// How many proxies in front of the gateway append to `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct TrustedProxies(pub u32);

/// The client's IP address: the TCP peer, or, behind `n` trusted proxies, the
/// `X-Forwarded-For` entry `n` from the right (see [`client_from_forwarded_for`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// Returns the client's address in an `X-Forwarded-For` value written behind
/// `trusted_proxies` proxies: each appends the address it saw, so the last `trusted_proxies`
/// entries are theirs and the one they saw first is the client; the entries before it are
/// whatever the client sent. With fewer entries than proxies, the first is the best known.
/// `None` when no proxy is trusted, or the entry is not an address.
pub fn client_from_forwarded_for(header: &str, trusted_proxies: u32) -> Option<IpAddr> {
    let skip = usize::try_from(trusted_proxies).ok()?.checked_sub(1)?;
    let entries: Vec<&str> = header.split(',').map(str::trim).collect();
    let index = entries.len().saturating_sub(1).saturating_sub(skip);
    entries.get(index)?.parse().ok()
}

impl<S> FromRequestParts<S> for ClientAddress
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let TrustedProxies(trusted_proxies) = TrustedProxies::from_ref(state);
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(address) = client_from_forwarded_for(&forwarded, trusted_proxies) {
            return Ok(ClientAddress(address));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_read_from_the_right_past_the_trusted_proxies() {
        let client = |header: &str, proxies| {
            client_from_forwarded_for(header, proxies).map(|address| address.to_string())
        };
        // The client wrote 6.6.6.6 itself; the ingress appended the address it saw.
        let header = "6.6.6.6, 203.0.113.7";
        assert_eq!(client(header, 1).as_deref(), Some("203.0.113.7"));
        // Behind a load balancer and an ingress: the balancer's own entry is skipped.
        assert_eq!(
            client("6.6.6.6, 203.0.113.7, 10.0.0.5", 2).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(client("203.0.113.7", 3).as_deref(), Some("203.0.113.7"));
        // No proxy trusted: the header means nothing.
        assert_eq!(client(header, 0), None);
        assert_eq!(client("", 1), None);
        assert_eq!(client("6.6.6.6, not-an-address", 1), None);
    }
}
