//! gRPC clients to the services behind the gateway. Each outgoing call carries the trace
//! context and a token: a signed-in user's own access token, or, for what anonymous clients
//! may do (sign up, log in, refresh), the gateway's short-lived service token.

use spruce_platform::{auth::ServiceTokenSigner, grpc::request_with_token};
use spruce_proto::{
    core::v1::{
        address_service_client::AddressServiceClient, booking_service_client::BookingServiceClient,
        cleaner_service_client::CleanerServiceClient, review_service_client::ReviewServiceClient,
        user_service_client::UserServiceClient,
    },
    scheduler::v1::{
        job_service_client::JobServiceClient,
        notification_service_client::NotificationServiceClient,
    },
    search::v1::search_service_client::SearchServiceClient,
};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{error::ApiError, settings::Settings};

/// Connections to the upstream services; cheap to clone.
#[derive(Clone)]
pub struct Upstreams {
    pub users: UserServiceClient<Channel>,
    pub cleaners: CleanerServiceClient<Channel>,
    pub addresses: AddressServiceClient<Channel>,
    pub bookings: BookingServiceClient<Channel>,
    pub reviews: ReviewServiceClient<Channel>,
    pub notifications: NotificationServiceClient<Channel>,
    pub jobs: JobServiceClient<Channel>,
    pub search: SearchServiceClient<Channel>,
    core: Channel,
    signer: ServiceTokenSigner,
}

impl Upstreams {
    /// Prepares lazily connecting channels, so the gateway starts even when a service is down.
    ///
    /// # Errors
    /// Fails when a URL is invalid.
    pub fn new(settings: &Settings, signer: ServiceTokenSigner) -> anyhow::Result<Self> {
        let core = settings.core.bounded_channel()?;
        let scheduler = settings.scheduler.bounded_channel()?;
        Ok(Upstreams {
            users: UserServiceClient::new(core.clone()),
            cleaners: CleanerServiceClient::new(core.clone()),
            addresses: AddressServiceClient::new(core.clone()),
            bookings: BookingServiceClient::new(core.clone()),
            reviews: ReviewServiceClient::new(core.clone()),
            notifications: NotificationServiceClient::new(scheduler.clone()),
            jobs: JobServiceClient::new(scheduler),
            search: SearchServiceClient::new(settings.search.bounded_channel()?),
            core,
            signer,
        })
    }

    /// Wraps `message` in a request carrying the trace context and the gateway's own
    /// service token (addressed to core), for the calls anonymous clients make.
    ///
    /// # Errors
    /// Fails (opaquely) only if the token cannot be signed.
    pub fn as_gateway<T>(&self, message: T) -> Result<tonic::Request<T>, ApiError> {
        let token = self
            .signer
            .token("core")
            .map_err(|error| ApiError::internal(&error))?;
        Ok(request_with_token(message, &token))
    }

    /// Returns the upstreams the gateway is not ready without, for readiness checks: core
    /// alone, which almost every route needs. Search and the scheduler serve a few routes
    /// each; when one is down those routes answer 503 with Retry-After and the rest go
    /// on, rather than every gateway pod leaving its Service with it.
    pub fn health_targets(&self) -> [(&'static str, Channel); 1] {
        [("core", self.core.clone())]
    }
}

/// Asks a service's standard health endpoint whether it is serving.
///
/// # Errors
/// Returns why the service is not ready.
pub async fn check_health(channel: Channel) -> Result<(), String> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| status.message().to_owned())?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("{other:?}")),
    }
}
