//! The scheduler's calls to core and search, each with its own service token and a deadline.

use std::{future::Future, time::Duration};

use spruce_platform::{
    auth::ServiceTokenSigner,
    grpc::request_with_token,
    identity::Role,
    settings::{IdentitySettings, Upstream},
};
use spruce_proto::{
    core::v1::{
        GetUserRequest, booking_service_client::BookingServiceClient,
        user_service_client::UserServiceClient,
    },
    search::v1::search_service_client::SearchServiceClient,
};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use crate::{
    domain::notifications::Recipient,
    usecases::delivery::{Directory, LookupFuture},
};

/// Lazily connected clients of core and search (either may start after the scheduler).
#[derive(Clone)]
pub struct Upstreams {
    pub(crate) bookings: BookingServiceClient<Channel>,
    users: UserServiceClient<Channel>,
    pub(crate) search: SearchServiceClient<Channel>,
    signer: ServiceTokenSigner,
    pub(crate) core_timeout: Duration,
    pub(crate) search_timeout: Duration,
    pub(crate) retrain_timeout: Duration,
}

impl Upstreams {
    /// Reaches `core` and `search` as the scheduler (`identity`), each call within its
    /// upstream's `timeout`, a retraining within `retrain_timeout`.
    ///
    /// # Errors
    /// Fails when a URL or the signing key is unusable.
    pub fn new(
        core: &Upstream,
        search: &Upstream,
        retrain_timeout: Duration,
        identity: &IdentitySettings,
    ) -> anyhow::Result<Self> {
        let core_channel = core.channel()?;
        Ok(Upstreams {
            bookings: BookingServiceClient::new(core_channel.clone()),
            users: UserServiceClient::new(core_channel),
            search: SearchServiceClient::new(search.channel()?),
            signer: identity.signer("scheduler")?,
            core_timeout: core.timeout,
            search_timeout: search.timeout,
            retrain_timeout,
        })
    }

    /// Wraps `message` for core with a fresh service token addressed to it.
    pub(crate) fn to_core<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        Ok(request_with_token(message, &self.signer.token("core")?))
    }

    /// Wraps `message` for search with a fresh service token addressed to it.
    pub(crate) fn to_search<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        Ok(request_with_token(message, &self.signer.token("search")?))
    }
}

/// Core's user as a recipient, asked as the scheduler.
impl Directory for Upstreams {
    fn find(&self, user_id: Uuid) -> LookupFuture<'_> {
        Box::pin(async move {
            let request = self
                .to_core(GetUserRequest {
                    user_id: user_id.to_string(),
                })
                .map_err(|error| format!("{error:#}"))?;
            let mut users = self.users.clone();
            let what = "core's GetUser";
            let answer = answered(what, self.core_timeout, users.get_user(request))
                .await
                .map_err(|error| format!("{error:#}"))?;
            let user = match answer {
                Ok(user) => user,
                Err(status) if status.code() == Code::NotFound => return Ok(None),
                Err(status) => return Err(format!("{:#}", refused(what, &status))),
            };
            Ok(Some(Recipient {
                user_id,
                email: user.email,
                full_name: user.full_name,
                role: Role::from_proto(user.role)
                    .map_or("customer", Role::as_str)
                    .to_owned(),
                timezone: user.timezone,
                device_token: None,
            }))
        })
    }
}

/// Awaits `call` for at most `deadline`; `what` names it in the error.
pub(crate) async fn within<T>(
    what: &str,
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    answered(what, deadline, call)
        .await?
        .map_err(|status| refused(what, &status))
}

/// Like [`within`], but the status of a call that answered stays a status, for a caller
/// that tells some apart; only no answer in time is an error.
async fn answered<T>(
    what: &str,
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<Result<T, tonic::Status>> {
    let answer = tokio::time::timeout(deadline, call)
        .await
        .map_err(|_| anyhow::anyhow!("{what} did not answer within {deadline:?}"))?;
    Ok(answer.map(tonic::Response::into_inner))
}

/// The error for `what` answering `status`.
fn refused(what: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what} answered {:?}: {}", status.code(), status.message())
}
