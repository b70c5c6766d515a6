//! The `cleaner_profiles` table.

use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, stream::BoxStream};
use sqlx::{FromRow as _, PgConnection, Row as _};
use uuid::Uuid;

use crate::{
    domain::{
        booking::{BookingStatus, CleanerState, LiveBooking},
        cleaner::{AvailabilityWindow, CleanerProfile, ProfileInput, Service},
        geo::GeoPoint,
    },
    error::CoreError,
};

/// Returns whether PostgreSQL knows the IANA time zone `name`.
pub async fn timezone_exists(connection: &mut PgConnection, name: &str) -> Result<bool, CoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
            .bind(name)
            .fetch_one(connection)
            .await?;
    Ok(exists)
}

/// Creates or replaces a cleaner's profile, raising its version.
/// Stores a cleaner's profile; `area` becomes their public point when the profile is new or
/// the home moved, and is ignored otherwise (the point stays where it was).
pub async fn upsert_profile(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
    profile: &ProfileInput,
    area: GeoPoint,
    currency: &str,
) -> Result<(), CoreError> {
    let services: Vec<&str> = profile
        .services
        .iter()
        .map(|service| service.as_str())
        .collect();
    let availability = serde_json::to_string(&profile.weekly_availability)
        .map_err(|error| CoreError::Unexpected(error.into()))?;
    sqlx::query(
        "INSERT INTO cleaner_profiles (cleaner_id, bio, hourly_rate_cents, currency, services, \
         home_lat, home_lng, service_radius_km, weekly_availability, timezone, area_lat, area_lng) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12) \
         ON CONFLICT (cleaner_id) DO UPDATE SET bio = EXCLUDED.bio, \
         hourly_rate_cents = EXCLUDED.hourly_rate_cents, currency = EXCLUDED.currency, \
         services = EXCLUDED.services, home_lat = EXCLUDED.home_lat, home_lng = EXCLUDED.home_lng, \
         area_lat = CASE WHEN (cleaner_profiles.home_lat, cleaner_profiles.home_lng) \
           = (EXCLUDED.home_lat, EXCLUDED.home_lng) THEN cleaner_profiles.area_lat ELSE EXCLUDED.area_lat END, \
         area_lng = CASE WHEN (cleaner_profiles.home_lat, cleaner_profiles.home_lng) \
           = (EXCLUDED.home_lat, EXCLUDED.home_lng) THEN cleaner_profiles.area_lng ELSE EXCLUDED.area_lng END, \
         service_radius_km = EXCLUDED.service_radius_km, \
         weekly_availability = EXCLUDED.weekly_availability, timezone = EXCLUDED.timezone, \
         version = cleaner_profiles.version + 1, updated_at = now()",
    )
    .bind(cleaner_id)
    .bind(&profile.bio)
    .bind(profile.hourly_rate_cents)
    .bind(currency)
    .bind(&services)
    .bind(profile.home.lat)
    .bind(profile.home.lng)
    .bind(profile.service_radius_km)
    .bind(availability)
    .bind(&profile.timezone)
    .bind(area.lat)
    .bind(area.lng)
    .execute(connection)
    .await?;
    Ok(())
}

/// The columns of [`StoredProfile`], over `cleaner_profiles p JOIN users u`.
macro_rules! profile_columns {
    () => {
        "p.cleaner_id, u.full_name, p.bio, p.hourly_rate_cents, p.currency, p.services, \
         p.home_lat, p.home_lng, p.area_lat, p.area_lng, p.service_radius_km, \
         p.weekly_availability::text AS weekly_availability, p.timezone, \
         p.rating_sum, p.rating_count, p.version, u.email_verified_at IS NOT NULL AS listed, \
         p.photo_key"
    };
}
pub(super) use profile_columns;

spruce_db::named_row! {
    /// A cleaner's profile as stored, with their name.
    pub(super) struct StoredProfile {
        cleaner_id: Uuid,
        full_name: String,
        bio: String,
        hourly_rate_cents: i64,
        currency: String,
        services: Vec<String>,
        home_lat: f64,
        home_lng: f64,
        area_lat: f64,
        area_lng: f64,
        service_radius_km: f64,
        weekly_availability: String,
        timezone: String,
        rating_sum: i64,
        rating_count: i32,
        version: i64,
        listed: bool,
        photo_key: Option<String>,
    }
}

/// Returns the profiles of `cleaner_ids` that exist.
pub async fn find_profiles(
    connection: &mut PgConnection,
    cleaner_ids: &[Uuid],
) -> Result<Vec<CleanerProfile>, CoreError> {
    let rows: Vec<StoredProfile> = sqlx::query_as(concat!(
        "SELECT ",
        profile_columns!(),
        " FROM cleaner_profiles p JOIN users u ON u.id = p.cleaner_id WHERE p.cleaner_id = ANY($1)"
    ))
    .bind(cleaner_ids)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(into_profile).collect()
}

/// Returns a cleaner's profile with their name, if they have one.
pub async fn find_profile(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
) -> Result<Option<CleanerProfile>, CoreError> {
    let row: Option<StoredProfile> = sqlx::query_as(concat!(
        "SELECT ",
        profile_columns!(),
        " FROM cleaner_profiles p JOIN users u ON u.id = p.cleaner_id WHERE p.cleaner_id = $1"
    ))
    .bind(cleaner_id)
    .fetch_optional(connection)
    .await?;
    row.map(into_profile).transpose()
}

/// Streams every cleaner with a profile and their live bookings, as the connection's
/// transaction sees them.
pub fn stream_states(
    connection: &mut PgConnection,
) -> BoxStream<'_, Result<CleanerState, CoreError>> {
    sqlx::query(concat!(
        "SELECT ",
        profile_columns!(),
        ", coalesce(b.ids, '{}') AS booking_ids, coalesce(b.starts, '{}') AS booking_starts, \
         coalesce(b.ends, '{}') AS booking_ends, coalesce(b.statuses, '{}') AS booking_statuses, \
         coalesce(b.versions, '{}') AS booking_versions \
         FROM cleaner_profiles p JOIN users u ON u.id = p.cleaner_id \
         LEFT JOIN LATERAL (SELECT array_agg(id) AS ids, array_agg(starts_at) AS starts, \
             array_agg(ends_at) AS ends, array_agg(status) AS statuses, \
             array_agg(version) AS versions \
           FROM bookings WHERE cleaner_id = p.cleaner_id AND ends_at > now() \
           AND status IN ('requested', 'confirmed', 'in_progress')) b ON true"
    ))
    .fetch(connection)
    .map(|row| {
        let row = row?;
        let profile = into_profile(StoredProfile::from_row(&row)?)?;
        let ids: Vec<Uuid> = row.try_get("booking_ids")?;
        let starts: Vec<DateTime<Utc>> = row.try_get("booking_starts")?;
        let ends: Vec<DateTime<Utc>> = row.try_get("booking_ends")?;
        let statuses: Vec<String> = row.try_get("booking_statuses")?;
        let versions: Vec<i64> = row.try_get("booking_versions")?;
        let bookings = ids
            .into_iter()
            .zip(starts)
            .zip(ends)
            .zip(statuses)
            .zip(versions)
            .map(|((((id, starts_at), ends_at), status), version)| {
                let status = status.parse::<BookingStatus>().map_err(|error| {
                    CoreError::Unexpected(anyhow::anyhow!("stored booking {id}: {error}"))
                })?;
                Ok(LiveBooking {
                    id,
                    starts_at,
                    ends_at,
                    status,
                    version,
                })
            })
            .collect::<Result<_, CoreError>>()?;
        Ok(CleanerState { profile, bookings })
    })
    .boxed()
}

pub(super) fn into_profile(row: StoredProfile) -> Result<CleanerProfile, CoreError> {
    let cleaner_id = row.cleaner_id;
    let corrupt = |what: String| {
        CoreError::Unexpected(anyhow::anyhow!("stored profile {cleaner_id}: {what}"))
    };
    let services = row
        .services
        .iter()
        .map(|name| name.parse::<Service>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let weekly_availability: Vec<AvailabilityWindow> =
        serde_json::from_str(&row.weekly_availability)
            .map_err(|error| corrupt(error.to_string()))?;
    Ok(CleanerProfile {
        cleaner_id,
        full_name: row.full_name,
        profile: ProfileInput {
            bio: row.bio,
            hourly_rate_cents: row.hourly_rate_cents,
            services,
            home: GeoPoint {
                lat: row.home_lat,
                lng: row.home_lng,
            },
            service_radius_km: row.service_radius_km,
            weekly_availability,
            timezone: row.timezone,
        },
        area: GeoPoint {
            lat: row.area_lat,
            lng: row.area_lng,
        },
        currency: row.currency,
        rating_sum: row.rating_sum,
        rating_count: row.rating_count,
        version: row.version,
        listed: row.listed,
        photo_key: row.photo_key,
    })
}

/// Raises a cleaner's profile version, for an event that tells a change outside the
/// profile (their email verified); returns whether they have a profile.
pub async fn touch_profile(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
) -> Result<bool, CoreError> {
    let touched = sqlx::query(
        "UPDATE cleaner_profiles SET version = version + 1, updated_at = now() WHERE cleaner_id = $1",
    )
    .bind(cleaner_id)
    .execute(connection)
    .await?;
    Ok(touched.rows_affected() == 1)
}

/// Makes `photo_key` (or none) a cleaner's photo, raising the profile's version; returns the
/// key it replaced, or `None` when the cleaner has no profile.
pub async fn set_photo(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
    photo_key: Option<&str>,
) -> Result<Option<Option<String>>, CoreError> {
    // The old key is read under the row lock the update takes, so two uploads at once each
    // learn the key the other replaced.
    let previous: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE cleaner_profiles p SET photo_key = $2, version = p.version + 1, updated_at = now() \
         FROM (SELECT cleaner_id, photo_key FROM cleaner_profiles WHERE cleaner_id = $1 FOR UPDATE) old \
         WHERE p.cleaner_id = old.cleaner_id RETURNING old.photo_key",
    )
    .bind(cleaner_id)
    .bind(photo_key)
    .fetch_optional(connection)
    .await?;
    Ok(previous)
}
