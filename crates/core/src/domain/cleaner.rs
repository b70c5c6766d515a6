//! Cleaner profiles: the services a cleaner offers, their rate, where they work and when.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{FieldError, Validator, geo::GeoPoint};

/// The marketplace's currency; every price is in its cents.
pub use spruce_domain::pricing::CURRENCY;

wire_enum! {
    /// A kind of cleaning.
    pub enum Service {
        Standard => "standard",
        Deep => "deep",
        MoveOut => "move_out",
        Office => "office",
    }
}

/// The days of the week as the wire spells them, Monday first.
pub use spruce_platform::time::WEEKDAYS;

/// A weekly window in the cleaner's time zone, in minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityWindow {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

impl AvailabilityWindow {
    /// Parses `{weekday, start, end}` as the API spells them ("monday", "09:00", "17:30").
    ///
    /// # Errors
    /// A message fit for the client.
    pub fn parse(weekday: &str, start: &str, end: &str) -> Result<Self, String> {
        let weekday = WEEKDAYS
            .iter()
            .position(|day| *day == weekday.to_lowercase())
            .ok_or_else(|| format!("{weekday:?} is not a weekday (monday .. sunday)"))?;
        let start_minute = parse_time(start)?;
        let end_minute = parse_time(end)?;
        if start_minute >= end_minute {
            return Err(format!("{start}-{end} must end after it starts"));
        }
        Ok(AvailabilityWindow {
            weekday: u8::try_from(weekday).unwrap_or(0),
            start_minute,
            end_minute,
        })
    }

    /// Returns the weekday's name.
    pub fn weekday_name(&self) -> &'static str {
        WEEKDAYS[usize::from(self.weekday % 7)]
    }

    /// Returns the start as "HH:MM".
    pub fn start(&self) -> String {
        format_time(self.start_minute)
    }

    /// Returns the end as "HH:MM".
    pub fn end(&self) -> String {
        format_time(self.end_minute)
    }

    fn overlaps(&self, other: &AvailabilityWindow) -> bool {
        self.weekday == other.weekday
            && self.start_minute < other.end_minute
            && other.start_minute < self.end_minute
    }
}

fn parse_time(text: &str) -> Result<u16, String> {
    let invalid = || format!("{text:?} is not a time of day (HH:MM)");
    let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid());
    }
    let hours: u16 = hours.parse().map_err(|_| invalid())?;
    let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
    let total = hours * 60 + minutes;
    if minutes >= 60 || total > 24 * 60 {
        return Err(invalid());
    }
    Ok(total)
}

fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// What a cleaner submits about themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInput {
    pub bio: String,
    pub hourly_rate_cents: i64,
    pub services: Vec<Service>,
    pub home: GeoPoint,
    pub service_radius_km: f64,
    pub weekly_availability: Vec<AvailabilityWindow>,
    pub timezone: String,
}

/// The raw fields of a profile, as the wire carries them.
#[derive(Debug, Clone, Default)]
pub struct RawProfile<'a> {
    pub bio: &'a str,
    pub hourly_rate_cents: i64,
    pub services: &'a [String],
    pub home: Option<(f64, f64)>,
    pub service_radius_km: f64,
    pub weekly_availability: Vec<(&'a str, &'a str, &'a str)>,
    pub timezone: &'a str,
}

impl ProfileInput {
    /// Rates a cleaner may ask, in cents per hour.
    pub const RATE_RANGE: std::ops::RangeInclusive<i64> = spruce_domain::pricing::HOURLY_RATE_CENTS;
    /// How far a cleaner may travel, in kilometres.
    pub const RADIUS_RANGE: std::ops::RangeInclusive<f64> = 1.0..=100.0;
    const MAX_BIO: usize = 2_000;

    /// Validates every field at once. The time zone's existence is checked by the caller
    /// (PostgreSQL knows the zone database); here only its shape.
    ///
    /// # Errors
    /// One [`FieldError`] per broken rule.
    pub fn parse(raw: &RawProfile<'_>) -> Result<Self, Vec<FieldError>> {
        let mut validator = Validator::default();
        let bio = validator.free_text("bio", raw.bio, Self::MAX_BIO);
        validator.check(
            Self::RATE_RANGE.contains(&raw.hourly_rate_cents),
            "hourly_rate_cents",
            || {
                format!(
                    "must be between {} and {}",
                    Self::RATE_RANGE.start(),
                    Self::RATE_RANGE.end()
                )
            },
        );
        let mut services = Vec::new();
        for name in raw.services {
            match name.parse::<Service>() {
                Ok(service) if !services.contains(&service) => services.push(service),
                Ok(service) => validator.fail("services", format!("{service} is listed twice")),
                Err(message) => validator.fail("services", message),
            }
        }
        validator.check(!raw.services.is_empty(), "services", || {
            "must name at least one service".to_owned()
        });
        let home = match raw.home {
            Some((lat, lng)) => GeoPoint::parse(lat, lng, ("home.lat", "home.lng"))
                .map_err(|errors| validator.extend(errors))
                .ok(),
            None => {
                validator.fail("home", "is required");
                None
            }
        };
        validator.check(
            Self::RADIUS_RANGE.contains(&raw.service_radius_km),
            "service_radius_km",
            || {
                format!(
                    "must be between {} and {}",
                    Self::RADIUS_RANGE.start(),
                    Self::RADIUS_RANGE.end()
                )
            },
        );
        let mut windows: Vec<AvailabilityWindow> = Vec::new();
        for (weekday, start, end) in &raw.weekly_availability {
            match AvailabilityWindow::parse(weekday, start, end) {
                Ok(window) if windows.iter().any(|other| other.overlaps(&window)) => validator
                    .fail(
                        "weekly_availability",
                        format!(
                            "{} {}-{} overlaps another window",
                            window.weekday_name(),
                            window.start(),
                            window.end()
                        ),
                    ),
                Ok(window) => windows.push(window),
                Err(message) => validator.fail("weekly_availability", message),
            }
        }
        let timezone = raw.timezone.trim();
        let plausible_zone = !timezone.is_empty()
            && timezone.len() <= 64
            && timezone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
        validator.check(plausible_zone, "timezone", || {
            "must be an IANA time zone such as Europe/Berlin".to_owned()
        });
        windows.sort_by_key(|window| (window.weekday, window.start_minute));
        let home = validator.finish(home)?;
        Ok(ProfileInput {
            bio,
            hourly_rate_cents: raw.hourly_rate_cents,
            services,
            home,
            service_radius_km: raw.service_radius_km,
            weekly_availability: windows,
            timezone: timezone.to_owned(),
        })
    }
}

/// A stored cleaner profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerProfile {
    pub cleaner_id: Uuid,
    pub full_name: String,
    pub profile: ProfileInput,
    /// Where customers see the cleaner: see [`GeoPoint::displaced`]. The home never leaves
    /// core.
    pub area: GeoPoint,
    pub currency: String,
    pub rating_sum: i64,
    pub rating_count: i32,
    pub version: i64,
    /// Whether customers may find and book the cleaner: their email is verified.
    pub listed: bool,
    /// The object key of their photo (`spruce_domain::objects::photo_key`).
    pub photo_key: Option<String>,
}

impl CleanerProfile {
    /// Returns the average rating rounded to two decimals (0 without reviews).
    pub fn rating_avg(&self) -> f64 {
        if self.rating_count == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let average = self.rating_sum as f64 / f64::from(self.rating_count);
        (average * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_spelled_as_every_service_spells_them() {
        let names: Vec<&str> = Service::ALL
            .iter()
            .map(|service| service.as_str())
            .collect();
        assert_eq!(names, spruce_domain::pricing::SERVICES);
    }

    fn raw<'a>(services: &'a [String]) -> RawProfile<'a> {
        RawProfile {
            bio: "Ten years of tidy homes.",
            hourly_rate_cents: 2_500,
            services,
            home: Some((52.52, 13.40)),
            service_radius_km: 10.0,
            weekly_availability: vec![("monday", "09:00", "17:00"), ("Tuesday", "08:30", "12:00")],
            timezone: "Europe/Berlin",
        }
    }

    #[test]
    fn a_valid_profile_parses() {
        let services = vec!["standard".to_owned(), "deep".to_owned()];
        let profile = ProfileInput::parse(&raw(&services)).unwrap();
        assert_eq!(profile.services, [Service::Standard, Service::Deep]);
        assert_eq!(profile.weekly_availability[1].weekday_name(), "tuesday");
        assert_eq!(profile.weekly_availability[1].start(), "08:30");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let services = vec!["windows".to_owned()];
        let bad = RawProfile {
            hourly_rate_cents: 0,
            home: Some((91.0, 0.0)),
            service_radius_km: 0.0,
            weekly_availability: vec![("funday", "09:00", "10:00"), ("monday", "18:00", "09:00")],
            timezone: "not a zone!",
            ..raw(&services)
        };
        let fields: Vec<_> = ProfileInput::parse(&bad)
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(
            fields,
            [
                "hourly_rate_cents",
                "services",
                "home.lat",
                "service_radius_km",
                "weekly_availability",
                "weekly_availability",
                "timezone"
            ]
        );
    }

    #[test]
    fn overlapping_windows_and_duplicate_services_are_refused() {
        let services = vec!["deep".to_owned(), "deep".to_owned()];
        let bad = RawProfile {
            weekly_availability: vec![("monday", "09:00", "12:00"), ("monday", "11:00", "14:00")],
            ..raw(&services)
        };
        let errors = ProfileInput::parse(&bad).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|error| error.message.contains("listed twice"))
        );
        assert!(
            errors
                .iter()
                .any(|error| error.message.contains("overlaps"))
        );
    }

    #[test]
    fn times_of_day_are_strict() {
        assert!(AvailabilityWindow::parse("monday", "9:00", "10:00").is_err());
        assert!(AvailabilityWindow::parse("monday", "09:60", "10:00").is_err());
        assert_eq!(
            AvailabilityWindow::parse("sunday", "20:00", "24:00")
                .unwrap()
                .end(),
            "24:00"
        );
        assert!(AvailabilityWindow::parse("sunday", "20:00", "24:01").is_err());
    }

    #[test]
    fn ratings_average_to_two_decimals() {
        let services = vec!["standard".to_owned()];
        let profile = CleanerProfile {
            cleaner_id: Uuid::new_v4(),
            full_name: "Ann".to_owned(),
            profile: ProfileInput::parse(&raw(&services)).unwrap(),
            area: GeoPoint {
                lat: 52.5,
                lng: 13.4,
            },
            currency: CURRENCY.to_owned(),
            rating_sum: 14,
            rating_count: 3,
            version: 1,
            listed: true,
            photo_key: None,
        };
        assert!((profile.rating_avg() - 4.67).abs() < 1e-9);
    }
}
