//! A cleaner as the read model holds it, and the rules a search applies to one: services,
//! availability in their own time zone, their bookings, their radius, text.

use chrono::{DateTime, Datelike as _, Duration, Timelike as _, Utc};
use spruce_domain::zone::Zone;
use unicode_normalization::{UnicodeNormalization as _, char::is_combining_mark};
use uuid::Uuid;

pub use spruce_domain::pricing::SERVICES;

/// A set of services, one bit per entry of [`SERVICES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Services(u8);

impl Services {
    /// Returns the set of the named services; `None` when a name is not a service.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut bits = 0;
        for name in names {
            let index = SERVICES.iter().position(|service| *service == name)?;
            bits |= 1 << index;
        }
        Some(Services(bits))
    }

    /// Returns whether every service of `wanted` is in this set.
    pub fn contains(self, wanted: Services) -> bool {
        self.0 & wanted.0 == wanted.0
    }

    /// Returns the set as bits, bit `i` for `SERVICES[i]`.
    pub fn bits(self) -> u8 {
        self.0
    }
}

/// [start, end) in UTC.
pub type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// A weekly window of work: a weekday (0 = Monday) and minutes of the day, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub weekday: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A cleaner of the read model.
#[derive(Debug, Clone)]
pub struct Cleaner {
    pub id: Uuid,
    pub full_name: String,
    pub bio: String,
    pub services: Services,
    /// Where customers see the cleaner, as (lat, lng) in degrees: core's point 320-800 m
    /// from the home (which search never learns), fixed until the home moves.
    pub area: (f64, f64),
    pub service_radius_km: f64,
    pub hourly_rate_cents: i64,
    /// The mean of the cleaner's reviews (0 without any), as core publishes it.
    pub rating_avg: f64,
    pub rating_count: u32,
    pub timezone: Zone,
    pub weekly_availability: Vec<Window>,
    /// Requested, confirmed or in-progress bookings: [start, end) in UTC.
    pub busy: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// `full_name` and `bio` folded for matching (see [`fold`]).
    folded_text: String,
    /// The [`bigram_mask`] of `folded_text`.
    text_mask: u64,
}

impl Cleaner {
    /// Builds a cleaner, folding its text for matching.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: Uuid,
        full_name: String,
        bio: String,
        services: Services,
        area: (f64, f64),
        service_radius_km: f64,
        hourly_rate_cents: i64,
        rating: (f64, u32),
        timezone: Zone,
        weekly_availability: Vec<Window>,
        busy: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Self {
        let folded_text = fold(&format!("{full_name} {bio}"));
        let text_mask = bigram_mask(&folded_text);
        Cleaner {
            id,
            full_name,
            bio,
            services,
            area,
            service_radius_km,
            hourly_rate_cents,
            rating_avg: rating.0,
            rating_count: rating.1,
            timezone,
            weekly_availability,
            busy,
            folded_text,
            text_mask,
        }
    }

    /// Returns the mean rating, or `None` without reviews.
    pub fn mean_rating(&self) -> Option<f64> {
        (self.rating_count > 0).then_some(self.rating_avg)
    }

    /// Returns the [`bigram_mask`] of the cleaner's folded name and bio: a needle whose mask
    /// has a bit this lacks cannot occur in them.
    pub fn text_mask(&self) -> u64 {
        self.text_mask
    }

    /// Reads every field a search checks, and the first and last byte of the text and a
    /// word of the hours and bookings (they live apart from the cleaner), so that they are
    /// in the cache when it does.
    pub fn touch(&self) -> u64 {
        let text = self.folded_text.as_bytes();
        let text = text.first().copied().unwrap_or(0) ^ text.last().copied().unwrap_or(0);
        let hours = self
            .weekly_availability
            .first()
            .map_or(0, |window| window.start_minute);
        let busy = self.busy.first().map_or(0, |(start, _)| start.timestamp());
        u64::from(text)
            ^ u64::from(hours)
            ^ busy as u64
            ^ self.hourly_rate_cents as u64
            ^ self.id.as_u64_pair().0
            ^ self.area.0.to_bits()
            ^ self.service_radius_km.to_bits()
            ^ self.rating_avg.to_bits()
            ^ u64::from(self.rating_count)
            ^ u64::from(self.timezone.id())
    }

    /// Returns whether `needle` occurs in the cleaner's folded name or bio.
    pub fn matches_text(&self, needle: &Needle<'_>) -> bool {
        needle.finder.find(self.folded_text.as_bytes()).is_some()
    }

    /// Returns, for each weekday (0 = Monday), the span that holds all of that day's
    /// windows (see [`DaySpan`]).
    pub fn day_spans(&self) -> [DaySpan; 7] {
        let mut spans = [DaySpan::EMPTY; 7];
        for window in &self.weekly_availability {
            if let Some(span) = spans.get_mut(usize::from(window.weekday)) {
                span.widen(DaySpan {
                    start: u8::try_from(window.start_minute / 15).unwrap_or(u8::MAX),
                    end: u8::try_from(window.end_minute.div_ceil(15)).unwrap_or(u8::MAX),
                });
            }
        }
        spans
    }

    /// Returns whether the cleaner works all of [`starts_at`, `starts_at` + `duration_min`)
    /// by their weekly hours in their own time zone (windows that meet chain, across
    /// midnight too, as core's: [`spruce_domain::hours::covers`]), and none of their
    /// bookings overlaps it.
    pub fn is_free(&self, starts_at: DateTime<Utc>, duration_min: u32) -> bool {
        self.is_free_from(
            local_start(starts_at, self.timezone),
            starts_at,
            duration_min,
        )
    }

    /// [`Cleaner::is_free`] with the start already read in the cleaner's time zone (see
    /// [`local_start`]): a search reads it once per time zone, not once per cleaner.
    pub fn is_free_from(
        &self,
        local: LocalStart,
        starts_at: DateTime<Utc>,
        duration_min: u32,
    ) -> bool {
        let hours = self
            .weekly_availability
            .iter()
            .map(|window| (window.weekday, window.start_minute, window.end_minute));
        let works = spruce_domain::hours::covers(&hours, local.weekday, local.minute, duration_min);
        let ends_at = starts_at + Duration::minutes(i64::from(duration_min));
        works
            && !self
                .busy
                .iter()
                .any(|(start, end)| *start < ends_at && starts_at < *end)
    }
}

/// The earliest start and the latest end of a cleaner's windows on one weekday, in
/// quarter hours rounded outwards: a time that does not fit in it fits in none of that
/// day's windows, so a search rules it out without reading the cleaner's hours. A day
/// without work has an empty span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpan {
    start: u8,
    end: u8,
}

impl DaySpan {
    pub const EMPTY: DaySpan = DaySpan {
        start: u8::MAX,
        end: 0,
    };

    /// Widens this span to hold `other` too.
    pub fn widen(&mut self, other: DaySpan) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
    }

    /// Whether `duration_min` from `minute` of the day may fit: false means it fits in
    /// no window of the day; true means [`Cleaner::is_free_from`] decides. A day whose
    /// hours run to midnight may go on into the next day's.
    pub fn may_hold(self, minute: u32, duration_min: u32) -> bool {
        let end = u32::from(self.end) * 15;
        u32::from(self.start) * 15 <= minute
            && (end >= 24 * 60 || minute.saturating_add(duration_min) <= end)
    }
}

/// A moment as a weekday (0 = Monday) and minute of the day in some time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStart {
    pub weekday: u8,
    pub minute: u32,
}

/// Returns `at` as a weekday and minute of the day in `timezone`.
pub fn local_start(at: DateTime<Utc>, timezone: Zone) -> LocalStart {
    let local = at.with_timezone(&timezone);
    LocalStart {
        weekday: u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(u8::MAX),
        minute: local.hour() * 60 + local.minute(),
    }
}

/// Returns a 64-bit set of the pairs of neighbouring characters in `text`, one bit per
/// pair (hashed): every pair of a substring is a pair of the text, so a substring's mask is
/// a subset of the text's.
pub fn bigram_mask(text: &str) -> u64 {
    let mut mask = 0;
    let mut previous: Option<char> = None;
    for character in text.chars() {
        if let Some(before) = previous {
            let pair = (u64::from(u32::from(before)) << 21) | u64::from(u32::from(character));
            mask |= 1 << (pair.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58);
        }
        previous = Some(character);
    }
    mask
}

/// A folded search text, prepared once for the many cleaners a search reads.
pub struct Needle<'a> {
    mask: u64,
    finder: memchr::memmem::Finder<'a>,
}

impl<'a> Needle<'a> {
    /// Prepares the already folded (see [`fold`]) `text`.
    pub fn new(folded: &'a str) -> Self {
        Needle {
            mask: bigram_mask(folded),
            finder: memchr::memmem::Finder::new(folded.as_bytes()),
        }
    }

    /// The [`bigram_mask`] of the needle: it may occur only in a text whose mask holds
    /// every bit of it.
    pub fn mask(&self) -> u64 {
        self.mask
    }
}

/// Folds text for matching regardless of case and accents: NFKD, combining marks dropped,
/// lowercased ("Zoë Müller" matches "zoe muller").
pub fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|character| !is_combining_mark(*character))
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn berliner(busy: Vec<(DateTime<Utc>, DateTime<Utc>)>) -> Cleaner {
        Cleaner::new(
            Uuid::new_v4(),
            "Zoë Müller".to_owned(),
            "Gründlich und pünktlich".to_owned(),
            Services::parse(["standard", "deep"]).unwrap(),
            (52.52, 13.40),
            10.0,
            2_500,
            (4.5, 2),
            Zone::named("Europe/Berlin").unwrap(),
            vec![Window {
                weekday: 0,
                start_minute: 8 * 60,
                end_minute: 18 * 60,
            }],
            busy,
        )
    }

    #[test]
    fn availability_is_read_in_the_cleaners_time_zone() {
        let cleaner = berliner(Vec::new());
        // Monday 2030-06-03, 07:00 UTC is 09:00 in Berlin (summer time).
        let monday_nine = Utc.with_ymd_and_hms(2030, 6, 3, 7, 0, 0).unwrap();
        assert!(cleaner.is_free(monday_nine, 120));
        // 15:00 UTC is 17:00 in Berlin: two hours run past 18:00.
        let monday_five = Utc.with_ymd_and_hms(2030, 6, 3, 15, 0, 0).unwrap();
        assert!(!cleaner.is_free(monday_five, 120));
        assert!(cleaner.is_free(monday_five, 60));
        // Tuesday is not a working day.
        assert!(!cleaner.is_free(monday_nine + Duration::days(1), 60));
    }

    #[test]
    fn a_days_span_holds_every_window_of_the_day() {
        let mut cleaner = berliner(Vec::new());
        cleaner.weekly_availability = vec![
            Window {
                weekday: 0,
                start_minute: 8 * 60 + 10,
                end_minute: 12 * 60,
            },
            Window {
                weekday: 0,
                start_minute: 14 * 60,
                end_minute: 17 * 60 + 50,
            },
        ];
        let monday = cleaner.day_spans()[0];
        // Rounded outwards to quarter hours: 08:00 to 18:00.
        assert!(monday.may_hold(8 * 60, 60));
        assert!(monday.may_hold(17 * 60, 60));
        assert!(!monday.may_hold(7 * 60 + 59, 60));
        assert!(!monday.may_hold(17 * 60 + 1, 60));
        // Over the lunch break it may hold; the windows themselves decide.
        assert!(monday.may_hold(11 * 60, 180));
        assert!(!cleaner.day_spans()[1].may_hold(9 * 60, 30));
    }

    #[test]
    fn hours_round_the_clock_take_a_cleaning_across_midnight() {
        let mut cleaner = berliner(Vec::new());
        cleaner.weekly_availability = (0..7)
            .map(|weekday| Window {
                weekday,
                start_minute: 0,
                end_minute: 24 * 60,
            })
            .collect();
        // Monday 2030-06-03, 21:00 UTC is 23:00 in Berlin.
        let monday_eleven_pm = Utc.with_ymd_and_hms(2030, 6, 3, 21, 0, 0).unwrap();
        assert!(cleaner.is_free(monday_eleven_pm, 120));
        let local = local_start(monday_eleven_pm, cleaner.timezone);
        assert!(cleaner.day_spans()[0].may_hold(local.minute, 120));
        // A day that ends before midnight does not go on.
        assert!(!berliner(Vec::new()).day_spans()[0].may_hold(17 * 60, 120));
    }

    #[test]
    fn a_booking_in_the_window_makes_the_cleaner_busy() {
        let start = Utc.with_ymd_and_hms(2030, 6, 3, 8, 0, 0).unwrap();
        let cleaner = berliner(vec![(start, start + Duration::hours(2))]);
        assert!(!cleaner.is_free(start - Duration::minutes(30), 60));
        assert!(
            cleaner.is_free(start - Duration::hours(1), 60),
            "ends as it starts"
        );
        assert!(cleaner.is_free(start + Duration::hours(2), 60));
    }

    #[test]
    fn text_matches_whatever_the_case_and_accents() {
        let cleaner = berliner(Vec::new());
        let matches = |text: &str| cleaner.matches_text(&Needle::new(&fold(text)));
        assert!(matches("ZOE muller"));
        assert!(matches("punktlich"));
        assert!(matches(""));
        assert!(!matches("office"));
    }

    #[test]
    fn a_substrings_mask_is_within_the_texts() {
        let text = fold("Zoë Müller, gründlich und pünktlich");
        for needle in ["zoe", "mull", "punktlich", "h und p", "e"] {
            assert_eq!(bigram_mask(needle) & !bigram_mask(&text), 0, "{needle}");
        }
        assert_ne!(bigram_mask("xylophone") & !bigram_mask(&text), 0);
    }

    #[test]
    fn services_are_a_set() {
        let offered = Services::parse(["standard", "deep"]).unwrap();
        assert!(offered.contains(Services::parse(["deep"]).unwrap()));
        assert!(!offered.contains(Services::parse(["office"]).unwrap()));
        assert_eq!(Services::parse(["windows"]), None);
    }
}
