//! The read model: the cleaners of the search index with the aggregate versions that keep
//! events idempotent, and the live bookings that make cleaners busy.
//!
//! It is built from core's snapshot, then kept current by events. An event at or below the
//! version held for its aggregate is stale and changes nothing, so a redelivered or
//! overtaken event is harmless, and so is every event that queued while the snapshot was
//! read.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

pub use super::Applied;
use super::{
    IdMap,
    cleaner::{Cleaner, TimeRange},
    index::SearchIndex,
    recommend::{History, Pair},
};

/// How long after its end a booking is still remembered (its version with it), so that a
/// late event about it is recognised as stale; after that, events about it are ignored.
const REMEMBER_ENDED_FOR: Duration = Duration::hours(1);

/// A booking as the read model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    pub cleaner_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Requested, confirmed or in progress: it holds the cleaner's time.
    pub holds: bool,
    pub version: i64,
}

impl Booking {
    fn busy(&self) -> Option<(Uuid, TimeRange)> {
        let cleaner_id = self.cleaner_id.filter(|_| self.holds)?;
        Some((cleaner_id, (self.starts_at, self.ends_at)))
    }
}

/// The searchable cleaners and what keeps them current.
#[derive(Debug, Default)]
pub struct ReadModel {
    index: SearchIndex,
    cleaner_versions: IdMap<i64>,
    bookings: IdMap<Booking>,
    history: History,
}

/// Collects a snapshot, then builds the read model at once.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    cleaners: Vec<Cleaner>,
    cleaner_versions: IdMap<i64>,
    bookings: IdMap<Booking>,
    history: History,
}

impl SnapshotBuilder {
    /// Adds a cleaner at `version` with their live bookings (their `busy` is rebuilt from
    /// these).
    pub fn add(&mut self, version: i64, mut cleaner: Cleaner, bookings: Vec<(Uuid, Booking)>) {
        cleaner.busy = bookings
            .iter()
            .filter_map(|(_, booking)| booking.busy())
            .filter(|(owner, _)| *owner == cleaner.id)
            .map(|(_, range)| range)
            .collect();
        self.cleaner_versions.insert(cleaner.id, version);
        self.bookings.extend(bookings);
        self.cleaners.push(cleaner);
    }

    /// Adds who booked whom (every booking with a cleaner that was not cancelled).
    pub fn add_pair(&mut self, booking_id: Uuid, pair: Pair) {
        self.history.apply(booking_id, pair);
    }

    /// Builds the read model (each grid cell sorted once).
    pub fn finish(self) -> ReadModel {
        ReadModel {
            index: SearchIndex::from_cleaners(self.cleaners),
            cleaner_versions: self.cleaner_versions,
            bookings: self.bookings,
            history: self.history,
        }
    }
}

impl ReadModel {
    /// Returns the index searches run on.
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Returns who booked whom.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Applies who booked whom as a booking now is.
    pub fn apply_pair(&mut self, booking_id: Uuid, pair: Pair) -> Applied {
        self.history.apply(booking_id, pair)
    }

    /// Returns how many bookings it remembers.
    pub fn bookings_len(&self) -> usize {
        self.bookings.len()
    }

    /// Applies a cleaner's whole profile at `version`; their bookings are kept.
    pub fn apply_cleaner(&mut self, version: i64, mut cleaner: Cleaner) -> Applied {
        if self
            .cleaner_versions
            .get(&cleaner.id)
            .is_some_and(|held| version <= *held)
        {
            return Applied::Stale;
        }
        cleaner.busy = match self.index.get(cleaner.id) {
            Some(previous) => previous.busy.clone(),
            // New here: bookings may have arrived first.
            None => self
                .bookings
                .values()
                .filter_map(Booking::busy)
                .filter(|(owner, _)| *owner == cleaner.id)
                .map(|(_, range)| range)
                .collect(),
        };
        self.cleaner_versions.insert(cleaner.id, version);
        self.index.upsert(cleaner);
        Applied::Changed
    }

    /// Takes a cleaner out of search at `version` (their email is not verified, or they left):
    /// nobody finds or is recommended them until a newer profile lists them again.
    pub fn withdraw_cleaner(&mut self, version: i64, id: Uuid) -> Applied {
        if self
            .cleaner_versions
            .get(&id)
            .is_some_and(|held| version <= *held)
        {
            return Applied::Stale;
        }
        self.cleaner_versions.insert(id, version);
        self.index.remove(id);
        Applied::Changed
    }

    /// Applies a booking as it now is.
    pub fn apply_booking(&mut self, id: Uuid, booking: Booking, now: DateTime<Utc>) -> Applied {
        let previous = self.bookings.get(&id).copied();
        match previous {
            Some(held) if booking.version <= held.version => return Applied::Stale,
            None if booking.ends_at + REMEMBER_ENDED_FOR < now => return Applied::Stale,
            _ => {}
        }
        if let Some((cleaner_id, range)) = previous.as_ref().and_then(Booking::busy) {
            self.index
                .update_busy(cleaner_id, |busy| busy.retain(|held| *held != range));
        }
        if let Some((cleaner_id, range)) = booking.busy() {
            self.index.update_busy(cleaner_id, |busy| busy.push(range));
        }
        self.bookings.insert(id, booking);
        Applied::Changed
    }

    /// Forgets bookings that ended long enough ago, and frees their cleaners' time.
    pub fn prune(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.bookings.len();
        let index = &mut self.index;
        self.bookings.retain(|_, booking| {
            if booking.ends_at + REMEMBER_ENDED_FOR >= now {
                return true;
            }
            if let Some((cleaner_id, range)) = booking.busy() {
                index.update_busy(cleaner_id, |busy| busy.retain(|held| *held != range));
            }
            false
        });
        before - self.bookings.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::{
        cleaner::{Services, Window},
        query::{RawQuery, SearchQuery},
    };

    fn cleaner(id: Uuid, rate: i64) -> Cleaner {
        Cleaner::new(
            id,
            "Ann".to_owned(),
            String::new(),
            Services::parse(["standard"]).unwrap(),
            (52.52, 13.40),
            20.0,
            rate,
            (0.0, 0),
            spruce_domain::zone::Zone::UTC,
            (0..7)
                .map(|weekday| Window {
                    weekday,
                    start_minute: 0,
                    end_minute: 24 * 60,
                })
                .collect(),
            Vec::new(),
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 6, 3, 6, 0, 0).unwrap()
    }

    fn booking(cleaner_id: Uuid, holds: bool, version: i64) -> Booking {
        Booking {
            cleaner_id: Some(cleaner_id),
            starts_at: now() + Duration::hours(2),
            ends_at: now() + Duration::hours(4),
            holds,
            version,
        }
    }

    /// Whether a search for the booking's window finds the cleaner.
    fn is_free(model: &ReadModel) -> bool {
        let raw = RawQuery {
            lat: Some(52.52),
            lng: Some(13.40),
            starts_at: Some(now() + Duration::hours(3)),
            duration_min: Some(60),
            ..RawQuery::default()
        };
        let query = SearchQuery::parse(&raw, now()).unwrap();
        !model.index().search(&query).hits.is_empty()
    }

    #[test]
    fn events_at_or_below_the_held_version_change_nothing() {
        let id = Uuid::new_v4();
        let mut builder = SnapshotBuilder::default();
        builder.add(3, cleaner(id, 2_000), Vec::new());
        let mut model = builder.finish();
        assert_eq!(model.apply_cleaner(3, cleaner(id, 9_000)), Applied::Stale);
        assert_eq!(model.apply_cleaner(2, cleaner(id, 9_000)), Applied::Stale);
        assert_eq!(model.index().get(id).unwrap().hourly_rate_cents, 2_000);
        assert_eq!(model.apply_cleaner(4, cleaner(id, 3_000)), Applied::Changed);
        assert_eq!(model.index().get(id).unwrap().hourly_rate_cents, 3_000);
    }

    #[test]
    fn a_booking_holds_the_cleaner_until_cancelled_whatever_arrives_late() {
        let id = Uuid::new_v4();
        let booking_id = Uuid::new_v4();
        let mut builder = SnapshotBuilder::default();
        builder.add(
            1,
            cleaner(id, 2_000),
            vec![(booking_id, booking(id, true, 2))],
        );
        let mut model = builder.finish();
        assert!(!is_free(&model));
        // The creation event queued while the snapshot was read.
        let created = booking(id, true, 1);
        assert_eq!(
            model.apply_booking(booking_id, created, now()),
            Applied::Stale
        );
        assert_eq!(
            model.apply_booking(booking_id, booking(id, false, 3), now()),
            Applied::Changed
        );
        assert!(is_free(&model));
        // A profile change keeps the (now empty) bookings; a redelivered hold stays stale.
        model.apply_cleaner(2, cleaner(id, 2_500));
        assert_eq!(
            model.apply_booking(booking_id, booking(id, true, 2), now()),
            Applied::Stale
        );
        assert!(is_free(&model));
    }

    #[test]
    fn bookings_that_arrive_before_their_cleaner_count() {
        let id = Uuid::new_v4();
        let mut model = ReadModel::default();
        model.apply_booking(Uuid::new_v4(), booking(id, true, 1), now());
        model.apply_cleaner(1, cleaner(id, 2_000));
        assert!(!is_free(&model));
    }

    #[test]
    fn ended_bookings_are_forgotten() {
        let id = Uuid::new_v4();
        let booking_id = Uuid::new_v4();
        let mut model = ReadModel::default();
        model.apply_cleaner(1, cleaner(id, 2_000));
        model.apply_booking(booking_id, booking(id, true, 1), now());
        assert_eq!(model.prune(now()), 0);
        let later = now() + Duration::hours(6);
        assert_eq!(model.prune(later), 1);
        assert!(model.index().get(id).unwrap().busy.is_empty());
        assert_eq!(
            model.apply_booking(booking_id, booking(id, true, 1), later),
            Applied::Stale
        );
    }
}
