//! The ranking score of a hit, from 0 to 1, higher first:
//!
//! `score = 0.45 · rating + 0.35 · nearness + 0.20 · price`, where
//! - `rating` is the Bayesian mean rating over 5: `(sum + 5 · 4.0) / (count + 5) / 5`, so a
//!   cleaner with two 5-star reviews does not outrank one with two hundred 4.9s;
//! - `nearness` is `1 − distance / radius` of the search, so the nearest rank first;
//! - `price` is `1 − (rate − 5 €) / (500 € − 5 €)` over core's accepted hourly rates.
//!
//! Availability is a filter, not a weight: with `starts_at`, only free cleaners are hits.
//! Ties break by id, so the order (and with it cursor paging) is stable.

use super::cleaner::Cleaner;

use spruce_domain::pricing::cheapness;

/// Returns the Bayesian mean rating of `cleaner`, from 0 to 5 (see
/// [`spruce_domain::pricing::bayesian_rating`]).
pub fn bayesian_rating(cleaner: &Cleaner) -> f64 {
    spruce_domain::pricing::bayesian_rating(cleaner.rating_avg, cleaner.rating_count)
}

/// The weight of nearness in the score.
pub const NEARNESS_WEIGHT: f64 = 0.35;

/// Returns the part of `cleaner`'s score that does not depend on the search: rating and
/// price.
pub fn static_score(cleaner: &Cleaner) -> f64 {
    let rating = bayesian_rating(cleaner) / 5.0;
    0.45 * rating + 0.20 * cheapness(cleaner.hourly_rate_cents)
}

/// Returns the nearness of a cleaner `distance_km` away to a search of `radius_km`, 0 to 1.
pub fn nearness(distance_km: f64, radius_km: f64) -> f64 {
    (1.0 - distance_km / radius_km).clamp(0.0, 1.0)
}

/// Returns the score of `cleaner` found `distance_km` away by a search of `radius_km`.
pub fn score(cleaner: &Cleaner, distance_km: f64, radius_km: f64) -> f64 {
    static_score(cleaner) + NEARNESS_WEIGHT * nearness(distance_km, radius_km)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::cleaner::Services;
    use spruce_domain::pricing::PRIOR_RATING;

    fn rated(sum: u32, count: u32, rate: i64) -> Cleaner {
        Cleaner::new(
            Uuid::new_v4(),
            String::new(),
            String::new(),
            Services::default(),
            (0.0, 0.0),
            10.0,
            rate,
            (f64::from(sum) / f64::from(count.max(1)), count),
            spruce_domain::zone::Zone::UTC,
            Vec::new(),
            Vec::new(),
        )
    }

    #[test]
    fn many_good_reviews_outrank_a_few_perfect_ones() {
        let few = rated(10, 2, 2_500);
        let many = rated(980, 200, 2_500);
        assert!(score(&many, 1.0, 10.0) > score(&few, 1.0, 10.0));
        assert!((bayesian_rating(&rated(0, 0, 2_500)) - PRIOR_RATING).abs() < 1e-9);
    }

    #[test]
    fn nearer_and_cheaper_rank_higher_all_else_equal() {
        let cleaner = rated(40, 10, 2_500);
        assert!(score(&cleaner, 1.0, 10.0) > score(&cleaner, 5.0, 10.0));
        assert!(score(&rated(40, 10, 2_000), 1.0, 10.0) > score(&cleaner, 1.0, 10.0));
        let best = score(&rated(500, 100, 500), 0.0, 10.0);
        assert!(best <= 1.0 && best > 0.95, "{best}");
    }
}
