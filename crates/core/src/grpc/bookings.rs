//! `spruce.core.v1.BookingService`.

use spruce_platform::{
    flags::{FAULT_CORE_LATENCY_MS, Flags, Subject},
    identity::{Caller, Principal},
    paging::{Cursor, page_limit},
    time::{from_timestamp, to_timestamp},
};
use spruce_proto::{
    core::v1::{
        AssignBookingRequest, AssignBookingsRequest, AssignBookingsResponse, AssignmentResult,
        Booking as WireBooking, BookingStatus as WireStatus, CreateBookingRequest,
        ExpireUnconfirmedRequest, ExpireUnconfirmedResponse, GetBookingRequest,
        ListBookingsRequest, ListBookingsResponse, ListOpenBookingsRequest,
        ListOpenBookingsResponse, OpenBooking, ServiceKind, TransitionBookingRequest,
        booking_service_server::BookingService,
    },
    enum_or_string,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::path_id;
use crate::{
    domain::booking::{Action, Booking, BookingStatus, NewBooking, RawNewBooking},
    error::CoreError,
    usecases::bookings::Bookings,
};

/// The gRPC face of [`Bookings`].
pub struct BookingApi {
    bookings: Bookings,
    flags: Flags,
}

/// The longest delay `fault-core-latency-ms` may add to a call.
const MAX_INJECTED_LATENCY_MS: i64 = 10_000;

impl BookingApi {
    /// Wraps the booking use cases.
    pub fn new(bookings: Bookings, flags: Flags) -> Self {
        BookingApi { bookings, flags }
    }

    /// Waits as long as the fault-injection flag `fault-core-latency-ms` says (at most 10 s).
    async fn injected_latency(&self, caller: Option<&Caller>) {
        let who = caller.map(Subject::from).unwrap_or_default();
        let delay = self.flags.integer(&FAULT_CORE_LATENCY_MS, who);
        if delay > 0 {
            let delay = delay.min(MAX_INJECTED_LATENCY_MS).unsigned_abs();
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
    }
}

/// A batch RPC's `limit`: 1..=1000, 0 for 100.
fn batch_limit(requested: u32) -> Result<i64, CoreError> {
    match requested {
        0 => Ok(100),
        1..=1_000 => Ok(i64::from(requested)),
        _ => Err(CoreError::invalid(
            "limit",
            "must be at most 1000".to_owned(),
        )),
    }
}

fn to_wire(booking: Booking) -> WireBooking {
    WireBooking {
        id: booking.id.to_string(),
        customer_id: booking.customer_id.to_string(),
        cleaner_id: booking
            .cleaner_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        address_id: booking.address_id.to_string(),
        service: booking.service.to_string(),
        service_kind: ServiceKind::from_wire_name(booking.service.as_str()).into(),
        starts_at: Some(to_timestamp(booking.starts_at)),
        ends_at: Some(to_timestamp(booking.ends_at)),
        duration_min: booking.duration_min,
        price_cents: booking.price_cents,
        currency: booking.currency,
        status: booking.status.to_string(),
        booking_status: WireStatus::from_wire_name(booking.status.as_str()).into(),
        payment_status: booking.payment_status.to_string(),
        actual_duration_min: booking.actual_duration_min.unwrap_or(0),
        created_at: Some(to_timestamp(booking.created_at)),
        estimated_by: booking.estimated_by.as_str().to_owned(),
        model_version: booking.estimated_by.model_version().unwrap_or(0),
    }
}

#[tonic::async_trait]
impl BookingService for BookingApi {
    async fn assign_booking(
        &self,
        request: Request<AssignBookingRequest>,
    ) -> Result<Response<WireBooking>, Status> {
        let wire = request.get_ref();
        let booking_id = path_id(&wire.booking_id)?;
        let cleaner_id = wire
            .cleaner_id
            .parse()
            .map_err(|_| CoreError::invalid("cleaner_id", "must be a cleaner's id".to_owned()))?;
        let booking = self
            .bookings
            .assign(Principal::of(&request), booking_id, cleaner_id)
            .await?;
        Ok(Response::new(to_wire(booking)))
    }

    async fn assign_bookings(
        &self,
        request: Request<AssignBookingsRequest>,
    ) -> Result<Response<AssignBookingsResponse>, Status> {
        let wire = request.get_ref();
        if wire.pairs.is_empty() || wire.pairs.len() > 500 {
            return Err(CoreError::invalid("pairs", "must hold 1 to 500 pairs".to_owned()).into());
        }
        let mut pairs = Vec::with_capacity(wire.pairs.len());
        for pair in &wire.pairs {
            let booking_id = path_id(&pair.booking_id)?;
            let cleaner_id = pair.cleaner_id.parse().map_err(|_| {
                CoreError::invalid("cleaner_id", "must be a cleaner's id".to_owned())
            })?;
            pairs.push((booking_id, cleaner_id));
        }
        let outcomes = self
            .bookings
            .assign_many(Principal::of(&request), &pairs)
            .await?;
        let results = pairs
            .iter()
            .zip(outcomes)
            .map(|(&(booking_id, cleaner_id), outcome)| {
                let (outcome, message) = match outcome {
                    Ok(_) => ("assigned", String::new()),
                    Err(error) => {
                        let message = error.to_string();
                        let outcome = match error {
                            CoreError::SlotTaken => "slot_taken",
                            CoreError::IllegalTransition(_) => "not_open",
                            CoreError::Validation(_) => "does_not_fit",
                            CoreError::NotFound => "not_found",
                            _ => "error",
                        };
                        (outcome, message)
                    }
                };
                AssignmentResult {
                    booking_id: booking_id.to_string(),
                    cleaner_id: cleaner_id.to_string(),
                    outcome: outcome.to_owned(),
                    message,
                }
            })
            .collect();
        Ok(Response::new(AssignBookingsResponse { results }))
    }

    async fn list_open_bookings(
        &self,
        request: Request<ListOpenBookingsRequest>,
    ) -> Result<Response<ListOpenBookingsResponse>, Status> {
        let wire = request.get_ref();
        let limit = batch_limit(wire.limit)?;
        let cursor = Cursor::from_wire(&wire.cursor)
            .map_err(|message| CoreError::invalid("cursor", message))?;
        let (page, next) = self
            .bookings
            .list_open(Principal::of(&request), cursor, limit)
            .await?;
        Ok(Response::new(ListOpenBookingsResponse {
            bookings: page
                .into_iter()
                .map(|(booking, lat, lng)| OpenBooking {
                    booking: Some(to_wire(booking)),
                    lat,
                    lng,
                })
                .collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }

    async fn expire_unconfirmed(
        &self,
        request: Request<ExpireUnconfirmedRequest>,
    ) -> Result<Response<ExpireUnconfirmedResponse>, Status> {
        let limit = batch_limit(request.get_ref().limit)?;
        let (expired, more) = self
            .bookings
            .expire_unconfirmed(Principal::of(&request), limit)
            .await?;
        Ok(Response::new(ExpireUnconfirmedResponse {
            booking_ids: expired.iter().map(Uuid::to_string).collect(),
            more,
        }))
    }

    async fn create_booking(
        &self,
        request: Request<CreateBookingRequest>,
    ) -> Result<Response<WireBooking>, Status> {
        let caller = Caller::of(&request);
        self.injected_latency(caller.as_ref()).await;
        let wire = request.get_ref();
        let service = enum_or_string(wire.service_kind().wire_name(), &wire.service);
        let raw = RawNewBooking {
            idempotency_key: &wire.idempotency_key,
            address_id: &wire.address_id,
            service,
            starts_at: wire.starts_at.as_ref().and_then(from_timestamp),
            cleaner_id: &wire.cleaner_id,
            payment_token: &wire.payment_token,
        };
        let new_booking = NewBooking::parse(&raw).map_err(CoreError::Validation)?;
        Ok(Response::new(to_wire(
            self.bookings.create(caller, new_booking).await?,
        )))
    }

    async fn get_booking(
        &self,
        request: Request<GetBookingRequest>,
    ) -> Result<Response<WireBooking>, Status> {
        let caller = Caller::of(&request);
        self.injected_latency(caller.as_ref()).await;
        let booking_id = path_id(&request.get_ref().booking_id)?;
        Ok(Response::new(to_wire(
            self.bookings.get(caller, booking_id).await?,
        )))
    }

    async fn list_bookings(
        &self,
        request: Request<ListBookingsRequest>,
    ) -> Result<Response<ListBookingsResponse>, Status> {
        let caller = Caller::of(&request);
        self.injected_latency(caller.as_ref()).await;
        let wire = request.get_ref();
        let status = enum_or_string(wire.booking_status().wire_name(), &wire.status);
        let status = match status {
            "" => None,
            text => Some(
                text.parse::<BookingStatus>()
                    .map_err(|message| CoreError::invalid("status", message))?,
            ),
        };
        let limit =
            page_limit(wire.limit).map_err(|message| CoreError::invalid("limit", message))?;
        let after = Cursor::from_wire(&wire.cursor)
            .map_err(|message| CoreError::invalid("cursor", message))?;
        let (page, next) = self.bookings.list(caller, status, after, limit).await?;
        Ok(Response::new(ListBookingsResponse {
            bookings: page.into_iter().map(to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }

    async fn transition_booking(
        &self,
        request: Request<TransitionBookingRequest>,
    ) -> Result<Response<WireBooking>, Status> {
        let caller = Caller::of(&request);
        self.injected_latency(caller.as_ref()).await;
        let wire = request.get_ref();
        let booking_id = path_id(&wire.booking_id)?;
        let action_name = enum_or_string(wire.step().wire_name(), &wire.action);
        let action = Action::parse(action_name, wire.actual_duration_min).map_err(|message| {
            let field = if action_name == "complete" {
                "actual_duration_min"
            } else {
                "action"
            };
            CoreError::invalid(field, message)
        })?;
        Ok(Response::new(to_wire(
            self.bookings.transition(caller, booking_id, action).await?,
        )))
    }
}
