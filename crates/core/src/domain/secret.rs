//! One-time secrets sent by email: a 6-digit code and a link token to verify an email, a
//! link token to reset a password. The client gets the secrets; core keeps their hashes.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use rand::Rng as _;
use uuid::Uuid;

use super::session::hash_token;

/// How long an emailed secret works.
pub const SECRET_TTL: Duration = Duration::minutes(30);
/// Wrong codes allowed before a code stops working, however right the next one.
pub const MAX_CODE_TRIES: i32 = 5;

/// What a secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// Freshly drawn secrets: what the email carries, and the hashes to store.
#[derive(Clone)]
pub struct NewSecret {
    pub token: String,
    pub token_hash: Vec<u8>,
    /// Six digits, for verification only.
    pub code: Option<String>,
    pub code_hash: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "NewSecret(expires {})", self.expires_at)
    }
}

impl NewSecret {
    /// Draws a link token (256 random bits), and for verification a 6-digit code, valid
    /// for [`SECRET_TTL`] from `now`.
    pub fn generate(purpose: Purpose, now: DateTime<Utc>) -> Self {
        let mut random = rand::rng();
        let token = URL_SAFE_NO_PAD.encode(random.random::<[u8; 32]>());
        let code = (purpose == Purpose::VerifyEmail)
            .then(|| format!("{:06}", random.random_range(0..1_000_000_u32)));
        NewSecret {
            token_hash: hash_token(&token),
            code_hash: code.as_deref().map(code_hash),
            token,
            code,
            expires_at: now + SECRET_TTL,
        }
    }
}

/// The hash a code is stored and looked up by.
pub fn code_hash(code: &str) -> Vec<u8> {
    hash_token(code.trim())
}

/// A stored, still unused secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub id: Uuid,
    pub user_id: Uuid,
    pub code_hash: Option<Vec<u8>>,
    pub failed_tries: i32,
    pub expires_at: DateTime<Utc>,
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Right,
    Wrong,
    /// Expired, or too many wrong tries: ask for a new code.
    Spent,
}

impl StoredSecret {
    /// Checks `code` against this secret at `now`.
    pub fn check_code(&self, code: &str, now: DateTime<Utc>) -> CodeCheck {
        if now >= self.expires_at || self.failed_tries >= MAX_CODE_TRIES {
            return CodeCheck::Spent;
        }
        match &self.code_hash {
            Some(hash) if *hash == code_hash(code) => CodeCheck::Right,
            _ => CodeCheck::Wrong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_only_verification_has_one() {
        let now = Utc::now();
        let verify = NewSecret::generate(Purpose::VerifyEmail, now);
        let code = verify.code.clone().unwrap();
        assert!(
            code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
            "{code}"
        );
        assert_eq!(verify.expires_at, now + SECRET_TTL);
        assert!(verify.token.len() >= 43);
        assert_ne!(
            verify.token,
            NewSecret::generate(Purpose::VerifyEmail, now).token
        );
        assert!(
            NewSecret::generate(Purpose::ResetPassword, now)
                .code
                .is_none()
        );
    }

    #[test]
    fn a_code_works_until_it_expires_or_is_guessed_at_five_times() {
        let now = Utc::now();
        let stored = StoredSecret {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            code_hash: Some(code_hash("123456")),
            failed_tries: 0,
            expires_at: now + Duration::minutes(30),
        };
        assert_eq!(stored.check_code("123456", now), CodeCheck::Right);
        assert_eq!(stored.check_code(" 123456 ", now), CodeCheck::Right);
        assert_eq!(stored.check_code("654321", now), CodeCheck::Wrong);
        assert_eq!(
            stored.check_code("123456", now + Duration::minutes(31)),
            CodeCheck::Spent
        );
        let guessed = StoredSecret {
            failed_tries: MAX_CODE_TRIES,
            ..stored
        };
        assert_eq!(guessed.check_code("123456", now), CodeCheck::Spent);
    }
}
