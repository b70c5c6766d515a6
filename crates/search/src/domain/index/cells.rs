//! The grid's cells: each cut into parts, its members best first by static score, and what
//! a search reads of a cell before its members.

use super::*;

/// A cell of the grid and its cleaners: cut into parts (see [`Cell::split_for`]), and in each
/// part highest static score first, then by slot; the keys and the spots of its members in
/// two arrays in that order.
///
/// What a search reads of every cell in reach (its centre, reach and summary) comes first
/// and fills one cache line: a 1M search looks at about a hundred cells, seldom
/// still in the cache from the search before.
#[derive(Debug)]
#[repr(C, align(64))]
pub(super) struct Cell {
    pub(super) area: Area,
    /// What a search reads of the cell before its members (see [`Cell::summarize`]).
    pub(super) summary: CellSummary,
    /// The south-west corner, in degrees.
    pub(super) corner: (f64, f64),
    /// The parts, a square number of them (see [`Cell::split`]), row by row from the
    /// south-west, and where each one's members end in `keys` and `spots` (each starts
    /// where the one before ends).
    pub(super) parts: Vec<Part>,
    pub(super) keys: Vec<Key>,
    pub(super) spots: Vec<Spot>,
}

/// A part of a cell: its area, where its members end, and the best static score among
/// them (kept here so that a search bounds the part without reading its keys, a cache miss
/// each).
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    pub(super) area: Area,
    pub(super) end: u32,
    pub(super) best_static: f32,
}

/// A cell's members summed up, so that a search can bound or skip the cell without
/// reading them: their best static score, and when they all share a time zone, the union
/// of their hours each weekday (a search for a time nobody there may work, a Sunday say,
/// then skips the cell).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct CellSummary {
    pub(super) best_static: f64,
    pub(super) day_spans: [DaySpan; 7],
    pub(super) zone: Option<Zone>,
}

/// The occupied cells, sorted by (row, column): a row's columns are a slice, and the cells
/// a search bounds lie side by side in memory. Their keys are an array of their own, small
/// enough to stay in the cache, that a search looks its rows up in. A cell is added or
/// dropped only when the first cleaner moves in or the last one out.
#[derive(Default)]
pub(super) struct Grid {
    pub(super) keys: Vec<CellKey>,
    pub(super) cells: Vec<Cell>,
}

impl Grid {
    pub(super) fn len(&self) -> usize {
        self.cells.len()
    }

    /// Returns the cell at `key`, made empty if there was none.
    pub(super) fn cell_mut(&mut self, key: CellKey) -> &mut Cell {
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
    pub(super) fn change(&mut self, key: CellKey, change: impl FnOnce(&mut Cell)) {
        if let Ok(at) = self.keys.binary_search(&key) {
            change(&mut self.cells[at]);
            if self.cells[at].keys.is_empty() {
                self.keys.remove(at);
                self.cells.remove(at);
            }
        }
    }

    /// The cells of `row` from column `west` to column `east`.
    pub(super) fn row(&self, row: i32, (west, east): (i32, i32)) -> &[Cell] {
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

/// How many members a part of a cell holds at least: a cell of n is cut into
/// ⌊√(n / this)⌋ parts a side, up to 4 × 4. In the 1M benchmark city a cell holds about
/// 1,900 and is cut into 3 × 3 (a search there took about a tenth less time than with whole
/// cells, and a few percent less than with 2 × 2 or 4 × 4: more parts rule out more members
/// unread, but each part walked costs a heap pop and the cache misses of a new place in
/// memory).
pub(super) const MEMBERS_A_PART: usize = 200;

impl Cell {
    pub(super) fn new((row, column): CellKey) -> Self {
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
    pub(super) fn split_for(members: usize) -> usize {
        (members / MEMBERS_A_PART).isqrt().clamp(1, 4)
    }

    /// How many parts a side the cell is cut into.
    pub(super) fn split(&self) -> usize {
        self.parts.len().isqrt()
    }

    /// Makes the cell's parts `split` a side, with no members.
    pub(super) fn cut(&mut self, split: usize) {
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
    pub(super) fn part_of(&self, spot: &Spot) -> usize {
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
    pub(super) fn range(&self, part: usize) -> std::ops::Range<usize> {
        let start = part
            .checked_sub(1)
            .map_or(0, |before| self.parts[before].end);
        start as usize..self.parts[part].end as usize
    }

    /// Returns the cell at `key` holding `members`, in any order.
    pub(super) fn with(key: CellKey, members: Vec<Member>) -> Self {
        let mut cell = Cell::new(key);
        cell.hold(members);
        cell
    }

    /// Makes the cell hold `members` alone, cut into as many parts as they call for.
    pub(super) fn hold(&mut self, members: Vec<Member>) {
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
    pub(super) fn members(&mut self) -> Vec<Member> {
        std::mem::take(&mut self.keys)
            .into_iter()
            .zip(std::mem::take(&mut self.spots))
            .map(|(key, spot)| Member { key, spot })
            .collect()
    }

    /// Sums the members up again, after a change.
    pub(super) fn summarize(&mut self) {
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
    pub(super) fn insert(&mut self, member: Member) {
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
    pub(super) fn remove(&mut self, slot: u32) {
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
pub(super) fn member_order(
    (a_key, a_spot): (&Key, &Spot),
    (b_key, b_spot): (&Key, &Spot),
) -> Ordering {
    b_key
        .static_score
        .total_cmp(&a_key.static_score)
        .then(a_spot.slot.cmp(&b_spot.slot))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn what_a_search_bounds_a_cell_by_is_one_cache_line() {
        assert!(std::mem::offset_of!(Cell, summary) + std::mem::size_of::<CellSummary>() <= 64);
        assert_eq!(std::mem::align_of::<Cell>(), 64);
    }
}
