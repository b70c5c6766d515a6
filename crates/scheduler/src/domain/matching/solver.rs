//! The exact solver of the matching engine: a minimum-cost assignment of rows (open
//! bookings) to columns (cleaners) where some pairs are forbidden.
//!
//! It assigns as many rows as possible and, among such assignments, the cheapest. Every row
//! may also stay unassigned, through a column of its own costing [`Costs::unassigned_cost`]:
//! more than any saving a different set of real pairs could make, so leaving a row out is
//! only ever the answer when no assignment can include it.
//!
//! The method is the Jonker–Volgenant shortest augmenting path: each column has a price,
//! and each row in turn is added by a Dijkstra search over the reduced costs (cost less the
//! column's price) that ends at the first free column; the prices of the columns it settled
//! then move so that every assigned row's column stays its cheapest. Only the pairs that
//! exist are looked at, so a sparse instance costs what its pairs cost. No heuristic decides anything: the answer is optimal.

use std::{cmp::Ordering, collections::BinaryHeap, fmt};

/// The allowed pairs of each row with their costs; a pair not given is forbidden.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    columns: usize,
    rows: Vec<Vec<(usize, f64)>>,
}

/// Why a cost matrix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostsError {
    #[error("row {row}: column {column} is outside the {columns} columns")]
    NoSuchColumn {
        row: usize,
        column: usize,
        columns: usize,
    },
    #[error("row {row}, column {column}: the cost must be a finite number")]
    NotFinite { row: usize, column: usize },
    #[error("row {row}: column {column} is given twice")]
    Twice { row: usize, column: usize },
    #[error(
        "line {line}, cell {cell}: {value:?} is not a number (leave a cell empty to forbid the pair)"
    )]
    NotANumber {
        line: usize,
        cell: usize,
        value: String,
    },
}

impl Costs {
    /// No rows yet, over `columns` columns.
    pub fn new(columns: usize) -> Self {
        Costs {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row with its allowed `(column, cost)` pairs.
    ///
    /// # Errors
    /// A column out of range or given twice, or a cost that is not finite.
    pub fn push_row(
        &mut self,
        pairs: impl IntoIterator<Item = (usize, f64)>,
    ) -> Result<(), CostsError> {
        let row = self.rows.len();
        let mut pairs: Vec<(usize, f64)> = pairs.into_iter().collect();
        pairs.sort_unstable_by_key(|(column, _)| *column);
        for (at, &(column, cost)) in pairs.iter().enumerate() {
            if column >= self.columns {
                return Err(CostsError::NoSuchColumn {
                    row,
                    column,
                    columns: self.columns,
                });
            }
            if !cost.is_finite() {
                return Err(CostsError::NotFinite { row, column });
            }
            if at > 0 && pairs[at - 1].0 == column {
                return Err(CostsError::Twice { row, column });
            }
        }
        self.rows.push(pairs);
        Ok(())
    }

    /// A dense matrix, `None` where a pair is forbidden.
    ///
    /// # Errors
    /// A cost that is not finite.
    pub fn dense(matrix: &[Vec<Option<f64>>]) -> Result<Self, CostsError> {
        let columns = matrix.iter().map(Vec::len).max().unwrap_or(0);
        let mut costs = Costs::new(columns);
        for row in matrix {
            costs.push_row(
                row.iter()
                    .enumerate()
                    .filter_map(|(column, cost)| cost.map(|cost| (column, cost))),
            )?;
        }
        Ok(costs)
    }

    /// Reads a cost matrix as CSV: one line per row, one cell per column, an empty cell for
    /// a forbidden pair. Blank lines and lines starting with `#` are skipped; rows may have
    /// fewer cells than the widest (the rest are forbidden).
    ///
    /// # Errors
    /// A cell that is not a finite number, naming its line and cell (both from 1).
    pub fn from_csv(text: &str) -> Result<Self, CostsError> {
        let mut rows = Vec::new();
        for (line, content) in text.lines().enumerate() {
            let content = content.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let mut row = Vec::new();
            for (cell, value) in content.split(',').enumerate() {
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                let cost = value
                    .parse::<f64>()
                    .ok()
                    .filter(|cost| cost.is_finite())
                    .ok_or_else(|| CostsError::NotANumber {
                        line: line + 1,
                        cell: cell + 1,
                        value: value.to_owned(),
                    })?;
                row.push((cell, cost));
            }
            rows.push((row, content.split(',').count()));
        }
        let columns = rows.iter().map(|(_, cells)| *cells).max().unwrap_or(0);
        let mut costs = Costs::new(columns);
        for (row, _) in rows {
            costs.push_row(row)?;
        }
        Ok(costs)
    }

    /// Whether there are as many rows as columns and every pair is allowed.
    pub fn is_complete_square(&self) -> bool {
        self.rows.len() == self.columns && self.rows.iter().all(|row| row.len() == self.columns)
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// How many columns.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// How many allowed pairs.
    pub fn pairs(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// The allowed pairs of `row` as (column, cost), by column; none for a row not there.
    pub fn pairs_of(&self, row: usize) -> &[(usize, f64)] {
        self.rows.get(row).map_or(&[], Vec::as_slice)
    }

    /// The cost of the pair, if allowed.
    pub fn cost(&self, row: usize, column: usize) -> Option<f64> {
        let pairs = self.rows.get(row)?;
        pairs
            .binary_search_by_key(&column, |(held, _)| *held)
            .ok()
            .map(|at| pairs[at].1)
    }

    /// What leaving a row unassigned costs: more than the spread of all costs times the
    /// rows, so no cheaper set of pairs can pay for one more row left out.
    pub fn unassigned_cost(&self) -> f64 {
        let (low, high) = self.rows.iter().flatten().fold(
            (f64::INFINITY, f64::NEG_INFINITY),
            |(low, high), (_, cost)| (low.min(*cost), high.max(*cost)),
        );
        if low > high {
            return 1.0;
        }
        (high - low + 1.0) * (self.rows.len() as f64 + 1.0) + high.abs()
    }
}

/// An optimal assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Each row's column, `None` when it stays unassigned.
    pub columns: Vec<Option<usize>>,
    /// The sum of the assigned pairs' costs.
    pub total_cost: f64,
}

impl Assignment {
    /// Each row's column (`None`: unassigned) with the sum of their costs in `costs`.
    pub fn of(costs: &Costs, columns: Vec<Option<usize>>) -> Self {
        let total_cost = columns
            .iter()
            .enumerate()
            .filter_map(|(row, column)| column.and_then(|column| costs.cost(row, column)))
            .sum();
        Assignment {
            columns,
            total_cost,
        }
    }

    /// How many rows stay unassigned.
    pub fn unassigned(&self) -> usize {
        self.columns
            .iter()
            .filter(|column| column.is_none())
            .count()
    }
}

impl fmt::Display for Assignment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (row, column) in self.columns.iter().enumerate() {
            match column {
                Some(column) => writeln!(formatter, "{row},{column}")?,
                None => writeln!(formatter, "{row},")?,
            }
        }
        Ok(())
    }
}

const FREE: usize = usize::MAX;

/// The solver's state: column prices and who holds each column. Column `columns + row` is
/// `row`'s own "unassigned" column.
struct Solver<'c> {
    costs: &'c Costs,
    /// Square with every pair allowed (see [`Costs::is_complete_square`]).
    complete: bool,
    unassigned_cost: f64,
    price: Vec<f64>,
    owner: Vec<usize>,
    column_of: Vec<usize>,
    /// The cost of each row's pair with its column.
    held_cost: Vec<f64>,
    // Per search, reset through `touched`.
    /// The cost of the pair that reached each column.
    via_cost: Vec<f64>,
    distance: Vec<f64>,
    from_row: Vec<usize>,
    settled: Vec<bool>,
    touched: Vec<usize>,
    /// Columns reached and not yet settled, nearest first. A column whose distance
    /// shrank is in it again; the stale entry is skipped when it comes up. In a complete
    /// square only the rows' own columns go in (the real ones are found by one pass, see
    /// [`Solver::relax_all`]); elsewhere a search over thousands of contended columns
    /// takes each in a logarithm, not a scan of all it reached.
    open: BinaryHeap<Reached>,
}

/// A column reached by a search at `distance`, ordered so that a max-heap yields the
/// nearest first, then the lowest-numbered.
#[derive(Debug, Clone, Copy)]
struct Reached {
    distance: f64,
    column: usize,
}

impl PartialEq for Reached {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Reached {}

impl PartialOrd for Reached {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reached {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .distance
            .total_cmp(&self.distance)
            .then(other.column.cmp(&self.column))
    }
}

impl Solver<'_> {
    /// Jonker–Volgenant's column reduction, for a square matrix with every pair allowed
    /// only: each column's price becomes its least cost and the row with that cost takes
    /// it if still free. Every placed row then sits on a column of reduced cost 0, its least,
    /// which the searches keep true. Elsewhere a column left free at the end would keep a
    /// price, and the answer could be wrong (the tests show it); in a complete square every
    /// column ends up taken, so prices need no sign.
    fn reduce_columns(&mut self) {
        let costs = self.costs;
        let mut cheapest: Vec<(f64, usize)> = vec![(f64::INFINITY, FREE); costs.columns];
        for (row, pairs) in costs.rows.iter().enumerate() {
            for &(column, cost) in pairs {
                if cost < cheapest[column].0 {
                    cheapest[column] = (cost, row);
                }
            }
        }
        for (column, (cost, row)) in cheapest.into_iter().enumerate() {
            self.price[column] = cost;
            if self.column_of[row] == FREE {
                self.owner[column] = row;
                self.column_of[row] = column;
                self.held_cost[row] = cost;
            }
        }
        // Reduction transfer: each placed row's column costs it as much as its next best,
        // which keeps it the row's least and makes it less tempting to every other row.
        for (row, pairs) in costs.rows.iter().enumerate() {
            let held = self.column_of[row];
            if held == FREE {
                continue;
            }
            let next_best = pairs
                .iter()
                .filter(|(column, _)| *column != held)
                .map(|&(column, cost)| cost - self.price[column])
                .fold(f64::INFINITY, f64::min);
            if next_best.is_finite() {
                let reduced = self.held_cost[row] - self.price[held];
                self.price[held] -= next_best - reduced;
            }
        }
    }

    /// Jonker–Volgenant's augmenting row reduction (complete squares of two or more, after
    /// [`Solver::reduce_columns`]): each free row takes its least reduced-cost column,
    /// lowering that column's price until the row's second least ties it, and whoever held
    /// it becomes free (at once again when the price moved, later otherwise). Every placed
    /// row keeps a least column, so the searches that follow stay exact.
    fn reduce_free_rows(&mut self) {
        let costs = self.costs;
        let mut free: Vec<usize> = (0..costs.rows.len())
            .filter(|&row| self.column_of[row] == FREE)
            .collect();
        // A bound on the work, whatever the prices do: rows still free when it runs out are
        // placed by the searches, which are exact on their own.
        let mut budget = 8 * free.len();
        let mut at = 0;
        while at < free.len() && budget > 0 {
            budget -= 1;
            let row = free[at];
            at += 1;
            let (mut least, mut second) = ((f64::INFINITY, FREE), (f64::INFINITY, FREE));
            for &(column, cost) in &costs.rows[row] {
                let reduced = cost - self.price[column];
                if reduced < second.0 {
                    if reduced >= least.0 {
                        second = (reduced, column);
                    } else {
                        second = least;
                        least = (reduced, column);
                    }
                }
            }
            let ((umin, mut column), usubmin) = (least, second.0);
            if !usubmin.is_finite() {
                continue;
            }
            let mut displaced = self.owner[column];
            if umin < usubmin {
                self.price[column] -= usubmin - umin;
            } else if displaced != FREE {
                column = second.1;
                displaced = self.owner[column];
            }
            // A complete row holds every column, in order.
            let cost = costs.rows[row][column].1;
            self.owner[column] = row;
            self.column_of[row] = column;
            self.held_cost[row] = cost;
            if displaced != FREE {
                self.column_of[displaced] = FREE;
                // Displaced by a price change: again at once; by a tie: next time round.
                if umin < usubmin {
                    at -= 1;
                    free[at] = displaced;
                }
            }
        }
    }

    /// Places each row on its cheapest column where no earlier row took it. With every
    /// price still 0 this is what a search would do for it, and no assignment of those rows
    /// can cost less (each pays its least), so the searches after start from an optimum.
    fn take_cheapest(&mut self) {
        let costs = self.costs;
        for (row, pairs) in costs.rows.iter().enumerate() {
            let cheapest = pairs
                .iter()
                .min_by(|(a_column, a_cost), (b_column, b_cost)| {
                    a_cost.total_cmp(b_cost).then(a_column.cmp(b_column))
                });
            if let Some(&(column, cost)) = cheapest
                && self.owner[column] == FREE
            {
                self.owner[column] = row;
                self.column_of[row] = column;
                self.held_cost[row] = cost;
            }
        }
    }

    /// Relaxes `row` (see [`Solver::relax`]). In a complete square every row reaches every
    /// column, so the same pass finds the nearest unsettled real column, returned, and
    /// only the rows' own columns go into `open`; elsewhere `None`, and `open` holds all.
    fn relax_all(&mut self, row: usize, offset: f64) -> Option<(usize, f64)> {
        if !self.complete {
            self.relax(row, offset);
            return None;
        }
        let costs = self.costs;
        let mut nearest: Option<(usize, f64)> = None;
        for &(column, cost) in &costs.rows[row] {
            if self.settled[column] {
                continue;
            }
            let distance = cost - self.price[column] - offset;
            if distance < self.distance[column] {
                if self.distance[column] == f64::INFINITY {
                    self.touched.push(column);
                }
                self.distance[column] = distance;
                self.from_row[column] = row;
                self.via_cost[column] = cost;
            }
            let held = self.distance[column];
            if nearest.is_none_or(|(_, best)| held < best) {
                nearest = Some((column, held));
            }
        }
        let own = costs.columns + row;
        let cost = self.unassigned_cost;
        self.reach(own, cost, cost - self.price[own] - offset, row);
        nearest
    }

    /// The next column to settle, the nearest (the lowest-numbered among equals): of those
    /// in `open`, or `nearest_real` (complete squares) if that is no farther.
    fn next_column(&mut self, nearest_real: Option<(usize, f64)>) -> Option<(usize, f64)> {
        while let Some(top) = self.open.peek() {
            if !self.settled[top.column] && top.distance == self.distance[top.column] {
                break;
            }
            self.open.pop();
        }
        match (nearest_real, self.open.peek()) {
            (Some((column, distance)), Some(other)) if distance <= other.distance => {
                Some((column, distance))
            }
            (Some(real), None) => Some(real),
            (_, Some(&Reached { distance, column })) => {
                self.open.pop();
                Some((column, distance))
            }
            (None, None) => None,
        }
    }

    /// Offers every pair of `row` to the search, at `offset` plus its reduced cost.
    fn relax(&mut self, row: usize, offset: f64) {
        let costs = self.costs;
        for &(column, cost) in &costs.rows[row] {
            self.reach(column, cost, cost - self.price[column] - offset, row);
        }
        let own = costs.columns + row;
        let cost = self.unassigned_cost;
        self.reach(own, cost, cost - self.price[own] - offset, row);
    }

    fn reach(&mut self, column: usize, cost: f64, distance: f64, row: usize) {
        if self.settled[column] || distance >= self.distance[column] {
            return;
        }
        if self.distance[column] == f64::INFINITY {
            self.touched.push(column);
        }
        self.open.push(Reached { distance, column });
        self.distance[column] = distance;
        self.from_row[column] = row;
        self.via_cost[column] = cost;
    }

    /// Adds `start` to the assignment along a shortest augmenting path.
    fn augment(&mut self, start: usize) {
        let mut nearest_real = self.relax_all(start, 0.0);
        let mut settled_columns = Vec::new();
        let (end, length) = loop {
            let Some((column, distance)) = self.next_column(nearest_real) else {
                unreachable!("every row has its own free column");
            };
            self.settled[column] = true;
            settled_columns.push(column);
            let row = self.owner[column];
            if row == FREE {
                break (column, distance);
            }
            // The row's column is its cheapest in reduced cost, so nothing it reaches is
            // nearer than `distance`: Dijkstra's order holds.
            let offset = self.held_cost[row] - self.price[column] - distance;
            nearest_real = self.relax_all(row, offset);
        };
        for &column in &settled_columns {
            self.price[column] += self.distance[column] - length;
        }
        let mut column = end;
        loop {
            let row = self.from_row[column];
            let previous = self.column_of[row];
            self.owner[column] = row;
            self.column_of[row] = column;
            self.held_cost[row] = self.via_cost[column];
            if row == start {
                break;
            }
            column = previous;
        }
        for column in self.touched.drain(..) {
            self.distance[column] = f64::INFINITY;
            self.settled[column] = false;
        }
        self.open.clear();
    }
}

/// Returns an optimal assignment of `costs` (see the module's doc for what optimal means).
pub fn solve(costs: &Costs) -> Assignment {
    let rows = costs.rows();
    let all_columns = costs.columns + rows;
    let complete = costs.is_complete_square();
    let mut solver = Solver {
        costs,
        complete,
        unassigned_cost: costs.unassigned_cost(),
        price: vec![0.0; all_columns],
        owner: vec![FREE; all_columns],
        column_of: vec![FREE; rows],
        held_cost: vec![0.0; rows],
        via_cost: vec![0.0; all_columns],
        distance: vec![f64::INFINITY; all_columns],
        from_row: vec![FREE; all_columns],
        settled: vec![false; all_columns],
        touched: Vec::new(),
        open: BinaryHeap::new(),
    };
    if complete {
        solver.reduce_columns();
        if rows >= 2 {
            solver.reduce_free_rows();
            solver.reduce_free_rows();
        }
    } else {
        solver.take_cheapest();
    }
    for row in 0..rows {
        if solver.column_of[row] == FREE {
            solver.augment(row);
        }
    }
    let columns: Vec<Option<usize>> = solver
        .column_of
        .iter()
        .map(|&column| (column < costs.columns).then_some(column))
        .collect();
    Assignment::of(costs, columns)
}

#[cfg(test)]
#[path = "solver_tests.rs"]
mod tests;
