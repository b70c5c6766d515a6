//! Training the duration model on 1M synthetic completed bookings (the curated set's law)
//! and predicting one job.
//!
//! `cargo bench -p spruce-search --bench duration` prints the training time and hold-out
//! MAE, then criterion's time for one prediction.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use spruce_search::domain::duration::{DurationModel, mean_per_service_mae, synthetic};

fn duration(criterion: &mut Criterion) {
    let history = synthetic::history(1_000_000, 5_000, 42);
    let started = Instant::now();
    let model = DurationModel::train(&history, None).expect("trains");
    println!(
        "1,000,000 completed bookings: trained in {:.1?}, hold-out MAE {:.1} min (mean per service {:.1} min)",
        started.elapsed(),
        model.holdout_mae_min,
        mean_per_service_mae(&history)
    );
    let job = history[7].job;
    criterion.bench_function("predict one job", |bench| {
        bench.iter(|| model.predict(std::hint::black_box(&job)));
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = duration
}
criterion_main!(benches);
