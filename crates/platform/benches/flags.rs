//! One flag evaluation in process, from the repo's flag file (`config/flags.json`): a
//! boolean and a number flag for a signed-in customer.
//!
//! `cargo bench -p spruce-platform --bench flags` prints p50/p99/max of 200,000 evaluations
//! timed one by one, then criterion's time for one.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use spruce_platform::flags::{
    FlagSettings, Flags, RECOMMENDATIONS_ENABLED, SEARCH_MIN_RATING_DEFAULT, Subject,
};
use uuid::Uuid;

/// Runs a future that never waits (an evaluation only takes uncontended locks) to its end.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a flag evaluation waited"),
    }
}

fn flags(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/flags.json");
    let flags = runtime.block_on(async {
        let settings = FlagSettings {
            file: file.to_owned(),
            ..FlagSettings::default()
        };
        let flags = Flags::start(&settings, "local");
        let started = Instant::now();
        while !flags.loaded() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{file} not read"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        flags
    });
    let _entered = runtime.enter();
    let who = Subject {
        user_id: Some(Uuid::new_v4()),
        role: Some("customer"),
    };
    let mut times = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let started = Instant::now();
        std::hint::black_box(now(flags.enabled(&RECOMMENDATIONS_ENABLED, who)));
        times.push(started.elapsed());
    }
    times.sort_unstable();
    println!(
        "boolean flag, 200,000 evaluations: p50 {:?}, p99 {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
    criterion.bench_function("boolean flag", |bench| {
        bench.iter(|| now(flags.enabled(&RECOMMENDATIONS_ENABLED, std::hint::black_box(who))));
    });
    criterion.bench_function("number flag", |bench| {
        bench.iter(|| now(flags.number(&SEARCH_MIN_RATING_DEFAULT, std::hint::black_box(who))));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = flags
}
criterion_main!(benches);
