//! When a clock job is due: a cron expression read in a time zone.

use chrono::{DateTime, Utc};
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};
use spruce_domain::zone::Zone;

/// A job's schedule: five cron fields (minute precision) or six (a leading seconds field),
/// read as wall-clock times in `zone`, so `0 3 * * *` in Europe/Berlin stays 03:00 across
/// daylight saving.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Zone,
    expression: String,
}

impl Schedule {
    /// Parses `expression` in the time zone named `zone` (an IANA name such as `UTC`).
    ///
    /// # Errors
    /// Says what is wrong with the expression or the zone.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, String> {
        let zone: Zone = zone
            .parse()
            .map_err(|_| format!("{zone:?} is not an IANA time zone"))?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|error| format!("{expression:?} is not a cron expression: {error}"))?;
        let schedule = Schedule {
            cron,
            zone,
            expression: expression.trim().to_owned(),
        };
        // An expression that never fires (30 February) would leave the job silently idle.
        schedule
            .next_after(Utc::now())
            .ok_or_else(|| format!("{expression:?} never fires"))?;
        Ok(schedule)
    }

    /// Returns the expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// Returns the time zone's IANA name.
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// Returns the latest tick at or before `now`: the one a replica should run. However
    /// many ticks were missed while nothing ran, this is the only one that still runs.
    pub fn latest_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.zone), true)
            .ok()
            .map(|tick| tick.with_timezone(&Utc))
    }

    /// Returns the first tick after `time`.
    pub fn next_after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&time.with_timezone(&self.zone), false)
            .ok()
            .map(|tick| tick.with_timezone(&Utc))
    }

    /// Returns the gap between the two ticks after `time`: the job's period there (what the
    /// staleness alert multiplies).
    pub fn period_after(&self, time: DateTime<Utc>) -> Option<chrono::Duration> {
        let first = self.next_after(time)?;
        Some(self.next_after(first)? - first)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_latest_due_tick_is_the_last_one_at_or_before_now() {
        let every_five = Schedule::parse("*/5 * * * *", "UTC").unwrap();
        assert_eq!(
            every_five.latest_due(at("2026-11-30T12:07:30Z")),
            Some(at("2026-11-30T12:05:00Z"))
        );
        assert_eq!(
            every_five.latest_due(at("2026-11-30T12:05:00Z")),
            Some(at("2026-11-30T12:05:00Z"))
        );
        // Down for three hours: one tick is due, not thirty-six.
        assert_eq!(
            every_five.latest_due(at("2026-11-30T15:09:59Z")),
            Some(at("2026-11-30T15:05:00Z"))
        );
        assert_eq!(
            every_five.next_after(at("2026-11-30T12:05:00Z")),
            Some(at("2026-11-30T12:10:00Z"))
        );
        assert_eq!(
            every_five.period_after(at("2026-11-30T12:05:00Z")),
            Some(chrono::Duration::minutes(5))
        );
    }

    #[test]
    fn seconds_are_optional_and_zones_keep_wall_clock_time() {
        let every_two_seconds = Schedule::parse("*/2 * * * * *", "UTC").unwrap();
        assert_eq!(
            every_two_seconds.latest_due(at("2026-11-30T12:00:03.5Z")),
            Some(at("2026-11-30T12:00:02Z"))
        );
        let nightly = Schedule::parse("0 3 * * *", "Europe/Berlin").unwrap();
        // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
        assert_eq!(
            nightly.next_after(at("2026-11-30T12:00:00Z")),
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 2, 0, 0).unwrap())
        );
        assert_eq!(
            nightly.next_after(at("2026-07-01T12:00:00Z")),
            Some(Utc.with_ymd_and_hms(2026, 7, 2, 1, 0, 0).unwrap())
        );
        assert_eq!(nightly.zone(), "Europe/Berlin");
    }

    #[test]
    fn nonsense_is_refused_with_the_reason() {
        assert!(
            Schedule::parse("every day", "UTC")
                .unwrap_err()
                .contains("cron")
        );
        assert!(
            Schedule::parse("0 3 * * *", "Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
        assert!(
            Schedule::parse("0 0 30 2 *", "UTC")
                .unwrap_err()
                .contains("never")
        );
    }
}
