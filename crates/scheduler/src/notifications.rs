//! Notifications: what we tell users, and how a page of them is addressed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How a notification reaches its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Push,
}

impl Channel {
    /// Returns the stored and wire spelling (`email`, `push`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Push => "push",
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "email" => Ok(Channel::Email),
            "push" => Ok(Channel::Push),
            other => Err(format!("{other:?} is not a notification channel")),
        }
    }
}

/// A notification recorded for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub channel: Channel,
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
        channel: Channel::Email,
        kind: "welcome".to_owned(),
        subject: "Welcome to Spruce".to_owned(),
        body,
        created_at: Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaners_are_welcomed_differently() {
        let cleaner = welcome(Uuid::new_v4(), "Ann", "cleaner");
        assert!(cleaner.body.contains("cleaner profile"));
        assert_eq!(cleaner.kind, "welcome");
    }
}
