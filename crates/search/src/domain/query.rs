//! A search query, validated: every field the REST API takes, with its range.

use chrono::{DateTime, Utc};
use spruce_domain::reason::FieldError;
use uuid::Uuid;

use super::cleaner::{Services, fold};

/// The largest search radius, in km.
pub const MAX_RADIUS_KM: f64 = 100.0;
/// The smallest search radius, in km: narrower circles would only help to corner a
/// cleaner's public point.
pub const MIN_RADIUS_KM: f64 = 1.0;
/// The longest cleaning a search can ask for, in minutes (12 h).
pub const MAX_DURATION_MIN: u32 = 12 * 60;
/// The largest page.
pub const MAX_LIMIT: usize = 100;
/// The page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 20;

/// What a client asks, as it arrived.
#[derive(Debug, Clone, Default)]
pub struct RawQuery {
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_km: Option<f64>,
    pub service: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub duration_min: Option<u32>,
    pub min_rating: Option<f64>,
    pub max_rate_cents: Option<i64>,
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<Cursor>,
}

/// Where a page ends: the score and id of its last hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub score: f64,
    pub id: Uuid,
}

/// A valid search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub at: (f64, f64),
    pub radius_km: f64,
    pub services: Services,
    /// [`starts_at`, `starts_at` + minutes) the cleaner must be free for.
    pub window: Option<(DateTime<Utc>, u32)>,
    pub min_rating: Option<f64>,
    pub max_rate_cents: Option<i64>,
    /// Folded (see [`fold`]); empty matches everyone.
    pub text: String,
    pub limit: usize,
    pub after: Option<Cursor>,
}

impl SearchQuery {
    /// Validates every field at once, `now` deciding what "in the past" is.
    ///
    /// # Errors
    /// One [`FieldError`] per broken rule, named as the REST API spells the field.
    pub fn parse(raw: &RawQuery, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: &str| errors.push(FieldError::new(field, message));
        let lat = raw.lat.filter(|lat| (-90.0..=90.0).contains(lat));
        if lat.is_none() {
            fail("lat", "is required, from -90 to 90");
        }
        let lng = raw.lng.filter(|lng| (-180.0..=180.0).contains(lng));
        if lng.is_none() {
            fail("lng", "is required, from -180 to 180");
        }
        let radius_km = raw.radius_km.unwrap_or(10.0);
        if !(MIN_RADIUS_KM..=MAX_RADIUS_KM).contains(&radius_km) {
            fail("radius_km", "must be from 1 to 100");
        }
        let services = match raw.service.as_deref() {
            None => Some(Services::default()),
            Some(name) => Services::parse([name]),
        };
        if services.is_none() {
            fail("service", "must be standard, deep, move_out or office");
        }
        let window = match (raw.starts_at, raw.duration_min) {
            (None, None) => None,
            (Some(starts_at), duration) => {
                let duration = duration.unwrap_or(120);
                if starts_at <= now {
                    fail("starts_at", "must be in the future");
                }
                if duration == 0 || duration > MAX_DURATION_MIN {
                    fail("duration_min", "must be from 1 to 720 minutes");
                }
                Some((starts_at, duration))
            }
            (None, Some(_)) => {
                fail("starts_at", "is required with duration_min");
                None
            }
        };
        if raw
            .min_rating
            .is_some_and(|rating| !(0.0..=5.0).contains(&rating))
        {
            fail("min_rating", "must be from 0 to 5");
        }
        if raw.max_rate_cents.is_some_and(|cents| cents <= 0) {
            fail("max_rate_cents", "must be positive");
        }
        let limit = raw.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            fail("limit", "must be from 1 to 100");
        }
        let text = raw.q.as_deref().map(fold).unwrap_or_default();
        if text.chars().count() > 100 {
            fail("q", "must be at most 100 characters");
        }
        let (Some(lat), Some(lng), Some(services)) = (lat, lng, services) else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SearchQuery {
            at: (lat, lng),
            radius_km,
            services,
            window,
            min_rating: raw.min_rating,
            max_rate_cents: raw.max_rate_cents,
            text: text.trim().to_owned(),
            limit,
            after: raw.after,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn fields(raw: &RawQuery) -> Vec<String> {
        SearchQuery::parse(raw, Utc::now())
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn bad_input_names_every_field() {
        let raw = RawQuery {
            lat: Some(91.0),
            lng: None,
            radius_km: Some(0.0),
            service: Some("windows".to_owned()),
            starts_at: Some(Utc::now() - Duration::hours(1)),
            duration_min: Some(13 * 60),
            min_rating: Some(6.0),
            max_rate_cents: Some(0),
            limit: Some(101),
            ..RawQuery::default()
        };
        assert_eq!(
            fields(&raw),
            [
                "lat",
                "lng",
                "radius_km",
                "service",
                "starts_at",
                "duration_min",
                "min_rating",
                "max_rate_cents",
                "limit"
            ]
        );
    }

    #[test]
    fn a_minimal_query_has_defaults() {
        let raw = RawQuery {
            lat: Some(52.5),
            lng: Some(13.4),
            q: Some("  Zoë ".to_owned()),
            ..RawQuery::default()
        };
        let query = SearchQuery::parse(&raw, Utc::now()).unwrap();
        assert_eq!((query.radius_km, query.limit), (10.0, DEFAULT_LIMIT));
        assert_eq!(query.text, "zoe");
        assert!(query.window.is_none());
    }
}
