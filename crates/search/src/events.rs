//! The events search consumes (`cleaner.updated`, `booking.*`, `user.deleted`): wire in,
//! the read model's use cases out.

use chrono::Utc;
use spruce_bus::{Envelope, EventSink, Failure, Outcome};
use spruce_platform::time::from_timestamp;
use spruce_proto::{enum_or_string, events::v1::envelope::Payload};
use uuid::Uuid;

use crate::{
    domain::readmodel::Applied, metrics::EVENT_LAG_SECONDS, usecases::live::ReadModelUpdates, wire,
};

/// Applies the events to the read model once it is current (see [`ReadModelUpdates`]).
pub struct ReadModelEvents {
    updates: ReadModelUpdates,
}

impl ReadModelEvents {
    /// Hands the events to `updates`.
    pub fn new(updates: ReadModelUpdates) -> Self {
        ReadModelEvents { updates }
    }
}

impl EventSink for ReadModelEvents {
    fn routing_keys(&self) -> &'static [&'static str] {
        &["cleaner.updated", "booking.*", "user.deleted"]
    }

    async fn apply(&self, _event_id: Uuid, event: &Envelope) -> Result<Outcome, Failure> {
        self.updates.wait_until_current().await;
        let version = event.aggregate_version;
        let id = |text: &str, field: &str| {
            text.parse::<Uuid>()
                .map_err(|error| Failure::Permanent(anyhow::anyhow!("{field}: {error}")))
        };
        let applied = match &event.payload {
            Some(Payload::CleanerUpdated(updated)) if !updated.listed => self
                .updates
                .cleaner_withdrawn(version, id(&updated.cleaner_id, "cleaner_id")?),
            Some(Payload::CleanerUpdated(updated)) => {
                let cleaner = wire::cleaner(updated).map_err(Failure::Permanent)?;
                self.updates.cleaner_updated(version, cleaner)
            }
            Some(Payload::UserDeleted(deleted)) => self.updates.user_deleted(
                id(&deleted.user_id, "user_id")?,
                enum_or_string(deleted.role_kind().wire_name(), &deleted.role) == "cleaner",
            ),
            Some(Payload::BookingChanged(changed)) => {
                let (id, booking, pair) =
                    wire::booking_change(changed, version).map_err(Failure::Permanent)?;
                self.updates.booking_changed(id, booking, pair)
            }
            other => {
                return Err(Failure::Permanent(anyhow::anyhow!(
                    "event {} of type {} has an unexpected payload {other:?}",
                    event.event_id,
                    event.r#type
                )));
            }
        };
        if let Some(occurred) = event.occurred_at.as_ref().and_then(from_timestamp) {
            let lag = (Utc::now() - occurred).num_milliseconds().max(0);
            EVENT_LAG_SECONDS.observe(lag as f64 / 1_000.0);
        }
        Ok(match applied {
            Applied::Changed => Outcome::Applied,
            Applied::Stale => Outcome::Duplicate,
        })
    }
}
