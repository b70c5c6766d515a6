//! Access tokens: core signs them with its Ed25519 key (see `passwords` for passwords).

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, Header, encode};
use spruce_platform::{auth::AccessClaims, identity::Role, keys::PrivateKey};
use uuid::Uuid;

use crate::settings::AuthSettings;

/// Signs access tokens with core's private key.
#[derive(Clone)]
pub struct TokenIssuer {
    key: PrivateKey,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl TokenIssuer {
    /// Builds an issuer from the auth settings.
    ///
    /// # Errors
    /// Fails when the private key is not an Ed25519 PEM key.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let key = settings.signing_key()?;
        Ok(TokenIssuer {
            key,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: i64::try_from(settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Returns the access token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user_id` acting as `role` in the session `session_id`.
    ///
    /// # Errors
    /// Fails only if signing fails.
    pub fn issue(&self, user_id: Uuid, role: Role, session_id: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role: role.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            sid: Some(session_id.to_string()),
        };
        encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            self.key.encoding_key(),
        )
        .context("failed to sign access token")
    }
}
