//! Credentials: argon2id password hashes and Ed25519-signed access tokens.

use anyhow::Context as _;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use jsonwebtoken::{Algorithm, Header, encode};
use spruce_platform::{auth::AccessClaims, identity::Role, keys::PrivateKey};
use uuid::Uuid;

use crate::settings::AuthSettings;

/// A hash of a password nobody has, verified when the email is unknown so that a login for
/// an unknown email takes as long as one with a wrong password.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3BydWNlLWRlY295LXNhbHQ$Zb5mVPNMeq5Mz4mAQkHvIc8T7Qb+9LuhOn0xAvHHnBQ";

/// Hashes a password with argon2id and a random salt. CPU-heavy: call it off the runtime.
///
/// # Errors
/// Fails only if the system's random source fails.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|error| anyhow::anyhow!("failed to hash password: {error}"))?;
    Ok(hash.to_string())
}

/// Returns whether `password` matches `hash`; with no hash, spends the same time and says no.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), hash.unwrap_or(DECOY_HASH))
        .is_ok();
    matches && hash.is_some()
}

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
            ttl_secs: settings.access_token_ttl_secs,
        })
    }

    /// Returns the access token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user_id` acting as `role`.
    ///
    /// # Errors
    /// Fails only if signing fails.
    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role: role.as_str().to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            self.key.encoding_key(),
        )
        .context("failed to sign access token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
    }

    #[test]
    fn the_decoy_hash_is_well_formed_and_never_matches() {
        assert!(argon2::PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_password("anything", None));
    }
}
