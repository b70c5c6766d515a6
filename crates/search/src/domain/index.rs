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
use chrono_tz::Tz;
use uuid::Uuid;

use super::{
    IdMap,
    cleaner::{Cleaner, DaySpan, LocalStart, Needle, Services, TimeRange, local_start},
    distance_km,
    query::{Cursor, SearchQuery},
    score::{NEARNESS_WEIGHT, nearness, score, static_score},
};

const EARTH_RADIUS_KM: f64 = 6371.0;

/// The side of a cell in degrees: about 3.3 km north to south, 2 km east to west in
/// Berlin; a 1M-cleaner city of 60 × 60 km puts about 1,900 in each, a 100k one 190. (At
/// 0.02° a 100k search took a sixth longer, bounding and visiting more cells; a 1M search
/// took as long.)
const CELL_DEGREES: f64 = 0.03;

/// Slack added to every bound so that rounding never prunes a cleaner that ties.
const BOUND_SLACK: f64 = 1e-9;

/// Relative slack on the squared chords a cleaner's distance is first checked with, so that
/// rounding never rules out someone the exact distance lets in.
const CHORD_SLACK: f64 = 1e-9;

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

/// A cleaner in a cell, in two parts kept in two arrays in the same order: the [`Key`] a
/// search reads of every member it walks, and the [`Spot`] it reads of the few whose key
/// admits them. Together they rule out most cleaners without reading the cleaner (a cache
/// miss each). Their numbers are rounded the way that can only let more cleaners through,
/// and [`Filter::hit`] then decides exactly on the cleaner.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: Key,
    spot: Spot,
}

/// What a search reads of every member it walks (thousands at 1M cleaners, most of them
/// ruled out here), in 16 bytes, so that four share a cache line.
#[derive(Debug, Clone, Copy)]
struct Key {
    text_mask: u64,
    /// Rounded up to an `f32`.
    static_score: f32,
    /// The rate, the rating and the services (see [`Plain`]).
    plain: Plain,
}

/// A member's rate, rating and services in one word, laid out so that a query's limits
/// are checked with one subtraction (see [`PlainFilter::admits`]):
/// - bits 0–15: the hourly rate in cents, between 0 and `u16::MAX`;
/// - bit 16: 0 (a guard: the borrow of the rate's check stops there);
/// - bits 17–24: 255 less the mean rating in fiftieths of a star, rounded up (what the
///   rating lacks of 5.1 stars);
/// - bit 25: 0 (the guard of the rating's check);
/// - bits 26–31: the services, bit 26 + i for `SERVICES[i]`.
#[derive(Debug, Clone, Copy)]
struct Plain(u32);

const RATE_GUARD: u32 = 1 << 16;
const LACK_SHIFT: u32 = 17;
const LACK_GUARD: u32 = 1 << 25;
const SERVICES_SHIFT: u32 = 26;
const _: () = assert!(
    crate::domain::cleaner::SERVICES.len() <= 6,
    "the services fit in 6 bits"
);

impl Plain {
    fn new(rate: u16, rating: u8, services: Services) -> Self {
        Plain(
            u32::from(rate)
                | u32::from(u8::MAX - rating) << LACK_SHIFT
                | u32::from(services.bits()) << SERVICES_SHIFT,
        )
    }
}

/// What a search reads of a member whose key admits them: where they are, how far they
/// go and when they may work.
#[derive(Debug, Clone, Copy)]
struct Spot {
    /// The area as a unit vector, within [`AREA_ERROR`].
    area: [f32; 3],
    /// The chord of the cleaner's own service radius (see [`chord_of_km`]), with
    /// `CHORD_SLACK`, rounded up.
    service_chord: f32,
    slot: u32,
    /// When they may work on each weekday (0 = Monday), in `timezone`.
    day_spans: [DaySpan; 7],
    timezone: Tz,
}

/// How many fiftieths of a star a [`Key`]'s rating counts in.
const RATING_STEPS: f64 = 50.0;

/// How far a member's `f32` area may be from the cleaner's, as a chord of the unit sphere
/// (each coordinate is within 2⁻²⁴ of the exact one: about 0.7 m at most; 1.3 m allowed).
const AREA_ERROR: f64 = 2e-7;

/// Returns `value` as an `f32` no smaller than it.
fn f32_up(value: f64) -> f32 {
    let rounded = value as f32;
    if f64::from(rounded) < value {
        rounded.next_up()
    } else {
        rounded
    }
}

/// Returns `rate` clamped to what a [`Key`] holds.
fn key_rate(rate: i64) -> u16 {
    u16::try_from(rate.max(0)).unwrap_or(u16::MAX)
}

impl Member {
    fn of(cleaner: &Cleaner, slot: u32) -> Self {
        let rating = (cleaner.mean_rating().unwrap_or(0.0) * RATING_STEPS).ceil();
        Member {
            key: Key {
                text_mask: cleaner.text_mask(),
                static_score: f32_up(static_score(cleaner)),
                plain: Plain::new(
                    key_rate(cleaner.hourly_rate_cents),
                    // Saturating: a rating above 5.1 stars reads as 5.1.
                    rating as u8,
                    cleaner.services,
                ),
            },
            spot: Spot {
                area: unit_vector(cleaner.area).map(|coordinate| coordinate as f32),
                service_chord: f32_up(chord_of_km(cleaner.service_radius_km) * (1.0 + CHORD_SLACK)),
                slot,
                day_spans: cleaner.day_spans(),
                timezone: cleaner.timezone,
            },
        }
    }
}

impl Spot {
    /// The squared chord from `at` to the member's area, to be compared with limits
    /// widened by [`AREA_ERROR`] (see [`widened_sq`]).
    fn chord_sq(&self, at: [f64; 3]) -> f64 {
        chord_sq(at, self.area.map(f64::from))
    }
}

/// Returns the square of `chord` widened by [`AREA_ERROR`]: a member whose squared chord
/// exceeds it is surely farther than `chord`.
fn widened_sq(chord: f64) -> f64 {
    (chord + AREA_ERROR).powi(2)
}

/// A cell of the grid and its cleaners: cut into parts (see [`Cell::split_for`]), and in each
/// part highest static score first, then by slot; the keys and the spots of its members in
/// two arrays in that order.
///
/// What a search reads of every cell in reach (its centre, reach and summary) comes first
/// and fills one cache line: a 1M search looks at about a hundred cells, seldom
/// still in the cache from the search before.
#[derive(Debug)]
#[repr(C, align(64))]
struct Cell {
    area: Area,
    /// What a search reads of the cell before its members (see [`Cell::summarize`]).
    summary: CellSummary,
    /// The south-west corner, in degrees.
    corner: (f64, f64),
    /// The parts, a square number of them (see [`Cell::split`]), row by row from the
    /// south-west, and where each one's members end in `keys` and `spots` (each starts
    /// where the one before ends).
    parts: Vec<Part>,
    keys: Vec<Key>,
    spots: Vec<Spot>,
}

/// A part of a cell: its area, where its members end, and the best static score among
/// them (kept here so that a search bounds the part without reading its keys, a cache miss
/// each).
#[derive(Debug, Clone, Copy)]
struct Part {
    area: Area,
    end: u32,
    best_static: f32,
}

/// A cell's or a part's rectangle, as a search bounds the distance to anyone in it.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Area {
    /// The centre, as a unit vector.
    centre: [f64; 3],
    /// The longest chord from the centre to any point of the rectangle.
    reach: f64,
}

impl Area {
    /// Returns the nearness (see [`nearness`]) of the area's nearest possible point to a
    /// search at `at` (a unit vector) of `radius_km`, or `None` when all of it is beyond
    /// the radius. An arc is longer than its chord, so this is at least anyone's in it,
    /// and costs no trigonometry.
    fn nearness(&self, at: [f64; 3], radius_km: f64) -> Option<f64> {
        let nearest_km = EARTH_RADIUS_KM * (chord(at, self.centre) - self.reach).max(0.0);
        (nearest_km <= radius_km).then(|| nearness(nearest_km, radius_km))
    }
}

/// The part of a bound that nearness adds: its weight in the score, and the slack.
fn nearness_bound(nearness: f64) -> f64 {
    NEARNESS_WEIGHT * nearness + BOUND_SLACK
}

/// A cell's members summed up, so that a search can bound or skip the cell without
/// reading them: their best static score, and when they all share a time zone, the union
/// of their hours each weekday (a search for a time nobody there may work, a Sunday say,
/// then skips the cell).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct CellSummary {
    best_static: f64,
    day_spans: [DaySpan; 7],
    zone: Option<Tz>,
}

type CellKey = (i32, i32);

/// The cleaners and the grid over their areas.
#[derive(Default)]
pub struct SearchIndex {
    /// Cleaners by slot (a search reaches them from the grid without hashing).
    cleaners: Vec<Option<Cleaner>>,
    slots: IdMap<u32>,
    free: Vec<u32>,
    cells: Grid,
}

/// The occupied cells, sorted by (row, column): a row's columns are a slice, and the cells
/// a search bounds lie side by side in memory. Their keys are an array of their own, small
/// enough to stay in the cache, that a search looks its rows up in. A cell is added or
/// dropped only when the first cleaner moves in or the last one out.
#[derive(Default)]
struct Grid {
    keys: Vec<CellKey>,
    cells: Vec<Cell>,
}

impl Grid {
    fn len(&self) -> usize {
        self.cells.len()
    }

    /// Returns the cell at `key`, made empty if there was none.
    fn cell_mut(&mut self, key: CellKey) -> &mut Cell {
        let at = match self.keys.binary_search(&key) {
            Ok(at) => at,
            Err(at) => {
                self.keys.insert(at, key);
                self.cells.insert(at, Cell::new(key));
                at
            }
        };
        &mut self.cells[at]
    }

    /// Changes the cell at `key`, if any, and drops it if that left it empty.
    fn change(&mut self, key: CellKey, change: impl FnOnce(&mut Cell)) {
        if let Ok(at) = self.keys.binary_search(&key) {
            change(&mut self.cells[at]);
            if self.cells[at].keys.is_empty() {
                self.keys.remove(at);
                self.cells.remove(at);
            }
        }
    }

    /// The cells of `row` from column `west` to column `east`.
    fn row(&self, row: i32, (west, east): (i32, i32)) -> &[Cell] {
        let from = self.keys.partition_point(|key| *key < (row, west));
        let to = self.keys.partition_point(|key| *key <= (row, east));
        &self.cells[from..to.max(from)]
    }
}

impl FromIterator<(CellKey, Cell)> for Grid {
    /// Builds the grid from cells in any order.
    fn from_iter<T: IntoIterator<Item = (CellKey, Cell)>>(cells: T) -> Self {
        let mut cells: Vec<(CellKey, Cell)> = cells.into_iter().collect();
        cells.sort_unstable_by_key(|(key, _)| *key);
        let (keys, cells) = cells.into_iter().unzip();
        Grid { keys, cells }
    }
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

fn unit_vector((lat, lng): (f64, f64)) -> [f64; 3] {
    let (lat, lng) = (lat.to_radians(), lng.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

fn chord_sq([x1, y1, z1]: [f64; 3], [x2, y2, z2]: [f64; 3]) -> f64 {
    (x1 - x2).powi(2) + (y1 - y2).powi(2) + (z1 - z2).powi(2)
}

fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    chord_sq(a, b).sqrt()
}

/// The chord of the unit sphere spanning `km` of its surface (at most the diameter).
fn chord_of_km(km: f64) -> f64 {
    2.0 * (km / (2.0 * EARTH_RADIUS_KM))
        .clamp(0.0, std::f64::consts::FRAC_PI_2)
        .sin()
}

fn cell_of((lat, lng): (f64, f64)) -> CellKey {
    (
        (lat / CELL_DEGREES).floor() as i32,
        (lng / CELL_DEGREES).floor() as i32,
    )
}

/// Returns the area of the rectangle of `height` × `width` degrees whose south-west corner
/// is `(south, west)`.
fn rectangle((south, west): (f64, f64), (height, width): (f64, f64)) -> Area {
    let (north, east) = (south + height, west + width);
    let centre_point = ((south + north) / 2.0, (west + east) / 2.0);
    let centre = unit_vector(centre_point);
    // A small spherical rectangle is farthest from its centre at a corner; edge midpoints
    // too, and a percent more, for safety.
    let reach = [
        (south, west),
        (south, east),
        (north, west),
        (north, east),
        (south, centre_point.1),
        (north, centre_point.1),
        (centre_point.0, west),
        (centre_point.0, east),
    ]
    .into_iter()
    .map(|corner| chord(centre, unit_vector(corner)))
    .fold(0.0, f64::max)
        * 1.01;
    Area { centre, reach }
}

/// How many members a part of a cell holds at least: a cell of n is cut into
/// ⌊√(n / this)⌋ parts a side, up to 4 × 4. In the 1M benchmark city a cell holds about
/// 1,900 and is cut into 3 × 3 (a search there took about a tenth less time than with whole
/// cells, and a few percent less than with 2 × 2 or 4 × 4: more parts rule out more members
/// unread, but each part walked costs a heap pop and the cache misses of a new place in
/// memory).
const MEMBERS_A_PART: usize = 200;

impl Cell {
    fn new((row, column): CellKey) -> Self {
        let corner = (
            f64::from(row) * CELL_DEGREES,
            f64::from(column) * CELL_DEGREES,
        );
        let mut cell = Cell {
            area: rectangle(corner, (CELL_DEGREES, CELL_DEGREES)),
            corner,
            parts: Vec::new(),
            summary: CellSummary {
                best_static: 0.0,
                zone: None,
                day_spans: [DaySpan::EMPTY; 7],
            },
            keys: Vec::new(),
            spots: Vec::new(),
        };
        cell.cut(1);
        cell
    }

    /// How many parts a side a cell of `members` is cut into: the more members, the more
    /// parts, so that a part's nearest point bounds the nearness of its members closely
    /// enough (in a 1M city a cell holds about 1,900).
    fn split_for(members: usize) -> usize {
        (members / MEMBERS_A_PART).isqrt().clamp(1, 4)
    }

    /// How many parts a side the cell is cut into.
    fn split(&self) -> usize {
        self.parts.len().isqrt()
    }

    /// Makes the cell's parts `split` a side, with no members.
    fn cut(&mut self, split: usize) {
        let side = CELL_DEGREES / split as f64;
        self.parts = (0..split * split)
            .map(|part| {
                let corner = (
                    self.corner.0 + (part / split) as f64 * side,
                    self.corner.1 + (part % split) as f64 * side,
                );
                Part {
                    area: rectangle(corner, (side, side)),
                    end: 0,
                    best_static: 0.0,
                }
            })
            .collect();
    }

    /// Returns the part whose rectangle holds `spot`'s area (within its rounding: a
    /// part's reach has room for it).
    fn part_of(&self, spot: &Spot) -> usize {
        let [x, y, z] = spot.area.map(f64::from);
        let lat = z.clamp(-1.0, 1.0).asin().to_degrees();
        let mut lng = y.atan2(x).to_degrees();
        // The antimeridian: 180° east is 180° west.
        if lng - self.corner.1 > 180.0 {
            lng -= 360.0;
        } else if self.corner.1 - lng > 180.0 {
            lng += 360.0;
        }
        let split = self.split();
        let side = CELL_DEGREES / split as f64;
        let last = (split - 1) as f64;
        let row = ((lat - self.corner.0) / side).floor().clamp(0.0, last) as usize;
        let column = ((lng - self.corner.1) / side).floor().clamp(0.0, last) as usize;
        row * split + column
    }

    /// Where the members of `part` lie in `keys` and `spots`.
    fn range(&self, part: usize) -> std::ops::Range<usize> {
        let start = part
            .checked_sub(1)
            .map_or(0, |before| self.parts[before].end);
        start as usize..self.parts[part].end as usize
    }

    /// Returns the cell at `key` holding `members`, in any order.
    fn with(key: CellKey, members: Vec<Member>) -> Self {
        let mut cell = Cell::new(key);
        cell.hold(members);
        cell
    }

    /// Makes the cell hold `members` alone, cut into as many parts as they call for.
    fn hold(&mut self, members: Vec<Member>) {
        self.cut(Self::split_for(members.len()));
        let mut members: Vec<(usize, Member)> = members
            .into_iter()
            .map(|member| (self.part_of(&member.spot), member))
            .collect();
        members.sort_unstable_by(|(a_part, a), (b_part, b)| {
            a_part
                .cmp(b_part)
                .then_with(|| member_order((&a.key, &a.spot), (&b.key, &b.spot)))
        });
        for (part, _) in &members {
            self.parts[*part].end += 1;
        }
        for part in 1..self.parts.len() {
            self.parts[part].end += self.parts[part - 1].end;
        }
        (self.keys, self.spots) = members
            .into_iter()
            .map(|(_, member)| (member.key, member.spot))
            .unzip();
        self.summarize();
    }

    /// Returns every member, in the cell's order.
    fn members(&mut self) -> Vec<Member> {
        std::mem::take(&mut self.keys)
            .into_iter()
            .zip(std::mem::take(&mut self.spots))
            .map(|(key, spot)| Member { key, spot })
            .collect()
    }

    /// Sums the members up again, after a change.
    fn summarize(&mut self) {
        let zone = self.spots.first().map(|spot| spot.timezone);
        let mut day_spans = [DaySpan::EMPTY; 7];
        for spot in &self.spots {
            for (span, theirs) in day_spans.iter_mut().zip(spot.day_spans) {
                span.widen(theirs);
            }
        }
        for part in 0..self.parts.len() {
            let first = self.keys.get(self.range(part)).and_then(<[Key]>::first);
            self.parts[part].best_static = first.map_or(0.0, |key| key.static_score);
        }
        let best_static = self
            .parts
            .iter()
            .map(|part| f64::from(part.best_static))
            .fold(0.0, f64::max);
        self.summary = CellSummary {
            best_static,
            zone: zone.filter(|zone| self.spots.iter().all(|spot| spot.timezone == *zone)),
            day_spans,
        };
    }

    /// Inserts keeping the order: by part, then highest static score first, then by slot;
    /// cut again into more parts if its members now call for them.
    fn insert(&mut self, member: Member) {
        if Self::split_for(self.keys.len() + 1) > self.split() {
            let mut members = self.members();
            members.push(member);
            self.hold(members);
            return;
        }
        let part = self.part_of(&member.spot);
        let range = self.range(part);
        let at = range.start
            + self.keys[range.clone()]
                .iter()
                .zip(&self.spots[range.clone()])
                .position(|held| member_order(held, (&member.key, &member.spot)) != Ordering::Less)
                .unwrap_or(range.len());
        self.keys.insert(at, member.key);
        self.spots.insert(at, member.spot);
        for part in &mut self.parts[part..] {
            part.end += 1;
        }
        self.summarize();
    }

    /// Removes the member in `slot`; cut again into fewer parts once it holds less than
    /// half of what its parts call for.
    fn remove(&mut self, slot: u32) {
        if let Some(at) = self.spots.iter().position(|spot| spot.slot == slot) {
            self.keys.remove(at);
            self.spots.remove(at);
            for part in &mut self.parts {
                if part.end as usize > at {
                    part.end -= 1;
                }
            }
        }
        if Self::split_for(self.keys.len() * 2) < self.split() {
            let members = self.members();
            self.hold(members);
            return;
        }
        self.summarize();
    }
}

/// Orders members best first: highest static score, then lowest slot.
fn member_order((a_key, a_spot): (&Key, &Spot), (b_key, b_spot): (&Key, &Spot)) -> Ordering {
    b_key
        .static_score
        .total_cmp(&a_key.static_score)
        .then(a_spot.slot.cmp(&b_spot.slot))
}

/// Orders hits best first: higher score, then lower id.
fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
}

/// How many keys share a cache line.
const KEYS_A_LINE: usize = 64 / std::mem::size_of::<Key>();

/// How many members of a cell a search checks at once (see [`Admitted`]).
const CHUNK: usize = 32;

/// The members of a cell whose keys admit them, by their place in the cell. Their spots
/// are read only then, a few dozen together, so that the cache misses on them overlap.
struct Admitted {
    places: [u32; 2 * CHUNK],
    len: usize,
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
    fn gather(
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
    fn touch<'a>(&'a self, cell: &'a Cell) -> impl Iterator<Item = (&'a Key, &'a Spot)> {
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
struct Candidate<'a> {
    bound: f64,
    /// The nearness of the cell's or the part's nearest possible point.
    nearness: f64,
    cell: &'a Cell,
    /// The part, or `None` for a whole cell (cut into its parts when it is taken).
    part: Option<usize>,
    from: usize,
}

/// The candidates still to walk, best bound first. The heap holds each bound with the
/// candidate's place in `candidates`, in 16 bytes that compare as one number, so that its
/// pops (a few dozen a search) move little and compare cheaply.
struct Frontier<'a> {
    heap: BinaryHeap<u128>,
    candidates: Vec<Candidate<'a>>,
}

impl<'a> Frontier<'a> {
    fn with_capacity(capacity: usize) -> Self {
        Frontier {
            heap: BinaryHeap::with_capacity(capacity),
            candidates: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, candidate: Candidate<'a>) {
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

    fn peek(&self) -> Option<&Candidate<'a>> {
        self.heap
            .peek()
            .map(|&entry| &self.candidates[entry as u32 as usize])
    }

    fn pop(&mut self) -> Option<Candidate<'a>> {
        self.heap
            .pop()
            .map(|entry| self.candidates[entry as u32 as usize])
    }
}

/// The column ranges that may hold someone within `radius_km` of `at`: every column when
/// a pole is that near, two ranges across the antimeridian.
fn column_ranges(at: (f64, f64), radius_km: f64) -> Vec<(i32, i32)> {
    let all = vec![(i32::MIN, i32::MAX)];
    let angle = radius_km / EARTH_RADIUS_KM;
    let dlat = angle.to_degrees();
    if at.0.abs() + dlat >= 89.0 {
        return all;
    }
    let ratio = angle.sin() / at.0.to_radians().cos();
    if ratio >= 1.0 {
        return all;
    }
    // One cell of margin each side for rounding.
    let dlng = ratio.asin().to_degrees() + CELL_DEGREES;
    let (west, east) = (at.1 - dlng, at.1 + dlng);
    let column = |lng: f64| (lng / CELL_DEGREES).floor() as i32;
    if east - west >= 360.0 {
        return all;
    }
    let mut ranges = vec![(column(west.max(-180.0)), column(east.min(180.0)))];
    if west < -180.0 {
        ranges.push((column(west + 360.0), column(180.0)));
    }
    if east > 180.0 {
        ranges.push((column(-180.0), column(east - 360.0)));
    }
    ranges
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

/// The largest page a search sizes the members waiting to be read by (see
/// `Walk::unread_cap`); the API asks for at most 100.
const MAX_LIMIT: usize = 128;

/// A member whose spot lets them through: their score lies between `low` and `high`, and
/// reading the cleaner decides whether they are a hit.
#[derive(Debug, Clone, Copy)]
struct Tentative {
    low: f64,
    high: f64,
    slot: u32,
}

/// A search under way (see [`SearchIndex::search`]).
struct Walk<'i, 'q> {
    index: &'i SearchIndex,
    query: &'q SearchQuery,
    filter: Filter<'q>,
    plain: PlainFilter,
    /// The cells, parts of cells and rests of parts still to walk, best bound on top.
    cells: Frontier<'i>,
    /// The hits read so far.
    best: TopHits,
    /// The scores of `best` and the lower bounds of `unread`.
    floor: Floor,
    /// Members let through and not read yet.
    unread: Vec<Tentative>,
    /// Members let through whose best possible score was below the score to beat when
    /// they were found: they matter only if reading others lowers it.
    set_aside: Vec<Tentative>,
    /// How many members may wait in `unread` and `set_aside` together: a walk that
    /// finds more reads them first, so a search's memory stays bounded. Eight pages'
    /// worth, so that most searches read once (the benchmark's 1M search lets 160 members
    /// through for a page of 20 with cells of 0.02°, 220 with 0.03°; with room for only
    /// two pages, it read in 1.6 rounds).
    unread_cap: usize,
    at: [f64; 3],
    radius_chord_sq: f64,
}

impl<'i> Walk<'i, '_> {
    /// Walks the cells best bound first, until none can beat the score to beat (then
    /// returns true) or enough members wait to be read (false).
    fn walk_cells(&mut self) -> bool {
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
    fn cut(&mut self, candidate: &Candidate<'i>) {
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
    fn waiting_is_full(&self) -> bool {
        self.unread.len() + self.set_aside.len() >= self.unread_cap
    }

    /// Bounds the score of a member the cell's key let through, from their spot, and
    /// keeps them to be read unless their spot rules them out.
    fn consider(&mut self, key: &Key, spot: &Spot) {
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
    fn keep(&mut self, tentative: Tentative) {
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
    fn read(&mut self) {
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

/// At least the distance in km between two points whose chord of the unit sphere is at
/// least `chord` (an arc is longer than its chord).
fn km_at_least(chord: f64) -> f64 {
    EARTH_RADIUS_KM * chord.max(0.0)
}

/// At most the distance in km between two points whose chord of the unit sphere is at
/// most `chord`: the arc is 2·asin(chord / 2), and asin y ≤ y + y³/4 for 0 ≤ y ≤ 1/2, so
/// it is at most chord + chord³/16 up to a chord of 1 (6,371 km); beyond, no bound.
fn km_at_most(chord: f64) -> f64 {
    if chord > 1.0 {
        return f64::INFINITY;
    }
    EARTH_RADIUS_KM * (chord + chord.powi(3) / 16.0)
}

/// The best scores a page's worth of cleaners reach or are expected to, and one more:
/// the score to beat is the lowest of them once there are that many.
type Floor = Kept<Lowest>;

/// A score ordered so that the lower is the greater: a max-heap keeps the lowest on top.
struct Lowest(f64);

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
    fn score_to_beat(&self) -> f64 {
        self.worst_of_full()
            .map_or(f64::NEG_INFINITY, |lowest| lowest.0)
    }
}

/// Returns the page of `cleaners` that `query` asks for, looking at every one: the
/// reference [`SearchIndex::search`] must agree with.
pub fn scan<'a>(cleaners: impl IntoIterator<Item = &'a Cleaner>, query: &SearchQuery) -> Page {
    let needle = Needle::new(&query.text);
    let mut filter = Filter::new(query, &needle);
    let mut best = TopHits::new(query.limit);
    for cleaner in cleaners {
        if let Some(hit) = filter.hit(cleaner) {
            best.push(Ranked(hit));
        }
    }
    best.into_page()
}

/// A query's rules applied to one cleaner at a time, cheapest first; the query's start is
/// read once per time zone.
struct Filter<'q> {
    query: &'q SearchQuery,
    local_starts: Vec<(Tz, LocalStart)>,
    needle: &'q Needle<'q>,
}

impl<'q> Filter<'q> {
    fn new(query: &'q SearchQuery, needle: &'q Needle<'q>) -> Self {
        Filter {
            query,
            local_starts: Vec::new(),
            needle,
        }
    }

    /// Whether anyone summed up in `summary` may be free for the query's window: false
    /// means nobody in the cell is.
    fn may_hit_any(&mut self, summary: &CellSummary) -> bool {
        match summary.zone {
            Some(zone) => self.window_may_fit(zone, &summary.day_spans),
            None => true,
        }
    }

    /// Whether the query's window (if any) may fit `day_spans`, read in `zone`.
    fn window_may_fit(&mut self, zone: Tz, day_spans: &[DaySpan; 7]) -> bool {
        self.query.window.is_none_or(|(starts_at, minutes)| {
            let local = self.local_start(starts_at, zone);
            day_spans
                .get(usize::from(local.weekday))
                .is_some_and(|span| span.may_hold(local.minute, minutes))
        })
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
        let distance = distance_km(query.at, cleaner.area);
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
        if !after_cursor || !cleaner.matches_text(self.needle) {
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

/// The checks a member's [`Key`] decides (service, rate, rating and the text's character
/// pairs), with what the query leaves out made to admit everyone. They are done without
/// branching, since a search does them thousands of times and most fail; `false` means no
/// hit, `true` that the distance, the hours and then [`Filter::hit`] decide.
///
/// The limits are made what a key holds the same way as the key's own numbers, so that
/// they can only let more through: a rate at most the limit stays at most the clamped
/// limit, and a rating at least the limit, multiplied and rounded up, stays at least the
/// limit multiplied (capped at what a key can hold).
struct PlainFilter {
    /// The largest rate and the most a rating may lack, laid out as in [`Plain`], with
    /// both guard bits set.
    limits: u32,
    /// The services asked for, laid out as in [`Plain`].
    services: u32,
    text_mask: u64,
}

impl PlainFilter {
    fn new(query: &SearchQuery, needle: &Needle<'_>) -> Self {
        let min_rating = query.min_rating.map_or(0.0, |min| min * RATING_STEPS);
        // Rounded down and saturating, so at most the multiplied limit.
        let min_rating = min_rating.clamp(0.0, f64::from(u8::MAX)).floor() as u8;
        let max_rate = query.max_rate_cents.map_or(u16::MAX, key_rate);
        Self::with(max_rate, min_rating, query.services, needle.mask())
    }

    /// The filter of keys with at most `max_rate`, at least `min_rating`, every service of
    /// `services` and every bit of `text_mask`.
    fn with(max_rate: u16, min_rating: u8, services: Services, text_mask: u64) -> Self {
        PlainFilter {
            limits: u32::from(max_rate)
                | RATE_GUARD
                | u32::from(u8::MAX - min_rating) << LACK_SHIFT
                | LACK_GUARD,
            services: Plain::new(0, u8::MAX, services).0,
            text_mask,
        }
    }

    /// Subtracting the key's word from the limits leaves a guard bit set when the field
    /// below it did not borrow: the rate is at most the largest, and the rating lacks at
    /// most what it may (it is at least the least). The bits above the guards are left
    /// over; the services and the text are checked as sets.
    fn admits(&self, key: &Key) -> bool {
        let guards = RATE_GUARD | LACK_GUARD;
        let plain = (self.limits.wrapping_sub(key.plain.0) & guards) ^ guards
            | (!key.plain.0 & self.services);
        (u64::from(plain) | (!key.text_mask & self.text_mask)) == 0
    }
}

/// The best `limit` items so far, and one more to tell whether a next page exists; an
/// item's order makes the worse the greater.
struct Kept<T> {
    limit: usize,
    /// Up to `limit + 1` items, the worst of them on top.
    heap: BinaryHeap<T>,
}

impl<T: Ord> Kept<T> {
    fn new(limit: usize) -> Self {
        Kept {
            limit,
            heap: BinaryHeap::with_capacity(limit.saturating_add(1).min(1_024)),
        }
    }

    fn push(&mut self, item: T) {
        // Full, and no better than the worst: it would be pushed only to be dropped.
        if self.heap.len() > self.limit && self.heap.peek().is_some_and(|worst| item >= *worst) {
            return;
        }
        self.heap.push(item);
        if self.heap.len() > self.limit.saturating_add(1) {
            self.heap.pop();
        }
    }

    /// The worst item kept, once the page and the one after it are.
    fn worst_of_full(&self) -> Option<&T> {
        self.heap.peek().filter(|_| self.heap.len() > self.limit)
    }
}

/// The best hits so far (see [`Kept`]).
type TopHits = Kept<Ranked>;

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
    /// The scores of the hits kept.
    fn scores(&self) -> impl Iterator<Item = f64> {
        self.heap.iter().map(|ranked| ranked.0.score)
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

    const SERVICE_NAMES: [&str; 4] = crate::domain::cleaner::SERVICES;
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
            // Mostly one zone, so that cells can be skipped by their hours; sometimes
            // another, so that cells of mixed zones are searched too.
            zone in prop::sample::select(vec![
                chrono_tz::Europe::Berlin,
                chrono_tz::Europe::Berlin,
                chrono_tz::Europe::Berlin,
                chrono_tz::Asia::Tokyo,
            ]),
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
                zone,
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

    /// Moves the first of `cleaners` to the areas of `moved` (same id, new area and all),
    /// then removes the first `removed` of them; returns the cleaners the index should
    /// hold, by id.
    fn move_and_remove(
        index: &mut SearchIndex,
        cleaners: &[Cleaner],
        moved: Vec<Cleaner>,
        removed: usize,
    ) -> Result<HashMap<Uuid, Cleaner>, TestCaseError> {
        let mut current: HashMap<Uuid, Cleaner> = cleaners
            .iter()
            .map(|cleaner| (cleaner.id, cleaner.clone()))
            .collect();
        for (old, mut new) in cleaners.iter().zip(moved) {
            new.id = old.id;
            index.upsert(new.clone());
            current.insert(new.id, new);
        }
        for cleaner in cleaners.iter().take(removed) {
            prop_assert!(index.remove(cleaner.id).is_some());
            current.remove(&cleaner.id);
        }
        Ok(current)
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
            let current = move_and_remove(&mut index, &cleaners, moved, removed)?;
            prop_assert_eq!(index.len(), current.len());
            prop_assert_eq!(index.search(&query), scan(current.values(), &query));
        }
    }

    /// Where a crowded cleaner lives: in a box of about 4.5 × 2.7 km around a cell of the
    /// grid in Berlin, or of 5.5 × 5.5 km across the antimeridian on the equator.
    fn crowded() -> impl Strategy<Value = (f64, f64)> {
        prop_oneof![
            (52.495..52.535f64, 13.395..13.435f64),
            (-0.025..0.025f64, 179.975..180.025f64)
                .prop_map(|(lat, lng)| { (lat, if lng > 180.0 { lng - 360.0 } else { lng }) }),
        ]
    }

    /// Cleaners of [`cleaner`] crowded into a few cells, so that thousands share a cell and
    /// its parts.
    fn crowded_cleaners(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Cleaner>> {
        (
            any::<bool>(),
            prop::collection::vec((cleaner(), crowded(), crowded()), count),
        )
            .prop_map(|(in_berlin, cleaners)| {
                cleaners
                    .into_iter()
                    .map(|(mut cleaner, berlin, equator)| {
                        cleaner.area = if in_berlin { berlin } else { equator };
                        cleaner
                    })
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Cells of many members are cut into up to 4 × 4 parts, each bounded on its own
        /// (see [`Cell::split_for`]); cleaners are added one by one (the cell cut again as
        /// it fills), moved and removed (cut again as it empties).
        #[test]
        fn cells_cut_into_parts_search_as_a_scan(
            cleaners in crowded_cleaners(0..4_000),
            moved in crowded_cleaners(0..300),
            removed in 0..4_000usize,
            query in query(),
            at in crowded(),
            radius_km in 0.2..5.0f64,
        ) {
            // Near the cleaners: both in Berlin, or both on the equator.
            let at = match cleaners.first() {
                Some(first) if (first.area.0 > 10.0) != (at.0 > 10.0) => first.area,
                _ => at,
            };
            let query = SearchQuery { at, radius_km, ..query };
            let built = SearchIndex::from_cleaners(cleaners.clone());
            prop_assert_eq!(built.search(&query), scan(&cleaners, &query));
            let mut index = SearchIndex::default();
            for cleaner in &cleaners {
                index.upsert(cleaner.clone());
            }
            prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
            let current = move_and_remove(&mut index, &cleaners, moved, removed)?;
            prop_assert_eq!(index.search(&query), scan(current.values(), &query));
        }
    }

    #[test]
    fn cells_are_cut_by_how_many_they_hold() {
        for (members, split) in [
            (0, 1),
            (799, 1),
            (800, 2),
            (1_799, 2),
            (1_800, 3),
            (3_200, 4),
            (1_000_000, 4),
        ] {
            assert_eq!(Cell::split_for(members), split, "{members}");
        }
    }

    /// The packed check of [`PlainFilter::admits`] against the three checks it stands for,
    /// at and around every edge of the fields.
    #[test]
    fn one_subtraction_checks_rate_rating_and_services() {
        let rates = [0, 1, 2, 4_499, 4_500, 4_501, u16::MAX - 1, u16::MAX];
        let ratings = [0, 1, 174, 175, 176, u8::MAX - 1, u8::MAX];
        for (rate, max_rate) in rates.into_iter().flat_map(|a| rates.map(|b| (a, b))) {
            for (rating, min_rating) in ratings.into_iter().flat_map(|a| ratings.map(|b| (a, b))) {
                for (offered, wanted) in (0..16u8).flat_map(|a| (0..16u8).map(move |b| (a, b))) {
                    let names = |bits: u8| {
                        (0..4)
                            .filter(move |bit| bits & (1 << bit) != 0)
                            .map(|bit| SERVICE_NAMES[bit])
                    };
                    let (offered, wanted) = (
                        Services::parse(names(offered)).unwrap(),
                        Services::parse(names(wanted)).unwrap(),
                    );
                    let key = Key {
                        text_mask: 0b1011,
                        static_score: 0.5,
                        plain: Plain::new(rate, rating, offered),
                    };
                    let filter =
                        |text_mask| PlainFilter::with(max_rate, min_rating, wanted, text_mask);
                    let expected =
                        rate <= max_rate && rating >= min_rating && offered.contains(wanted);
                    assert_eq!(
                        filter(0b11).admits(&key),
                        expected,
                        "{rate} {max_rate} {rating} {min_rating} {offered:?} {wanted:?}"
                    );
                    assert!(!filter(0b111).admits(&key));
                }
            }
        }
    }

    #[test]
    fn what_a_search_bounds_a_cell_by_is_one_cache_line() {
        assert!(std::mem::offset_of!(Cell, summary) + std::mem::size_of::<CellSummary>() <= 64);
        assert_eq!(std::mem::align_of::<Cell>(), 64);
    }

    #[test]
    fn four_keys_share_a_cache_line() {
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }

    #[test]
    fn rounding_up_to_f32_never_lowers() {
        for value in [
            0.0,
            1e-9,
            0.1,
            3.5,
            3.7,
            4.999_999_9,
            0.631_234_567_89,
            1e-3 / 3.0,
        ] {
            assert!(f64::from(f32_up(value)) >= value, "{value}");
            assert!(f64::from(f32_up(value)) - value <= value * 1e-7, "{value}");
        }
    }

    /// A key holds rates up to `u16::MAX` cents and ratings to 5.1 stars; beyond, the
    /// search must still tell the rates apart on the cleaner.
    #[test]
    fn rates_and_ratings_beyond_what_a_key_holds_are_decided_exactly() {
        let at = (52.52, 13.4);
        let cleaners: Vec<Cleaner> = [(65_535, 5.0), (70_000, 5.0), (100_000, 5.0), (70_001, 0.0)]
            .into_iter()
            .map(|(rate, stars)| {
                Cleaner::new(
                    Uuid::new_v4(),
                    format!("Rate {rate}"),
                    String::new(),
                    Services::parse(["standard"]).unwrap(),
                    at,
                    10.0,
                    rate,
                    (stars, 10),
                    chrono_tz::Europe::Berlin,
                    Vec::new(),
                    Vec::new(),
                )
            })
            .collect();
        let index = SearchIndex::from_cleaners(cleaners.clone());
        for (max_rate_cents, min_rating, expected) in [
            (70_000, None, 2),
            (69_999, None, 1),
            (70_001, Some(4.9), 2),
            (1_000_000, None, 4),
            (1_000_000, Some(5.0), 3),
        ] {
            let query = SearchQuery::parse(
                &RawQuery {
                    lat: Some(at.0),
                    lng: Some(at.1),
                    radius_km: Some(5.0),
                    min_rating,
                    max_rate_cents: Some(max_rate_cents),
                    ..RawQuery::default()
                },
                Utc::now(),
            )
            .unwrap();
            let found = index.search(&query);
            assert_eq!(found, scan(&cleaners, &query), "{max_rate_cents}");
            assert_eq!(
                found.hits.len(),
                expected,
                "{max_rate_cents} {min_rating:?}"
            );
        }
    }

    /// The rounded fields of a member must never rule out a cleaner exactly at a limit:
    /// the search radius, their own radius, the lowest rating and the highest rate asked.
    #[test]
    fn cleaners_exactly_at_every_limit_are_found() {
        let at = (52.601_234_567, 13.398_765_432);
        for n in 0..200 {
            let step = f64::from(n);
            let area = (52.52 + step * 0.000_713, 13.3 + step * 0.001_357);
            let distance = crate::domain::distance_km(at, area);
            let cleaner = Cleaner::new(
                Uuid::new_v4(),
                "Edge".to_owned(),
                "exactly".to_owned(),
                Services::parse(["standard"]).unwrap(),
                area,
                distance,
                3_333,
                (3.7, 3),
                chrono_tz::Europe::Berlin,
                Vec::new(),
                Vec::new(),
            );
            let index = SearchIndex::from_cleaners([cleaner.clone()]);
            let query = SearchQuery::parse(
                &RawQuery {
                    lat: Some(at.0),
                    lng: Some(at.1),
                    radius_km: Some(distance),
                    min_rating: Some(3.7),
                    max_rate_cents: Some(3_333),
                    q: Some("exact".to_owned()),
                    ..RawQuery::default()
                },
                Utc::now(),
            )
            .unwrap();
            let found = index.search(&query);
            assert_eq!(found, scan([&cleaner], &query), "{area:?}");
            assert_eq!(found.hits.len(), 1, "{area:?}");
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

    #[test]
    fn cleaners_that_prove_no_hit_when_read_let_the_walk_go_on() {
        // At the point, rated 4 stars: cleaners whose text holds every pair of characters
        // of "abc" but not "abc" itself, so that only reading them rules them out. In the
        // next cell north, 2 km away, rated a little better: three booked over the window,
        // then the two hits. A search expects the first ones to be hits and sets the
        // others aside as unable to beat them; reading the first must bring the others
        // back, the booked ones first, and then the hits. With 120 at the point, more than
        // a search keeps waiting (80 for a page of one), it reads them in rounds.
        let starts_at = base() + Duration::hours(10);
        let cleaner = |n: u32, text: &str, lat: f64, stars: f64, busy: bool| {
            Cleaner::new(
                Uuid::from_u128(u128::from(n)),
                format!("Cleaner {n}"),
                text.to_owned(),
                Services::parse(["standard"]).unwrap(),
                (lat, 13.41),
                20.0,
                2_500,
                (stars, 40),
                chrono_tz::Europe::Berlin,
                vec![Window {
                    weekday: 0,
                    start_minute: 8 * 60,
                    end_minute: 18 * 60,
                }],
                if busy {
                    vec![(starts_at, starts_at + Duration::hours(1))]
                } else {
                    Vec::new()
                },
            )
        };
        // The southern edge of a row of cells near Berlin: the point is just south of it,
        // the others 2 km north of it.
        let edge = (52.54 / CELL_DEGREES).ceil() * CELL_DEGREES;
        let point = edge - 0.0005;
        const { assert!(CELL_DEGREES > 0.019, "the others must fit in the next row") };
        for failing in [3, 120] {
            let mut cleaners: Vec<Cleaner> = (0..failing)
                .map(|n| cleaner(n, "ab bc", point, 4.0, false))
                .collect();
            cleaners.extend((100..103).map(|n| {
                cleaner(
                    n,
                    "abc",
                    edge + 0.0175 + f64::from(n - 100) * 1e-4,
                    4.2,
                    true,
                )
            }));
            cleaners.extend((200..202).map(|n| {
                cleaner(
                    n,
                    "abc",
                    edge + 0.018 + f64::from(n - 200) * 1e-4,
                    4.1,
                    false,
                )
            }));
            let index = SearchIndex::from_cleaners(cleaners.clone());
            let query = SearchQuery::parse(
                &RawQuery {
                    lat: Some(point),
                    lng: Some(13.41),
                    radius_km: Some(10.0),
                    starts_at: Some(starts_at),
                    duration_min: Some(60),
                    q: Some("abc".to_owned()),
                    limit: Some(1),
                    ..RawQuery::default()
                },
                base(),
            )
            .unwrap();
            let page = index.search(&query);
            assert_eq!(page, scan(&cleaners, &query), "{failing} failing");
            assert_eq!(page.hits[0].id, Uuid::from_u128(200), "{failing} failing");
            let mut whole = query.clone();
            whole.limit = usize::MAX;
            let found = all_pages(query, |query| index.search(query));
            assert_eq!(found, scan(&cleaners, &whole).hits, "{failing} failing");
            assert_eq!(found.len(), 2, "{failing} failing");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Across the antimeridian and near the poles the grid's rows and columns wrap or
        /// span everything; the answer must still be the scan's.
        #[test]
        fn search_equals_a_scan_at_the_ends_of_the_map(
            areas in prop::collection::vec((prop::sample::select(vec![-89.9, -60.0, 0.0, 60.0, 89.9]), -0.3..0.3f64, -0.4..0.4f64), 1..40),
            centre in prop::sample::select(vec![(-89.9, 179.9), (60.0, -179.95), (0.0, 180.0), (89.9, 0.0)]),
            offset in (-0.2..0.2f64, -0.3..0.3f64),
            radius in 1.0..100.0f64,
        ) {
            let cleaners: Vec<Cleaner> = areas
                .into_iter()
                .map(|(band, dlat, dlng)| {
                    let lat = (band + dlat).clamp(-90.0, 90.0);
                    let mut lng = centre.1 + dlng;
                    if lng > 180.0 { lng -= 360.0; }
                    if lng < -180.0 { lng += 360.0; }
                    Cleaner::new(
                        Uuid::new_v4(),
                        "Far".to_owned(),
                        String::new(),
                        Services::parse(["standard"]).unwrap(),
                        (lat, lng),
                        100.0,
                        2_500,
                        (4.0, 3),
                        chrono_tz::UTC,
                        Vec::new(),
                        Vec::new(),
                    )
                })
                .collect();
            let index = SearchIndex::from_cleaners(cleaners.clone());
            let mut lng = centre.1 + offset.1;
            if lng > 180.0 { lng -= 360.0; }
            if lng < -180.0 { lng += 360.0; }
            let query = SearchQuery::parse(
                &RawQuery {
                    lat: Some((centre.0 + offset.0).clamp(-90.0, 90.0)),
                    lng: Some(lng),
                    radius_km: Some(radius),
                    limit: Some(100),
                    ..RawQuery::default()
                },
                Utc::now(),
            )
            .unwrap();
            prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
        }
    }
}
