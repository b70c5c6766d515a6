//! IANA time zones (`Europe/Berlin`) as a two-byte `Copy` handle that chrono's `DateTime`
//! carries like any other zone.
//!
//! The rules come from jiff's bundled copy of the tz database: plain bytes in the binary,
//! each zone read on its first use and kept for the life of the process. (A zone table made
//! of Rust statics, as chrono-tz's is, is full of pointers the loader relocates at start:
//! about a megabyte of memory in every process that links it, used or not.) Names are
//! matched without regard to case and answered in the database's spelling.

use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Mutex, OnceLock, PoisonError},
};

use chrono::{
    FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset as _, TimeZone, Timelike as _,
};

/// How many distinct zones a process can name: the database has about 600 names.
const CAPACITY: usize = 2048;

struct Known {
    rules: jiff::tz::TimeZone,
    name: &'static str,
}

/// Every zone named so far, by handle; a handle exists only once its slot is filled.
static ZONES: [OnceLock<Known>; CAPACITY] = [const { OnceLock::new() }; CAPACITY];
/// Handles by lowercased name (index 0 is UTC).
static BY_NAME: Mutex<Option<HashMap<String, u16>>> = Mutex::new(None);

/// An IANA time zone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(u16);

/// A name the time zone database does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone(pub String);

impl fmt::Display for UnknownZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an IANA time zone", self.0)
    }
}

impl std::error::Error for UnknownZone {}

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone(0);

    /// Returns the zone called `name` (`Europe/Berlin`, any case), if the database has it.
    pub fn named(name: &str) -> Option<Zone> {
        let key = name.trim().to_ascii_lowercase();
        if key == "utc" {
            return Some(Zone::UTC);
        }
        let mut guard = BY_NAME.lock().unwrap_or_else(PoisonError::into_inner);
        let by_name = guard.get_or_insert_with(HashMap::new);
        if let Some(&index) = by_name.get(&key) {
            return Some(Zone(index));
        }
        let rules = jiff::tz::TimeZone::get(&key).ok()?;
        let index = by_name.len() + 1;
        let slot = ZONES.get(index)?;
        let name = rules.iana_name().unwrap_or(name).to_owned().leak();
        slot.set(Known { rules, name }).ok()?;
        let index = u16::try_from(index).ok()?;
        by_name.insert(key, index);
        Some(Zone(index))
    }

    /// Returns a number for the zone, the same for the life of the process (not across
    /// processes: zones are numbered as they are first named).
    pub fn id(self) -> u16 {
        self.0
    }

    /// Returns the zone's name as the database spells it.
    pub fn name(self) -> &'static str {
        self.known().name
    }

    fn known(self) -> &'static Known {
        ZONES[usize::from(self.0)].get_or_init(|| Known {
            // Only UTC's slot is filled here: every other handle is made after its slot.
            rules: jiff::tz::TimeZone::UTC,
            name: "UTC",
        })
    }

    fn rules(self) -> &'static jiff::tz::TimeZone {
        &self.known().rules
    }

    /// The zone's offset at the instant `utc_second`.
    fn at(self, utc_second: i64) -> ZoneOffset {
        let instant = jiff::Timestamp::from_second(utc_second).unwrap_or(if utc_second < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        ZoneOffset {
            zone: self,
            instant,
            fixed: fixed(self.rules().to_offset(instant)),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Zone::named(name).ok_or_else(|| UnknownZone(name.to_owned()))
    }
}

/// A zone's offset from UTC at one instant; it shows as the zone's abbreviation there
/// (`CET`), which chrono's `%Z` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    instant: jiff::Timestamp,
    fixed: FixedOffset,
}

impl chrono::Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            self.zone
                .rules()
                .to_offset_info(self.instant)
                .abbreviation(),
        )
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self, self.fixed)
    }
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    // jiff's offsets stay within ±25:59:59, chrono's within a day: the database has none
    // that large.
    FixedOffset::east_opt(offset.seconds()).unwrap_or(chrono::Utc.fix())
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Self {
        offset.zone
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        use chrono::Datelike as _;
        use jiff::tz::AmbiguousOffset;

        let civil = i16::try_from(local.year()).ok().and_then(|year| {
            jiff::civil::DateTime::new(
                year,
                i8::try_from(local.month()).ok()?,
                i8::try_from(local.day()).ok()?,
                i8::try_from(local.hour()).ok()?,
                i8::try_from(local.minute()).ok()?,
                i8::try_from(local.second()).ok()?,
                0,
            )
            .ok()
        });
        let Some(civil) = civil else {
            return MappedLocalTime::None;
        };
        let local_second = local.and_utc().timestamp();
        let with = |offset: jiff::tz::Offset| self.at(local_second - i64::from(offset.seconds()));
        match self.rules().to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(with(offset)),
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            // The earlier instant first: the offset before the clocks went back.
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(with(before), with(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.at(utc.and_utc().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn names_are_found_in_any_case_and_answered_as_the_database_spells_them() {
        let berlin = Zone::named("europe/berlin").unwrap();
        assert_eq!(berlin, Zone::named("Europe/Berlin").unwrap());
        assert_eq!(berlin.name(), "Europe/Berlin");
        assert_eq!(Zone::named("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::UTC.name(), "UTC");
        assert_eq!(Zone::named("Mars/Olympus"), None);
        assert_eq!(Zone::named(""), None);
        assert!("Asia/Tokyo".parse::<Zone>().is_ok());
        assert_eq!(
            "Nowhere/Else".parse::<Zone>().unwrap_err().to_string(),
            "\"Nowhere/Else\" is not an IANA time zone"
        );
    }

    #[test]
    fn an_instant_reads_as_local_time_across_daylight_saving() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        let winter = at("2026-01-15T09:00:00Z").with_timezone(&berlin);
        assert_eq!(winter.hour(), 10);
        assert_eq!(winter.format("%H:%M %Z").to_string(), "10:00 CET");
        let summer = at("2026-07-15T09:00:00Z").with_timezone(&berlin);
        assert_eq!(
            summer.format("%H:%M %Z %:z").to_string(),
            "11:00 CEST +02:00"
        );
        assert_eq!(summer.timezone(), berlin);
        assert_eq!(
            at("2026-07-15T09:00:00Z").with_timezone(&Zone::UTC).hour(),
            9
        );
    }

    #[test]
    fn local_times_in_a_gap_are_none_and_in_a_fold_both_earlier_first() {
        let berlin = Zone::named("Europe/Berlin").unwrap();
        // 29 March 2026: 02:00 becomes 03:00; 25 October 2026: 03:00 becomes 02:00.
        assert!(
            berlin
                .with_ymd_and_hms(2026, 3, 29, 2, 30, 0)
                .single()
                .is_none()
        );
        assert_eq!(
            berlin
                .with_ymd_and_hms(2026, 3, 29, 3, 30, 0)
                .single()
                .map(|t| t.with_timezone(&Utc)),
            Some(at("2026-03-29T01:30:00Z"))
        );
        let (earlier, later) = match berlin.with_ymd_and_hms(2026, 10, 25, 2, 30, 0) {
            MappedLocalTime::Ambiguous(earlier, later) => (earlier, later),
            other => panic!("not ambiguous: {other:?}"),
        };
        assert_eq!(earlier.with_timezone(&Utc), at("2026-10-25T00:30:00Z"));
        assert_eq!(later.with_timezone(&Utc), at("2026-10-25T01:30:00Z"));
        assert_eq!(earlier.to_rfc3339(), "2026-10-25T02:30:00+02:00");
    }

    #[test]
    fn zones_are_distinct_handles_that_stay_small() {
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        assert_ne!(tokyo, Zone::named("Europe/Berlin").unwrap());
        assert_eq!(
            tokyo
                .offset_from_utc_datetime(&at("2026-07-15T00:00:00Z").naive_utc())
                .fix()
                .local_minus_utc(),
            9 * 3600
        );
        assert_eq!(std::mem::size_of::<Zone>(), 2);
    }
}
