//! Reactions to events from other services.

use anyhow::{Context as _, anyhow};
use spruce_platform::bus::{Envelope, EventHandler};
use spruce_proto::events::v1::envelope::Payload;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{notifications, store};

/// Records the notifications that events call for.
#[derive(Debug, Default)]
pub struct SchedulerEvents;

impl EventHandler for SchedulerEvents {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["user.registered"]
    }

    async fn handle(&self, transaction: &mut PgConnection, event: &Envelope) -> anyhow::Result<()> {
        match &event.payload {
            Some(Payload::UserRegistered(registered)) => {
                let user_id: Uuid = registered
                    .user_id
                    .parse()
                    .context("bad user_id in user.registered")?;
                let welcome =
                    notifications::welcome(user_id, &registered.full_name, &registered.role);
                store::notifications::insert_notification(transaction, &welcome).await?;
                tracing::info!(user_id = %user_id, "welcome notification recorded");
                Ok(())
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
