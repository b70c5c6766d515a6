//! One template per event and role: who is told what, with times in their own zone.

use chrono::{DateTime, Utc};
use spruce_domain::zone::Zone;
use uuid::Uuid;

use super::Message;

/// A booking as its event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingFacts {
    pub booking_id: Uuid,
    pub customer_id: Uuid,
    pub cleaner_id: Option<Uuid>,
    pub service: String,
    pub starts_at: DateTime<Utc>,
    /// Why it was cancelled: "customer", "cleaner", "admin" or "unconfirmed".
    pub reason: String,
}

/// Which side of a booking someone is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Customer,
    Cleaner,
}

/// Who hears of a booking event: `kind` is the routing key (or `booking.reminder`).
pub fn audience(kind: &str, facts: &BookingFacts) -> Vec<(Uuid, Side)> {
    let customer = Some((facts.customer_id, Side::Customer));
    let cleaner = facts.cleaner_id.map(|id| (id, Side::Cleaner));
    let who = match kind {
        // The cleaner confirmed it themselves; completing is theirs too.
        "booking.confirmed" | "booking.completed" => [customer, None],
        "booking.assigned" | "booking.reminder" => [customer, cleaner],
        // Whoever cancelled knows; the other side is told.
        "booking.cancelled" => match facts.reason.as_str() {
            "customer" => [cleaner, None],
            "cleaner" => [customer, None],
            _ => [customer, cleaner],
        },
        _ => [None, None],
    };
    who.into_iter().flatten().collect()
}

/// `time` as a reader in `zone` reads it: "Tuesday 1 December 2026, 10:00 CET". An unknown
/// zone reads as UTC.
pub fn local_time(time: DateTime<Utc>, zone: &str) -> String {
    let zone: Zone = zone.parse().unwrap_or(Zone::UTC);
    time.with_timezone(&zone)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

fn service_name(service: &str) -> &str {
    match service {
        "standard" => "standard cleaning",
        "deep" => "deep cleaning",
        "move_out" => "move-out cleaning",
        "office" => "office cleaning",
        other => other,
    }
}

/// What `side` is told of the booking event `kind`, with the start in `zone`;
/// `cleaner_name` when known. `None` for events nobody is told of.
pub fn booking(
    kind: &str,
    side: Side,
    facts: &BookingFacts,
    recipient: Uuid,
    zone: &str,
    cleaner_name: Option<&str>,
) -> Option<Message> {
    let when = local_time(facts.starts_at, zone);
    let what = service_name(&facts.service);
    let cleaner = cleaner_name.unwrap_or("your cleaner");
    let (subject, body) = match (kind, side) {
        ("booking.confirmed", Side::Customer) => (
            "Your cleaning is confirmed".to_owned(),
            format!("{cleaner} confirmed your {what} on {when}."),
        ),
        ("booking.assigned", Side::Customer) => (
            "We found you a cleaner".to_owned(),
            format!("{cleaner} will do your {what} on {when}. It is confirmed."),
        ),
        ("booking.assigned", Side::Cleaner) => (
            "You have a new booking".to_owned(),
            format!("You were booked for a {what} on {when}."),
        ),
        ("booking.cancelled", Side::Customer) => (
            "Your cleaning was cancelled".to_owned(),
            match facts.reason.as_str() {
                "unconfirmed" => format!(
                    "Nobody could confirm your {what} on {when} in time, so we cancelled it \
                     and released your payment."
                ),
                _ => format!("Your {what} on {when} was cancelled; your payment was released."),
            },
        ),
        ("booking.cancelled", Side::Cleaner) => (
            "A booking was cancelled".to_owned(),
            format!("The {what} on {when} was cancelled."),
        ),
        ("booking.completed", Side::Customer) => (
            "How was your cleaning?".to_owned(),
            format!("{cleaner} finished your {what}. Leave a review in the app."),
        ),
        ("booking.reminder", Side::Customer) => (
            "Your cleaning is tomorrow".to_owned(),
            format!("Reminder: {cleaner} comes for your {what} on {when}."),
        ),
        ("booking.reminder", Side::Cleaner) => (
            "Your booking is tomorrow".to_owned(),
            format!("Reminder: you have a {what} on {when}."),
        ),
        _ => return None,
    };
    Some(Message {
        user_id: recipient,
        kind: kind.to_owned(),
        about: facts.booking_id.to_string(),
        subject,
        body,
    })
}

/// A code and link to confirm an email with, as the user gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification<'a> {
    pub user_id: Uuid,
    pub full_name: &'a str,
    pub role: &'a str,
    pub code: &'a str,
    /// The link's full address.
    pub link: String,
    /// The one sent at signup: the welcome.
    pub first: bool,
    /// What it is about (the event's id), for a code asked for again.
    pub about: &'a str,
}

/// The email that asks a user to confirm their address: at signup it is the welcome.
/// Email only: a code has no place on a lock screen.
pub fn verification(facts: &Verification<'_>) -> Message {
    let Verification {
        user_id,
        full_name,
        code,
        link,
        ..
    } = facts;
    let proof = format!("Your code is {code}; or open {link}. Both work once, for 30 minutes.");
    let (kind, about, subject, body) = if facts.first {
        let next = match facts.role {
            "cleaner" => {
                "Confirm your email, then complete your cleaner profile to start receiving bookings."
            }
            _ => "Confirm your email, then book your first cleaning in a few taps.",
        };
        (
            "welcome",
            user_id.to_string(),
            "Welcome to Spruce: confirm your email",
            format!("Hi {full_name}, welcome to Spruce! {next} {proof}"),
        )
    } else {
        (
            "account.verify_email",
            facts.about.to_owned(),
            "Your Spruce code",
            format!("Hi {full_name}, here is a new code to confirm your email. {proof}"),
        )
    };
    Message {
        user_id: *user_id,
        kind: kind.to_owned(),
        about,
        subject: subject.to_owned(),
        body,
    }
}

/// The email with a password reset link; `about` is the event's id.
pub fn password_reset(user_id: Uuid, about: &str, link: &str) -> Message {
    Message {
        user_id,
        kind: "account.password_reset".to_owned(),
        about: about.to_owned(),
        subject: "Reset your Spruce password".to_owned(),
        body: format!(
            "Someone (we hope you) asked to reset your password. Open {link} within 30 minutes \
             to choose a new one; it works once. If it was not you, ignore this email: your \
             password stays as it is."
        ),
    }
}

/// What a user whose password changed is told; `about` is the event's id.
pub fn password_changed(user_id: Uuid, about: &str) -> Message {
    Message {
        user_id,
        kind: "account.password_changed".to_owned(),
        about: about.to_owned(),
        subject: "Your Spruce password was changed".to_owned(),
        body: "Your password was just changed, and your other sessions ended. If it was not \
               you, reset your password now and write to support."
            .to_owned(),
    }
}

/// What a customer whose card was declined is told; `about` is the event's id (no booking
/// exists).
pub fn payment_failed(
    customer_id: Uuid,
    about: &str,
    amount_cents: i64,
    currency: &str,
) -> Message {
    Message {
        user_id: customer_id,
        kind: "payment.failed".to_owned(),
        about: about.to_owned(),
        subject: "Your payment did not go through".to_owned(),
        body: format!(
            "Your card was declined for {}.{:02} {currency}, so the booking was not made. \
             Try another card.",
            amount_cents / 100,
            amount_cents % 100
        ),
    }
}

/// How much of a review's comment a notification quotes (a push message must stay short).
const QUOTED_COMMENT_CHARS: usize = 280;

/// A review as its event tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewFacts<'a> {
    pub booking_id: Uuid,
    pub cleaner_id: Uuid,
    pub rating: u32,
    pub comment: &'a str,
    /// The cleaner's rating with this review.
    pub rating_avg: f64,
    pub rating_count: u32,
}

/// What a cleaner is told of a review of their work: the stars, the comment (its first
/// `QUOTED_COMMENT_CHARS` characters) and their rating now.
pub fn review_received(review: &ReviewFacts<'_>) -> Message {
    let comment = review.comment.trim();
    let quote = if comment.is_empty() {
        String::new()
    } else if comment.chars().count() > QUOTED_COMMENT_CHARS {
        let start: String = comment.chars().take(QUOTED_COMMENT_CHARS).collect();
        format!(": \u{201c}{}\u{2026}\u{201d}", start.trim_end())
    } else {
        format!(": \u{201c}{comment}\u{201d}")
    };
    let reviews = if review.rating_count == 1 {
        "review"
    } else {
        "reviews"
    };
    Message {
        user_id: review.cleaner_id,
        kind: "review.created".to_owned(),
        about: review.booking_id.to_string(),
        subject: format!("A new review: {} of 5 stars", review.rating),
        body: format!(
            "A customer gave your cleaning {} of 5 stars{quote}. Your rating is now {:.1} from {} {reviews}.",
            review.rating, review.rating_avg, review.rating_count
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(reason: &str) -> BookingFacts {
        BookingFacts {
            booking_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            cleaner_id: Some(Uuid::new_v4()),
            service: "deep".to_owned(),
            starts_at: "2026-12-01T09:00:00Z".parse().unwrap(),
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn a_review_tells_the_cleaner_the_stars_the_comment_and_their_rating() {
        let review = ReviewFacts {
            booking_id: Uuid::new_v4(),
            cleaner_id: Uuid::new_v4(),
            rating: 4,
            comment: " Spotless, thank you! ",
            rating_avg: 4.4,
            rating_count: 4,
        };
        let message = review_received(&review);
        assert_eq!(message.user_id, review.cleaner_id);
        assert_eq!(message.about, review.booking_id.to_string());
        assert_eq!(message.subject, "A new review: 4 of 5 stars");
        assert_eq!(
            message.body,
            "A customer gave your cleaning 4 of 5 stars: \u{201c}Spotless, thank you!\u{201d}. Your rating is now 4.4 from 4 reviews."
        );
        let silent = review_received(&ReviewFacts {
            comment: "",
            rating_count: 1,
            rating_avg: 5.0,
            rating: 5,
            ..review.clone()
        });
        assert_eq!(
            silent.body,
            "A customer gave your cleaning 5 of 5 stars. Your rating is now 5.0 from 1 review."
        );
        let long = "é".repeat(2_000);
        let quoted = review_received(&ReviewFacts {
            comment: &long,
            ..review
        });
        assert!(
            quoted
                .body
                .contains(&format!("\u{201c}{}\u{2026}\u{201d}", "é".repeat(280)))
        );
        assert!(quoted.body.chars().count() < 400, "{}", quoted.body);
    }

    #[test]
    fn times_read_in_the_readers_zone() {
        let start: DateTime<Utc> = "2026-12-01T09:00:00Z".parse().unwrap();
        assert_eq!(
            local_time(start, "Europe/Berlin"),
            "Tuesday 1 December 2026, 10:00 CET"
        );
        assert_eq!(
            local_time(start, "nowhere"),
            "Tuesday 1 December 2026, 09:00 UTC"
        );
    }

    #[test]
    fn each_side_hears_what_concerns_them() {
        let by_customer = facts("customer");
        assert_eq!(
            audience("booking.cancelled", &by_customer),
            [(by_customer.cleaner_id.unwrap(), Side::Cleaner)]
        );
        let expired = BookingFacts {
            cleaner_id: None,
            ..facts("unconfirmed")
        };
        assert_eq!(
            audience("booking.cancelled", &expired),
            [(expired.customer_id, Side::Customer)]
        );
        let assigned = facts("");
        assert_eq!(audience("booking.assigned", &assigned).len(), 2);
        assert!(audience("booking.started", &assigned).is_empty());
        let message = booking(
            "booking.assigned",
            Side::Customer,
            &assigned,
            assigned.customer_id,
            "Europe/Berlin",
            Some("Bea Clean"),
        )
        .unwrap();
        assert_eq!(
            message.body,
            "Bea Clean will do your deep cleaning on Tuesday 1 December 2026, 10:00 CET. It is confirmed."
        );
        assert_eq!(message.about, assigned.booking_id.to_string());
        let expired_message = booking(
            "booking.cancelled",
            Side::Customer,
            &expired,
            expired.customer_id,
            "UTC",
            None,
        )
        .unwrap();
        assert!(expired_message.body.contains("in time"));
        assert_eq!(
            payment_failed(Uuid::new_v4(), "event", 5_625, "EUR").body,
            "Your card was declined for 56.25 EUR, so the booking was not made. Try another card."
        );
    }
}
