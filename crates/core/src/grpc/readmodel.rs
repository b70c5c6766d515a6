//! `spruce.core.v1.ReadModelService`.

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _};
use spruce_platform::{identity::Principal, time::to_timestamp};
use spruce_proto::core::v1::{
    CleanerBatch, CleanerState as WireState, LiveBooking as WireBooking, StreamCleanersRequest,
    read_model_service_server::ReadModelService,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    domain::cleaner::CleanerState,
    usecases::{cleaners::cleaner_updated, readmodel::ReadModels},
};

/// The gRPC face of [`ReadModels`].
pub struct ReadModelApi {
    read_models: ReadModels,
}

impl ReadModelApi {
    /// Wraps the read-model use cases.
    pub fn new(read_models: ReadModels) -> Self {
        ReadModelApi { read_models }
    }
}

fn to_wire(state: CleanerState) -> WireState {
    WireState {
        version: state.profile.version,
        cleaner: Some(cleaner_updated(&state.profile)),
        bookings: state
            .bookings
            .into_iter()
            .map(|booking| WireBooking {
                booking_id: booking.id.to_string(),
                starts_at: Some(to_timestamp(booking.starts_at)),
                ends_at: Some(to_timestamp(booking.ends_at)),
                status: booking.status.to_string(),
                version: booking.version,
            })
            .collect(),
    }
}

type CleanerStream = Pin<Box<dyn Stream<Item = Result<CleanerBatch, Status>> + Send>>;

#[tonic::async_trait]
impl ReadModelService for ReadModelApi {
    type StreamCleanersStream = CleanerStream;

    async fn stream_cleaners(
        &self,
        request: Request<StreamCleanersRequest>,
    ) -> Result<Response<CleanerStream>, Status> {
        let receiver = self.read_models.stream_cleaners(Principal::of(&request))?;
        let stream = ReceiverStream::new(receiver).map(|batch| {
            batch
                .map(|states| CleanerBatch {
                    cleaners: states.into_iter().map(to_wire).collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
