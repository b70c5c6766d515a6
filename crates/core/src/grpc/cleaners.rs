//! `spruce.core.v1.CleanerService`.

use spruce_platform::identity::Caller;
use spruce_proto::{
    core::v1::{
        AvailabilityWindow, CleanerProfile as WireProfile, GeoPoint, GetCleanerRequest,
        ServiceKind, SetCleanerPhotoRequest, SetCleanerPhotoResponse, UpsertCleanerProfileRequest,
        cleaner_service_server::CleanerService,
    },
    services_or_strings,
};
use tonic::{Request, Response, Status};

use super::path_id;
use crate::{
    domain::cleaner::{ProfileInput, RawProfile},
    error::CoreError,
    usecases::cleaners::{Cleaners, ProfileView},
};

/// The gRPC face of [`Cleaners`].
pub struct CleanerApi {
    cleaners: Cleaners,
}

impl CleanerApi {
    /// Wraps the cleaner use cases.
    pub fn new(cleaners: Cleaners) -> Self {
        CleanerApi { cleaners }
    }
}

fn to_wire(view: ProfileView) -> WireProfile {
    let ProfileView { profile, show_home } = view;
    let rating_avg = profile.rating_avg();
    let details = profile.profile;
    WireProfile {
        cleaner_id: profile.cleaner_id.to_string(),
        full_name: profile.full_name,
        bio: details.bio,
        hourly_rate_cents: details.hourly_rate_cents,
        currency: profile.currency,
        services: details.services.iter().map(ToString::to_string).collect(),
        service_kinds: details
            .services
            .iter()
            .map(|service| ServiceKind::from_wire_name(service.as_str()).into())
            .collect(),
        home: show_home.then_some(GeoPoint {
            lat: details.home.lat,
            lng: details.home.lng,
        }),
        service_radius_km: details.service_radius_km,
        weekly_availability: details
            .weekly_availability
            .iter()
            .map(|window| AvailabilityWindow {
                weekday: window.weekday_name().to_owned(),
                start: window.start(),
                end: window.end(),
            })
            .collect(),
        timezone: details.timezone,
        rating_avg,
        rating_count: u32::try_from(profile.rating_count).unwrap_or(0),
        photo_key: profile.photo_key.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl CleanerService for CleanerApi {
    async fn upsert_cleaner_profile(
        &self,
        request: Request<UpsertCleanerProfileRequest>,
    ) -> Result<Response<WireProfile>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let services = services_or_strings(&wire.service_kinds, &wire.services);
        let raw = RawProfile {
            bio: &wire.bio,
            hourly_rate_cents: wire.hourly_rate_cents,
            services: &services,
            home: wire.home.as_ref().map(|home| (home.lat, home.lng)),
            service_radius_km: wire.service_radius_km,
            weekly_availability: wire
                .weekly_availability
                .iter()
                .map(|window| {
                    (
                        window.weekday.as_str(),
                        window.start.as_str(),
                        window.end.as_str(),
                    )
                })
                .collect(),
            timezone: &wire.timezone,
        };
        let input = ProfileInput::parse(&raw).map_err(CoreError::Validation)?;
        Ok(Response::new(to_wire(
            self.cleaners.upsert(caller, input).await?,
        )))
    }

    async fn get_cleaner(
        &self,
        request: Request<GetCleanerRequest>,
    ) -> Result<Response<WireProfile>, Status> {
        let caller = Caller::of(&request);
        let cleaner_id = path_id(&request.get_ref().cleaner_id)?;
        Ok(Response::new(to_wire(
            self.cleaners.get(caller, cleaner_id).await?,
        )))
    }

    async fn set_cleaner_photo(
        &self,
        request: Request<SetCleanerPhotoRequest>,
    ) -> Result<Response<SetCleanerPhotoResponse>, Status> {
        let caller = Caller::of(&request);
        let digest =
            Some(request.get_ref().photo_digest.as_str()).filter(|digest| !digest.is_empty());
        let (view, previous) = self.cleaners.set_photo(caller, digest).await?;
        Ok(Response::new(SetCleanerPhotoResponse {
            profile: Some(to_wire(view)),
            previous_photo_key: previous.unwrap_or_default(),
        }))
    }
}
