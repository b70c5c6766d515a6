use super::{SeedSize, seed_allowed, seed_options};

#[test]
fn seed_takes_a_secret_password_in_e2e_and_nothing_in_staging_or_prod() {
    assert!(seed_allowed("local", false));
    assert!(seed_allowed("", false));
    assert!(
        !seed_allowed("e2e", false),
        "e2e never takes the published password"
    );
    assert!(seed_allowed("e2e", true));
    for environment in ["staging", "prod", "production"] {
        assert!(!seed_allowed(environment, true), "{environment}");
    }
}

#[test]
fn seed_options_are_read_in_any_order_and_refused_when_unknown_or_incomplete() {
    let options =
        |words: &[&str]| seed_options(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>());
    assert_eq!(options(&[]).unwrap(), (SeedSize::CURATED, None));
    assert_eq!(
        options(&["--password-file", "/p", "--scale", "3"]).unwrap(),
        (SeedSize::scaled(3), Some("/p".to_owned()))
    );
    assert!(options(&["--scale"]).is_err());
    assert!(options(&["--scale", "many"]).is_err());
    assert!(options(&["--verbose", "1"]).is_err());
}

use super::*;

#[test]
fn the_same_index_always_makes_the_same_booking() {
    let first = booking(7, SeedSize::CURATED);
    let again = booking(7, SeedSize::CURATED);
    assert_eq!(
        (first.id, first.actual_min, first.starts_at),
        (again.id, again.actual_min, again.starts_at)
    );
    assert!(first.starts_at < history_end());
}

#[test]
fn durations_follow_the_hidden_law() {
    let small = AddressInput {
        size_m2: 40,
        ..address(1)
    };
    let large = AddressInput {
        size_m2: 160,
        ..address(1)
    };
    assert!(
        true_duration_min(Service::Standard, &small, 1.0, 1.0)
            < true_duration_min(Service::Standard, &large, 1.0, 1.0)
    );
    assert!(
        true_duration_min(Service::Standard, &large, 0.8, 1.0)
            < true_duration_min(Service::Standard, &large, 1.2, 1.0)
    );
    assert!(
        true_duration_min(Service::Standard, &large, 1.0, 1.0)
            < true_duration_min(Service::Deep, &large, 1.0, 1.0)
    );
}

#[test]
fn every_seeded_cleaner_offers_standard_cleaning() {
    for index in 1..=30 {
        assert!(cleaner(index).services.contains(&Service::Standard));
    }
}
