//! The events the scheduler consumes, wire in and the recording use cases out: who users
//! are, what their bookings are, and the notifications events call for (the welcome with its verification code, codes asked
//! for again, password resets and changes, a booking's changes, a declined card, a review
//! for its cleaner), and a deleted user's files removed from object storage. Each runs in the inbox's transaction, so an event that
//! arrives twice changes nothing the second time.

use anyhow::{Context as _, anyhow};
use spruce_bus::{Envelope, EventHandler};
use spruce_domain::objects;
use spruce_platform::time::from_timestamp;
use spruce_proto::{
    enum_or_string,
    events::v1::{BookingChanged, envelope::Payload},
};
use spruce_storage::{Key, Storage};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::notifications::{
        Recipient,
        templates::{self, BookingFacts, ReviewFacts},
    },
    usecases::recording,
};

/// Records users, bookings and the notifications events call for.
#[derive(Debug)]
pub struct SchedulerEvents {
    /// Where emailed links point: the app's address (`links.app_url`).
    app_url: String,
    /// Where users' files are kept: a deleted user's are removed.
    storage: Storage,
}

impl SchedulerEvents {
    /// Handles events, writing links to `app_url` and removing deleted users' files from
    /// `storage`.
    pub fn new(app_url: &str, storage: Storage) -> Self {
        SchedulerEvents {
            app_url: app_url.trim_end_matches('/').to_owned(),
            storage,
        }
    }

    fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?token={token}", self.app_url)
    }
}

impl EventHandler for SchedulerEvents {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["user.*", "booking.*", "payment.failed", "review.created"]
    }

    async fn handle(&self, transaction: &mut PgConnection, event: &Envelope) -> anyhow::Result<()> {
        match &event.payload {
            Some(Payload::UserRegistered(registered)) => {
                let user_id: Uuid = registered
                    .user_id
                    .parse()
                    .context("bad user_id in user.registered")?;
                let recipient = Recipient {
                    user_id,
                    email: registered.email.clone(),
                    full_name: registered.full_name.clone(),
                    role: enum_or_string(registered.role_kind().wire_name(), &registered.role)
                        .to_owned(),
                    timezone: registered.timezone.clone(),
                    device_token: None,
                };
                recording::user_registered(transaction, &recipient).await
            }
            Some(Payload::VerificationRequested(requested)) => {
                let user_id: Uuid = requested
                    .user_id
                    .parse()
                    .context("bad user_id in user.verification_requested")?;
                let role = enum_or_string(requested.role_kind().wire_name(), &requested.role);
                let message = templates::verification(&templates::Verification {
                    user_id,
                    full_name: &requested.full_name,
                    role,
                    code: &requested.code,
                    link: self.link("verify-email", &requested.token),
                    first: requested.first,
                    about: &event.event_id,
                });
                recording::notify(transaction, &message).await?;
                tracing::info!(user_id = %user_id, first = requested.first, "verification email recorded");
                Ok(())
            }
            Some(Payload::PasswordResetRequested(requested)) => {
                let user_id: Uuid = requested
                    .user_id
                    .parse()
                    .context("bad user_id in user.password_reset_requested")?;
                let link = self.link("reset-password", &requested.token);
                recording::notify(
                    transaction,
                    &templates::password_reset(user_id, &event.event_id, &link),
                )
                .await
            }
            Some(Payload::UserDeleted(deleted)) => {
                let user_id: Uuid = deleted
                    .user_id
                    .parse()
                    .context("bad user_id in user.deleted")?;
                // Removed before the event counts as done: a failure is retried, and removing
                // again what is gone is harmless.
                for folder in objects::folders_of(user_id) {
                    let removed = self
                        .storage
                        .delete_under(&Key::new(folder)?)
                        .await
                        .context("failed to remove a deleted user's files")?;
                    if removed > 0 {
                        tracing::info!(user_id = %user_id, removed, "deleted user's files removed");
                    }
                }
                recording::user_deleted(transaction, user_id).await
            }
            Some(Payload::PasswordChanged(changed)) => {
                let user_id: Uuid = changed
                    .user_id
                    .parse()
                    .context("bad user_id in user.password_changed")?;
                recording::notify(
                    transaction,
                    &templates::password_changed(user_id, &event.event_id),
                )
                .await
            }
            Some(Payload::BookingChanged(change)) => {
                recording::booking_changed(
                    transaction,
                    &event.r#type,
                    &booking_facts(change)?,
                    enum_or_string(change.booking_status().wire_name(), &change.status),
                    event.aggregate_version,
                )
                .await
            }
            Some(Payload::PaymentFailed(failed)) => {
                let customer_id: Uuid = failed
                    .customer_id
                    .parse()
                    .context("bad customer_id in payment.failed")?;
                let message = templates::payment_failed(
                    customer_id,
                    &event.event_id,
                    failed.amount_cents,
                    &failed.currency,
                );
                recording::notify(transaction, &message).await
            }
            Some(Payload::ReviewCreated(review)) => {
                let facts = ReviewFacts {
                    booking_id: review.booking_id.parse().context("bad booking_id")?,
                    cleaner_id: review.cleaner_id.parse().context("bad cleaner_id")?,
                    rating: review.rating,
                    comment: &review.comment,
                    rating_avg: review.rating_avg,
                    rating_count: review.rating_count,
                };
                recording::notify(transaction, &templates::review_received(&facts)).await
            }
            // Only the routing keys above are bound, so anything else was misrouted.
            Some(other) => Err(anyhow!(
                "event {} has an unexpected payload {other:?}",
                event.event_id
            )),
            None => Err(anyhow!("event {} has no payload", event.event_id)),
        }
    }
}

/// Reads a booking event's facts.
fn booking_facts(change: &BookingChanged) -> anyhow::Result<BookingFacts> {
    Ok(BookingFacts {
        booking_id: change.booking_id.parse().context("bad booking_id")?,
        customer_id: change.customer_id.parse().context("bad customer_id")?,
        cleaner_id: if change.cleaner_id.is_empty() {
            None
        } else {
            Some(change.cleaner_id.parse().context("bad cleaner_id")?)
        },
        service: enum_or_string(change.service_kind().wire_name(), &change.service).to_owned(),
        starts_at: change
            .starts_at
            .as_ref()
            .and_then(from_timestamp)
            .context("a booking event without starts_at")?,
        reason: change.reason.clone(),
    })
}
