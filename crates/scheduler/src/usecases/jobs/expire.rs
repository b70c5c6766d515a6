//! `expire-unconfirmed`: has core cancel the bookings nobody confirmed in time (core owns
//! the rule and releases each payment), in batches until none is due.

use spruce_proto::core::v1::ExpireUnconfirmedRequest;

use crate::domain::jobs::{Job, JobFuture, RunContext, RunReport};
use crate::upstream::{Upstreams, within};

/// Bookings cancelled per call.
const BATCH: u32 = 100;
/// Calls per run at most; whatever is left waits for the next tick.
const MAX_BATCHES: u32 = 1_000;

/// Expires unconfirmed bookings through core.
pub struct ExpireUnconfirmed {
    upstreams: Upstreams,
}

impl ExpireUnconfirmed {
    /// Calls core through `upstreams`.
    pub fn new(upstreams: Upstreams) -> Self {
        ExpireUnconfirmed { upstreams }
    }
}

impl Job for ExpireUnconfirmed {
    fn run(&self, _context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let mut expired = 0u64;
            for _ in 0..MAX_BATCHES {
                let mut bookings = self.upstreams.bookings.clone();
                let request = self
                    .upstreams
                    .to_core(ExpireUnconfirmedRequest { limit: BATCH })?;
                let batch = within(
                    "core's ExpireUnconfirmed",
                    self.upstreams.core_timeout,
                    bookings.expire_unconfirmed(request),
                )
                .await?;
                expired += batch.booking_ids.len() as u64;
                if !batch.more {
                    break;
                }
            }
            Ok(RunReport {
                items: expired,
                detail: Some(format!("{expired} unconfirmed bookings cancelled")),
            })
        })
    }
}
