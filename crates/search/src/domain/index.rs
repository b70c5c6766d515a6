//! The search index: the read model's cleaners by id, their homes in an R-tree (rstar, which
//! takes inserts and removals as events arrive), and the search over both.
//!
//! Homes are points on the unit sphere in three dimensions, so a straight-line (chord)
//! distance grows with the great-circle distance. A search walks the homes nearest first and
//! stops at its radius, or earlier: nearness is part of the score, so once the page is full
//! and even a perfect cleaner at the current distance could not beat its last hit, nobody
//! farther can either. The exact haversine distance filters and scores each candidate.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rstar::{RTree, primitives::GeomWithData};
use uuid::Uuid;

use super::{
    cleaner::{Cleaner, LocalStart, local_start},
    distance_km,
    query::{Cursor, SearchQuery},
    score::{best_possible_score, score},
};

const EARTH_RADIUS_KM: f64 = 6371.0;

/// A home in the tree, with the slot of its cleaner.
type Home = GeomWithData<[f64; 3], u32>;

/// One cleaner found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: Uuid,
    pub distance_km: f64,
    pub score: f64,
}

/// A page of hits, best first, and where the next page starts (absent on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub hits: Vec<Hit>,
    pub next: Option<Cursor>,
}

/// The cleaners and the spatial index over their homes.
#[derive(Default)]
pub struct SearchIndex {
    /// Cleaners by slot (a search reaches them from the tree without hashing).
    cleaners: Vec<Option<Cleaner>>,
    slots: HashMap<Uuid, u32>,
    free: Vec<u32>,
    homes: RTree<Home>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SearchIndex({} cleaners)", self.cleaners.len())
    }
}

fn unit_vector((lat, lng): (f64, f64)) -> [f64; 3] {
    let (lat, lng) = (lat.to_radians(), lng.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

fn home_of(cleaner: &Cleaner, slot: u32) -> Home {
    GeomWithData::new(unit_vector(cleaner.home), slot)
}

/// The chord of the unit sphere that spans `km` of the Earth's surface.
fn chord_of(km: f64) -> f64 {
    2.0 * (km / (2.0 * EARTH_RADIUS_KM)).sin()
}

/// Orders hits best first: higher score, then lower id.
fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
}

impl SearchIndex {
    /// Builds the index from a snapshot at once (bulk loading packs the tree best).
    pub fn from_cleaners(cleaners: impl IntoIterator<Item = Cleaner>) -> Self {
        let mut index = SearchIndex::default();
        for cleaner in cleaners {
            if let Some(&slot) = index.slots.get(&cleaner.id) {
                index.cleaners[slot as usize] = Some(cleaner);
                continue;
            }
            let slot = u32::try_from(index.cleaners.len()).expect("fewer than 4 billion cleaners");
            index.slots.insert(cleaner.id, slot);
            index.cleaners.push(Some(cleaner));
        }
        let homes = index
            .cleaners
            .iter()
            .zip(0..)
            .filter_map(|(cleaner, slot)| cleaner.as_ref().map(|cleaner| home_of(cleaner, slot)))
            .collect();
        index.homes = RTree::bulk_load(homes);
        index
    }

    /// Returns how many cleaners it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Returns whether it holds no cleaner.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Returns a cleaner.
    pub fn get(&self, id: Uuid) -> Option<&Cleaner> {
        let slot = *self.slots.get(&id)?;
        self.cleaners[slot as usize].as_ref()
    }

    /// Adds a cleaner, or replaces the one with its id (moving its home in the tree).
    pub fn upsert(&mut self, cleaner: Cleaner) {
        let slot = match self.slots.get(&cleaner.id) {
            Some(&slot) => {
                if let Some(previous) = &self.cleaners[slot as usize] {
                    self.homes.remove(&home_of(previous, slot));
                }
                slot
            }
            None => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.cleaners.push(None);
                    u32::try_from(self.cleaners.len() - 1).expect("fewer than 4 billion cleaners")
                });
                self.slots.insert(cleaner.id, slot);
                slot
            }
        };
        self.homes.insert(home_of(&cleaner, slot));
        self.cleaners[slot as usize] = Some(cleaner);
    }

    /// Changes a cleaner's bookings (nothing the tree depends on); returns whether the
    /// cleaner is here.
    pub fn update_busy(
        &mut self,
        id: Uuid,
        change: impl FnOnce(&mut Vec<(DateTime<Utc>, DateTime<Utc>)>),
    ) -> bool {
        let Some(&slot) = self.slots.get(&id) else {
            return false;
        };
        match self.cleaners[slot as usize].as_mut() {
            Some(cleaner) => {
                change(&mut cleaner.busy);
                true
            }
            None => false,
        }
    }

    /// Returns every cleaner, in no particular order.
    pub fn cleaners(&self) -> impl Iterator<Item = &Cleaner> {
        self.cleaners.iter().flatten()
    }

    /// Removes a cleaner; returns it if it was there.
    pub fn remove(&mut self, id: Uuid) -> Option<Cleaner> {
        let slot = self.slots.remove(&id)?;
        let cleaner = self.cleaners[slot as usize].take()?;
        self.homes.remove(&home_of(&cleaner, slot));
        self.free.push(slot);
        Some(cleaner)
    }

    /// Returns the page of cleaners `query` asks for, through the spatial index.
    pub fn search(&self, query: &SearchQuery) -> Page {
        let mut filter = Filter::new(query);
        // A hair of slack: the haversine distance decides at the edge.
        let chord = chord_of(query.radius_km) * (1.0 + 1e-9);
        let mut best = TopHits::new(query.limit);
        let nearest_first = self
            .homes
            .nearest_neighbor_iter_with_distance_2(unit_vector(query.at));
        for (home, chord_squared) in nearest_first {
            if chord_squared > chord * chord {
                break;
            }
            if let Some(worst) = best.worst_of_full_page() {
                // Nobody this far or farther scores more than a perfect cleaner here.
                let here_km = 2.0 * EARTH_RADIUS_KM * (chord_squared.sqrt() / 2.0).min(1.0).asin();
                if best_possible_score(here_km * (1.0 - 1e-9), query.radius_km) < worst.score {
                    break;
                }
            }
            let cleaner = self.cleaners[home.data as usize].as_ref();
            if let Some(hit) = cleaner.and_then(|cleaner| filter.hit(cleaner)) {
                best.push(hit);
            }
        }
        best.into_page()
    }
}

/// Returns the page of `cleaners` that `query` asks for, looking at every one: the
/// reference [`SearchIndex::search`] must agree with.
pub fn scan<'a>(cleaners: impl IntoIterator<Item = &'a Cleaner>, query: &SearchQuery) -> Page {
    let mut filter = Filter::new(query);
    let mut best = TopHits::new(query.limit);
    for cleaner in cleaners {
        if let Some(hit) = filter.hit(cleaner) {
            best.push(hit);
        }
    }
    best.into_page()
}

/// A query's rules applied to one cleaner at a time, cheapest first; the query's start is
/// read once per time zone.
struct Filter<'q> {
    query: &'q SearchQuery,
    local_starts: Vec<(Tz, LocalStart)>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q SearchQuery) -> Self {
        Filter {
            query,
            local_starts: Vec::new(),
        }
    }

    /// Returns the hit `cleaner` makes, if it answers the query and comes after its cursor.
    fn hit(&mut self, cleaner: &Cleaner) -> Option<Hit> {
        let query = self.query;
        let plain = cleaner.services.contains(query.services)
            && query
                .max_rate_cents
                .is_none_or(|max| cleaner.hourly_rate_cents <= max)
            && query
                .min_rating
                .is_none_or(|min| cleaner.mean_rating().unwrap_or(0.0) >= min);
        if !plain {
            return None;
        }
        let distance = distance_km(query.at, cleaner.home);
        if distance > query.radius_km || distance > cleaner.service_radius_km {
            return None;
        }
        let hit = Hit {
            id: cleaner.id,
            distance_km: distance,
            score: score(cleaner, distance, query.radius_km),
        };
        let after_cursor = query.after.is_none_or(|cursor| {
            let last = Hit {
                id: cursor.id,
                distance_km: 0.0,
                score: cursor.score,
            };
            best_first(&hit, &last) == Ordering::Greater
        });
        if !after_cursor || !(query.text.is_empty() || cleaner.matches_text(&query.text)) {
            return None;
        }
        if let Some((starts_at, minutes)) = query.window {
            let local = self.local_start(starts_at, cleaner.timezone);
            if !cleaner.is_free_from(local, starts_at, minutes) {
                return None;
            }
        }
        Some(hit)
    }

    fn local_start(&mut self, starts_at: DateTime<Utc>, timezone: Tz) -> LocalStart {
        if let Some((_, local)) = self.local_starts.iter().find(|(zone, _)| *zone == timezone) {
            return *local;
        }
        let local = local_start(starts_at, timezone);
        self.local_starts.push((timezone, local));
        local
    }
}

/// The best `limit` hits so far, and one more to tell whether a next page exists.
struct TopHits {
    limit: usize,
    /// Up to `limit + 1` hits, the worst of them on top.
    heap: BinaryHeap<Ranked>,
}

/// A hit ordered so that the worse is the greater: a max-heap keeps the worst on top.
struct Ranked(Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        best_first(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        best_first(&self.0, &other.0)
    }
}

impl TopHits {
    fn new(limit: usize) -> Self {
        TopHits {
            limit,
            heap: BinaryHeap::with_capacity(limit.saturating_add(1).min(1_024)),
        }
    }

    fn push(&mut self, hit: Hit) {
        self.heap.push(Ranked(hit));
        if self.heap.len() > self.limit.saturating_add(1) {
            self.heap.pop();
        }
    }

    /// Returns the worst hit kept, once the page and the hit after it are found.
    fn worst_of_full_page(&self) -> Option<Hit> {
        if self.heap.len() > self.limit {
            self.heap.peek().map(|ranked| ranked.0)
        } else {
            None
        }
    }

    fn into_page(self) -> Page {
        let mut hits: Vec<Hit> = self.heap.into_iter().map(|ranked| ranked.0).collect();
        hits.sort_unstable_by(best_first);
        let more = hits.len() > self.limit;
        hits.truncate(self.limit);
        let next = more.then(|| {
            let last = hits.last().expect("a full page has a last hit");
            Cursor {
                score: last.score,
                id: last.id,
            }
        });
        Page { hits, next }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone as _, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        cleaner::{Services, Window},
        query::{RawQuery, SearchQuery},
    };

    const SERVICE_NAMES: [&str; 4] = ["standard", "deep", "move_out", "office"];
    const NAMES: [&str; 4] = ["Zoë Müller", "Ana Lima", "Jan Nowak", "Lea Weiß"];

    fn base() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 6, 3, 0, 0, 0).unwrap()
    }

    prop_compose! {
        fn cleaner()(
            lat in 52.3..52.7f64,
            lng in 13.1..13.7f64,
            radius in 5.0..40.0f64,
            rate in 500..50_000i64,
            reviews in 0..50u32,
            stars in 0..=5u32,
            services in 1..16u8,
            name in 0..4usize,
            start_hour in 6..12u16,
            length in 2..10u16,
            days in prop::collection::vec(0..7u8, 2..7),
            busy_hours in prop::collection::vec(0..(7 * 24i64), 0..4),
        ) -> Cleaner {
            let offered = (0..4).filter(|bit| services & (1 << bit) != 0).map(|bit| SERVICE_NAMES[bit]);
            Cleaner::new(
                Uuid::new_v4(),
                NAMES[name].to_owned(),
                "tidy".to_owned(),
                Services::parse(offered).unwrap(),
                (lat, lng),
                radius,
                rate,
                (f64::from(stars), reviews),
                chrono_tz::Europe::Berlin,
                days.into_iter().map(|weekday| Window {
                    weekday,
                    start_minute: start_hour * 60,
                    end_minute: (start_hour + length) * 60,
                }).collect(),
                busy_hours.into_iter().map(|hour| {
                    let start = base() + Duration::hours(hour);
                    (start, start + Duration::hours(2))
                }).collect(),
            )
        }
    }

    prop_compose! {
        fn query()(
            lat in 52.3..52.7f64,
            lng in 13.1..13.7f64,
            radius in 1.0..40.0f64,
            service in prop::option::weighted(0.3, 0..4usize),
            starts_hour in prop::option::weighted(0.3, 0..(7 * 24i64)),
            duration in 30..300u32,
            min_rating in prop::option::weighted(0.3, 0.0..4.5f64),
            max_rate in prop::option::weighted(0.3, 5_000..50_000i64),
            text in prop::option::weighted(0.2, 0..4usize),
            limit in 1..15usize,
        ) -> SearchQuery {
            let raw = RawQuery {
                lat: Some(lat),
                lng: Some(lng),
                radius_km: Some(radius),
                service: service.map(|index| SERVICE_NAMES[index].to_owned()),
                starts_at: starts_hour.map(|hour| base() + Duration::hours(hour)),
                duration_min: starts_hour.map(|_| duration),
                min_rating,
                max_rate_cents: max_rate,
                q: text.map(|index| NAMES[index].split(' ').next().unwrap().to_lowercase()),
                limit: Some(limit),
                after: None,
            };
            SearchQuery::parse(&raw, base() - Duration::days(1)).unwrap()
        }
    }

    /// Every page of `query`, following the cursors.
    fn all_pages(mut query: SearchQuery, page: impl Fn(&SearchQuery) -> Page) -> Vec<Hit> {
        let mut hits = Vec::new();
        loop {
            let found = page(&query);
            hits.extend(found.hits);
            match found.next {
                Some(cursor) => query.after = Some(cursor),
                None => return hits,
            }
        }
    }

    proptest! {
        // Over these strategies about two queries in three find someone, eight cleaners on
        // average (measured while writing them), so paging is exercised too.
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn search_equals_a_brute_force_scan(
            cleaners in prop::collection::vec(cleaner(), 0..150),
            query in query(),
        ) {
            let index = SearchIndex::from_cleaners(cleaners.clone());
            prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
            // Paging through every page gives the whole ranked answer once, in order.
            let paged = all_pages(query.clone(), |query| index.search(query));
            let mut whole = query.clone();
            whole.limit = usize::MAX;
            prop_assert_eq!(paged, scan(&cleaners, &whole).hits);
        }

        #[test]
        fn updates_keep_the_index_equal_to_a_scan(
            cleaners in prop::collection::vec(cleaner(), 1..60),
            moved in prop::collection::vec(cleaner(), 1..20),
            removed in 0..10usize,
            query in query(),
        ) {
            let mut index = SearchIndex::from_cleaners(cleaners.clone());
            let mut current: HashMap<Uuid, Cleaner> =
                cleaners.iter().map(|cleaner| (cleaner.id, cleaner.clone())).collect();
            // Some cleaners move (new home, same id), some leave.
            for (old, mut new) in cleaners.iter().zip(moved) {
                new.id = old.id;
                index.upsert(new.clone());
                current.insert(new.id, new);
            }
            for cleaner in cleaners.iter().take(removed) {
                prop_assert!(index.remove(cleaner.id).is_some());
                current.remove(&cleaner.id);
            }
            prop_assert_eq!(index.len(), current.len());
            prop_assert_eq!(index.search(&query), scan(current.values(), &query));
        }
    }

    #[test]
    fn a_cleaners_own_radius_is_honoured() {
        let near = Cleaner::new(
            Uuid::new_v4(),
            "Near".to_owned(),
            String::new(),
            Services::parse(["standard"]).unwrap(),
            (52.52, 13.40),
            2.0,
            2_500,
            (0.0, 0),
            chrono_tz::Europe::Berlin,
            Vec::new(),
            Vec::new(),
        );
        let index = SearchIndex::from_cleaners([near]);
        let at = |lat: f64| {
            SearchQuery::parse(
                &RawQuery {
                    lat: Some(lat),
                    lng: Some(13.40),
                    radius_km: Some(50.0),
                    ..RawQuery::default()
                },
                Utc::now(),
            )
            .unwrap()
        };
        // 0.01° of latitude is about 1.1 km; 0.03° about 3.3 km, past the cleaner's 2 km.
        assert_eq!(index.search(&at(52.53)).hits.len(), 1);
        assert!(index.search(&at(52.55)).hits.is_empty());
    }
}
