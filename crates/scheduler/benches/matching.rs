//! The matching engine's exact solver on the two shapes: 2,000 bookings × 2,000
//! cleaners, every pair allowed, uniform random costs; and 200 bookings × 5,000 cleaners,
//! each booking allowed 100 random cleaners (2 %).
//!
//! `cargo bench -p spruce-scheduler --bench matching` prints one timed solve of each with
//! its total, then criterion's mean.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use spruce_scheduler::matching::solver::{Costs, solve};

/// A small deterministic generator (xorshift), so every run solves the same instances.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn dense(rows: usize, columns: usize) -> Costs {
    let mut random = Random(0x5eed);
    let mut costs = Costs::new(columns);
    for _ in 0..rows {
        costs
            .push_row((0..columns).map(|column| (column, random.unit() * 1_000.0)))
            .expect("valid");
    }
    costs
}

fn sparse(rows: usize, columns: usize, per_row: usize) -> Costs {
    let mut random = Random(0xbeef);
    let mut costs = Costs::new(columns);
    for _ in 0..rows {
        let mut chosen: Vec<usize> = (0..per_row)
            .map(|_| (random.next() % columns as u64) as usize)
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        costs
            .push_row(
                chosen
                    .into_iter()
                    .map(|column| (column, random.unit() * 1_000.0)),
            )
            .expect("valid");
    }
    costs
}

fn matching(criterion: &mut Criterion) {
    for (name, costs) in [
        ("2000 x 2000 dense", dense(2_000, 2_000)),
        ("200 x 5000 sparse", sparse(200, 5_000, 100)),
    ] {
        let started = Instant::now();
        let assignment = solve(&costs);
        println!(
            "{name}: solved once in {:.1?}, total {:.3}, {} unassigned",
            started.elapsed(),
            assignment.total_cost,
            assignment.unassigned()
        );
        criterion.bench_function(name, |bench| bench.iter(|| solve(&costs)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = matching
}
criterion_main!(benches);
