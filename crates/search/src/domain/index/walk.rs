//! The best-first branch and bound over cells and parts, and the members a cell admits.

use super::*;

/// How many keys share a cache line.
pub(super) const KEYS_A_LINE: usize = 64 / std::mem::size_of::<Key>();

/// How many members of a cell a search checks at once (see [`Admitted`]).
pub(super) const CHUNK: usize = 32;

/// The members of a cell whose keys admit them, by their place in the cell. Their spots
/// are read only then, a few dozen together, so that the cache misses on them overlap.
pub(super) struct Admitted {
    pub(super) places: [u32; 2 * CHUNK],
    pub(super) len: usize,
}

impl Default for Admitted {
    fn default() -> Self {
        Admitted {
            places: [0; 2 * CHUNK],
            len: 0,
        }
    }
}

impl Admitted {
    /// Checks the keys from place `from` on, a chunk of `CHUNK` at a time without
    /// branching, until `CHUNK` are admitted or a member is not `worth` reading (nobody
    /// after them is: the keys are best first, and `worth` looks at the static score
    /// alone). Returns where to go on from, and whether that is the first member not worth
    /// reading.
    pub(super) fn gather(
        &mut self,
        keys: &[Key],
        mut from: usize,
        plain: &PlainFilter,
        worth: impl Fn(&Key) -> bool,
    ) -> (usize, bool) {
        // A local count and a bit per member of a chunk: no store waits on the one before.
        let mut len = 0;
        let mut stopped = false;
        while len < CHUNK && from < keys.len() {
            let chunk = &keys[from..keys.len().min(from + CHUNK)];
            // The keys are best first, so those worth reading are the chunk's first: all
            // of it when its last is.
            let worthy = if chunk.last().is_some_and(&worth) {
                chunk.len()
            } else {
                chunk.partition_point(&worth)
            };
            let mut admitted = 0u32;
            for (bit, key) in chunk[..worthy].iter().enumerate() {
                admitted |= u32::from(plain.admits(key)) << bit;
            }
            while admitted != 0 {
                // Fewer than `CHUNK` were held before this chunk, so this is in bounds.
                self.places[len % (2 * CHUNK)] = from as u32 + admitted.trailing_zeros();
                len += 1;
                admitted &= admitted - 1;
            }
            from += worthy;
            if worthy < chunk.len() {
                stopped = true;
                break;
            }
        }
        self.len = len;
        (from, stopped)
    }

    /// Touches the spots of the members admitted, then returns them with their keys.
    pub(super) fn touch<'a>(&'a self, cell: &'a Cell) -> impl Iterator<Item = (&'a Key, &'a Spot)> {
        let places = self.places[..self.len].iter().map(|&place| place as usize);
        let mut touched = 0;
        for place in places.clone() {
            touched ^= cell.spots[place].slot;
        }
        std::hint::black_box(touched);
        places.map(|place| (&cell.keys[place], &cell.spots[place]))
    }
}

/// A cell to cut into its parts, or a part of one to visit from its member `from` on, and
/// the best score any of them could have.
#[derive(Clone, Copy)]
pub(super) struct Candidate<'a> {
    pub(super) bound: f64,
    /// The nearness of the cell's or the part's nearest possible point.
    pub(super) nearness: f64,
    pub(super) cell: &'a Cell,
    /// The part, or `None` for a whole cell (cut into its parts when it is taken).
    pub(super) part: Option<usize>,
    pub(super) from: usize,
}

/// The candidates still to walk, best bound first. The heap holds each bound with the
/// candidate's place in `candidates`, in 16 bytes that compare as one number, so that its
/// pops (a few dozen a search) move little and compare cheaply.
pub(super) struct Frontier<'a> {
    pub(super) heap: BinaryHeap<u128>,
    pub(super) candidates: Vec<Candidate<'a>>,
}

impl<'a> Frontier<'a> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Frontier {
            heap: BinaryHeap::with_capacity(capacity),
            candidates: Vec::with_capacity(capacity),
        }
    }

    pub(super) fn push(&mut self, candidate: Candidate<'a>) {
        let place = u32::try_from(self.candidates.len()).expect("fewer than 4 billion candidates");
        // The bits of an f64 made to order as the numbers do (as `f64::total_cmp`).
        let bits = candidate.bound.to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        };
        self.heap
            .push(u128::from(ordered) << 64 | u128::from(place));
        self.candidates.push(candidate);
    }

    pub(super) fn peek(&self) -> Option<&Candidate<'a>> {
        self.heap
            .peek()
            .map(|&entry| &self.candidates[entry as u32 as usize])
    }

    pub(super) fn pop(&mut self) -> Option<Candidate<'a>> {
        self.heap
            .pop()
            .map(|entry| self.candidates[entry as u32 as usize])
    }
}

/// The largest page a search sizes the members waiting to be read by (see
/// `Walk::unread_cap`); the API asks for at most 100.
pub(super) const MAX_LIMIT: usize = 128;

/// A member whose spot lets them through: their score lies between `low` and `high`, and
/// reading the cleaner decides whether they are a hit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tentative {
    pub(super) low: f64,
    pub(super) high: f64,
    pub(super) slot: u32,
}

/// A search under way (see [`SearchIndex::search`]).
pub(super) struct Walk<'i, 'q> {
    pub(super) index: &'i SearchIndex,
    pub(super) query: &'q SearchQuery,
    pub(super) filter: Filter<'q>,
    pub(super) plain: PlainFilter,
    /// The cells, parts of cells and rests of parts still to walk, best bound on top.
    pub(super) cells: Frontier<'i>,
    /// The hits read so far.
    pub(super) best: TopHits,
    /// The scores of `best` and the lower bounds of `unread`.
    pub(super) floor: Floor,
    /// Members let through and not read yet.
    pub(super) unread: Vec<Tentative>,
    /// Members let through whose best possible score was below the score to beat when
    /// they were found: they matter only if reading others lowers it.
    pub(super) set_aside: Vec<Tentative>,
    /// How many members may wait in `unread` and `set_aside` together: a walk that
    /// finds more reads them first, so a search's memory stays bounded. Eight pages'
    /// worth, so that most searches read once (the benchmark's 1M search lets 160 members
    /// through for a page of 20 with cells of 0.02°, 220 with 0.03°; with room for only
    /// two pages, it read in 1.6 rounds).
    pub(super) unread_cap: usize,
    pub(super) at: [f64; 3],
    pub(super) radius_chord_sq: f64,
}

impl<'i> Walk<'i, '_> {
    /// Walks the cells best bound first, until none can beat the score to beat (then
    /// returns true) or enough members wait to be read (false).
    pub(super) fn walk_cells(&mut self) -> bool {
        while let Some(candidate) = self.cells.peek() {
            if candidate.bound < self.floor.score_to_beat() {
                return true;
            }
            if self.waiting_is_full() {
                return false;
            }
            let candidate = self.cells.pop().expect("a cell was peeked");
            let cell = candidate.cell;
            // A cell of one part is walked at once (`from` is 0, where its part starts).
            let Some(part) = candidate.part.or((cell.parts.len() == 1).then_some(0)) else {
                self.cut(&candidate);
                continue;
            };
            // The first keys of the next cell, asked for now (a prefetch: nothing waits
            // for them) so that they are on their way while this cell is walked.
            if let Some(next) = self.cells.peek() {
                let first = next.cell.keys.len().min(next.from + 4 * CHUNK);
                for place in (next.from..first).step_by(KEYS_A_LINE) {
                    prefetch_index::prefetch_index(&next.cell.keys, place);
                }
            }
            let near = nearness_bound(candidate.nearness);
            let keys = &cell.keys[..cell.range(part).end];
            let mut admitted = Admitted::default();
            let mut from = candidate.from;
            let mut stopped = false;
            while !stopped && from < keys.len() && !self.waiting_is_full() {
                let to_beat = self.floor.score_to_beat();
                // Most members fail here (all of them but 3 % in the benchmark's query).
                (from, stopped) = admitted.gather(keys, from, &self.plain, move |key| {
                    f64::from(key.static_score) + near >= to_beat
                });
                for (key, spot) in admitted.touch(cell) {
                    self.consider(key, spot);
                }
            }
            // The members not worth reading yet: worth it again if reading lowers the
            // score to beat.
            if let Some(key) = keys.get(from) {
                self.cells.push(Candidate {
                    bound: f64::from(key.static_score) + near,
                    from,
                    ..candidate
                });
            }
        }
        true
    }

    /// Puts the parts of a candidate cell that may hold someone within the radius in its
    /// place, each with its own bound.
    pub(super) fn cut(&mut self, candidate: &Candidate<'i>) {
        let cell = candidate.cell;
        for part in 0..cell.parts.len() {
            let range = cell.range(part);
            if range.is_empty() {
                continue;
            }
            let Some(nearness) = cell.parts[part]
                .area
                .nearness(self.at, self.query.radius_km)
            else {
                continue;
            };
            self.cells.push(Candidate {
                bound: f64::from(cell.parts[part].best_static) + nearness_bound(nearness),
                nearness,
                part: Some(part),
                from: range.start,
                ..*candidate
            });
        }
    }

    /// Whether as many members wait to be read or set aside as a search keeps.
    pub(super) fn waiting_is_full(&self) -> bool {
        self.unread.len() + self.set_aside.len() >= self.unread_cap
    }

    /// Bounds the score of a member the cell's key let through, from their spot, and
    /// keeps them to be read unless their spot rules them out.
    pub(super) fn consider(&mut self, key: &Key, spot: &Spot) {
        let chord_sq = spot.chord_sq(self.at);
        if chord_sq > self.radius_chord_sq || chord_sq > widened_sq(f64::from(spot.service_chord)) {
            return;
        }
        if !self.filter.window_may_fit(spot.timezone, &spot.day_spans) {
            return;
        }
        let chord = chord_sq.sqrt();
        let radius_km = self.query.radius_km;
        // The key's static score is rounded up to an f32, so the f32 below it is below
        // the exact one.
        let static_score = f64::from(key.static_score);
        let tentative = Tentative {
            low: f64::from(key.static_score.next_down())
                + NEARNESS_WEIGHT * nearness(km_at_most(chord + AREA_ERROR), radius_km)
                - BOUND_SLACK,
            high: static_score
                + NEARNESS_WEIGHT * nearness(km_at_least(chord - AREA_ERROR), radius_km)
                + BOUND_SLACK,
            slot: spot.slot,
        };
        // Surely better than the last hit of the page before, so on that page.
        if self
            .query
            .after
            .is_some_and(|cursor| tentative.low > cursor.score)
        {
            return;
        }
        self.keep(tentative);
    }

    /// Keeps a member let through: to be read if they may beat the score to beat, else
    /// set aside.
    pub(super) fn keep(&mut self, tentative: Tentative) {
        if tentative.high < self.floor.score_to_beat() {
            self.set_aside.push(tentative);
            return;
        }
        // The cleaner's first cache line, on its way before they are read.
        prefetch_index::prefetch_index(&self.index.cleaners, tentative.slot as usize);
        self.floor.push(Lowest(tentative.low));
        self.unread.push(tentative);
    }

    /// Reads together the members waiting that may beat the score to beat, and keeps
    /// their hits. The score to beat is then the hits' alone; the members set aside that
    /// may beat it wait to be read again, the others are dropped.
    pub(super) fn read(&mut self) {
        let to_beat = self.floor.score_to_beat();
        let mut to_read = std::mem::take(&mut self.unread);
        to_read.retain(|tentative| {
            let may_beat = tentative.high >= to_beat;
            if !may_beat {
                self.set_aside.push(*tentative);
            }
            may_beat
        });
        let cleaners = || {
            to_read
                .iter()
                .filter_map(|tentative| self.index.cleaners[tentative.slot as usize].as_ref())
        };
        let mut touched = 0u64;
        for cleaner in cleaners() {
            touched ^= cleaner.touch();
        }
        std::hint::black_box(touched);
        for cleaner in cleaners() {
            if let Some(hit) = self.filter.hit(cleaner) {
                self.best.push(Ranked(hit));
            }
        }
        self.floor = Floor::new(self.query.limit);
        for score in self.best.scores() {
            self.floor.push(Lowest(score));
        }
        // Kept again, they raise the score to beat as they come: compared with the hits'
        // alone, so that none is dropped that a later one set aside.
        let to_beat = self.floor.score_to_beat();
        // `unread` is empty: it takes back its room.
        to_read.clear();
        self.unread = to_read;
        for tentative in std::mem::take(&mut self.set_aside) {
            if tentative.high >= to_beat {
                self.keep(tentative);
            }
        }
    }
}

/// The best scores a page's worth of cleaners reach or are expected to, and one more:
/// the score to beat is the lowest of them once there are that many.
pub(super) type Floor = Kept<Lowest>;

/// A score ordered so that the lower is the greater: a max-heap keeps the lowest on top.
pub(super) struct Lowest(pub(super) f64);

impl PartialEq for Lowest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Lowest {}

impl PartialOrd for Lowest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Lowest {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0)
    }
}

impl Floor {
    /// The score anyone must reach to make the page or be the hit after it.
    pub(super) fn score_to_beat(&self) -> f64 {
        self.worst_of_full()
            .map_or(f64::NEG_INFINITY, |lowest| lowest.0)
    }
}
