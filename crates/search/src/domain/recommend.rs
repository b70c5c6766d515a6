//! Recommendations: item-item collaborative filtering over who booked whom ("customers who
//! booked X also booked Y"), blended with the search score's content signals (rating,
//! price, nearness to the address), each with the reason it was chosen.
//!
//! Similarity of two cleaners is the cosine of their customer sets:
//! `co(x, y) / sqrt(customers(x) · customers(y))`. A customer's affinity for a cleaner is
//! the sum of that cleaner's similarities to the cleaners the customer booked; the reason
//! names the most similar one. The blend is `0.5 · content + 0.5 · affinity / best
//! affinity`, where content is the search score over a 25 km radius; cleaners the customer
//! booked before count as fully affine. A customer with no history gets the content
//! ranking: well rated, near and fair.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    distance_km,
    index::SearchIndex,
    query::{RawQuery, SearchQuery},
    readmodel::Applied,
    score::score,
};

/// How far from the address recommendations reach, in km.
pub const RADIUS_KM: f64 = 25.0;
/// Bounds on the work of one customer's affinities: cleaners of their history looked at,
/// and fellow customers per cleaner.
const MAX_HISTORY: usize = 50;
const MAX_FELLOWS: usize = 1_000;
/// Content candidates considered besides the affine ones.
const CONTENT_CANDIDATES: usize = 200;

/// Who booked whom, kept per booking so that each counts once.
#[derive(Debug, Default)]
pub struct History {
    bookings: HashMap<Uuid, Pair>,
    by_customer: HashMap<Uuid, HashMap<Uuid, u32>>,
    by_cleaner: HashMap<Uuid, HashMap<Uuid, u32>>,
}

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

fn add(map: &mut HashMap<Uuid, HashMap<Uuid, u32>>, key: Uuid, other: Uuid, delta: i32) {
    let inner = map.entry(key).or_default();
    let count = inner.entry(other).or_insert(0);
    *count = count.saturating_add_signed(delta);
    if *count == 0 {
        inner.remove(&other);
        if inner.is_empty() {
            map.remove(&key);
        }
    }
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
        self.count(pair, 1);
        self.bookings.insert(booking_id, pair);
        Applied::Changed
    }

    fn count(&mut self, pair: Pair, delta: i32) {
        if let (true, Some(cleaner_id)) = (pair.counted, pair.cleaner_id) {
            add(&mut self.by_customer, pair.customer_id, cleaner_id, delta);
            add(&mut self.by_cleaner, cleaner_id, pair.customer_id, delta);
        }
    }

    /// Returns the cleaners `customer_id` booked, with how often.
    pub fn booked_by(&self, customer_id: Uuid) -> Option<&HashMap<Uuid, u32>> {
        self.by_customer.get(&customer_id)
    }

    /// Returns every cleaner's affinity for `customer_id`, highest first (ties by id), the
    /// customer's own cleaners included at full affinity.
    pub fn affinities(&self, customer_id: Uuid) -> Vec<Affinity> {
        let Some(booked) = self.by_customer.get(&customer_id) else {
            return Vec::new();
        };
        let mut history: Vec<Uuid> = booked.keys().copied().collect();
        history.sort_unstable();
        history.truncate(MAX_HISTORY);
        let customers_of = |cleaner: &Uuid| self.by_cleaner.get(cleaner).map_or(0, HashMap::len);
        // For each other cleaner: the summed similarity and the strongest source.
        let mut found: HashMap<Uuid, (f64, f64, Uuid)> = HashMap::new();
        for source in &history {
            let Some(fellows) = self.by_cleaner.get(source) else {
                continue;
            };
            let mut fellows: Vec<Uuid> = fellows
                .keys()
                .copied()
                .filter(|fellow| *fellow != customer_id)
                .collect();
            fellows.sort_unstable();
            fellows.truncate(MAX_FELLOWS);
            let mut co: HashMap<Uuid, u32> = HashMap::new();
            for fellow in &fellows {
                for other in self
                    .by_customer
                    .get(fellow)
                    .into_iter()
                    .flatten()
                    .map(|(id, _)| id)
                {
                    if !booked.contains_key(other) {
                        *co.entry(*other).or_insert(0) += 1;
                    }
                }
            }
            let source_customers = customers_of(source) as f64;
            for (other, together) in co {
                let similarity =
                    f64::from(together) / (source_customers * customers_of(&other) as f64).sqrt();
                let entry = found.entry(other).or_insert((0.0, 0.0, *source));
                entry.0 += similarity;
                if similarity > entry.1 || (similarity == entry.1 && *source < entry.2) {
                    entry.1 = similarity;
                    entry.2 = *source;
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
            .chain(history.iter().map(|cleaner_id| Affinity {
                cleaner_id: *cleaner_id,
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
        let distance = distance_km(at, cleaner.home);
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
            chrono_tz::UTC,
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
        assert_eq!(
            history.booked_by(Uuid::from_u128(1)).unwrap()[&Uuid::from_u128(2)],
            1
        );
        assert_eq!(history.apply(booking, pair(false, 2)), Applied::Changed);
        assert!(history.booked_by(Uuid::from_u128(1)).is_none());
        assert_eq!(history.apply(booking, pair(true, 1)), Applied::Stale);
    }
}
