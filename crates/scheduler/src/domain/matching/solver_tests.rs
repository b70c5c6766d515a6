use pathfinding::{kuhn_munkres::kuhn_munkres_min, matrix::Matrix};
use proptest::prelude::*;

use super::*;

/// The best (most rows assigned, then least cost) over every assignment, by dynamic
/// programming over the set of columns used: exhaustive, for up to about 12 columns.
fn brute_force(matrix: &[Vec<Option<i64>>], columns: usize) -> (usize, i64) {
    let mut best = vec![(0usize, 0i64); 1 << columns];
    // best[mask] for the rows after `row`: filled from the last row up.
    for row in (0..matrix.len()).rev() {
        let mut next = best.clone();
        for (mask, slot) in next.iter_mut().enumerate() {
            let mut choice = best[mask];
            for (column, cost) in matrix[row].iter().enumerate() {
                let Some(cost) = cost else { continue };
                if mask & (1 << column) != 0 {
                    continue;
                }
                let (count, total) = best[mask | (1 << column)];
                let candidate = (count + 1, total + cost);
                if candidate.0 > choice.0 || (candidate.0 == choice.0 && candidate.1 < choice.1) {
                    choice = candidate;
                }
            }
            *slot = choice;
        }
        best = next;
    }
    best[0]
}

/// The same with pathfinding's Kuhn–Munkres as an independent solver: each row gets a
/// column of its own for "unassigned", forbidden pairs a cost nothing optimal pays.
fn reference(matrix: &[Vec<Option<i64>>], columns: usize) -> (usize, i64) {
    let rows = matrix.len();
    let unassigned = 1_000_000_i64;
    let forbidden = unassigned * (rows as i64 + 1);
    let weights = Matrix::from_rows(matrix.iter().enumerate().map(|(row, costs)| {
        (0..columns + rows)
            .map(|column| match (column < columns, costs.get(column)) {
                (true, Some(Some(cost))) => *cost,
                (true, _) => forbidden,
                (false, _) if column - columns == row => unassigned,
                (false, _) => forbidden,
            })
            .collect::<Vec<_>>()
    }))
    .unwrap();
    let (_, chosen) = kuhn_munkres_min(&weights);
    chosen
        .iter()
        .enumerate()
        .filter(|(_, column)| **column < columns)
        .fold((0, 0), |(count, total), (row, column)| {
            (
                count + 1,
                total + matrix[row][*column].expect("never forbidden"),
            )
        })
}

fn costs_of(matrix: &[Vec<Option<i64>>], columns: usize) -> Costs {
    let mut costs = Costs::new(columns);
    for row in matrix {
        costs
            .push_row(
                row.iter()
                    .enumerate()
                    .filter_map(|(column, cost)| cost.map(|cost| (column, cost as f64))),
            )
            .unwrap();
    }
    costs
}

fn check(matrix: &[Vec<Option<i64>>], columns: usize, expected: (usize, i64)) {
    let assignment = solve(&costs_of(matrix, columns));
    let mut used = vec![false; columns];
    for (row, column) in assignment.columns.iter().enumerate() {
        if let Some(column) = *column {
            assert!(
                matrix[row][column].is_some(),
                "a forbidden pair: {row},{column}"
            );
            assert!(!used[column], "column {column} twice");
            used[column] = true;
        }
    }
    let assigned = matrix.len() - assignment.unassigned();
    assert_eq!(
        (assigned, assignment.total_cost),
        (expected.0, expected.1 as f64),
        "{matrix:?}"
    );
}

fn matrices(
    max_rows: usize,
    max_columns: usize,
    max_cost: i64,
) -> impl Strategy<Value = (Vec<Vec<Option<i64>>>, usize)> {
    (1..=max_rows, 1..=max_columns, 0.0..1.0_f64).prop_flat_map(move |(rows, columns, density)| {
        let cell = prop_oneof![
            ((1.0 - density).max(0.05) * 100.0) as u32 => Just(None),
            (density.max(0.05) * 100.0) as u32 => (0..=max_cost).prop_map(Some),
        ];
        (
            prop::collection::vec(prop::collection::vec(cell, columns), rows),
            Just(columns),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn small_instances_are_solved_as_well_as_every_assignment_tried((matrix, columns) in matrices(9, 9, 20)) {
        check(&matrix, columns, brute_force(&matrix, columns));
    }
}

fn complete_squares(max: usize, max_cost: i64) -> impl Strategy<Value = Vec<Vec<Option<i64>>>> {
    (1..=max).prop_flat_map(move |size| {
        prop::collection::vec(
            prop::collection::vec((0..=max_cost).prop_map(Some), size),
            size,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn complete_squares_are_solved_as_well_as_every_assignment_tried(matrix in complete_squares(9, 20)) {
        let size = matrix.len();
        prop_assert!(costs_of(&matrix, size).is_complete_square());
        check(&matrix, size, brute_force(&matrix, size));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn larger_complete_squares_agree_with_an_independent_solver(matrix in complete_squares(80, 1_000)) {
        let size = matrix.len();
        check(&matrix, size, reference(&matrix, size));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn larger_instances_agree_with_an_independent_solver((matrix, columns) in matrices(60, 80, 1_000)) {
        check(&matrix, columns, reference(&matrix, columns));
    }
}

#[test]
fn three_hundred_by_three_hundred_agree_with_an_independent_solver() {
    // A deterministic mix: a third of the pairs forbidden, costs 0 to 9,999.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let matrix: Vec<Vec<Option<i64>>> = (0..300)
        .map(|_| {
            (0..300)
                .map(|_| {
                    let draw = next();
                    (draw % 3 != 0).then_some(((draw >> 8) % 10_000) as i64)
                })
                .collect()
        })
        .collect();
    check(&matrix, 300, reference(&matrix, 300));
}

#[test]
fn a_row_with_no_allowed_pair_stays_unassigned_and_more_rows_than_columns_work() {
    let matrix = vec![
        vec![None, None],
        vec![Some(5), Some(1)],
        vec![Some(2), Some(9)],
    ];
    let assignment = solve(&costs_of(&matrix, 2));
    assert_eq!(assignment.columns, vec![None, Some(1), Some(0)]);
    assert_eq!(assignment.total_cost, 3.0);
    // Three rows want one column: one gets it, the cheapest.
    let crowd = vec![vec![Some(4)], vec![Some(2)], vec![Some(3)]];
    let assignment = solve(&costs_of(&crowd, 1));
    assert_eq!(assignment.columns, vec![None, Some(0), None]);
}

#[test]
fn one_more_row_assigned_beats_any_saving() {
    // Row 0 alone on column 0 costs 1; both rows assigned costs 1,000 + 1,000.
    let matrix = vec![vec![Some(1), Some(1_000)], vec![Some(1_000), None]];
    let assignment = solve(&costs_of(&matrix, 2));
    assert_eq!(assignment.columns, vec![Some(1), Some(0)]);
    assert_eq!(assignment.total_cost, 2_000.0);
}

#[test]
fn a_csv_matrix_reads_with_empty_cells_forbidden() {
    let costs = Costs::from_csv("# bookings by cleaners\n4, ,2\n\n1,3\n").unwrap();
    assert_eq!((costs.rows(), costs.columns(), costs.pairs()), (2, 3, 4));
    assert_eq!(costs.cost(0, 1), None);
    assert_eq!(costs.cost(0, 2), Some(2.0));
    let assignment = solve(&costs);
    assert_eq!(assignment.columns, vec![Some(2), Some(0)]);
    assert_eq!(assignment.to_string(), "0,2\n1,0\n");
    assert_eq!(
        Costs::from_csv("1,2\n3,x\n").unwrap_err().to_string(),
        "line 2, cell 2: \"x\" is not a number (leave a cell empty to forbid the pair)"
    );
    assert!(Costs::from_csv("1,inf\n").is_err());
}

#[test]
fn bad_matrices_are_refused() {
    let mut costs = Costs::new(2);
    assert_eq!(
        costs.push_row([(2, 1.0)]),
        Err(CostsError::NoSuchColumn {
            row: 0,
            column: 2,
            columns: 2
        })
    );
    assert_eq!(
        costs.push_row([(0, f64::NAN)]),
        Err(CostsError::NotFinite { row: 0, column: 0 })
    );
    assert_eq!(
        costs.push_row([(1, 1.0), (1, 2.0)]),
        Err(CostsError::Twice { row: 0, column: 1 })
    );
    assert_eq!(costs.rows(), 0);
    assert_eq!(solve(&costs).columns, Vec::<Option<usize>>::new());
}
