//! Recommendations: item-item collaborative filtering over who booked whom ("customers who
//! booked X also booked Y"), blended with the search score's content signals (rating,
//! price, nearness to the address), each with the reason it was chosen.
//!
//! Similarity of two cleaners is the cosine of their customer sets:
//! `co(x, y) / sqrt(customers(x) · customers(y))`. A customer's affinity for a cleaner is
//! the sum of that cleaner's similarities to the cleaners the customer booked; the reason
//! names the most similar one. Two cleaners are similar only when at least
//! [`MIN_FELLOWS_TOGETHER`] other customers booked both, so that no recommendation tells of
//! one other customer's bookings. The blend is `0.5 · content + 0.5 · affinity / best
//! affinity`, where content is the search score over a 25 km radius; cleaners the customer
//! booked before count as fully affine. A customer with no history gets the content
//! ranking: well rated, near and fair.

use std::collections::HashMap;

use spruce_domain::reason::FieldError;
use uuid::Uuid;

use super::{
    Applied, IdMap, distance_km,
    index::SearchIndex,
    query::{RawQuery, SearchQuery},
    score::score,
};

/// How far from the address recommendations reach, in km.
pub const RADIUS_KM: f64 = 25.0;
/// Bounds on the work of one customer's affinities: cleaners of their history looked at,
/// and fellow customers per cleaner.
const MAX_HISTORY: usize = 50;
const MAX_FELLOWS: usize = 1_000;
/// Two cleaners count as booked together only when at least this many other customers
/// booked both: fewer would let a recommendation reveal what one named person booked.
pub const MIN_FELLOWS_TOGETHER: u32 = 3;
/// Content candidates considered besides the affine ones.
const CONTENT_CANDIDATES: usize = 200;

/// Who booked whom, kept per booking so that each counts once. People are numbered as
/// they first appear, so that a booking costs tens of bytes, not hundreds: the 100k scale
/// set's million bookings are held for every search replica.
#[derive(Debug, Default)]
pub struct History {
    bookings: IdMap<Held>,
    /// Each person's id by number, and back.
    ids: Vec<Uuid>,
    numbers: IdMap<u32>,
    /// By a customer's number: the cleaners they booked with how often, by number, sorted.
    by_customer: Vec<Counts>,
    /// By a cleaner's number: their customers with how often, by number, sorted.
    by_cleaner: Vec<Counts>,
}

/// People by number with a count each, sorted by number.
type Counts = Vec<(u32, u32)>;

/// A booking as the history holds it: [`Pair`] with people by number.
#[derive(Debug, Clone, Copy)]
struct Held {
    version: i64,
    customer: u32,
    /// [`NO_CLEANER`] until assigned.
    cleaner: u32,
    counted: bool,
}

const NO_CLEANER: u32 = u32::MAX;

/// A booking as the history holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub customer_id: Uuid,
    /// `None` until assigned; cancelled bookings count for no one.
    pub cleaner_id: Option<Uuid>,
    pub counted: bool,
    pub version: i64,
}

/// A cleaner's affinity for a customer and the booked cleaner it comes from most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affinity {
    pub cleaner_id: Uuid,
    pub affinity: f64,
    /// The customer's cleaner this one is most like; `None` for one they booked themselves.
    pub because: Option<Uuid>,
}

/// Why a cleaner is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Customers who booked this cleaner of theirs also booked the recommended one.
    AlsoBooked(Uuid),
    /// The customer booked them before.
    BookedBefore,
    /// Well rated, near and fairly priced.
    WellRatedNearby,
}

/// One recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendation {
    pub id: Uuid,
    pub distance_km: f64,
    pub score: f64,
    pub reason: Reason,
}

impl Recommendation {
    /// The sentence that tells the customer why, in words fit for the app; `None` when the
    /// cleaner is no longer in `index`.
    pub fn describe(&self, index: &SearchIndex) -> Option<String> {
        let cleaner = index.get(self.id)?;
        let name = &cleaner.full_name;
        Some(match self.reason {
            Reason::AlsoBooked(because) => match index.get(because) {
                Some(theirs) => format!(
                    "Customers who booked {} also booked {name}",
                    theirs.full_name
                ),
                None => format!("Customers with cleaners like yours also booked {name}"),
            },
            Reason::BookedBefore => format!("You booked {name} before"),
            Reason::WellRatedNearby => match cleaner.mean_rating() {
                Some(rating) => format!(
                    "Rated {rating:.1} from {} reviews, {:.1} km away",
                    cleaner.rating_count, self.distance_km
                ),
                None => format!("New on Spruce, {:.1} km away", self.distance_km),
            },
        })
    }
}

/// The most recommendations one request returns, and how many when none is asked.
pub const MAX_RECOMMENDATIONS: u32 = 50;
pub const DEFAULT_RECOMMENDATIONS: u32 = 10;

/// What a customer asks recommendations for, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendations {
    /// Latitude and longitude of the address.
    pub at: (f64, f64),
    pub limit: usize,
}

impl Recommendations {
    /// Checks a point and a limit (0: the default).
    ///
    /// # Errors
    /// One field error per value out of range.
    pub fn check(lat: f64, lng: f64, limit: u32) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(-90.0..=90.0).contains(&lat) {
            errors.push(FieldError::new("lat", "must be from -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&lng) {
            errors.push(FieldError::new("lng", "must be from -180 to 180"));
        }
        if limit > MAX_RECOMMENDATIONS {
            errors.push(FieldError::new("limit", "must be from 1 to 50"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let limit = if limit == 0 {
            DEFAULT_RECOMMENDATIONS
        } else {
            limit
        };
        Ok(Recommendations {
            at: (lat, lng),
            limit: limit as usize,
        })
    }
}

/// Adds `delta` to `other`'s count in `counts`, dropping it at zero.
fn add(counts: &mut Counts, other: u32, delta: i32) {
    match counts.binary_search_by_key(&other, |(number, _)| *number) {
        Ok(at) => {
            let count = &mut counts[at].1;
            *count = count.saturating_add_signed(delta);
            if *count == 0 {
                counts.remove(at);
            }
        }
        Err(at) if delta > 0 => counts.insert(at, (other, delta.unsigned_abs())),
        Err(_) => {}
    }
}

fn count_of(counts: &Counts, other: u32) -> u32 {
    counts
        .binary_search_by_key(&other, |(number, _)| *number)
        .map_or(0, |at| counts[at].1)
}

impl History {
    /// Applies a booking as it now is: counted when it has a cleaner and is not cancelled.
    pub fn apply(&mut self, booking_id: Uuid, pair: Pair) -> Applied {
        let previous = self.bookings.get(&booking_id).copied();
        if previous.is_some_and(|held| pair.version <= held.version) {
            return Applied::Stale;
        }
        if let Some(held) = previous {
            self.count(held, -1);
        }
        let held = Held {
            version: pair.version,
            customer: self.number(pair.customer_id),
            cleaner: pair.cleaner_id.map_or(NO_CLEANER, |id| self.number(id)),
            counted: pair.counted,
        };
        self.count(held, 1);
        self.bookings.insert(booking_id, held);
        Applied::Changed
    }

    /// Returns the number of `id`, numbering them if new.
    fn number(&mut self, id: Uuid) -> u32 {
        if let Some(&number) = self.numbers.get(&id) {
            return number;
        }
        let number = u32::try_from(self.ids.len()).expect("fewer than 4 billion people");
        self.ids.push(id);
        self.numbers.insert(id, number);
        self.by_customer.push(Counts::new());
        self.by_cleaner.push(Counts::new());
        number
    }

    fn count(&mut self, held: Held, delta: i32) {
        if held.counted && held.cleaner != NO_CLEANER {
            add(
                &mut self.by_customer[held.customer as usize],
                held.cleaner,
                delta,
            );
            add(
                &mut self.by_cleaner[held.cleaner as usize],
                held.customer,
                delta,
            );
        }
    }

    /// Returns how many live bookings `customer_id` holds with `cleaner_id`.
    pub fn times_booked(&self, customer_id: Uuid, cleaner_id: Uuid) -> u32 {
        match (
            self.numbers.get(&customer_id),
            self.numbers.get(&cleaner_id),
        ) {
            (Some(&customer), Some(&cleaner)) => {
                count_of(&self.by_customer[customer as usize], cleaner)
            }
            _ => 0,
        }
    }

    /// The cleaners customer `number` booked.
    fn booked(&self, number: u32) -> &Counts {
        &self.by_customer[number as usize]
    }

    /// The customers who booked cleaner `number`.
    fn customers(&self, number: u32) -> &Counts {
        &self.by_cleaner[number as usize]
    }

    /// Returns every cleaner's affinity for `customer_id`, highest first (ties by id), the
    /// customer's own cleaners included at full affinity.
    pub fn affinities(&self, customer_id: Uuid) -> Vec<Affinity> {
        let Some(&customer) = self.numbers.get(&customer_id) else {
            return Vec::new();
        };
        let booked = self.booked(customer);
        if booked.is_empty() {
            return Vec::new();
        }
        // The bounds keep the lowest ids, so that the answer never depends on numbering.
        let by_id = |numbers: &mut Vec<u32>| {
            numbers.sort_unstable_by_key(|number| self.ids[*number as usize]);
        };
        let mut history: Vec<u32> = booked.iter().map(|(number, _)| *number).collect();
        by_id(&mut history);
        history.truncate(MAX_HISTORY);
        let customers_of = |cleaner: u32| self.customers(cleaner).len();
        // For each other cleaner: the summed similarity and the strongest source.
        let mut found: HashMap<Uuid, (f64, f64, Uuid)> = HashMap::new();
        for &source in &history {
            let mut fellows: Vec<u32> = self
                .customers(source)
                .iter()
                .map(|(number, _)| *number)
                .filter(|fellow| *fellow != customer)
                .collect();
            by_id(&mut fellows);
            fellows.truncate(MAX_FELLOWS);
            let mut co: HashMap<u32, u32> = HashMap::new();
            for &fellow in &fellows {
                for &(other, _) in self.booked(fellow) {
                    if count_of(booked, other) == 0 {
                        *co.entry(other).or_insert(0) += 1;
                    }
                }
            }
            let source_customers = customers_of(source) as f64;
            let source_id = self.ids[source as usize];
            for (other, together) in co {
                if together < MIN_FELLOWS_TOGETHER {
                    continue;
                }
                let similarity =
                    f64::from(together) / (source_customers * customers_of(other) as f64).sqrt();
                let entry = found
                    .entry(self.ids[other as usize])
                    .or_insert((0.0, 0.0, source_id));
                entry.0 += similarity;
                if similarity > entry.1 || (similarity == entry.1 && source_id < entry.2) {
                    entry.1 = similarity;
                    entry.2 = source_id;
                }
            }
        }
        let best = found.values().map(|entry| entry.0).fold(0.0, f64::max);
        let mut affinities: Vec<Affinity> = found
            .into_iter()
            .map(|(cleaner_id, (sum, _, because))| Affinity {
                cleaner_id,
                affinity: if best > 0.0 { sum / best } else { 0.0 },
                because: Some(because),
            })
            .chain(history.iter().map(|number| Affinity {
                cleaner_id: self.ids[*number as usize],
                affinity: 1.0,
                because: None,
            }))
            .collect();
        affinities.sort_unstable_by(|a, b| {
            b.affinity
                .total_cmp(&a.affinity)
                .then(a.cleaner_id.cmp(&b.cleaner_id))
        });
        affinities
    }
}

/// Ranks cleaners who serve `at` for a customer with these `affinities` (see
/// [`History::affinities`]); best first, at most `limit`.
pub fn recommend(
    index: &SearchIndex,
    affinities: &[Affinity],
    at: (f64, f64),
    limit: usize,
) -> Vec<Recommendation> {
    let content = SearchQuery::parse(
        &RawQuery {
            lat: Some(at.0),
            lng: Some(at.1),
            radius_km: Some(RADIUS_KM),
            limit: Some(CONTENT_CANDIDATES.min(super::query::MAX_LIMIT)),
            ..RawQuery::default()
        },
        chrono::Utc::now(),
    );
    let mut candidates: HashMap<Uuid, (f64, f64, Reason)> = HashMap::new();
    if let Ok(query) = content {
        for hit in index.search(&query).hits {
            candidates.insert(
                hit.id,
                (hit.distance_km, 0.5 * hit.score, Reason::WellRatedNearby),
            );
        }
    }
    for affinity in affinities {
        let Some(cleaner) = index.get(affinity.cleaner_id) else {
            continue;
        };
        let distance = distance_km(at, cleaner.area);
        if distance > RADIUS_KM || distance > cleaner.service_radius_km {
            continue;
        }
        let content = 0.5 * score(cleaner, distance, RADIUS_KM);
        let reason = affinity
            .because
            .map_or(Reason::BookedBefore, Reason::AlsoBooked);
        candidates.insert(
            affinity.cleaner_id,
            (distance, content + 0.5 * affinity.affinity, reason),
        );
    }
    let mut ranked: Vec<Recommendation> = candidates
        .into_iter()
        .map(|(id, (distance_km, score, reason))| Recommendation {
            id,
            distance_km,
            score,
            reason,
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    ranked.truncate(limit);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cleaner::{Cleaner, Services};

    fn cleaner(n: u128, lat: f64) -> Cleaner {
        Cleaner::new(
            Uuid::from_u128(n),
            format!("Cleaner {n}"),
            String::new(),
            Services::parse(["standard"]).unwrap(),
            (lat, 13.40),
            30.0,
            3_000,
            (4.0, 10),
            spruce_domain::zone::Zone::UTC,
            Vec::new(),
            Vec::new(),
        )
    }

    fn booked(history: &mut History, customer: u128, cleaner: u128) {
        history.apply(
            Uuid::new_v4(),
            Pair {
                customer_id: Uuid::from_u128(customer),
                cleaner_id: Some(Uuid::from_u128(cleaner)),
                counted: true,
                version: 1,
            },
        );
    }

    #[test]
    fn a_planted_neighbour_comes_first_and_says_why() {
        // Cleaners 1..=20 near each other; customers 100.. book 1 and 2 together, others
        // spread over the rest; customer 999 booked 1 only.
        let index =
            SearchIndex::from_cleaners((1..=20).map(|n| cleaner(n, 52.50 + n as f64 * 0.001)));
        let mut history = History::default();
        for customer in 100..130 {
            booked(&mut history, customer, 1);
            booked(&mut history, customer, 2);
        }
        for customer in 200..260u128 {
            booked(&mut history, customer, 3 + customer % 17);
            booked(&mut history, customer, 3 + (customer + 5) % 17);
        }
        booked(&mut history, 999, 1);
        let affinities = history.affinities(Uuid::from_u128(999));
        let top = recommend(&index, &affinities, (52.51, 13.40), 5);
        let planted = top
            .iter()
            .find(|recommendation| recommendation.id == Uuid::from_u128(2))
            .expect("the planted neighbour is in the top 5");
        assert_eq!(planted.reason, Reason::AlsoBooked(Uuid::from_u128(1)));
        let own = top
            .iter()
            .find(|recommendation| recommendation.id == Uuid::from_u128(1))
            .expect("their own cleaner is there too");
        assert_eq!(own.reason, Reason::BookedBefore);
        // The two lead: the rest share no customers with them.
        assert!(
            top[..2]
                .iter()
                .all(|item| item.id == own.id || item.id == planted.id)
        );
    }

    #[test]
    fn fewer_than_three_other_customers_booking_both_reveal_nothing() {
        let index =
            SearchIndex::from_cleaners((1..=4).map(|n| cleaner(n, 52.50 + n as f64 * 0.001)));
        for fellows in [1_u128, 2, 3] {
            let mut history = History::default();
            for customer in 0..fellows {
                booked(&mut history, 100 + customer, 1);
                booked(&mut history, 100 + customer, 2);
            }
            booked(&mut history, 999, 1);
            let affinities = history.affinities(Uuid::from_u128(999));
            let told = recommend(&index, &affinities, (52.50, 13.40), 4)
                .iter()
                .any(|item| item.reason == Reason::AlsoBooked(Uuid::from_u128(1)));
            assert_eq!(told, fellows >= 3, "{fellows} fellows");
            let ranked_for_it = affinities
                .iter()
                .any(|affinity| affinity.cleaner_id == Uuid::from_u128(2));
            assert_eq!(ranked_for_it, fellows >= 3, "{fellows} fellows");
        }
    }

    #[test]
    fn a_new_customer_gets_the_content_ranking() {
        let index =
            SearchIndex::from_cleaners((1..=5).map(|n| cleaner(n, 52.50 + n as f64 * 0.01)));
        let top = recommend(
            &index,
            &History::default().affinities(Uuid::new_v4()),
            (52.51, 13.40),
            3,
        );
        assert_eq!(top.len(), 3);
        assert!(
            top.iter()
                .all(|item| item.reason == Reason::WellRatedNearby)
        );
        assert_eq!(top[0].id, Uuid::from_u128(1), "the nearest of equals");
    }

    #[test]
    fn cancelling_and_redelivery_keep_counts_right() {
        let mut history = History::default();
        let booking = Uuid::new_v4();
        let pair = |counted, version| Pair {
            customer_id: Uuid::from_u128(1),
            cleaner_id: Some(Uuid::from_u128(2)),
            counted,
            version,
        };
        assert_eq!(history.apply(booking, pair(true, 1)), Applied::Changed);
        assert_eq!(history.apply(booking, pair(true, 1)), Applied::Stale);
        let (customer, cleaner) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(history.times_booked(customer, cleaner), 1);
        assert_eq!(history.apply(booking, pair(false, 2)), Applied::Changed);
        assert_eq!(history.times_booked(customer, cleaner), 0);
        assert!(history.affinities(customer).is_empty());
        assert_eq!(history.apply(booking, pair(true, 1)), Applied::Stale);
    }
}
