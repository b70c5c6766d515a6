//! Tokens for tests (the `testing` feature, for dev-dependencies only): signed with the
//! development keys of `keys::dev`, valid or deliberately not.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

use crate::{auth::AccessClaims, keys};

/// Signs `claims` with the PEM `key`, naming `kid` in the header.
///
/// # Panics
/// When `key` is not an Ed25519 PEM.
pub fn sign(key: &str, claims: &AccessClaims, kid: Option<&str>) -> String {
    let key = EncodingKey::from_ed_pem(key.as_bytes()).expect("an Ed25519 PEM");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("the claims sign")
}

/// The claims of a user's access token valid for `ttl_secs` (negative: expired).
pub fn user_claims(user_id: Uuid, role: &str, ttl_secs: i64) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: user_id.to_string(),
        role: role.to_owned(),
        iss: "spruce".to_owned(),
        aud: "spruce-mobile".to_owned(),
        iat: now.min(now + ttl_secs),
        exp: now + ttl_secs,
        sid: None,
    }
}

/// The claims of a 5-minute service token of the service `name` for calling the service
/// `audience`.
pub fn service_claims(name: &str, audience: &str) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: name.to_owned(),
        role: "service".to_owned(),
        iss: name.to_owned(),
        aud: audience.to_owned(),
        iat: now,
        exp: now + 300,
        sid: None,
    }
}

/// A service token naming `name` (its `sub`, `iss` and `kid`) for calling `audience`,
/// signed with `key`.
pub fn service_token(key: &str, name: &str, audience: &str) -> String {
    sign(key, &service_claims(name, audience), Some(name))
}

/// An access token signed with core's development key for a new user id and `role`.
pub fn user_token(role: &str) -> String {
    sign(
        keys::dev::CORE_PRIVATE_KEY,
        &user_claims(Uuid::new_v4(), role, 600),
        None,
    )
}
