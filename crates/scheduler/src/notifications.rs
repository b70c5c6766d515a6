//! Notifications: what we tell users, and how a page of them is addressed.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A notification recorded for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub channel: &'static str,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The welcome email a new user gets.
pub fn welcome(user_id: Uuid, full_name: &str, role: &str) -> Notification {
    let body = match role {
        "cleaner" => format!(
            "Hi {full_name}, welcome to Spruce! Complete your cleaner profile to start receiving bookings."
        ),
        _ => format!("Hi {full_name}, welcome to Spruce! Book your first cleaning in a few taps."),
    };
    Notification {
        id: Uuid::new_v4(),
        user_id,
        channel: "email",
        kind: "welcome".to_owned(),
        subject: "Welcome to Spruce".to_owned(),
        body,
        created_at: Utc::now(),
    }
}

/// Where a page of a newest-first listing starts: just after this (created_at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// Encodes the cursor as an opaque string.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.created_at.timestamp_micros(), self.id);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a cursor made by [`Cursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let (micros, id) = raw.split_once('|')?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// A page size within 1..=100, defaulting to 20.
pub fn page_limit(requested: u32) -> Result<i64, String> {
    match requested {
        0 => Ok(20),
        1..=100 => Ok(i64::from(requested)),
        _ => Err("must be between 1 and 100".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(page_limit(0), Ok(20));
        assert_eq!(page_limit(100), Ok(100));
        assert!(page_limit(101).is_err());
    }

    #[test]
    fn cleaners_are_welcomed_differently() {
        let cleaner = welcome(Uuid::new_v4(), "Ann", "cleaner");
        assert!(cleaner.body.contains("cleaner profile"));
        assert_eq!(cleaner.kind, "welcome");
    }
}
