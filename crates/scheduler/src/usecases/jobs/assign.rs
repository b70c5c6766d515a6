//! `auto-assign`: the matching engine over every open booking. Core lists the requested
//! bookings without a cleaner; search's read model names each one's candidates (service,
//! radius, hours and the cleaner's other bookings already checked); the engine decides;
//! core's `AssignBooking` confirms each pair under its no-overlap constraint. A pair core
//! refuses (the cleaner was booked meanwhile, the booking was cancelled) is skipped: the
//! booking is open again at the next tick.

use spruce_platform::flags::{AUTO_ASSIGN_ENABLED, Flags, Subject};
use std::time::Instant;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use spruce_domain::zone::Zone;
use spruce_platform::time::from_timestamp;

use anyhow::Context as _;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _, stream};
use spruce_proto::{
    core::v1::{
        AssignBookingRequest, AssignBookingsRequest, ListOpenBookingsRequest,
        OpenBooking as WireOpen,
    },
    search::v1::{SearchCleanersBatchRequest, SearchCleanersRequest},
};
use uuid::Uuid;

use crate::{
    domain::{
        jobs::{Job, JobFuture, Options, RunContext, RunReport},
        matching::engine::{Candidate, Mode, OpenBooking, plan},
    },
    upstream::{Upstreams, within},
};

/// Open bookings asked of core per page.
const PAGE: u32 = 1_000;
/// Queries per `SearchCleanersBatch` call.
const SEARCH_BATCH: usize = 500;
/// Pairs per `AssignBookings` call (one transaction in core).
const ASSIGN_BATCH: usize = 250;
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
    /// Batch calls to search or core in flight at once.
    pub concurrency: usize,
}

/// Assigns open bookings.
pub struct AutoAssign {
    upstreams: Upstreams,
    settings: AssignSettings,
    flags: Flags,
}

impl AutoAssign {
    /// Calls core and search through `upstreams`; runs only while the flag
    /// `auto-assign-enabled` is on.
    pub fn new(upstreams: Upstreams, settings: AssignSettings, flags: Flags) -> Self {
        AutoAssign {
            upstreams,
            settings,
            flags,
        }
    }

    /// Core's open bookings, page by page, up to [`MAX_OPEN`] in all.
    fn open_bookings(&self) -> impl Stream<Item = anyhow::Result<Vec<WireOpen>>> + '_ {
        stream::try_unfold(
            (Some(String::new()), 0usize),
            move |(cursor, listed)| async move {
                let Some(cursor) = cursor.filter(|_| listed < MAX_OPEN) else {
                    return Ok(None);
                };
                let mut bookings = self.upstreams.bookings.clone();
                let request = self.upstreams.to_core(ListOpenBookingsRequest {
                    limit: PAGE,
                    cursor,
                })?;
                let page = within(
                    "core's ListOpenBookings",
                    self.upstreams.core_timeout,
                    bookings.list_open_bookings(request),
                )
                .await?;
                let mut open = page.bookings;
                open.truncate(MAX_OPEN - listed);
                let listed = listed + open.len();
                let next = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
                Ok(Some((open, (next, listed))))
            },
        )
    }

    /// `open` as the engine takes it, each with search's candidates (none when search
    /// finds the booking unsearchable: it starts too soon, say), in one batch call.
    async fn with_candidates(&self, open: Vec<WireOpen>) -> anyhow::Result<Vec<OpenBooking>> {
        let mut bookings = Vec::with_capacity(open.len());
        let mut queries = Vec::with_capacity(open.len());
        for open in open {
            let booking = open
                .booking
                .context("core listed an open booking without the booking")?;
            queries.push(SearchCleanersRequest {
                lat: open.lat,
                lng: open.lng,
                radius_km: self.settings.radius_km,
                service: booking.service.clone(),
                service_kind: booking.service_kind,
                starts_at: booking.starts_at,
                duration_min: booking.duration_min,
                limit: self.settings.candidates,
                ..SearchCleanersRequest::default()
            });
            bookings.push(booking);
        }
        let mut search = self.upstreams.search.clone();
        let request = self
            .upstreams
            .to_search(SearchCleanersBatchRequest { queries })?;
        let answer = within(
            "search's SearchCleanersBatch",
            self.upstreams.search_timeout,
            search.search_cleaners_batch(request),
        )
        .await?;
        anyhow::ensure!(
            answer.results.len() == bookings.len(),
            "search answered {} of {} queries",
            answer.results.len(),
            bookings.len()
        );
        bookings
            .into_iter()
            .zip(answer.results)
            .map(|(booking, result)| {
                if !result.error.is_empty() {
                    tracing::info!(booking_id = %booking.id, error = %result.error, "booking not searchable; skipped");
                }
                let starts_at = booking
                    .starts_at
                    .as_ref()
                    .and_then(from_timestamp)
                    .context("an open booking without starts_at")?;
                let hits = result.response.map(|response| response.cleaners);
                let candidates = hits
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|hit| {
                        let zone: Zone = hit.timezone.parse().ok()?;
                        Some(Candidate {
                            day: local_day(starts_at, zone),
                            cleaner_id: hit.cleaner_id.parse().ok()?,
                            distance_km: hit.distance_km,
                            hourly_rate_cents: hit.hourly_rate_cents,
                            rating_avg: hit.rating_avg,
                            rating_count: hit.rating_count,
                            held_bookings: hit.held_bookings,
                        })
                    })
                    .collect();
                Ok(OpenBooking {
                    booking_id: booking.id.parse()?,
                    duration_min: booking.duration_min,
                    candidates,
                })
            })
            .collect()
    }

    /// Asks core to assign a batch of pairs; returns how many it assigned (the rest it
    /// refused, for reasons the next tick may not have: a conflict, a cancellation).
    async fn assign(&self, pairs: Vec<(Uuid, Uuid)>) -> anyhow::Result<usize> {
        let mut bookings = self.upstreams.bookings.clone();
        let request = self.upstreams.to_core(AssignBookingsRequest {
            pairs: pairs
                .iter()
                .map(|(booking_id, cleaner_id)| AssignBookingRequest {
                    booking_id: booking_id.to_string(),
                    cleaner_id: cleaner_id.to_string(),
                })
                .collect(),
        })?;
        let answer = within(
            "core's AssignBookings",
            self.upstreams.core_timeout,
            bookings.assign_bookings(request),
        )
        .await?;
        let mut assigned = 0;
        for result in answer.results {
            if result.outcome == "assigned" {
                assigned += 1;
            } else {
                tracing::info!(booking_id = %result.booking_id, cleaner_id = %result.cleaner_id, outcome = %result.outcome, message = %result.message, "assignment refused; next tick");
            }
        }
        Ok(assigned)
    }
}

/// `pairs` (booking, cleaner) in batches of about `size`, all of a cleaner's pairs in one
/// batch. Core locks the cleaners of a batch for its transaction, so batches in flight
/// together then never wait for each other (chunks in the engine's order shared cleaners,
/// and waiting on each other's locks was most of the time assigning took).
fn batches_by_cleaner(mut pairs: Vec<(Uuid, Uuid)>, size: usize) -> Vec<Vec<(Uuid, Uuid)>> {
    pairs.sort_unstable_by_key(|&(booking, cleaner)| (cleaner, booking));
    let mut batches: Vec<Vec<(Uuid, Uuid)>> = Vec::new();
    for pair in pairs {
        match batches.last_mut() {
            Some(batch)
                if batch.len() < size || batch.last().is_some_and(|last| last.1 == pair.1) =>
            {
                batch.push(pair);
            }
            _ => batches.push(vec![pair]),
        }
    }
    batches
}

/// `time`'s date in `zone`, as days since 1970-01-01.
fn local_day(time: DateTime<Utc>, zone: Zone) -> i32 {
    let date = time.with_timezone(&zone).date_naive();
    date.num_days_from_ce()
        - NaiveDate::from_ymd_opt(1970, 1, 1)
            .expect("a date")
            .num_days_from_ce()
}

/// A run's `mode` option, else `default`.
fn mode(options: &Options, default: Mode) -> Result<Mode, String> {
    match options.get("mode").map(String::as_str) {
        None => Ok(default),
        Some("cheapest") => Ok(Mode::Cheapest),
        Some("stable") => Ok(Mode::Stable),
        Some(other) => Err(format!("mode {other:?} is not \"cheapest\" or \"stable\"")),
    }
}

impl Job for AutoAssign {
    fn check_options(&self, options: &Options) -> Result<(), String> {
        if let Some(name) = options.keys().find(|name| *name != "mode") {
            return Err(format!("auto-assign takes only \"mode\" (got {name:?})"));
        }
        mode(options, self.settings.mode).map(|_| ())
    }

    fn run(&self, context: RunContext) -> JobFuture<'_> {
        Box::pin(async move {
            let mode = mode(&context.options, self.settings.mode).map_err(anyhow::Error::msg)?;
            if !self.flags.enabled(&AUTO_ASSIGN_ENABLED, Subject::default()) {
                return Ok(RunReport {
                    items: 0,
                    detail: Some("switched off by the flag auto-assign-enabled".to_owned()),
                });
            }
            let started = Instant::now();
            let concurrency = self.settings.concurrency.max(1);
            // Search works on one page while core lists the next.
            let with_candidates: Vec<OpenBooking> = self
                .open_bookings()
                .map_ok(|page| {
                    let chunks: Vec<anyhow::Result<Vec<WireOpen>>> = page
                        .chunks(SEARCH_BATCH)
                        .map(|chunk| Ok(chunk.to_vec()))
                        .collect();
                    stream::iter(chunks)
                })
                .try_flatten()
                .map_ok(|chunk| self.with_candidates(chunk))
                .try_buffered(concurrency)
                .try_collect::<Vec<Vec<OpenBooking>>>()
                .await?
                .into_iter()
                .flatten()
                .collect();
            let open_count = with_candidates.len();
            let without_candidates = with_candidates
                .iter()
                .filter(|booking| booking.candidates.is_empty())
                .count();
            let searched = started.elapsed();
            let round = plan(&with_candidates, mode);
            let solved = started.elapsed();
            let planned = round.assigned.len();
            let batches = batches_by_cleaner(round.assigned, ASSIGN_BATCH);
            let assigned: usize = stream::iter(batches)
                .map(|batch| self.assign(batch))
                .buffer_unordered(concurrency)
                .try_collect::<Vec<usize>>()
                .await?
                .into_iter()
                .sum();
            let refused = planned - assigned;
            let done = started.elapsed();
            let mode = match mode {
                Mode::Cheapest => "cheapest",
                Mode::Stable => "stable",
            };
            Ok(RunReport {
                items: assigned as u64,
                detail: Some(format!(
                    "{mode}: assigned {assigned} of {} open bookings ({without_candidates} \
                     without a candidate, {} unmatched, {refused} refused by core); total cost \
                     {:.3}, {} blocking pairs; listed with candidates in {:.2} s, solved {:.2} \
                     s, assigned {:.2} s",
                    open_count,
                    round.unassigned.len(),
                    round.total_cost,
                    round.blocking_pairs,
                    searched.as_secs_f64(),
                    (solved - searched).as_secs_f64(),
                    (done - solved).as_secs_f64(),
                )),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleaners_pairs_stay_in_one_batch() {
        let cleaners: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
        // Cleaner 0 has five bookings, the others one each.
        let pairs: Vec<(Uuid, Uuid)> = (0..11usize)
            .map(|n| (Uuid::new_v4(), cleaners[n.saturating_sub(4)]))
            .collect();
        let batches = batches_by_cleaner(pairs.clone(), 3);
        let mut all: Vec<(Uuid, Uuid)> = batches.concat();
        all.sort_unstable();
        let mut expected = pairs;
        expected.sort_unstable();
        assert_eq!(all, expected, "every pair once");
        for cleaner in &cleaners {
            let holding = batches
                .iter()
                .filter(|batch| batch.iter().any(|pair| pair.1 == *cleaner))
                .count();
            assert_eq!(holding, 1, "a cleaner's pairs in one batch");
        }
        // A batch grows past its size only to keep a cleaner's pairs together.
        for batch in batches.iter().filter(|batch| batch.len() > 3) {
            assert!(
                batch[2..].iter().all(|pair| pair.1 == batch[2].1),
                "{batch:?}"
            );
        }
        assert!(batches.len() >= 3);
    }

    #[test]
    fn a_bookings_day_is_the_cleaners_local_date() {
        let late: DateTime<Utc> = "2026-11-30T23:30:00Z".parse().unwrap();
        let utc = local_day(late, Zone::UTC);
        // Already 1 December in Berlin.
        assert_eq!(
            local_day(late, Zone::named("Europe/Berlin").unwrap()),
            utc + 1
        );
        assert_eq!(
            local_day("1970-01-02T00:00:00Z".parse().unwrap(), Zone::UTC),
            1
        );
        assert_eq!(mode(&Options::new(), Mode::Stable), Ok(Mode::Stable));
        let stable: Options = [("mode".to_owned(), "stable".to_owned())].into();
        assert_eq!(mode(&stable, Mode::Cheapest), Ok(Mode::Stable));
    }
}
