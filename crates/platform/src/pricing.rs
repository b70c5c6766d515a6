//! What a cleaning is and how it is billed, the same in core (bookings) and search
//! (searches, quotes): a kind of cleaning, a duration in quarter hours within 1 to 10 hours,
//! at an hourly rate, in the marketplace's currency.

/// The kinds of cleaning, as the wire spells them (core's `Service` has one variant each,
/// checked by its tests).
pub const SERVICES: [&str; 4] = ["standard", "deep", "move_out", "office"];

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
