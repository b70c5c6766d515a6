//! What a cleaning is and how it is billed, the same in core (bookings), search (searches,
//! quotes) and the scheduler (matching): a kind of cleaning, a duration in quarter hours
//! within 1 to 10 hours, at an hourly rate, in the marketplace's currency; and how rates and
//! ratings compare.

/// The kinds of cleaning, as the wire spells them (core's `Service` has one variant each,
/// checked by its tests).
pub const SERVICES: [&str; 4] = ["standard", "deep", "move_out", "office"];

/// The hourly rates a cleaner may ask, in cents (core refuses others).
pub const HOURLY_RATE_CENTS: std::ops::RangeInclusive<i64> = 500..=50_000;

/// How cheap `rate_cents` is among the accepted rates: 1 at the lowest, 0 at the highest.
pub fn cheapness(rate_cents: i64) -> f64 {
    let (low, high) = (
        *HOURLY_RATE_CENTS.start() as f64,
        *HOURLY_RATE_CENTS.end() as f64,
    );
    (1.0 - (rate_cents as f64 - low) / (high - low)).clamp(0.0, 1.0)
}

/// The rating everyone starts from, and how many reviews it counts as, in
/// [`bayesian_rating`].
pub const PRIOR_RATING: f64 = 4.0;
pub const PRIOR_WEIGHT: f64 = 5.0;

/// The Bayesian mean rating, 0 to 5, of `count` reviews averaging `average`: a cleaner with
/// two 5-star reviews does not outrank one with two hundred 4.9s.
pub fn bayesian_rating(average: f64, count: u32) -> f64 {
    let count = f64::from(count);
    (average * count + PRIOR_WEIGHT * PRIOR_RATING) / (count + PRIOR_WEIGHT)
}

/// The marketplace's currency; every price is in its cents.
pub const CURRENCY: &str = "EUR";

/// The hourly rate used for bookings without a chosen cleaner, until one is assigned.
pub const DEFAULT_HOURLY_RATE_CENTS: i64 = 2_500;

/// Returns `minutes` rounded up to a quarter hour and kept within 1 to 10 hours.
pub fn billable_minutes(minutes: f64) -> u32 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let quarters = (minutes.max(0.0) / 15.0).ceil().min(1_000.0) as u32;
    (quarters * 15).clamp(60, 600)
}

/// A home as an estimate reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    pub size_m2: u32,
    pub bedrooms: u32,
    pub bathrooms: u32,
    pub has_pets: bool,
}

/// The rule-of-thumb duration, in minutes, of cleaning `home` with `service` (one of
/// [`SERVICES`]; anything else reads as standard): a base per service, minutes per square
/// metre, extra time per bathroom and bedroom and for pets, billed in quarter hours
/// ([`billable_minutes`]). What answers until a learned model can.
pub fn rule_of_thumb_minutes(service: &str, home: Home) -> u32 {
    let (base, per_m2) = match service {
        "deep" => (60.0, 1.4),
        "move_out" => (90.0, 1.6),
        "office" => (30.0, 0.6),
        _ => (30.0, 0.8),
    };
    let pets = if home.has_pets { 15.0 } else { 0.0 };
    let minutes = base
        + per_m2 * f64::from(home.size_m2)
        + 20.0 * f64::from(home.bathrooms)
        + 10.0 * f64::from(home.bedrooms)
        + pets;
    billable_minutes(minutes)
}

/// Returns the price of `duration_min` at `hourly_rate_cents`, rounded up to the cent.
pub fn price_cents(duration_min: u32, hourly_rate_cents: i64) -> i64 {
    (i64::from(duration_min) * hourly_rate_cents + 59) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_bill_in_quarter_hours_within_one_to_ten_hours() {
        assert_eq!(billable_minutes(61.0), 75);
        assert_eq!(billable_minutes(10.0), 60);
        assert_eq!(billable_minutes(5_000.0), 600);
        assert_eq!(billable_minutes(f64::NAN), 60);
        assert_eq!(price_cents(90, 2_500), 3_750);
    }
}
