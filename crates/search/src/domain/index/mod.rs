//! The search index: the read model's cleaners by slot, and a grid over their areas in which
//! each cell keeps its cleaners best first by the part of the score a search cannot change
//! (rating and price, see [`static_score`]).
//!
//! A search is a best-first branch and bound. Every cell that may hold someone within the
//! radius gets an upper bound: its best static score plus the nearness of its nearest
//! possible point. Cells are taken highest bound first, and within a cell cleaners in
//! static order, until no cell and no cleaner can beat the page's last hit. So a search
//! looks at the few cleaners that could make the page, not at everyone near the point,
//! whatever the filters; the exact haversine distance filters and scores each one. The
//! page's last hit is first expected from what the cells hold, and the cleaners are read
//! (their text, hours and bookings decide) only once the walk has stopped, all together.
//!
//! Cells are `CELL_DEGREES` of latitude by as much of longitude. The nearest possible point
//! of a cell is bounded through three dimensions: the straight-line distance from the point
//! of search to the cell's centre on the unit sphere, less the cell's reach (the longest
//! chord from its centre to its edge), is at most the distance to anyone in it (the
//! triangle inequality). A cell of many members is cut into parts, each bounded the same way
//! once the walk reaches the cell, so that a crowded cell's far parts are left sooner.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
};

use chrono::{DateTime, Utc};
use spruce_domain::zone::Zone;
use uuid::Uuid;

use super::{
    IdMap,
    cleaner::{Cleaner, DaySpan, LocalStart, Needle, Services, TimeRange, local_start},
    distance_km,
    query::{Cursor, SearchQuery},
    score::{NEARNESS_WEIGHT, nearness, score, static_score},
};

mod cells;
mod filter;
mod geometry;
mod packed;
mod scan;
#[cfg(test)]
mod tests;
mod topk;
mod walk;

pub use self::scan::scan;
use self::{cells::*, filter::*, geometry::*, packed::*, topk::*, walk::*};

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

/// The cleaners and the grid over their areas.
#[derive(Default)]
pub struct SearchIndex {
    /// Cleaners by slot (a search reaches them from the grid without hashing).
    cleaners: Vec<Option<Cleaner>>,
    slots: IdMap<u32>,
    free: Vec<u32>,
    cells: Grid,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "SearchIndex({} cleaners in {} cells)",
            self.slots.len(),
            self.cells.len()
        )
    }
}

impl SearchIndex {
    /// Builds the index from a snapshot at once.
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
        let mut cells: HashMap<CellKey, Vec<Member>> = HashMap::new();
        for (cleaner, slot) in index.cleaners.iter().zip(0..) {
            if let Some(cleaner) = cleaner {
                cells
                    .entry(cell_of(cleaner.area))
                    .or_default()
                    .push(Member::of(cleaner, slot));
            }
        }
        index.cells = cells
            .into_iter()
            .map(|(key, members)| (key, Cell::with(key, members)))
            .collect();
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

    fn place(&mut self, cleaner: &Cleaner, slot: u32) {
        self.cells
            .cell_mut(cell_of(cleaner.area))
            .insert(Member::of(cleaner, slot));
    }

    fn unplace(&mut self, cleaner: &Cleaner, slot: u32) {
        self.cells
            .change(cell_of(cleaner.area), |cell| cell.remove(slot));
    }

    /// Adds a cleaner, or replaces the one with its id (moving them in the grid).
    pub fn upsert(&mut self, cleaner: Cleaner) {
        let slot = match self.slots.get(&cleaner.id) {
            Some(&slot) => {
                if let Some(previous) = self.cleaners[slot as usize].take() {
                    self.unplace(&previous, slot);
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
        self.place(&cleaner, slot);
        self.cleaners[slot as usize] = Some(cleaner);
    }

    /// Changes a cleaner's bookings (nothing the grid depends on); returns whether the
    /// cleaner is here.
    pub fn update_busy(&mut self, id: Uuid, change: impl FnOnce(&mut Vec<TimeRange>)) -> bool {
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
        self.unplace(&cleaner, slot);
        self.free.push(slot);
        Some(cleaner)
    }

    /// The cells that may hold someone within the query's radius, each with its bound.
    fn candidates(&self, query: &SearchQuery, filter: &mut Filter<'_>) -> Frontier<'_> {
        let at = unit_vector(query.at);
        let dlat = (query.radius_km / EARTH_RADIUS_KM).to_degrees() + CELL_DEGREES;
        let row = |lat: f64| (lat / CELL_DEGREES).floor() as i32;
        let (south, north) = (row(query.at.0 - dlat), row(query.at.0 + dlat));
        let mut candidates = Frontier::with_capacity(256);
        let ranges = column_ranges(query.at, query.radius_km);
        let rows = (south..=north).flat_map(|row| ranges.iter().map(move |&range| (row, range)));
        for (row, range) in rows {
            for cell in self.cells.row(row, range) {
                let Some(nearness) = cell.area.nearness(at, query.radius_km) else {
                    continue;
                };
                if !filter.may_hit_any(&cell.summary) {
                    continue;
                }
                candidates.push(Candidate {
                    bound: cell.summary.best_static + nearness_bound(nearness),
                    nearness,
                    cell,
                    part: None,
                    from: 0,
                });
            }
        }
        candidates
    }

    /// Returns the page of cleaners `query` asks for, through the grid.
    ///
    /// Reading a cleaner costs cache misses (the cleaner, then its text, hours and
    /// bookings: most of a search's time at 1M cleaners), so a search reads them late and
    /// together. Each member its cell lets through gets bounds on its score from its spot
    /// alone, and the score to beat is set as if every such member will prove a hit: the
    /// page's worth of best lower bounds (see [`Walk`]). When no cell can beat that, the
    /// members that might are read at once. Those that prove no hit (their text, hours or
    /// bookings rule them out) lower the score to beat again, and the walk goes on from
    /// where it stopped.
    pub fn search(&self, query: &SearchQuery) -> Page {
        let needle = Needle::new(&query.text);
        let mut filter = Filter::new(query, &needle);
        let cells = self.candidates(query, &mut filter);
        let unread_cap = query.limit.saturating_add(1).min(MAX_LIMIT) * 8 + 2 * CHUNK;
        let mut walk = Walk {
            index: self,
            query,
            filter,
            plain: PlainFilter::new(query, &needle),
            cells,
            best: TopHits::new(query.limit),
            floor: Floor::new(query.limit),
            unread: Vec::with_capacity(unread_cap),
            set_aside: Vec::with_capacity(unread_cap),
            unread_cap,
            at: unit_vector(query.at),
            radius_chord_sq: widened_sq(chord_of_km(query.radius_km) * (1.0 + CHORD_SLACK)),
        };
        loop {
            let walked = walk.walk_cells();
            if walked && walk.unread.is_empty() {
                return walk.best.into_page();
            }
            walk.read();
        }
    }
}
