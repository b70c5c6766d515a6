//! `spruce.core.v1.ReadModelService`.

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _};
use spruce_platform::{identity::Principal, time::to_timestamp};
use spruce_proto::core::v1::{
    BookingPair as WirePair, BookingPairBatch, BookingStatus, CleanerBatch,
    CleanerState as WireState, CompletedBooking, CompletedBookingBatch, LiveBooking as WireBooking,
    ServiceKind, StreamBookingPairsRequest, StreamCleanersRequest, StreamCompletedBookingsRequest,
    read_model_service_server::ReadModelService,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    domain::booking::CleanerState,
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
                booking_status: BookingStatus::from_wire_name(booking.status.as_str()).into(),
                version: booking.version,
            })
            .collect(),
    }
}

/// A stored count (never negative by the schema's checks) on the wire.
fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

type Batches<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Turns the use case's batches into wire messages.
fn wire_batches<T: Send + 'static, W: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<Result<Vec<T>, crate::error::CoreError>>,
    wrap: fn(Vec<T>) -> W,
) -> Batches<W> {
    Box::pin(ReceiverStream::new(receiver).map(move |batch| batch.map(wrap).map_err(Status::from)))
}

#[tonic::async_trait]
impl ReadModelService for ReadModelApi {
    type StreamCleanersStream = Batches<CleanerBatch>;
    type StreamBookingPairsStream = Batches<BookingPairBatch>;
    type StreamCompletedBookingsStream = Batches<CompletedBookingBatch>;

    async fn stream_completed_bookings(
        &self,
        request: Request<StreamCompletedBookingsRequest>,
    ) -> Result<Response<Self::StreamCompletedBookingsStream>, Status> {
        let receiver = self.read_models.stream_completed(Principal::of(&request))?;
        Ok(Response::new(wire_batches(receiver, |jobs| {
            CompletedBookingBatch {
                bookings: jobs
                    .into_iter()
                    .map(|job| CompletedBooking {
                        booking_id: job.booking_id.to_string(),
                        cleaner_id: job.cleaner_id.to_string(),
                        service_kind: ServiceKind::from_wire_name(&job.service).into(),
                        service: job.service,
                        size_m2: count(job.size_m2),
                        bedrooms: count(job.bedrooms),
                        bathrooms: count(job.bathrooms),
                        has_pets: job.has_pets,
                        actual_duration_min: count(job.actual_duration_min),
                    })
                    .collect(),
            }
        })))
    }

    async fn stream_cleaners(
        &self,
        request: Request<StreamCleanersRequest>,
    ) -> Result<Response<Self::StreamCleanersStream>, Status> {
        let receiver = self.read_models.stream_cleaners(Principal::of(&request))?;
        Ok(Response::new(wire_batches(receiver, |states| {
            CleanerBatch {
                cleaners: states.into_iter().map(to_wire).collect(),
            }
        })))
    }

    async fn stream_booking_pairs(
        &self,
        request: Request<StreamBookingPairsRequest>,
    ) -> Result<Response<Self::StreamBookingPairsStream>, Status> {
        let receiver = self
            .read_models
            .stream_booking_pairs(Principal::of(&request))?;
        Ok(Response::new(wire_batches(receiver, |pairs| {
            BookingPairBatch {
                pairs: pairs
                    .into_iter()
                    .map(|pair| WirePair {
                        booking_id: pair.booking_id.to_string(),
                        customer_id: pair.customer_id.to_string(),
                        cleaner_id: pair.cleaner_id.to_string(),
                        version: pair.version,
                    })
                    .collect(),
            }
        })))
    }
}
