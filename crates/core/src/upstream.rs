//! Search, as core calls it: how long a cleaning will take, asked of its duration model.
//! Bookings fall back to the rule of thumb (`domain::booking::estimate_duration_min`)
//! whenever the model cannot answer; this module only asks.

use std::{future::Future, pin::Pin, time::Duration};

use spruce_platform::{auth::ServiceTokenSigner, grpc::request_with_token, settings::Upstream};
use spruce_proto::{
    core::v1::ServiceKind,
    search::v1::{EstimateDurationRequest, search_service_client::SearchServiceClient},
};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::{address::AddressInput, cleaner::Service};

/// A boxed future, so the estimator can be chosen at run time.
pub type EstimateFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ModelEstimate, String>> + Send + 'a>>;

/// The model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelEstimate {
    pub minutes: u32,
    pub model_version: i64,
}

/// What a cleaning is: the service, the home, and the cleaner if one is chosen.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub service: Service,
    pub home: &'a AddressInput,
    pub cleaner_id: Option<Uuid>,
}

/// A duration model.
pub trait DurationModel: Send + Sync {
    /// Estimates `job`'s duration; the error says why there is no answer (logged, never
    /// shown to the customer).
    fn estimate<'a>(&'a self, job: Job<'a>) -> EstimateFuture<'a>;
}

/// Search's `EstimateDuration`, called with core's own service token and a deadline: a
/// booking waits at most `timeout` for the model before the rule of thumb answers.
#[derive(Clone)]
pub struct SearchModel {
    client: SearchServiceClient<Channel>,
    signer: ServiceTokenSigner,
    timeout: Duration,
}

impl SearchModel {
    /// Reaches `search` (lazily: search may start after core).
    ///
    /// # Errors
    /// Fails when its URL is not a URL.
    pub fn new(search: &Upstream, signer: ServiceTokenSigner) -> anyhow::Result<Self> {
        Ok(SearchModel {
            client: SearchServiceClient::new(search.channel()?),
            signer,
            timeout: search.timeout,
        })
    }
}

impl DurationModel for SearchModel {
    fn estimate<'a>(&'a self, job: Job<'a>) -> EstimateFuture<'a> {
        Box::pin(async move {
            let token = self
                .signer
                .token("search")
                .map_err(|error| error.to_string())?;
            let home = job.home;
            let request = request_with_token(
                EstimateDurationRequest {
                    service: job.service.as_str().to_owned(),
                    service_kind: ServiceKind::from_wire_name(job.service.as_str()).into(),
                    size_m2: home.size_m2,
                    bedrooms: home.bedrooms,
                    bathrooms: home.bathrooms,
                    has_pets: home.has_pets,
                    cleaner_id: job.cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
                },
                &token,
            );
            let mut client = self.client.clone();
            let response = tokio::time::timeout(self.timeout, client.estimate_duration(request))
                .await
                .map_err(|_| format!("search did not answer within {:?}", self.timeout))?
                .map_err(|status| {
                    format!("search answered {:?}: {}", status.code(), status.message())
                })?
                .into_inner();
            Ok(ModelEstimate {
                minutes: response.estimated_duration_min,
                model_version: response.model_version,
            })
        })
    }
}
