//! The authenticated caller, from a verified `Authorization: Bearer` access token. The token
//! itself travels on to the services behind the gateway, which verify it again.

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts},
};
use spruce_platform::{
    auth::{TokenError, TokenVerifier, bearer_token},
    identity::Caller,
};

use crate::{error::ApiError, revocations::Revocations};

/// A request whose access token verified; handlers taking it are for signed-in users only.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub caller: Caller,
    token: String,
}

impl AuthUser {
    /// Wraps `message` in an upstream request carrying the trace context and this user's
    /// access token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        spruce_platform::grpc::request_with_token(message, &self.token)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    TokenVerifier: FromRef<S>,
    Revocations: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("an access token is required"))?;
        let token = bearer_token(Some(header)).ok_or_else(|| {
            ApiError::unauthenticated("expected Authorization: Bearer <access token>")
        })?;
        let verifier = TokenVerifier::from_ref(state);
        let caller = verifier.verify_user(token).map_err(|error| match error {
            TokenError::Expired => {
                ApiError::unauthenticated("the access token has expired; refresh it")
            }
            TokenError::Invalid => ApiError::unauthenticated("the access token is invalid"),
        })?;
        // A deleted account's tokens stop at once, not when they expire.
        if Revocations::from_ref(state)
            .is_revoked(caller.user_id)
            .await
        {
            return Err(ApiError::unauthenticated("the account no longer exists"));
        }
        tracing::Span::current().record("user_id", tracing::field::display(caller.user_id));
        Ok(AuthUser {
            caller,
            token: token.to_owned(),
        })
    }
}

/// A request without an `Authorization` header is anonymous (`None`); one with a header is
/// verified like any other, and refused when the token is bad.
impl<S> OptionalFromRequestParts<S> for AuthUser
where
    TokenVerifier: FromRef<S>,
    Revocations: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}
