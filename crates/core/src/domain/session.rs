//! Sessions: opaque refresh tokens, stored only as hashes, and the rules of rotation.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A user's live sessions at most: a new one beyond it ends the one used longest ago.
pub const MAX_LIVE_SESSIONS: i64 = 20;

/// A freshly minted refresh token: the secret for the client, the hash for the database.
#[derive(Clone)]
pub struct RefreshToken {
    pub secret: String,
    pub hash: Vec<u8>,
}

impl RefreshToken {
    /// Mints a token from 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_token(&secret);
        RefreshToken { secret, hash }
    }
}

/// Returns the SHA-256 of a token, which is what the database stores and looks up.
pub fn hash_token(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A stored refresh token's state.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What presenting a stored token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// Current and valid: rotate it.
    Rotate,
    /// Already rotated: someone replayed it, so the whole family must be revoked.
    Reuse,
    /// Revoked or expired: refuse.
    Refuse,
}

impl StoredToken {
    /// Decides what presenting this token at `now` means.
    pub fn judge(&self, now: DateTime<Utc>) -> TokenUse {
        if self.revoked_at.is_some() {
            TokenUse::Refuse
        } else if self.rotated_at.is_some() {
            TokenUse::Reuse
        } else if self.expires_at <= now {
            TokenUse::Refuse
        } else {
            TokenUse::Rotate
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn token() -> StoredToken {
        StoredToken {
            id: Uuid::new_v4(),
            family_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            expires_at: Utc::now() + Duration::days(1),
            rotated_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let first = RefreshToken::generate();
        let second = RefreshToken::generate();
        assert_ne!(first.secret, second.secret);
        assert_eq!(first.hash, hash_token(&first.secret));
        assert_eq!(first.secret.len(), 43);
    }

    #[test]
    fn a_current_token_rotates() {
        assert_eq!(token().judge(Utc::now()), TokenUse::Rotate);
    }

    #[test]
    fn a_rotated_token_is_reuse() {
        let rotated = StoredToken {
            rotated_at: Some(Utc::now()),
            ..token()
        };
        assert_eq!(rotated.judge(Utc::now()), TokenUse::Reuse);
    }

    #[test]
    fn revoked_and_expired_tokens_are_refused() {
        let revoked = StoredToken {
            revoked_at: Some(Utc::now()),
            ..token()
        };
        let expired = StoredToken {
            expires_at: Utc::now() - Duration::seconds(1),
            ..token()
        };
        assert_eq!(revoked.judge(Utc::now()), TokenUse::Refuse);
        assert_eq!(expired.judge(Utc::now()), TokenUse::Refuse);
    }
}
