//! Cleaner profiles: the use cases behind `CleanerService`.

use spruce_domain::objects;
use spruce_platform::identity::{Caller, Role};
use spruce_proto::{
    core::v1::ServiceKind,
    events::v1::{self as events, envelope::Payload},
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    authz::{authenticated, require_role},
    domain::cleaner::{CURRENCY, CleanerProfile, ProfileInput},
    error::CoreError,
    store::cleaners,
};

/// A profile as one caller may see it.
#[derive(Debug, Clone)]
pub struct ProfileView {
    pub profile: CleanerProfile,
    /// The home location is private to the cleaner (and admins).
    pub show_home: bool,
}

/// The cleaner profile use cases.
#[derive(Clone)]
pub struct Cleaners {
    pool: PgPool,
}

impl Cleaners {
    /// Creates the use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Cleaners { pool }
    }

    /// Creates or replaces the calling cleaner's profile and records `cleaner.updated`.
    #[tracing::instrument(skip_all)]
    pub async fn upsert(
        &self,
        caller: Option<Caller>,
        input: ProfileInput,
    ) -> Result<ProfileView, CoreError> {
        let caller = require_role(
            caller,
            Role::Cleaner,
            "only cleaners have a cleaner profile",
        )?;
        let mut transaction = self.pool.begin().await?;
        if !cleaners::timezone_exists(&mut transaction, &input.timezone).await? {
            return Err(CoreError::invalid(
                "timezone",
                format!("{:?} is not a known IANA time zone", input.timezone),
            ));
        }
        let area = {
            use rand::Rng as _;
            let mut random = rand::rng();
            input.home.displaced(random.random(), random.random())
        };
        cleaners::upsert_profile(&mut transaction, caller.user_id, &input, area, CURRENCY).await?;
        let profile = cleaners::find_profile(&mut transaction, caller.user_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        spruce_bus::enqueue(&mut transaction, &updated_event(&profile)).await?;
        transaction.commit().await?;
        Ok(ProfileView {
            profile,
            show_home: true,
        })
    }

    /// Makes the photo stored under `digest` the calling cleaner's (none: removes it),
    /// records `cleaner.updated`, and returns the profile with the key of the photo it
    /// replaced, which the caller may now delete.
    #[tracing::instrument(skip_all)]
    pub async fn set_photo(
        &self,
        caller: Option<Caller>,
        digest: Option<&str>,
    ) -> Result<(ProfileView, Option<String>), CoreError> {
        let caller = require_role(caller, Role::Cleaner, "only cleaners have a profile photo")?;
        if let Some(digest) = digest
            && !objects::is_photo_digest(digest)
        {
            return Err(CoreError::invalid(
                "photo_digest",
                "must be 32 lowercase hex digits",
            ));
        }
        let key = digest.map(|digest| objects::photo_key(caller.user_id, digest));
        let mut transaction = self.pool.begin().await?;
        let previous = cleaners::set_photo(&mut transaction, caller.user_id, key.as_deref())
            .await?
            .ok_or(CoreError::NotFound)?;
        let profile = cleaners::find_profile(&mut transaction, caller.user_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        spruce_bus::enqueue(&mut transaction, &updated_event(&profile)).await?;
        transaction.commit().await?;
        let view = ProfileView {
            profile,
            show_home: true,
        };
        Ok((
            view,
            previous.filter(|previous| Some(previous) != key.as_ref()),
        ))
    }

    /// Returns a cleaner's profile to any signed-in user.
    pub async fn get(
        &self,
        caller: Option<Caller>,
        cleaner_id: Uuid,
    ) -> Result<ProfileView, CoreError> {
        let caller = authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        let profile = cleaners::find_profile(&mut connection, cleaner_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        Ok(ProfileView {
            show_home: caller.may_access(cleaner_id),
            profile,
        })
    }
}

/// Records `cleaner.updated` for a change outside the profile (the cleaner's email
/// verified), raising its version, when the cleaner has a profile.
pub(crate) async fn announce(
    connection: &mut PgConnection,
    cleaner_id: Uuid,
) -> Result<(), CoreError> {
    if !cleaners::touch_profile(connection, cleaner_id).await? {
        return Ok(());
    }
    let profile = cleaners::find_profile(connection, cleaner_id)
        .await?
        .ok_or(CoreError::NotFound)?;
    spruce_bus::enqueue(connection, &updated_event(&profile)).await?;
    Ok(())
}

/// The `cleaner.updated` event for a profile as it now is.
fn updated_event(profile: &CleanerProfile) -> spruce_bus::Envelope {
    spruce_bus::envelope(
        "cleaner.updated",
        profile.cleaner_id,
        profile.version,
        Payload::CleanerUpdated(cleaner_updated(profile)),
    )
}

/// Returns the `cleaner.updated` payload for a profile as it now is.
pub(crate) fn cleaner_updated(profile: &CleanerProfile) -> events::CleanerUpdated {
    let details = &profile.profile;
    events::CleanerUpdated {
        cleaner_id: profile.cleaner_id.to_string(),
        full_name: profile.full_name.clone(),
        bio: details.bio.clone(),
        hourly_rate_cents: details.hourly_rate_cents,
        currency: profile.currency.clone(),
        services: details.services.iter().map(ToString::to_string).collect(),
        service_kinds: details
            .services
            .iter()
            .map(|service| ServiceKind::from_wire_name(service.as_str()).into())
            .collect(),
        area: Some(events::GeoPoint {
            lat: profile.area.lat,
            lng: profile.area.lng,
        }),
        service_radius_km: details.service_radius_km,
        weekly_availability: details
            .weekly_availability
            .iter()
            .map(|window| events::AvailabilityWindow {
                weekday: window.weekday_name().to_owned(),
                start: window.start(),
                end: window.end(),
            })
            .collect(),
        timezone: details.timezone.clone(),
        rating_avg: profile.rating_avg(),
        rating_count: u32::try_from(profile.rating_count).unwrap_or(0),
        listed: profile.listed,
        photo_key: profile.photo_key.clone().unwrap_or_default(),
    }
}
