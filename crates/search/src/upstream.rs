//! Core's read-model streams, as search reads them: the snapshot of every cleaner and who
//! booked whom, and the completed bookings the duration model trains on.

use std::{future::Future, time::Duration};

use anyhow::Context as _;
use spruce_platform::{auth::ServiceTokenSigner, grpc::request_with_token, settings::Upstream};
use spruce_proto::core::v1::{
    StreamBookingPairsRequest, StreamCleanersRequest, StreamCompletedBookingsRequest,
    read_model_service_client::ReadModelServiceClient,
};
use tonic::transport::Channel;

use crate::{
    domain::{
        duration::Completed,
        readmodel::{ReadModel, SnapshotBuilder},
    },
    error::SearchError,
    wire,
};

/// Core's `ReadModelService`, called with search's service tokens. A stream may take as
/// long as it needs, but core must answer a call and send each next batch within
/// `core.timeout`.
#[derive(Clone)]
pub struct CoreReadModel {
    client: ReadModelServiceClient<Channel>,
    signer: ServiceTokenSigner,
    timeout: Duration,
}

impl CoreReadModel {
    /// Calls `core`, signing with `signer`.
    ///
    /// # Errors
    /// When core's URL is not a URL.
    pub fn new(core: &Upstream, signer: ServiceTokenSigner) -> anyhow::Result<Self> {
        Ok(CoreReadModel {
            client: ReadModelServiceClient::new(core.channel()?),
            signer,
            timeout: core.timeout,
        })
    }

    /// Waits for `call` at most `timeout`.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(tonic::Status::deadline_exceeded(
                    "core sent nothing within core.timeout",
                ))
            })
    }

    /// Streams every cleaner and who booked whom from core and builds the model from them.
    ///
    /// # Errors
    /// When core cannot be reached or a stream breaks; records search cannot read are
    /// left out and logged.
    pub async fn snapshot(&self) -> anyhow::Result<ReadModel> {
        let mut core = self.client.clone();
        let token = self
            .signer
            .token("core")
            .context("cannot sign search's service token")?;
        let mut stream = self
            .within(core.stream_cleaners(request_with_token(StreamCleanersRequest {}, &token)))
            .await
            .context("core refused the snapshot")?
            .into_inner();
        let mut builder = SnapshotBuilder::default();
        let mut skipped = 0_u64;
        while let Some(batch) = self
            .within(stream.message())
            .await
            .context("the snapshot stream broke")?
        {
            for state in &batch.cleaners {
                match wire::cleaner_state(state) {
                    Ok(Some((cleaner, bookings))) => builder.add(state.version, cleaner, bookings),
                    Ok(None) => {}
                    Err(error) => {
                        // One bad record must not keep every other cleaner unsearchable.
                        skipped += 1;
                        tracing::error!(
                            error = format!("{error:#}"),
                            "skipped a cleaner core sent that search cannot read"
                        );
                    }
                }
            }
        }
        let token = self
            .signer
            .token("core")
            .context("cannot sign search's service token")?;
        let mut stream = self
            .within(
                core.stream_booking_pairs(request_with_token(StreamBookingPairsRequest {}, &token)),
            )
            .await
            .context("core refused the booking history")?
            .into_inner();
        while let Some(batch) = self
            .within(stream.message())
            .await
            .context("the booking history stream broke")?
        {
            for pair in &batch.pairs {
                match wire::snapshot_pair(pair) {
                    Ok((id, pair)) => builder.add_pair(id, pair),
                    Err(error) => {
                        skipped += 1;
                        tracing::error!(
                            error = format!("{error:#}"),
                            "skipped a booking core sent that search cannot read"
                        );
                    }
                }
            }
        }
        if skipped > 0 {
            tracing::error!(skipped, "records left out of the read model");
        }
        Ok(builder.finish())
    }

    /// Streams every completed booking from core, for training.
    ///
    /// # Errors
    /// [`SearchError::CoreUnavailable`] when core cannot be reached or the stream breaks.
    pub async fn completed_bookings(&self) -> Result<Vec<Completed>, SearchError> {
        let token = self.signer.token("core").map_err(SearchError::Unexpected)?;
        let unavailable =
            |status: tonic::Status| SearchError::CoreUnavailable(status.message().to_owned());
        let mut client = self.client.clone();
        let mut stream = self
            .within(client.stream_completed_bookings(request_with_token(
                StreamCompletedBookingsRequest {},
                &token,
            )))
            .await
            .map_err(unavailable)?
            .into_inner();
        let mut history = Vec::new();
        while let Some(batch) = self.within(stream.message()).await.map_err(unavailable)? {
            for booking in &batch.bookings {
                match wire::completed(booking) {
                    Ok(row) => history.push(row),
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "skipped a completed booking search cannot read"
                    ),
                }
            }
        }
        Ok(history)
    }
}
