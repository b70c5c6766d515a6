//! Recording what users are told: each call runs in the caller's transaction (the event
//! inbox's, or a job's), and a notification is recorded once per user, subject and channel,
//! so doing it twice records nothing new. Delivery sends them later (`usecases::delivery`).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::notifications::{
        Message, Recipient,
        templates::{self, BookingFacts},
    },
    store::notifications as store,
};

/// Keeps who `recipient` is, for the messages that follow (the welcome is the verification
/// email after it).
///
/// # Errors
/// When the database fails.
pub async fn user_registered(
    transaction: &mut PgConnection,
    recipient: &Recipient,
) -> anyhow::Result<()> {
    store::upsert_recipient(transaction, recipient).await?;
    Ok(())
}

/// Forgets a deleted user: their device, their notifications, and their name in what
/// others were told.
///
/// # Errors
/// When the database fails.
pub async fn user_deleted(transaction: &mut PgConnection, user_id: Uuid) -> anyhow::Result<()> {
    let full_name = store::find_recipient(transaction, user_id)
        .await?
        .map(|recipient| recipient.full_name)
        .unwrap_or_default();
    store::forget_user(transaction, user_id, &full_name, "a former user").await?;
    tracing::info!(user_id = %user_id, "deleted user forgotten");
    Ok(())
}

/// Keeps a booking's change `kind` (its new `status` at `version`) and tells each party
/// what concerns them; a change older than the one kept tells nobody.
///
/// # Errors
/// When the database fails.
pub async fn booking_changed(
    transaction: &mut PgConnection,
    kind: &str,
    facts: &BookingFacts,
    status: &str,
    version: i64,
) -> anyhow::Result<()> {
    let newer = store::apply_booking(transaction, facts, status, version).await?;
    if !newer {
        // Out of date (a later change arrived first): telling it now would mislead.
        return Ok(());
    }
    notify_parties(transaction, kind, facts).await
}

/// Records what `kind` tells each party of the booking `facts`, in their own zones.
///
/// # Errors
/// When the database fails.
pub async fn notify_parties(
    transaction: &mut PgConnection,
    kind: &str,
    facts: &BookingFacts,
) -> anyhow::Result<()> {
    let audience = templates::audience(kind, facts);
    if audience.is_empty() {
        return Ok(());
    }
    // Everyone concerned, and the cleaner whose name the messages give, in one look.
    let mut wanted: Vec<Uuid> = audience.iter().map(|(user_id, _)| *user_id).collect();
    wanted.extend(facts.cleaner_id);
    let recipients = store::find_recipients(transaction, &wanted).await?;
    let known = |id: Uuid| recipients.iter().find(|recipient| recipient.user_id == id);
    let cleaner_name = facts
        .cleaner_id
        .and_then(known)
        .map(|cleaner| cleaner.full_name.as_str());
    for (user_id, side) in audience {
        let recipient = known(user_id);
        let zone = recipient.map_or("UTC", |recipient| recipient.timezone.as_str());
        if let Some(message) = templates::booking(kind, side, facts, user_id, zone, cleaner_name) {
            store::record(transaction, &message, &message.channels(recipient)).await?;
        }
    }
    Ok(())
}

/// Records `message` on the channels its user has.
///
/// # Errors
/// When the database fails.
pub async fn notify(transaction: &mut PgConnection, message: &Message) -> anyhow::Result<()> {
    let recipient = store::find_recipient(transaction, message.user_id).await?;
    store::record(transaction, message, &message.channels(recipient.as_ref())).await?;
    Ok(())
}
