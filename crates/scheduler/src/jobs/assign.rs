//! `auto-assign`: the matching engine over every open booking. Core lists the requested
//! bookings without a cleaner; search's read model names each one's candidates (service,
//! radius, hours and the cleaner's other bookings already checked); the engine decides;
//! core's `AssignBooking` confirms each pair under its no-overlap constraint. A pair core
//! refuses (the cleaner was booked meanwhile, the booking was cancelled) is skipped: the
//! booking is open again at the next tick.

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use spruce_proto::{
    core::v1::{AssignBookingRequest, Booking, ListOpenBookingsRequest, OpenBooking as WireOpen},
    search::v1::SearchCleanersRequest,
};
use tonic::Code;
use uuid::Uuid;

use super::{Job, JobFuture, RunContext, RunReport};
use crate::{
    matching::engine::{Candidate, Mode, OpenBooking, plan},
    upstream::{Upstreams, within},
};

/// Open bookings asked of core per page.
const PAGE: u32 = 1_000;
/// The most open bookings one run considers; the rest wait for the next tick.
const MAX_OPEN: usize = 20_000;

/// How the job searches and decides.
#[derive(Debug, Clone, Copy)]
pub struct AssignSettings {
    pub mode: Mode,
    /// Candidates asked of search per booking (its best by search's score).
    pub candidates: u32,
    /// How far from the booking search looks; each cleaner's own radius applies too.
    pub radius_km: f64,
    /// Calls to search or core in flight at once.
    pub concurrency: usize,
}

/// Assigns open bookings.
pub struct AutoAssign {
    upstreams: Upstreams,
    settings: AssignSettings,
}

impl AutoAssign {
    /// Calls core and search through `upstreams`.
    pub fn new(upstreams: Upstreams, settings: AssignSettings) -> Self {
        AutoAssign {
            upstreams,
            settings,
        }
    }

    async fn open_bookings(&self) -> anyhow::Result<Vec<WireOpen>> {
        let mut open = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut bookings = self.upstreams.bookings.clone();
            let request = self.upstreams.request(ListOpenBookingsRequest {
                limit: PAGE,
                cursor,
            })?;
            let page = within(
                "core's ListOpenBookings",
                self.upstreams.core_timeout,
                bookings.list_open_bookings(request),
            )
            .await?;
            open.extend(page.bookings);
            if page.next_cursor.is_empty() || open.len() >= MAX_OPEN {
                open.truncate(MAX_OPEN);
                return Ok(open);
            }
            cursor = page.next_cursor;
        }
    }

    /// Search's candidates for `open`; none when search finds the booking unsearchable
    /// (it starts too soon, say).
    async fn candidates(
        &self,
        booking: &Booking,
        (lat, lng): (f64, f64),
    ) -> anyhow::Result<Vec<Candidate>> {
        let message = SearchCleanersRequest {
            lat,
            lng,
            radius_km: self.settings.radius_km,
            service: booking.service.clone(),
            starts_at: booking.starts_at,
            duration_min: booking.duration_min,
            limit: self.settings.candidates,
            ..SearchCleanersRequest::default()
        };
        let mut search = self.upstreams.search.clone();
        let request = self.upstreams.request(message)?;
        let found = tokio::time::timeout(
            self.upstreams.search_timeout,
            search.search_cleaners(request),
        )
        .await
        .map_err(|_| anyhow::anyhow!("search's SearchCleaners did not answer in time"))?;
        let hits = match found {
            Ok(response) => response.into_inner().cleaners,
            Err(status) if status.code() == Code::InvalidArgument => {
                tracing::info!(booking_id = %booking.id, message = status.message(), "booking not searchable; skipped");
                Vec::new()
            }
            Err(status) => anyhow::bail!(
                "search's SearchCleaners answered {:?}: {}",
                status.code(),
                status.message()
            ),
        };
        Ok(hits
            .into_iter()
            .filter_map(|hit| {
                Some(Candidate {
                    cleaner_id: hit.cleaner_id.parse().ok()?,
                    distance_km: hit.distance_km,
                    hourly_rate_cents: hit.hourly_rate_cents,
                    rating_avg: hit.rating_avg,
                    rating_count: hit.rating_count,
                    held_bookings: hit.held_bookings,
                })
            })
            .collect())
    }

    /// `open` as the engine takes it, with search's candidates.
    async fn with_candidates(&self, open: WireOpen) -> anyhow::Result<OpenBooking> {
        let booking = open
            .booking
            .as_ref()
            .context("core listed an open booking without the booking")?;
        Ok(OpenBooking {
            booking_id: booking.id.parse()?,
            duration_min: booking.duration_min,
            candidates: self.candidates(booking, (open.lat, open.lng)).await?,
        })
    }

    /// Asks core to assign one pair; `Ok(false)` when core refuses it for a reason the
    /// next tick may not have (a conflict).
    async fn assign(&self, booking_id: Uuid, cleaner_id: Uuid) -> anyhow::Result<bool> {
        let mut bookings = self.upstreams.bookings.clone();
        let request = self.upstreams.request(AssignBookingRequest {
            booking_id: booking_id.to_string(),
            cleaner_id: cleaner_id.to_string(),
        })?;
        let answer = tokio::time::timeout(
            self.upstreams.core_timeout,
            bookings.assign_booking(request),
        )
        .await
        .map_err(|_| anyhow::anyhow!("core's AssignBooking did not answer in time"))?;
        match answer {
            Ok(_) => Ok(true),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Aborted
                        | Code::FailedPrecondition
                        | Code::InvalidArgument
                        | Code::NotFound
                ) =>
            {
                tracing::info!(booking_id = %booking_id, cleaner_id = %cleaner_id, code = ?status.code(), message = status.message(), "assignment refused; next tick");
                Ok(false)
            }
            Err(status) => anyhow::bail!(
                "core's AssignBooking answered {:?}: {}",
                status.code(),
                status.message()
            ),
        }
    }
}

impl Job for AutoAssign {
    fn run(&self, _context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let open = self.open_bookings().await?;
            let open_count = open.len();
            let concurrency = self.settings.concurrency.max(1);
            let with_candidates: Vec<OpenBooking> = stream::iter(open)
                .map(|open| self.with_candidates(open))
                .buffered(concurrency)
                .try_collect()
                .await?;
            let without_candidates = with_candidates
                .iter()
                .filter(|booking| booking.candidates.is_empty())
                .count();
            let round = plan(&with_candidates, self.settings.mode);
            let outcomes: Vec<bool> = stream::iter(round.assigned.clone())
                .map(|(booking_id, cleaner_id)| self.assign(booking_id, cleaner_id))
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
            let assigned = outcomes.iter().filter(|done| **done).count();
            let refused = outcomes.len() - assigned;
            let mode = match self.settings.mode {
                Mode::Cheapest => "cheapest",
                Mode::Stable => "stable",
            };
            Ok(RunReport {
                items: assigned as u64,
                detail: Some(format!(
                    "{mode}: assigned {assigned} of {} open bookings ({without_candidates} \
                     without a candidate, {} unmatched, {refused} refused by core); total cost \
                     {:.3}, {} blocking pairs",
                    open_count,
                    round.unassigned.len(),
                    round.total_cost,
                    round.blocking_pairs
                )),
            })
        })
    }
}
