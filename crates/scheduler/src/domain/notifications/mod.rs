//! Notifications: what we tell users, on which channel, and how far its delivery got.
//!
//! Events and jobs *record* notifications (one row per user, what and channel, so an event
//! that arrives twice records nothing new); the delivery worker then *sends* them through
//! the channels' providers, retrying with backoff.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub mod templates;

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

/// How far a notification's delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Waiting for a replica to send it (again, after a failed attempt).
    Pending,
    /// A replica is sending it now.
    Sending,
    Sent,
    /// Given up: the provider refused it, or every attempt failed.
    Failed,
    /// Recorded before the scheduler delivered anything.
    NotSent,
}

impl Delivery {
    /// Returns the stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Sending => "sending",
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::NotSent => "not_sent",
        }
    }
}

impl std::str::FromStr for Delivery {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "pending" => Ok(Delivery::Pending),
            "sending" => Ok(Delivery::Sending),
            "sent" => Ok(Delivery::Sent),
            "failed" => Ok(Delivery::Failed),
            "not_sent" => Ok(Delivery::NotSent),
            other => Err(format!("{other:?} is not a delivery state")),
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
    pub delivery: Delivery,
    pub created_at: DateTime<Utc>,
}

/// Someone the scheduler can notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: String,
    /// The IANA zone they read times in.
    pub timezone: String,
    /// Their device's push token, if they registered one.
    pub device_token: Option<String>,
}

/// Returns whether messages of `kind` carry a one-time secret (a verification code, a
/// reset link). They go by email only, and the notifications API never shows their body:
/// whoever holds an account's tokens is not necessarily the owner of its email, which is
/// what the secret must prove.
pub fn carries_secret(kind: &str) -> bool {
    SECRET_KINDS.contains(&kind)
}

/// The kinds of message that carry a one-time secret (see [`carries_secret`]).
pub const SECRET_KINDS: &[&str] = &["welcome", "account.verify_email", "account.password_reset"];

/// Whether `token` may be a device's push token: at most 4,096 printable ASCII characters
/// (empty: no device).
pub fn plausible_device_token(token: &str) -> bool {
    token.len() <= 4_096 && token.chars().all(|c| c.is_ascii_graphic())
}

/// What the notifications API shows instead of a body that carries a secret.
pub const SENT_BY_EMAIL: &str = "Sent to your email address only.";

/// What to tell one user, before it is split by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub user_id: Uuid,
    /// What prompted it: `welcome`, `booking.confirmed`, `booking.reminder`, ...
    pub kind: String,
    /// What it is about (a booking's id, the event's id): with the kind, user and channel
    /// it names the notification once.
    pub about: String,
    pub subject: String,
    pub body: String,
}

impl Message {
    /// The channels it goes out on: email always, push too when the user has a device,
    /// except for messages that carry a secret (codes and links stay off lock screens).
    pub fn channels(&self, recipient: Option<&Recipient>) -> Vec<Channel> {
        if carries_secret(&self.kind) {
            return vec![Channel::Email];
        }
        match recipient.and_then(|recipient| recipient.device_token.as_ref()) {
            Some(_) => vec![Channel::Email, Channel::Push],
            None => vec![Channel::Email],
        }
    }

    /// The key that makes it one notification per user, kind, subject and channel.
    pub fn dedupe_key(&self, channel: Channel) -> String {
        format!(
            "{}:{}:{}:{}",
            self.kind,
            self.about,
            self.user_id,
            channel.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_with_a_device_also_get_push_but_account_emails_stay_email() {
        let mut recipient = Recipient {
            user_id: Uuid::new_v4(),
            email: "ann@example.com".to_owned(),
            full_name: "Ann".to_owned(),
            role: "customer".to_owned(),
            timezone: "UTC".to_owned(),
            device_token: None,
        };
        let message = |kind: &str| Message {
            user_id: recipient.user_id,
            kind: kind.to_owned(),
            about: "x".to_owned(),
            subject: "s".to_owned(),
            body: "b".to_owned(),
        };
        let confirmed = message("booking.confirmed");
        assert_eq!(confirmed.channels(Some(&recipient)), [Channel::Email]);
        assert_eq!(confirmed.channels(None), [Channel::Email]);
        recipient.device_token = Some("device-1".to_owned());
        assert_eq!(
            confirmed.channels(Some(&recipient)),
            [Channel::Email, Channel::Push]
        );
        // Codes and links never go to a lock screen.
        for kind in ["welcome", "account.password_reset", "account.verify_email"] {
            assert_eq!(message(kind).channels(Some(&recipient)), [Channel::Email]);
        }
        for delivery in [
            Delivery::Pending,
            Delivery::Sending,
            Delivery::Sent,
            Delivery::Failed,
            Delivery::NotSent,
        ] {
            assert_eq!(delivery.as_str().parse::<Delivery>(), Ok(delivery));
        }
    }
}
