//! Wire types (events, core's snapshot, the search RPC) to and from the domain. A malformed
//! field is an error naming it; nothing here decides anything.

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use spruce_domain::reason::FieldError;
use spruce_domain::zone::Zone;
use spruce_platform::time::{WEEKDAYS, from_timestamp};
use spruce_proto::{
    core::v1::{BookingPair, CleanerState, CompletedBooking, LiveBooking},
    enum_or_string,
    events::v1::{BookingChanged, CleanerUpdated},
    search::v1::{CleanerHit, EstimateDurationRequest, SearchCleanersRequest},
    services_or_strings,
};
use uuid::Uuid;

use crate::domain::{
    cleaner::{Cleaner, Services, Window},
    duration::{Completed, Job},
    index::Hit,
    query::{Cursor, RawQuery},
    readmodel::Booking,
    recommend::Pair,
};

/// Reads what a quote is asked for.
///
/// # Errors
/// One field error per value that does not parse or is out of range.
pub fn job(request: &EstimateDurationRequest) -> Result<Job, Vec<FieldError>> {
    let mut errors = Vec::new();
    let cleaner_id = if request.cleaner_id.is_empty() {
        None
    } else if let Ok(id) = request.cleaner_id.parse::<Uuid>() {
        Some(id)
    } else {
        errors.push(FieldError::new("cleaner_id", "must be a UUID"));
        None
    };
    let home = spruce_domain::pricing::Home {
        size_m2: request.size_m2,
        bedrooms: request.bedrooms,
        bathrooms: request.bathrooms,
        has_pets: request.has_pets,
    };
    let service = enum_or_string(request.service_kind().wire_name(), &request.service);
    Job::check(service, home, cleaner_id, errors)
}

/// The statuses in which a booking holds its cleaner's time.
const HOLDING: [&str; 3] = ["requested", "confirmed", "in_progress"];

fn minute_of(text: &str) -> anyhow::Result<u16> {
    let (hours, minutes) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("time {text:?} is not HH:MM"))?;
    let minute = hours.parse::<u16>()? * 60 + minutes.parse::<u16>()?;
    if minute > 24 * 60 {
        return Err(anyhow!("time {text:?} is past 24:00"));
    }
    Ok(minute)
}

/// Reads a cleaner from a `cleaner.updated` payload (or a snapshot entry, which carries
/// the same message); their bookings are left empty.
///
/// # Errors
/// Names the field that does not parse.
pub fn cleaner(event: &CleanerUpdated) -> anyhow::Result<Cleaner> {
    let id: Uuid = event.cleaner_id.parse().context("cleaner_id")?;
    let named = services_or_strings(&event.service_kinds, &event.services);
    let services = Services::parse(named.iter().map(String::as_str))
        .ok_or_else(|| anyhow!("unknown service in {named:?}"))?;
    let area = event.area.as_ref().context("area is missing")?;
    let timezone: Zone = event
        .timezone
        .parse()
        .map_err(|error| anyhow!("timezone: {error}"))?;
    let weekly_availability = event
        .weekly_availability
        .iter()
        .map(|window| {
            let weekday = WEEKDAYS
                .iter()
                .position(|day| *day == window.weekday)
                .ok_or_else(|| anyhow!("weekday {:?}", window.weekday))?;
            Ok(Window {
                weekday: u8::try_from(weekday)?,
                start_minute: minute_of(&window.start)?,
                end_minute: minute_of(&window.end)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Cleaner::new(
        id,
        event.full_name.clone(),
        event.bio.clone(),
        services,
        (area.lat, area.lng),
        event.service_radius_km,
        event.hourly_rate_cents,
        (event.rating_avg, event.rating_count),
        timezone,
        weekly_availability,
        Vec::new(),
    ))
}

fn time(value: Option<&prost_types::Timestamp>, field: &str) -> anyhow::Result<DateTime<Utc>> {
    value
        .and_then(from_timestamp)
        .ok_or_else(|| anyhow!("{field} is missing or out of range"))
}

/// Reads a `booking.*` payload at the envelope's `version`: the booking as it holds its
/// cleaner's time, and who booked whom.
///
/// # Errors
/// Names the field that does not parse.
pub fn booking_change(
    event: &BookingChanged,
    version: i64,
) -> anyhow::Result<(Uuid, Booking, Pair)> {
    let id: Uuid = event.booking_id.parse().context("booking_id")?;
    let cleaner_id = if event.cleaner_id.is_empty() {
        None
    } else {
        Some(event.cleaner_id.parse().context("cleaner_id")?)
    };
    let status = enum_or_string(event.booking_status().wire_name(), &event.status);
    let booking = Booking {
        cleaner_id,
        starts_at: time(event.starts_at.as_ref(), "starts_at")?,
        ends_at: time(event.ends_at.as_ref(), "ends_at")?,
        holds: HOLDING.contains(&status),
        version,
    };
    let pair = Pair {
        customer_id: event.customer_id.parse().context("customer_id")?,
        cleaner_id,
        counted: status != "cancelled",
        version,
    };
    Ok((id, booking, pair))
}

/// Reads a completed booking from core's stream, for training.
///
/// # Errors
/// Names the field that does not parse.
pub fn completed(booking: &CompletedBooking) -> anyhow::Result<Completed> {
    let service = enum_or_string(booking.service_kind().wire_name(), &booking.service);
    Ok(Completed {
        job: Job {
            service: Services::parse([service])
                .ok_or_else(|| anyhow!("unknown service {service:?}"))?,
            size_m2: f64::from(booking.size_m2),
            bedrooms: f64::from(booking.bedrooms),
            bathrooms: f64::from(booking.bathrooms),
            has_pets: booking.has_pets,
            cleaner_id: Some(booking.cleaner_id.parse().context("cleaner_id")?),
        },
        actual_min: f64::from(booking.actual_duration_min),
    })
}

/// Reads who booked whom from core's snapshot (every pair there counts).
///
/// # Errors
/// Names the field that does not parse.
pub fn snapshot_pair(pair: &BookingPair) -> anyhow::Result<(Uuid, Pair)> {
    Ok((
        pair.booking_id.parse().context("booking_id")?,
        Pair {
            customer_id: pair.customer_id.parse().context("customer_id")?,
            cleaner_id: Some(pair.cleaner_id.parse().context("cleaner_id")?),
            counted: true,
            version: pair.version,
        },
    ))
}

/// Reads a live booking of `cleaner_id` from core's snapshot.
///
/// # Errors
/// Names the field that does not parse.
fn live_booking(live: &LiveBooking, cleaner_id: Uuid) -> anyhow::Result<(Uuid, Booking)> {
    let id: Uuid = live.booking_id.parse().context("booking_id")?;
    Ok((
        id,
        Booking {
            cleaner_id: Some(cleaner_id),
            starts_at: time(live.starts_at.as_ref(), "starts_at")?,
            ends_at: time(live.ends_at.as_ref(), "ends_at")?,
            holds: HOLDING.contains(&enum_or_string(
                live.booking_status().wire_name(),
                &live.status,
            )),
            version: live.version,
        },
    ))
}

/// One cleaner of core's snapshot with their live bookings.
pub type SnapshotEntry = (Cleaner, Vec<(Uuid, Booking)>);

/// Reads one cleaner of core's snapshot with their live bookings; `None` for a cleaner
/// not listed (email not verified), whom nobody finds until a `cleaner.updated` lists them.
///
/// # Errors
/// Names the field that does not parse.
pub fn cleaner_state(state: &CleanerState) -> anyhow::Result<Option<SnapshotEntry>> {
    let profile = state
        .cleaner
        .as_ref()
        .context("a snapshot entry without its cleaner")?;
    if !profile.listed {
        return Ok(None);
    }
    let cleaner = cleaner(profile)?;
    let bookings = state
        .bookings
        .iter()
        .map(|booking| live_booking(booking, cleaner.id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some((cleaner, bookings)))
}

/// Reads a search request as it arrived; proto3's zero values mean "not given" (a zero
/// latitude or longitude is a place on Earth, so those two are always given).
///
/// # Errors
/// A field error for a cursor that is not one of ours.
pub fn raw_query(request: &SearchCleanersRequest) -> Result<RawQuery, FieldError> {
    let given_f64 = |value: f64| (value != 0.0).then_some(value);
    let given_text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let after = if request.cursor.is_empty() {
        None
    } else {
        Some(
            decode_cursor(&request.cursor)
                .ok_or_else(|| FieldError::new("cursor", "is not a cursor this API returned"))?,
        )
    };
    Ok(RawQuery {
        lat: Some(request.lat),
        lng: Some(request.lng),
        radius_km: given_f64(request.radius_km),
        service: given_text(enum_or_string(
            request.service_kind().wire_name(),
            &request.service,
        )),
        starts_at: request.starts_at.as_ref().and_then(from_timestamp),
        duration_min: (request.duration_min != 0).then_some(request.duration_min),
        min_rating: given_f64(request.min_rating),
        max_rate_cents: (request.max_rate_cents != 0).then_some(request.max_rate_cents),
        q: given_text(&request.q),
        limit: (request.limit != 0).then(|| usize::try_from(request.limit).unwrap_or(usize::MAX)),
        after,
    })
}

/// Returns a page's cursor as the opaque text clients send back: the last score's bits and
/// the last id, in hex.
pub fn encode_cursor(cursor: Cursor) -> String {
    format!("{:016x}{}", cursor.score.to_bits(), cursor.id.simple())
}

fn decode_cursor(text: &str) -> Option<Cursor> {
    if text.len() != 48 || !text.is_ascii() {
        return None;
    }
    let (bits, id) = text.split_at(16);
    let score = f64::from_bits(u64::from_str_radix(bits, 16).ok()?);
    score.is_finite().then_some(())?;
    Some(Cursor {
        score,
        id: Uuid::try_parse(id).ok()?,
    })
}

/// Returns a hit as the RPC answers it, its distance (to the cleaner's public point, never
/// the home) rounded to 100 m.
pub fn hit(hit: &Hit, cleaner: &Cleaner) -> CleanerHit {
    CleanerHit {
        cleaner_id: hit.id.to_string(),
        full_name: cleaner.full_name.clone(),
        distance_km: (hit.distance_km * 10.0).round() / 10.0,
        score: hit.score,
        rating_avg: cleaner.rating_avg,
        rating_count: cleaner.rating_count,
        hourly_rate_cents: cleaner.hourly_rate_cents,
        held_bookings: u32::try_from(cleaner.busy.len()).unwrap_or(u32::MAX),
        timezone: cleaner.timezone.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_go_round_and_refuse_what_we_did_not_make() {
        let cursor = Cursor {
            score: 0.734_512,
            id: Uuid::new_v4(),
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        assert_eq!(decode_cursor("abc"), None);
        let nan = format!("{:016x}{}", f64::NAN.to_bits(), Uuid::new_v4().simple());
        assert_eq!(decode_cursor(&nan), None);
        assert_eq!(decode_cursor(&"é".repeat(24)), None);
    }

    #[test]
    fn times_of_day_are_minutes() {
        assert_eq!(minute_of("08:30").unwrap(), 510);
        assert_eq!(minute_of("24:00").unwrap(), 1_440);
        assert!(minute_of("25:00").is_err());
        assert!(minute_of("8").is_err());
    }
}
