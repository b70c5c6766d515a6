//! Tokens and their verification. Core signs users' access tokens with its Ed25519 key; a
//! service acting on its own behalf signs a short-lived service token with its own key.
//! Every gRPC server and the gateway verify tokens locally, with public keys only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    identity::{Caller, Principal, Role},
    keys::{PrivateKey, PublicKey},
};

/// The `role` claim of a service token.
pub const SERVICE_ROLE: &str = "service";
/// How long a service token is valid.
const SERVICE_TOKEN_TTL_SECS: i64 = 300;

/// The claims of a Spruce token: a user's access token, or a service token (`sub` and
/// `iss` the service's name, `role` = `service`, `aud` the name of the service called, so
/// that a token sent to one service cannot be replayed at another).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id, or the service's name.
    pub sub: String,
    /// `customer`, `cleaner`, `admin` or `service`.
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// A user's session (the refresh token family the access token was issued with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why a token was refused; callers answer 401 (UNAUTHENTICATED) for all of them.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

/// Returns the token of an `Authorization: Bearer <token>` header value, if it is one.
pub fn bearer_token(header: Option<&http::HeaderValue>) -> Option<&str> {
    header?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Checks tokens: users' access tokens against core's public key, issuer and audience, and
/// service tokens against the public keys of the services named at construction, addressed
/// to this service by name.
///
/// Verified tokens are remembered until they expire, so a client's every request does not
/// pay for an Ed25519 signature check again. Cheap to clone: the clones share everything.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    users: (DecodingKey, Validation),
    /// Service name (the token's `kid`) to its key and validation.
    services: HashMap<String, (DecodingKey, Validation)>,
    verified: Mutex<HashMap<String, (Principal, i64)>>,
}

/// How many verified tokens are remembered before the memory starts over.
const REMEMBERED_TOKENS: usize = 50_000;

fn validation(issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 5;
    validation
}

impl TokenVerifier {
    /// Builds a verifier of users' access tokens signed by `public_key`'s private half,
    /// and of the service tokens of each named service, signed by its key's private half
    /// and addressed to `own_name` (the service that verifies).
    pub fn new(
        public_key: &PublicKey,
        issuer: &str,
        audience: &str,
        services: &[(String, PublicKey)],
        own_name: &str,
    ) -> Self {
        let services = services
            .iter()
            .map(|(name, key)| {
                let checks = validation(name, own_name);
                (name.clone(), (key.decoding_key(), checks))
            })
            .collect();
        TokenVerifier {
            inner: Arc::new(Inner {
                users: (public_key.decoding_key(), validation(issuer, audience)),
                services,
                verified: Mutex::default(),
            }),
        }
    }

    /// Returns the user a valid access token names; service tokens are refused.
    ///
    /// # Errors
    /// [`TokenError::Expired`] for an expired token, [`TokenError::Invalid`] for anything else.
    pub fn verify_user(&self, token: &str) -> Result<Caller, TokenError> {
        match self.verify(token)? {
            Principal::User(caller) => Ok(caller),
            Principal::Service(_) => Err(TokenError::Invalid),
        }
    }

    /// Returns who a valid token names: a user, or a service this verifier accepts.
    ///
    /// # Errors
    /// [`TokenError::Expired`] for an expired token, [`TokenError::Invalid`] for anything else.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((principal, expires)) = self.remembered(token)
            && now < expires
        {
            return Ok(principal);
        }
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        let (principal, expires) = match header.kid {
            None => self.decode_user(token)?,
            Some(service) => self.decode_service(token, service)?,
        };
        self.remember(token, principal.clone(), expires);
        Ok(principal)
    }

    fn decode_user(&self, token: &str) -> Result<(Principal, i64), TokenError> {
        let (key, validation) = &self.inner.users;
        let claims = decode_claims(token, key, validation)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let role: Role = claims.role.parse().map_err(|_| TokenError::Invalid)?;
        let session_id = match claims.sid.as_deref() {
            Some(sid) => Some(sid.parse().map_err(|_| TokenError::Invalid)?),
            None => None,
        };
        let caller = Caller {
            user_id,
            role,
            session_id,
        };
        Ok((Principal::User(caller), claims.exp))
    }

    fn decode_service(&self, token: &str, service: String) -> Result<(Principal, i64), TokenError> {
        let (key, validation) = self
            .inner
            .services
            .get(&service)
            .ok_or(TokenError::Invalid)?;
        let claims = decode_claims(token, key, validation)?;
        if claims.sub != service || claims.role != SERVICE_ROLE {
            return Err(TokenError::Invalid);
        }
        Ok((Principal::Service(service.into()), claims.exp))
    }

    fn remembered(&self, token: &str) -> Option<(Principal, i64)> {
        let verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        verified.get(token).cloned()
    }

    fn remember(&self, token: &str, principal: Principal, expires: i64) {
        let mut verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= REMEMBERED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), (principal, expires));
    }
}

fn decode_claims(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<AccessClaims, TokenError> {
    decode::<AccessClaims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
}

/// Signs the short-lived service tokens a service sends when it calls another on its own
/// behalf, one per service called. A token is reused until half its life is gone. Cheap to
/// clone.
#[derive(Clone)]
pub struct ServiceTokenSigner {
    inner: Arc<SignerInner>,
}

struct SignerInner {
    name: String,
    key: PrivateKey,
    /// Per audience, the current token and when to renew it.
    current: Mutex<HashMap<String, (String, i64)>>,
}

impl ServiceTokenSigner {
    /// Builds a signer for the service `name` with its private key.
    pub fn new(name: &str, key: PrivateKey) -> Self {
        ServiceTokenSigner {
            inner: Arc::new(SignerInner {
                name: name.to_owned(),
                key,
                current: Mutex::default(),
            }),
        }
    }

    /// Returns a valid service token for calling the service `audience`.
    ///
    /// # Errors
    /// Fails only if signing fails.
    pub fn token(&self, audience: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let mut current = self
            .inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((token, renew_at)) = current.get(audience)
            && now < *renew_at
        {
            return Ok(token.clone());
        }
        let name = &self.inner.name;
        let claims = AccessClaims {
            sub: name.clone(),
            role: SERVICE_ROLE.to_owned(),
            iss: name.clone(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + SERVICE_TOKEN_TTL_SECS,
            sid: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(name.clone());
        let token = encode(&header, &claims, self.inner.key.encoding_key())
            .map_err(|error| anyhow::anyhow!("failed to sign a service token: {error}"))?;
        current.insert(
            audience.to_owned(),
            (token.clone(), now + SERVICE_TOKEN_TTL_SECS / 2),
        );
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::keys::dev;

    fn private(pem: &str) -> PrivateKey {
        PrivateKey::from_pem(&SecretString::from(pem)).unwrap()
    }

    fn user_token(key: &PrivateKey, role: &str, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: Uuid::new_v4().to_string(),
            role: role.to_owned(),
            iss: "spruce".to_owned(),
            aud: "spruce-mobile".to_owned(),
            iat: now,
            exp: now + exp_in,
            sid: None,
        };
        encode(&Header::new(Algorithm::EdDSA), &claims, key.encoding_key()).unwrap()
    }

    fn verifier() -> TokenVerifier {
        let core = private(dev::CORE_PRIVATE_KEY).public_key();
        let gateway = private(dev::GATEWAY_PRIVATE_KEY).public_key();
        TokenVerifier::new(
            &core,
            "spruce",
            "spruce-mobile",
            &[("gateway".to_owned(), gateway)],
            "core",
        )
    }

    #[test]
    fn user_tokens_verify_with_core_key_only() {
        let verifier = verifier();
        let good = user_token(&private(dev::CORE_PRIVATE_KEY), "customer", 60);
        assert!(matches!(verifier.verify(&good), Ok(Principal::User(_))));
        let forged = user_token(&private(dev::GATEWAY_PRIVATE_KEY), "admin", 60);
        assert!(matches!(verifier.verify(&forged), Err(TokenError::Invalid)));
        let expired = user_token(&private(dev::CORE_PRIVATE_KEY), "customer", -60);
        assert!(matches!(
            verifier.verify(&expired),
            Err(TokenError::Expired)
        ));
        let service_role = user_token(&private(dev::CORE_PRIVATE_KEY), "service", 60);
        assert!(matches!(
            verifier.verify(&service_role),
            Err(TokenError::Invalid)
        ));
    }

    #[test]
    fn service_tokens_verify_for_named_services_only() {
        let verifier = verifier();
        let gateway = ServiceTokenSigner::new("gateway", private(dev::GATEWAY_PRIVATE_KEY));
        let token = gateway.token("core").unwrap();
        assert_eq!(gateway.token("core").unwrap(), token, "reused while fresh");
        assert_eq!(
            verifier.verify(&token).unwrap(),
            Principal::Service("gateway".into())
        );
        assert!(matches!(
            verifier.verify_user(&token),
            Err(TokenError::Invalid)
        ));
        // A service the verifier does not name, and a named service with the wrong key.
        let search = ServiceTokenSigner::new("search", private(dev::SEARCH_PRIVATE_KEY));
        assert!(verifier.verify(&search.token("core").unwrap()).is_err());
        let impostor = ServiceTokenSigner::new("gateway", private(dev::SEARCH_PRIVATE_KEY));
        assert!(verifier.verify(&impostor.token("core").unwrap()).is_err());
        // Core's user key cannot mint a service token either.
        let core = ServiceTokenSigner::new("gateway", private(dev::CORE_PRIVATE_KEY));
        assert!(verifier.verify(&core.token("core").unwrap()).is_err());
    }

    #[test]
    fn a_service_token_for_one_service_is_refused_by_another() {
        let verifier = verifier();
        let gateway = ServiceTokenSigner::new("gateway", private(dev::GATEWAY_PRIVATE_KEY));
        let for_search = gateway.token("search").unwrap();
        assert_ne!(for_search, gateway.token("core").unwrap());
        assert!(matches!(
            verifier.verify(&for_search),
            Err(TokenError::Invalid)
        ));
    }
}
