//! Top-20 within 10 km with every filter on, over 100k and 1M cleaners spread over a city
//! of 60 × 60 km (about Berlin's size, so a query finds thousands in its radius).
//!
//! `cargo bench -p spruce-search --bench search` prints criterion's mean per search, then
//! for each size: the time to build the read model (the grid, versions, one live
//! booking for every tenth cleaner) from decoded cleaners, the growth of resident memory
//! per cleaner from before the cleaners were generated (an upper bound of what the model
//! holds: the allocator keeps some of what was freed), and the p50/p99 of 20,000 single searches
//! timed one by one, in three passes:
//! - over all 60,000 times (the figure the target is set on);
//! - over each query's median of its three times: a query slowed in one pass by something
//!   else (an interrupt, a virtual machine's host taking the CPU away for tens of µs) is
//!   not slowed in the others, so this is the spread of the searches themselves;
//! - of a fixed loop of arithmetic as long as the median search, timed as often: what the
//!   machine alone adds to a job of that length, searching nothing.
//!
//! `SIZES` (sizes by commas) and `QUERIES` (how many) make a shorter run: for an A/B in
//! instructions, which the machine's noise does not touch, `SIZES=1000000 QUERIES=1000
//! valgrind --tool=callgrind --toggle-collect='*SearchIndex::search*' target/release/deps/search-<hash> --test`.

use std::time::{Duration, Instant};

use chrono::{TimeZone as _, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use spruce_search::domain::{
    cleaner::{Cleaner, Services, Window},
    index::SearchIndex,
    query::{RawQuery, SearchQuery},
    readmodel::{Booking, ReadModel, SnapshotBuilder},
};
use uuid::Uuid;

/// The process's resident memory in bytes (Linux), for the cost of the model per cleaner.
fn resident_bytes() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Builds the read model as a snapshot load does, every tenth cleaner with a live booking.
fn read_model(cleaners: Vec<Cleaner>) -> ReadModel {
    let starts_at = Utc.with_ymd_and_hms(2030, 6, 4, 9, 0, 0).unwrap();
    let mut builder = SnapshotBuilder::default();
    for (n, cleaner) in cleaners.into_iter().enumerate() {
        let bookings = if n % 10 == 0 {
            vec![(
                Uuid::from_u128(u128::MAX - n as u128),
                Booking {
                    cleaner_id: Some(cleaner.id),
                    starts_at,
                    ends_at: starts_at + chrono::Duration::hours(2),
                    holds: true,
                    version: 1,
                },
            )]
        } else {
            Vec::new()
        };
        builder.add(1, cleaner, bookings);
    }
    builder.finish()
}

/// A small deterministic generator (xorshift), so every run searches the same city.
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next()
    }
}

const SERVICES: [&str; 4] = ["standard", "deep", "move_out", "office"];
const WORDS: [&str; 6] = ["tidy", "careful", "fast", "friendly", "thorough", "eco"];

fn city(size: usize) -> Vec<Cleaner> {
    let mut random = Random(0x5eed);
    (0..size)
        .map(|n| {
            let services = SERVICES
                .iter()
                .copied()
                .filter(|_| random.next() < 0.6)
                .collect::<Vec<_>>();
            let days: Vec<Window> = (0..7)
                .filter(|_| random.next() < 0.7)
                .map(|weekday| Window {
                    weekday,
                    start_minute: 8 * 60,
                    end_minute: 18 * 60,
                })
                .collect();
            let reviews = (random.next() * 60.0) as u32;
            let word = WORDS[(random.next() * WORDS.len() as f64) as usize];
            Cleaner::new(
                Uuid::from_u128(n as u128),
                format!("Cleaner {n}"),
                format!("A {word} cleaner with years of experience"),
                Services::parse(services).unwrap_or_default(),
                (random.between(52.25, 52.79), random.between(13.0, 13.88)),
                random.between(5.0, 25.0),
                (random.between(1_500.0, 6_000.0)) as i64,
                (
                    f64::from((3 + (random.next() * 3.0) as u32).min(5)),
                    reviews,
                ),
                spruce_domain::zone::Zone::named("Europe/Berlin").unwrap(),
                days,
                Vec::new(),
            )
        })
        .collect()
}

fn queries(count: usize) -> Vec<SearchQuery> {
    let mut random = Random(0xbeef);
    let now = Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap();
    (0..count)
        .map(|_| {
            let raw = RawQuery {
                lat: Some(random.between(52.35, 52.69)),
                lng: Some(random.between(13.15, 13.73)),
                radius_km: Some(10.0),
                service: Some("standard".to_owned()),
                starts_at: Some(Utc.with_ymd_and_hms(2030, 6, 3, 8, 0, 0).unwrap()),
                duration_min: Some(150),
                min_rating: Some(3.5),
                max_rate_cents: Some(4_500),
                q: Some("careful".to_owned()),
                limit: Some(20),
                after: None,
            };
            SearchQuery::parse(&raw, now).expect("a valid query")
        })
        .collect()
}

const PASSES: usize = 3;

/// Returns the p50 and p99 of `times`.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort_unstable();
    let at = |share: f64| times[((times.len() as f64 * share) as usize).min(times.len() - 1)];
    (at(0.50), at(0.99))
}

/// Times every query once in each of `PASSES` passes; returns the times by query and the
/// mean hits a page.
fn timed(index: &SearchIndex, queries: &[SearchQuery]) -> (Vec<[Duration; PASSES]>, f64) {
    let mut times = vec![[Duration::ZERO; PASSES]; queries.len()];
    let mut hits = 0;
    for pass in 0..PASSES {
        for (query, times) in queries.iter().zip(&mut times) {
            let started = Instant::now();
            let page = index.search(query);
            times[pass] = started.elapsed();
            hits += page.hits.len();
        }
    }
    (times, hits as f64 / (PASSES * queries.len()) as f64)
}

/// A step of arithmetic that depends on the one before, so that a loop of them takes a
/// fixed time on a given CPU.
fn mix(value: u64) -> u64 {
    (value ^ (value >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// Times `count` loops of arithmetic each about `length` long: their spread is the
/// machine's own, since every loop does the same work.
fn machine_alone(length: Duration, count: usize) -> (Duration, Duration) {
    let calibration = 1_000_000;
    let started = Instant::now();
    std::hint::black_box((0..calibration).fold(1, |value, _| mix(value)));
    let steps =
        (calibration as f64 * length.as_secs_f64() / started.elapsed().as_secs_f64()) as u64;
    let times = (0..count)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box((0..steps).fold(1, |value, _| mix(value)));
            started.elapsed()
        })
        .collect();
    percentiles(times)
}

fn search(criterion: &mut Criterion) {
    // `SIZES=1000000 QUERIES=1000` (say) for a shorter run, under valgrind for one.
    let setting = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let queries = queries(setting("QUERIES").map_or(20_000, |count| {
        count.parse().expect("QUERIES is a number of queries")
    }));
    let sizes: Vec<usize> = setting("SIZES").map_or(vec![100_000, 1_000_000], |sizes| {
        sizes
            .split(',')
            .map(|size| size.parse().expect("SIZES is a list of sizes, by commas"))
            .collect()
    });
    for size in sizes {
        let before = resident_bytes();
        let cleaners = city(size);
        let started = Instant::now();
        let model = read_model(cleaners);
        let built = started.elapsed();
        let held = resident_bytes() - before;
        let index = model.index();
        let (times, hits) = timed(index, &queries);
        let (p50, p99) = percentiles(times.iter().flatten().copied().collect());
        let (median_p50, median_p99) = percentiles(
            times
                .iter()
                .map(|passes| {
                    let mut passes = *passes;
                    passes.sort_unstable();
                    passes[PASSES / 2]
                })
                .collect(),
        );
        let (alone_p50, alone_p99) = machine_alone(p50, queries.len());
        println!(
            "{size} cleaners: read model built in {built:.2?}, {} bytes a cleaner; one search p50 {p50:.1?}, p99 {p99:.1?}, {hits:.1} hits a page; \
             each query's median of {PASSES}: p50 {median_p50:.1?}, p99 {median_p99:.1?}; \
             the machine alone, as long as a search: p50 {alone_p50:.1?}, p99 {alone_p99:.1?}",
            held / size as isize
        );
        let mut next = 0;
        criterion.bench_function(
            &format!("top-20 within 10 km, all filters, {size}"),
            |bench| {
                bench.iter(|| {
                    next = (next + 1) % queries.len();
                    index.search(&queries[next])
                });
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = search
}
criterion_main!(benches);
