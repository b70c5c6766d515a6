//! The matching engine's second mode: a stable matching by deferred acceptance, where the
//! cleaners' preferences count as much as the bookings'.
//!
//! Each booking (row) ranks the cleaners it may have by its cost, cheapest first; each
//! cleaner (column) ranks the bookings that may have them by their own cost, least first
//! (say, travel from their previous job and how much they like the kind of work). Bookings
//! propose in order; a cleaner keeps the best proposal so far and turns down the rest
//! (Gale–Shapley). The result is stable — no booking and cleaner both prefer each other to
//! what they got — and every booking does as well as in any stable matching. It is not the
//! cheapest assignment: [`super::solver`] is.

use super::solver::{Assignment, Costs};

/// Ties rank by the lower index, so the outcome never depends on anything but the input.
fn prefers(a: (f64, usize), b: (f64, usize)) -> bool {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_lt()
}

/// Matches by deferred acceptance: rows propose by `costs`, columns choose by
/// `column_costs` (the same pairs; a pair missing from either is not allowed).
pub fn stable(costs: &Costs, column_costs: &Costs) -> Assignment {
    let rows = costs.rows();
    // Each row's allowed columns, best first.
    let choices: Vec<Vec<usize>> = (0..rows)
        .map(|row| {
            let mut allowed: Vec<(f64, usize)> = (0..costs.columns())
                .filter_map(|column| {
                    let cost = costs.cost(row, column)?;
                    column_costs.cost(row, column)?;
                    Some((cost, column))
                })
                .collect();
            allowed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            allowed.into_iter().map(|(_, column)| column).collect()
        })
        .collect();
    let mut next_choice = vec![0usize; rows];
    let mut holder: Vec<Option<usize>> = vec![None; costs.columns()];
    let mut proposing: Vec<usize> = (0..rows).rev().collect();
    while let Some(row) = proposing.pop() {
        let Some(&column) = choices[row].get(next_choice[row]) else {
            continue;
        };
        next_choice[row] += 1;
        let offer = (column_costs.cost(row, column).unwrap_or(f64::INFINITY), row);
        match holder[column] {
            None => holder[column] = Some(row),
            Some(held) => {
                let kept = (
                    column_costs.cost(held, column).unwrap_or(f64::INFINITY),
                    held,
                );
                if prefers(offer, kept) {
                    holder[column] = Some(row);
                    proposing.push(held);
                } else {
                    proposing.push(row);
                }
            }
        }
    }
    let mut columns = vec![None; rows];
    for (column, row) in holder.iter().enumerate() {
        if let Some(row) = row {
            columns[*row] = Some(column);
        }
    }
    Assignment::of(costs, columns)
}

/// Counts the allowed pairs that would rather be together than with what `assignment` gave
/// them (0 for a stable matching).
pub fn blocking_pairs(costs: &Costs, column_costs: &Costs, assignment: &Assignment) -> usize {
    let mut holder: Vec<Option<usize>> = vec![None; costs.columns()];
    for (row, column) in assignment.columns.iter().enumerate() {
        if let Some(column) = column {
            holder[*column] = Some(row);
        }
    }
    let mut blocking = 0;
    for row in 0..costs.rows() {
        let current = assignment.columns[row]
            .and_then(|column| costs.cost(row, column).map(|cost| (cost, column)));
        // Only the row's own pairs can block: a scan of every column for each row cost
        // seconds on a round of 10,000 bookings.
        for &(column, cost) in costs.pairs_of(row) {
            let Some(their_cost) = column_costs.cost(row, column) else {
                continue;
            };
            if Some(column) == assignment.columns[row] {
                continue;
            }
            let held_by = holder[column];
            let row_would = current.is_none_or(|held| prefers((cost, column), held));
            let column_would = held_by.is_none_or(|held| {
                let kept = (
                    column_costs.cost(held, column).unwrap_or(f64::INFINITY),
                    held,
                );
                prefers((their_cost, row), kept)
            });
            if row_would && column_would {
                blocking += 1;
            }
        }
    }
    blocking
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn costs_of(matrix: &[Vec<Option<u32>>], columns: usize) -> Costs {
        let matrix: Vec<Vec<Option<f64>>> = matrix
            .iter()
            .map(|row| row.iter().map(|cost| cost.map(f64::from)).collect())
            .collect();
        let costs = Costs::dense(&matrix).unwrap();
        assert_eq!(costs.columns(), columns);
        costs
    }

    /// Every matching of the allowed pairs (as each row's column or none).
    fn every_matching(costs: &Costs) -> Vec<Vec<Option<usize>>> {
        fn extend(
            costs: &Costs,
            row: usize,
            used: &mut Vec<bool>,
            current: &mut Vec<Option<usize>>,
            all: &mut Vec<Vec<Option<usize>>>,
        ) {
            if row == costs.rows() {
                all.push(current.clone());
                return;
            }
            current.push(None);
            extend(costs, row + 1, used, current, all);
            current.pop();
            for column in 0..costs.columns() {
                if used[column] || costs.cost(row, column).is_none() {
                    continue;
                }
                used[column] = true;
                current.push(Some(column));
                extend(costs, row + 1, used, current, all);
                current.pop();
                used[column] = false;
            }
        }
        let mut all = Vec::new();
        extend(
            costs,
            0,
            &mut vec![false; costs.columns()],
            &mut Vec::new(),
            &mut all,
        );
        all
    }

    prop_compose! {
        fn instance()(rows in 1..=5usize, columns in 1..=5usize)
            (matrix in prop::collection::vec(prop::collection::vec(prop::option::weighted(0.7, 0..20u32), columns), rows),
             theirs in prop::collection::vec(prop::collection::vec(0..20u32, columns), rows),
             columns in Just(columns))
            -> (Vec<Vec<Option<u32>>>, Vec<Vec<Option<u32>>>, usize)
        {
            // The cleaners rank exactly the pairs the bookings may have.
            let theirs = matrix.iter().zip(&theirs).map(|(row, their)| {
                row.iter().zip(their).map(|(cost, their)| cost.map(|_| *their)).collect()
            }).collect();
            (matrix, theirs, columns)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn deferred_acceptance_is_stable_and_best_for_every_booking((matrix, theirs, columns) in instance()) {
            let (costs, column_costs) = (costs_of(&matrix, columns), costs_of(&theirs, columns));
            let matched = stable(&costs, &column_costs);
            prop_assert_eq!(blocking_pairs(&costs, &column_costs, &matched), 0);
            let mut used = vec![false; columns];
            for (row, column) in matched.columns.iter().enumerate() {
                if let Some(column) = *column {
                    prop_assert!(matrix[row][column].is_some());
                    prop_assert!(!used[column]);
                    used[column] = true;
                }
            }
            // No stable matching gives any booking a cleaner it prefers.
            let rank = |row: usize, column: Option<usize>| {
                column.map_or((f64::INFINITY, usize::MAX), |column| (costs.cost(row, column).unwrap(), column))
            };
            for other in every_matching(&costs) {
                let other = Assignment { columns: other, total_cost: 0.0 };
                if blocking_pairs(&costs, &column_costs, &other) > 0 {
                    continue;
                }
                for row in 0..matrix.len() {
                    let (mine, theirs_) = (rank(row, matched.columns[row]), rank(row, other.columns[row]));
                    prop_assert!(!prefers(theirs_, mine), "row {} does better in {:?}", row, other.columns);
                }
            }
        }
    }

    #[test]
    fn a_cleaner_keeps_the_booking_they_prefer() {
        // Both bookings want cleaner 0; the cleaner prefers booking 1, so booking 0 moves on.
        let costs = costs_of(&[vec![Some(1), Some(5)], vec![Some(1), Some(9)]], 2);
        let theirs = costs_of(&[vec![Some(7), Some(1)], vec![Some(2), Some(1)]], 2);
        let matched = stable(&costs, &theirs);
        assert_eq!(matched.columns, vec![Some(1), Some(0)]);
        assert_eq!(matched.total_cost, 6.0);
        assert_eq!(blocking_pairs(&costs, &theirs, &matched), 0);
        // Swapped, booking 1 and cleaner 0 would both rather be together.
        let swapped = Assignment {
            columns: vec![Some(0), Some(1)],
            total_cost: 10.0,
        };
        assert_eq!(blocking_pairs(&costs, &theirs, &swapped), 1);
    }
}
