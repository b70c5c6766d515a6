//! Access-token claims and their verification. Core signs tokens with its Ed25519 private
//! key; the gateway holds only the public key and verifies them here without calling core.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{Caller, Role};

/// The claims of a Spruce access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// `customer`, `cleaner` or `admin`.
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a token was refused; callers answer 401 for all of them.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

/// Checks access tokens against the issuer's public key, issuer and audience.
///
/// Verified tokens are remembered until they expire, so a client's every request does not
/// pay for an Ed25519 signature check again. Cheap to clone (the state of every request
/// holds one): the clones share everything.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    key: DecodingKey,
    validation: Validation,
    verified: Mutex<HashMap<String, (Caller, i64)>>,
}

/// How many verified tokens are remembered before the memory starts over.
const REMEMBERED_TOKENS: usize = 50_000;

impl TokenVerifier {
    /// Builds a verifier from a PEM-encoded Ed25519 public key.
    ///
    /// # Errors
    /// Fails when the PEM is not an Ed25519 public key.
    pub fn from_pem(
        public_key_pem: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = DecodingKey::from_ed_pem(public_key_pem.as_bytes())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(TokenVerifier {
            inner: Arc::new(Inner {
                key,
                validation,
                verified: Mutex::default(),
            }),
        })
    }

    /// Returns the caller a valid token names.
    ///
    /// # Errors
    /// [`TokenError::Expired`] for an expired token, [`TokenError::Invalid`] for anything else.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((caller, expires)) = self.remembered(token)
            && now < expires
        {
            return Ok(caller);
        }
        let data = decode::<AccessClaims>(token, &self.inner.key, &self.inner.validation).map_err(
            |error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        let user_id: Uuid = data.claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let role: Role = data.claims.role.parse().map_err(|_| TokenError::Invalid)?;
        let caller = Caller { user_id, role };
        self.remember(token, caller, data.claims.exp);
        Ok(caller)
    }

    fn remembered(&self, token: &str) -> Option<(Caller, i64)> {
        let verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        verified.get(token).copied()
    }

    fn remember(&self, token: &str, caller: Caller, expires: i64) {
        let mut verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= REMEMBERED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), (caller, expires));
    }
}
