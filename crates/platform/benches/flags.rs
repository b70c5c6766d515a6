//! One flag evaluation in process, for signed-in users, each user a new one:
//!
//! - a flag without targeting, from the repo's flag file (`config/flags.json`);
//! - a flag targeted on environment, role and the user (a 25 % rollout by user id), from a
//!   flag file of the bench's own.
//!
//! `cargo bench -p spruce-platform --bench flags` prints p50/p99/max of 200,000 evaluations
//! timed one by one (200,000 different users), then criterion's time for one. For
//! comparison, in the same run: the targeted flag through open-feature-flagd's own
//! in-process provider and OpenFeature's interface (a context built per call).

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use open_feature::{EvaluationContext, provider::FeatureProvider};
use open_feature_flagd::{FlagdOptions, FlagdProvider, ResolverType};
use spruce_platform::flags::{FlagSettings, Flags, RECOMMENDATIONS_ENABLED, Subject};
use spruce_testkit::TempFolder;
use uuid::Uuid;

/// `recommendations-enabled` switched on in staging and e2e, off for cleaners, and for a
/// quarter of the other users elsewhere.
const TARGETED: &str = r#"{"flags": {"recommendations-enabled": {
    "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
    "targeting": {"if": [
        {"in": [{"var": "environment"}, ["staging", "e2e"]]}, "on",
        {"==": [{"var": "role"}, "cleaner"]}, "off",
        {"fractional": [["on", 25], ["off", 75]]}
    ]}}}}"#;

const EVALUATIONS: usize = 200_000;

fn loaded(runtime: &tokio::runtime::Runtime, file: &str) -> Flags {
    runtime.block_on(async {
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
    })
}

/// Times `EVALUATIONS` evaluations one by one, each for another user, and prints the spread.
fn spread(name: &str, flags: &Flags, users: &[Subject]) -> usize {
    let mut times = Vec::with_capacity(users.len());
    let mut on = 0;
    for who in users {
        let started = Instant::now();
        let value = std::hint::black_box(flags.enabled(&RECOMMENDATIONS_ENABLED, *who));
        times.push(started.elapsed());
        on += usize::from(value);
    }
    times.sort_unstable();
    println!(
        "{name}, {EVALUATIONS} evaluations for as many users: p50 {:?}, p99 {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
    on
}

/// Runs a future that never waits (flagd's provider takes only uncontended locks) to its end.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("flagd's provider waited"),
    }
}

fn flags(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let untargeted = loaded(
        &runtime,
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/flags.json"),
    );
    let folder = TempFolder::new("flags-bench");
    let file = folder.path().join("flags.json");
    std::fs::write(&file, TARGETED).expect("the bench's flag file is written");
    let targeted = loaded(&runtime, &file.display().to_string());

    let users: Vec<Subject> = (0..EVALUATIONS)
        .map(|_| Subject {
            user_id: Some(Uuid::new_v4()),
            role: Some("customer"),
        })
        .collect();
    spread("flag without targeting", &untargeted, &users);
    let on = spread("targeted flag", &targeted, &users);
    // The rollout is real: about a quarter of the users have it.
    assert!(
        (EVALUATIONS / 5..EVALUATIONS * 3 / 10).contains(&on),
        "{on}"
    );

    let provider = runtime.block_on(async {
        FlagdProvider::new(FlagdOptions {
            resolver_type: ResolverType::File,
            source_configuration: Some(file.display().to_string()),
            cache_settings: None,
            ..FlagdOptions::default()
        })
        .await
        .expect("flagd's provider reads the flag file")
    });
    let _entered = runtime.enter();

    let who = users[0];
    criterion.bench_function("flag without targeting", |bench| {
        bench.iter(|| untargeted.enabled(&RECOMMENDATIONS_ENABLED, std::hint::black_box(who)));
    });
    let mut next = users.iter().cycle();
    criterion.bench_function("targeted flag, a user each time", |bench| {
        bench.iter(|| targeted.enabled(&RECOMMENDATIONS_ENABLED, *next.next().expect("cycle")));
    });
    criterion.bench_function("targeted flag through flagd's provider", |bench| {
        bench.iter(|| {
            let who = next.next().expect("cycle");
            let context = EvaluationContext::default()
                .with_targeting_key(who.user_id.expect("signed in").to_string())
                .with_custom_field("role", who.role.expect("signed in"))
                .with_custom_field("environment", "local");
            now(provider.resolve_bool_value(RECOMMENDATIONS_ENABLED.key, &context))
                .expect("flagd answers")
                .value
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = flags
}
criterion_main!(benches);
