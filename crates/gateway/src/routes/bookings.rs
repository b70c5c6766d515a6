//! `/v1/bookings`: book, read, list and move bookings along their state machine.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spruce_domain::reason::Reason;
use spruce_platform::{status::reason_of, time::to_timestamp};
use spruce_proto::{
    core::v1::{
        Booking, BookingAction, BookingStatus as WireStatus, CreateBookingRequest,
        GetBookingRequest, ListBookingsRequest, ServiceKind as WireServiceKind,
        TransitionBookingRequest,
    },
    enum_or_string,
};
use uuid::Uuid;

use super::{AppState, page, page_limit, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery, ClientAddress, IdempotencyKey, optional_json},
    fields::{Checks, Field},
};

/// `POST /v1/bookings` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = BookingRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct BookingBody {
    #[serde(default)]
    #[schema(required = true, value_type = String, format = Uuid)]
    address_id: Field<Uuid>,
    #[serde(default)]
    #[schema(required = true, value_type = ServiceKind)]
    service: Field<ServiceKind>,
    /// RFC 3339, in the future and within a year, e.g. "2030-05-17T09:00:00Z".
    #[serde(default)]
    #[schema(required = true, value_type = String, format = DateTime)]
    starts_at: Field<DateTime<Utc>>,
    /// Absent: the matching engine assigns a cleaner.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    cleaner_id: Field<Uuid>,
    /// `tok_visa` authorizes in development; `tok_chargeDeclined` is declined.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    payment_token: String,
}

/// A kind of cleaning.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ServiceKind {
    Standard,
    Deep,
    MoveOut,
    Office,
}

/// What a service field must be.
pub(super) const SERVICE_EXPECTED: &str = "must be standard, deep, move_out or office";

/// What an id field must be.
pub(super) const UUID_EXPECTED: &str = "must be a UUID";

/// What a time field must be.
pub(super) const TIME_EXPECTED: &str = "must be an RFC 3339 time, e.g. 2030-05-17T09:00:00Z";

impl ServiceKind {
    /// The service on the wire (whose `wire_name` is the string beside it).
    pub(super) fn wire(self) -> WireServiceKind {
        match self {
            ServiceKind::Standard => WireServiceKind::Standard,
            ServiceKind::Deep => WireServiceKind::Deep,
            ServiceKind::MoveOut => WireServiceKind::MoveOut,
            ServiceKind::Office => WireServiceKind::Office,
        }
    }
}

/// Where a booking is in its life.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[schema(as = BookingStatus)]
#[serde(rename_all = "snake_case")]
pub(super) enum BookingStatusKind {
    Requested,
    Confirmed,
    InProgress,
    Completed,
    Cancelled,
}

impl BookingStatusKind {
    /// The status on the wire (whose `wire_name` is the string beside it).
    fn wire(self) -> WireStatus {
        match self {
            BookingStatusKind::Requested => WireStatus::Requested,
            BookingStatusKind::Confirmed => WireStatus::Confirmed,
            BookingStatusKind::InProgress => WireStatus::InProgress,
            BookingStatusKind::Completed => WireStatus::Completed,
            BookingStatusKind::Cancelled => WireStatus::Cancelled,
        }
    }
}

/// `POST /v1/bookings/{id}/complete` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = CompleteBookingRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteBody {
    /// How long the cleaning took, from 15 minutes to 3 times the booking's `duration_min`,
    /// and at most 12 hours.
    #[serde(default)]
    #[schema(required = true, minimum = 15, maximum = 720)]
    actual_duration_min: u32,
}

/// `POST /v1/bookings/{id}/{action}` body, optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = TransitionRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct TransitionBody {
    /// For `complete`: how long the cleaning took, as in `CompleteBookingRequest`.
    #[serde(default)]
    #[schema(minimum = 15, maximum = 720)]
    actual_duration_min: u32,
}

/// `GET /v1/bookings` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BookingQuery {
    /// Only bookings in this state.
    status: Option<BookingStatusKind>,
    /// Page size, 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A booking as the mobile apps see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Booking)]
pub(super) struct BookingResponse {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    customer_id: String,
    #[schema(format = Uuid)]
    cleaner_id: Option<String>,
    #[schema(format = Uuid)]
    address_id: String,
    #[schema(value_type = ServiceKind)]
    service: String,
    #[schema(format = DateTime)]
    starts_at: Option<String>,
    #[schema(format = DateTime)]
    ends_at: Option<String>,
    duration_min: u32,
    price_cents: i64,
    currency: String,
    #[schema(value_type = BookingStatusKind)]
    status: String,
    /// `authorized`, `capture_pending`, `captured`, `release_pending`, `released` (or `none`):
    /// the pending ones last until the payment provider confirms the step.
    payment_status: String,
    actual_duration_min: Option<u32>,
    /// What estimated `duration_min` and so the price: `model` (the learned duration model)
    /// or `rule_of_thumb` (used when the model could not answer).
    estimated_by: String,
    /// The duration model's version, when `estimated_by` is `model`.
    model_version: Option<i64>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
}

page! {
    /// Bookings, newest first.
    BookingPage of BookingResponse
}

impl From<Booking> for BookingResponse {
    fn from(booking: Booking) -> Self {
        let service =
            enum_or_string(booking.service_kind().wire_name(), &booking.service).to_owned();
        let status =
            enum_or_string(booking.booking_status().wire_name(), &booking.status).to_owned();
        BookingResponse {
            starts_at: booking.starts_at.as_ref().and_then(rfc3339),
            ends_at: booking.ends_at.as_ref().and_then(rfc3339),
            created_at: booking.created_at.as_ref().and_then(rfc3339),
            cleaner_id: Some(booking.cleaner_id).filter(|id| !id.is_empty()),
            actual_duration_min: Some(booking.actual_duration_min).filter(|minutes| *minutes > 0),
            model_version: Some(booking.model_version).filter(|version| *version > 0),
            id: booking.id,
            customer_id: booking.customer_id,
            address_id: booking.address_id,
            service,
            duration_min: booking.duration_min,
            price_cents: booking.price_cents,
            currency: booking.currency,
            status,
            payment_status: booking.payment_status,
            estimated_by: booking.estimated_by,
        }
    }
}

/// Books a cleaning. The `Idempotency-Key` header makes retries safe: the same key and body
/// return the same booking.
#[utoipa::path(
    post,
    path = "/v1/bookings",
    tag = "bookings",
    request_body = BookingBody,
    params(
        (
            "Idempotency-Key" = String,
            Header,
            description = "any unique string (a UUID); retries with the same key and body return the same booking",
            max_length = 255,
            pattern = r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$"
        )
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the booking, payment authorized", body = BookingResponse),
        (status = 402, description = "payment declined (no reason is given)"),
        (status = 403, description = "the role may not do this"),
        (status = 409, description = "conflict"),
        (
            status = 429,
            description = "too many declined payments for this customer or from this address (Retry-After)"
        )
    )
)]
pub(super) async fn create_booking(
    State(state): State<AppState>,
    user: AuthUser,
    ClientAddress(address): ClientAddress,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    ApiJson(body): ApiJson<BookingBody>,
) -> Result<(StatusCode, Json<BookingResponse>), ApiError> {
    let mut checks = Checks::default();
    let address_id = checks.required("address_id", body.address_id, UUID_EXPECTED);
    let service = checks.required("service", body.service, SERVICE_EXPECTED);
    let starts_at = checks.required("starts_at", body.starts_at, TIME_EXPECTED);
    let cleaner_id = checks.optional("cleaner_id", body.cleaner_id, UUID_EXPECTED);
    checks.finish()?;
    let service = service.map(ServiceKind::wire).unwrap_or_default();
    let message = CreateBookingRequest {
        idempotency_key,
        address_id: address_id.map(|id| id.to_string()).unwrap_or_default(),
        service: service.wire_name().to_owned(),
        service_kind: service.into(),
        starts_at: starts_at.map(to_timestamp),
        cleaner_id: cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
        payment_token: body.payment_token,
    };
    let customer_id = user.caller.user_id;
    if let Err(blocked) = state.throttle.payment_attempt(customer_id, address).await {
        // A refused attempt is no decline: only declines fill the window.
        state.throttle.not_declined(customer_id, address).await;
        return Err(ApiError::too_many_attempts(blocked.retry_after_secs));
    }
    let created = state
        .upstreams
        .bookings
        .clone()
        .create_booking(user.request(message))
        .await;
    let declined = created
        .as_ref()
        .is_err_and(|status| reason_of(status).0 == Reason::PaymentDeclined);
    if !declined {
        state.throttle.not_declined(customer_id, address).await;
    }
    Ok((StatusCode::CREATED, Json(created?.into_inner().into())))
}

/// Returns one booking of the caller's.
#[utoipa::path(
    get,
    path = "/v1/bookings/{id}",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking", body = BookingResponse),
        (status = 404, description = "no such resource (or not yours)")
    )
)]
pub(super) async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingResponse>, ApiError> {
    let message = GetBookingRequest { booking_id };
    let booking = state
        .upstreams
        .bookings
        .clone()
        .get_booking(user.request(message))
        .await?;
    Ok(Json(booking.into_inner().into()))
}

/// Lists the caller's bookings (as customer or as cleaner), newest first.
#[utoipa::path(
    get,
    path = "/v1/bookings",
    tag = "bookings",
    params(BookingQuery),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "the customer's own or the cleaner's assigned bookings, newest first",
            body = BookingPage
        )
    )
)]
pub(super) async fn list_bookings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<BookingQuery>,
) -> Result<Json<BookingPage>, ApiError> {
    let status = query
        .status
        .map(BookingStatusKind::wire)
        .unwrap_or_default();
    let message = ListBookingsRequest {
        status: status.wire_name().to_owned(),
        booking_status: status.into(),
        limit: page_limit(query.limit)?,
        cursor: query.cursor.unwrap_or_default(),
    };
    let response = state
        .upstreams
        .bookings
        .clone()
        .list_bookings(user.request(message))
        .await?
        .into_inner();
    Ok(Json(BookingPage::new(
        response.bookings.into_iter().map(Into::into).collect(),
        response.next_cursor,
    )))
}

/// `confirm`, `start`, `complete` or `cancel` a booking: the same as the four operations
/// of their own, kept for clients that call this form.
#[deprecated = "one operation per step: /v1/bookings/{id}/confirm, start, complete, cancel"]
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/{action}",
    tag = "bookings",
    params(
        ("id" = Uuid, Path, description = "the booking id"),
        ("action" = String, Path, description = "confirm, start, complete or cancel")
    ),
    request_body(
        content = Option<TransitionBody>,
        description = "only for complete: {\"actual_duration_min\": 95}"
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking after the step", body = BookingResponse),
        (status = 403, description = "the role may not do this"),
        (status = 404, description = "no such booking (or not yours), or no such step"),
        (status = 409, description = "the booking's status does not allow the step")
    )
)]
pub(super) async fn transition_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path((booking_id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<BookingResponse>, ApiError> {
    if !["confirm", "start", "complete", "cancel"].contains(&action.as_str()) {
        return Err(ApiError::not_found());
    }
    // The body is optional: only `complete` needs one.
    let body: TransitionBody = optional_json(&body)?;
    transition(&state, &user, booking_id, &action, body.actual_duration_min).await
}

/// The cleaner confirms a requested booking they were chosen for.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/confirm",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking, confirmed", body = BookingResponse),
        (status = 403, description = "only the booking's cleaner confirms"),
        (status = 404, description = "no such booking (or not yours)"),
        (status = 409, description = "the booking is not requested")
    )
)]
pub(super) async fn confirm_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingResponse>, ApiError> {
    transition(&state, &user, booking_id, "confirm", 0).await
}

/// The cleaner starts a confirmed booking, from 30 minutes before it starts (409
/// `too_early` before that).
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/start",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking, in progress", body = BookingResponse),
        (status = 403, description = "only the booking's cleaner starts it"),
        (status = 404, description = "no such booking (or not yours)"),
        (status = 409, description = "not confirmed, or too early")
    )
)]
pub(super) async fn start_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingResponse>, ApiError> {
    transition(&state, &user, booking_id, "start", 0).await
}

/// The cleaner completes a booking in progress, saying how long it took; the payment is
/// captured.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/complete",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the booking id")),
    request_body = CompleteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking, completed", body = BookingResponse),
        (status = 403, description = "only the booking's cleaner completes it"),
        (status = 404, description = "no such booking (or not yours)"),
        (status = 409, description = "the booking is not in progress")
    )
)]
pub(super) async fn complete_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
    body: Bytes,
) -> Result<Json<BookingResponse>, ApiError> {
    // Without a body core names the missing `actual_duration_min`, as for a body without it.
    let body: CompleteBody = optional_json(&body)?;
    transition(
        &state,
        &user,
        booking_id,
        "complete",
        body.actual_duration_min,
    )
    .await
}

/// The customer or the cleaner cancels a booking before it starts; the payment is
/// released.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/cancel",
    tag = "bookings",
    params(("id" = Uuid, Path, description = "the booking id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the booking, cancelled", body = BookingResponse),
        (status = 403, description = "the role may not cancel it"),
        (status = 404, description = "no such booking (or not yours)"),
        (status = 409, description = "the booking has started or ended")
    )
)]
pub(super) async fn cancel_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(booking_id): Path<String>,
) -> Result<Json<BookingResponse>, ApiError> {
    transition(&state, &user, booking_id, "cancel", 0).await
}

/// Asks core to move `booking_id` by `action`.
async fn transition(
    state: &AppState,
    user: &AuthUser,
    booking_id: String,
    action: &str,
    actual_duration_min: u32,
) -> Result<Json<BookingResponse>, ApiError> {
    let message = TransitionBookingRequest {
        booking_id,
        action: action.to_owned(),
        step: BookingAction::from_wire_name(action).into(),
        actual_duration_min,
    };
    let booking = state
        .upstreams
        .bookings
        .clone()
        .transition_booking(user.request(message))
        .await?;
    Ok(Json(booking.into_inner().into()))
}
