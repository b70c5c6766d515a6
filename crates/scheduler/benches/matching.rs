//! The matching engine's exact solver on the two shapes: 2,000 bookings × 2,000
//! cleaners, every pair allowed, uniform random costs; and 200 bookings × 5,000 cleaners,
//! each booking allowed 100 random cleaners (2 %). And a whole round of `auto-assign`'s
//! engine ([`plan`]: columns per cleaner and day, costs, the solve, blocking pairs) over
//! 10,000 bookings in the next 14 days, each with the 20 candidates search would rank
//! first among 5,000 cleaners of a 13 × 13 km city, so that the bookings of a day and a
//! neighbourhood contend for the same cleaners, as on the scale set.
//!
//! `cargo bench -p spruce-scheduler --bench matching` prints one timed solve of each with
//! its total, then criterion's mean.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use spruce_scheduler::domain::matching::{
    engine::{Candidate, Mode, OpenBooking, plan},
    solver::{Costs, solve},
};
use uuid::Uuid;

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

/// A round as `auto-assign` builds it (see the module's doc).
fn round(bookings: usize, cleaners: usize, per_booking: usize) -> Vec<OpenBooking> {
    let mut random = Random(0xc1ea);
    // Positions in km on a 13 km square; rate, rating and reviews as the seed makes them.
    let cleaners: Vec<(f64, f64, f64, i64, f64, u32)> = (0..cleaners)
        .map(|_| {
            (
                random.unit() * 13.0,
                random.unit() * 13.0,
                6.0 + random.unit() * 9.0,
                2_000 + (random.next() % 21) as i64 * 100,
                3.0 + random.unit() * 2.0,
                (random.next() % 40) as u32,
            )
        })
        .collect();
    (0..bookings)
        .map(|n| {
            let (x, y) = (random.unit() * 13.0, random.unit() * 13.0);
            // Search's order: rating and price, then nearness over a 50 km search.
            let mut ranked: Vec<(f64, usize, f64)> = cleaners
                .iter()
                .enumerate()
                .filter_map(|(index, &(cx, cy, radius, rate, rating, reviews))| {
                    let distance = ((cx - x).powi(2) + (cy - y).powi(2)).sqrt();
                    (distance <= radius).then(|| {
                        let rating =
                            (rating * f64::from(reviews) + 20.0) / (f64::from(reviews) + 5.0);
                        let score = 0.45 * rating / 5.0
                            + 0.2 * (1.0 - (rate as f64 - 500.0) / 49_500.0)
                            + 0.35 * (1.0 - distance / 50.0);
                        (score, index, distance)
                    })
                })
                .collect();
            ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            ranked.truncate(per_booking);
            OpenBooking {
                booking_id: Uuid::from_u128(n as u128),
                duration_min: 120,
                candidates: ranked
                    .into_iter()
                    .map(|(_, index, distance_km)| {
                        let (_, _, _, hourly_rate_cents, rating_avg, rating_count) =
                            cleaners[index];
                        Candidate {
                            cleaner_id: Uuid::from_u128(1 << 64 | index as u128),
                            distance_km,
                            hourly_rate_cents,
                            rating_avg,
                            rating_count,
                            held_bookings: (random.next() % 5) as u32,
                            day: (n % 14) as i32,
                        }
                    })
                    .collect(),
            }
        })
        .collect()
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
    let bookings = round(10_000, 5_000, 20);
    for (name, mode) in [("cheapest", Mode::Cheapest), ("stable", Mode::Stable)] {
        let name = format!("a round of 10000 bookings, {name}");
        let started = Instant::now();
        let round = plan(&bookings, mode);
        println!(
            "{name}: planned once in {:.1?}, {} assigned, {} unassigned, total {:.3}, {} blocking pairs",
            started.elapsed(),
            round.assigned.len(),
            round.unassigned.len(),
            round.total_cost,
            round.blocking_pairs
        );
        criterion.bench_function(&name, |bench| bench.iter(|| plan(&bookings, mode)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = matching
}
criterion_main!(benches);
