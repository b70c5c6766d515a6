//! Users: who they are and what makes a valid signup.

use std::fmt;

use chrono::{DateTime, Utc};
use spruce_domain::{
    email::normalize_email,
    text::{FORBIDDEN_CHARACTER_MESSAGE, is_forbidden_in_line},
};
use spruce_platform::identity::Role;
use uuid::Uuid;

use super::FieldError;

/// A syntactically valid email address in its one normal form (trimmed, NFKC, lowercased:
/// `spruce_domain::email::normalize_email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    const MAX_LENGTH: usize = 254;

    /// Parses an email address into its normal form.
    ///
    /// # Errors
    /// Returns a message fit for the client when the address is not plausible.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = normalize_email(raw);
        if email.is_empty() {
            return Err("is required".to_owned());
        }
        if email.len() > Self::MAX_LENGTH {
            return Err(format!("must be at most {} characters", Self::MAX_LENGTH));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address".to_owned());
        };
        let plausible = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email
                .chars()
                .any(|character| character.is_whitespace() || character.is_control());
        if !plausible {
            return Err("must be an email address".to_owned());
        }
        Ok(Email(email))
    }

    /// Returns the address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the length rules. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    const MIN_LENGTH: usize = 8;
    const MAX_LENGTH: usize = 128;

    /// Accepts a password of 8 to 128 characters.
    ///
    /// # Errors
    /// Returns a message fit for the client when the length is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if length < Self::MIN_LENGTH {
            return Err(format!("must be at least {} characters", Self::MIN_LENGTH));
        }
        if length > Self::MAX_LENGTH {
            return Err(format!("must be at most {} characters", Self::MAX_LENGTH));
        }
        Ok(Password(raw.to_owned()))
    }

    /// Returns the password for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Password([redacted])")
    }
}

/// A person's display name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    const MAX_LENGTH: usize = 100;

    /// Parses a display name.
    ///
    /// # Errors
    /// Returns a message fit for the client when the name is blank or too long.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("is required".to_owned());
        }
        if name.chars().count() > Self::MAX_LENGTH {
            return Err(format!("must be at most {} characters", Self::MAX_LENGTH));
        }
        if name.chars().any(is_forbidden_in_line) {
            return Err(FORBIDDEN_CHARACTER_MESSAGE.to_owned());
        }
        Ok(FullName(name.to_owned()))
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid signup: everything needed to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub full_name: FullName,
    pub role: Role,
    /// An IANA zone; `UTC` when the signup names none.
    pub timezone: String,
}

/// Returns the IANA time zone `raw` names (`Europe/Berlin`, in the database's spelling),
/// `UTC` when empty.
///
/// # Errors
/// A message fit for the client.
pub fn time_zone(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok("UTC".to_owned());
    }
    spruce_domain::zone::Zone::named(raw)
        .map(|zone| zone.name().to_owned())
        .ok_or_else(|| "must be an IANA time zone such as Europe/Berlin".to_owned())
}

impl NewUser {
    /// Validates every field at once, so the client learns all its mistakes in one answer.
    /// Only customers and cleaners can sign up; admins are created by operators.
    ///
    /// # Errors
    /// Returns one [`FieldError`] per invalid field.
    pub fn parse(
        email: &str,
        password: &str,
        full_name: &str,
        role: Option<Role>,
        timezone: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let email =
            Email::parse(email).map_err(|message| errors.push(FieldError::new("email", message)));
        let password = Password::parse(password)
            .map_err(|message| errors.push(FieldError::new("password", message)));
        let full_name = FullName::parse(full_name)
            .map_err(|message| errors.push(FieldError::new("full_name", message)));
        let timezone = time_zone(timezone)
            .map_err(|message| errors.push(FieldError::new("timezone", message)));
        let role = match role {
            Some(role @ (Role::Customer | Role::Cleaner)) => Some(role),
            _ => {
                errors.push(FieldError::new("role", "must be customer or cleaner"));
                None
            }
        };
        match (email, password, full_name, role, timezone) {
            (Ok(email), Ok(password), Ok(full_name), Some(role), Ok(timezone))
                if errors.is_empty() =>
            {
                Ok(NewUser {
                    email,
                    password,
                    full_name,
                    role,
                    timezone,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    /// Whether the user proved the email is theirs (see `domain::secret`).
    pub email_verified: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn implausible_emails_are_rejected() {
        for raw in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn password_debug_hides_the_secret() {
        let password = Password::parse("correct horse").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn signup_reports_every_bad_field() {
        let errors =
            NewUser::parse("nope", "short", " ", Some(Role::Admin), "Mars/Olympus").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(
            fields,
            ["email", "password", "full_name", "timezone", "role"]
        );
    }

    #[test]
    fn a_valid_signup_parses() {
        let user = NewUser::parse(
            "ann@example.com",
            "long enough",
            "Ann Lee",
            Some(Role::Cleaner),
            "",
        )
        .unwrap();
        assert_eq!(user.full_name.as_str(), "Ann Lee");
        assert_eq!(user.role, Role::Cleaner);
        assert_eq!(user.timezone, "UTC", "no zone given");
        assert_eq!(time_zone(" Europe/Berlin ").unwrap(), "Europe/Berlin");
    }
}
