//! The steps the booking use cases are made of: the request checked, the duration
//! estimated, a booking moved with its payment, an idempotent request replayed, and the
//! event each change publishes.

use super::*;

/// Estimates a cleaning's duration with the model, or by the rule of thumb when the model
/// cannot answer (search down, slow, without a model) or answers nonsense.
pub(super) async fn estimate(durations: &dyn DurationModel, job: Job<'_>) -> (u32, EstimatedBy) {
    let fallback = || estimate_duration_min(job.service, job.home);
    match durations.estimate(job).await {
        Ok(estimate) if bookable_estimate(estimate.minutes) && estimate.model_version > 0 => (
            estimate.minutes,
            EstimatedBy::Model {
                version: estimate.model_version,
            },
        ),
        Ok(estimate) => {
            tracing::warn!(
                minutes = estimate.minutes,
                model_version = estimate.model_version,
                "the duration model's estimate is not bookable; using the rule of thumb"
            );
            (fallback(), EstimatedBy::RuleOfThumb)
        }
        Err(reason) => {
            tracing::warn!(%reason, "no duration model answer; using the rule of thumb");
            (fallback(), EstimatedBy::RuleOfThumb)
        }
    }
}

/// A new booking that passed the checks, with its estimate and the rate it is charged at.
pub(super) struct Checked {
    pub(super) address: Address,
    pub(super) duration_min: u32,
    pub(super) estimated_by: EstimatedBy,
    pub(super) hourly_rate_cents: i64,
}

/// Checks a new booking against the customer's address and the cleaner's profile, and
/// estimates its duration (the cleaner's time must cover it). The rows are read first and
/// the connection given back before search is asked for the estimate.
pub(super) async fn check_request(
    pool: &PgPool,
    durations: &dyn DurationModel,
    customer_id: Uuid,
    request: &NewBooking,
    require_verified_email: bool,
) -> Result<Checked, CoreError> {
    let (address, cleaner) = {
        let mut connection = pool.acquire().await?;
        let parties = bookings::request_parties(
            &mut connection,
            customer_id,
            request.address_id,
            request.cleaner_id,
        )
        .await?;
        if require_verified_email && !parties.customer_verified {
            return Err(CoreError::EmailUnverified);
        }
        let address = parties
            .address
            .ok_or_else(|| CoreError::invalid("address_id", "is not one of your addresses"))?;
        check_in_future(request.starts_at, Utc::now())
            .map_err(|message| CoreError::invalid("starts_at", message))?;
        let cleaner = match request.cleaner_id {
            Some(_) => Some(
                parties
                    .cleaner
                    .filter(|cleaner| cleaner.listed || !require_verified_email)
                    .ok_or_else(|| {
                        CoreError::invalid("cleaner_id", "is not a cleaner taking bookings")
                    })?,
            ),
            None => None,
        };
        (address, cleaner)
    };
    let job = Job {
        service: request.service,
        home: &address.details,
        cleaner_id: request.cleaner_id,
    };
    let (duration_min, estimated_by) = estimate(durations, job).await;
    let Some(cleaner) = cleaner else {
        return Ok(Checked {
            address,
            duration_min,
            estimated_by,
            hourly_rate_cents: DEFAULT_HOURLY_RATE_CENTS,
        });
    };
    let local_start = local_start(request.starts_at, &cleaner.profile.timezone)?;
    check_cleaner_fit(
        &cleaner.profile,
        request.service,
        &address.details.location,
        local_start,
        duration_min,
    )
    .map_err(|(field, message)| CoreError::invalid(field, message))?;
    Ok(Checked {
        address,
        duration_min,
        estimated_by,
        hourly_rate_cents: cleaner.profile.hourly_rate_cents,
    })
}

/// A capture or release recorded as pending, to ask the provider for.
pub(super) struct Settlement {
    pub(super) reference: String,
    pub(super) pending: PaymentStatus,
}

/// Moves a locked booking to `next` with its event (`reason` for a cancellation), marking
/// its authorized payment capture- or release-pending when the action completes or cancels
/// it; returns that step, for the provider to be asked once the transaction commits.
pub(super) async fn move_booking(
    transaction: &mut PgConnection,
    booking_id: Uuid,
    action: Action,
    next: BookingStatus,
    reason: &str,
) -> Result<Option<Settlement>, CoreError> {
    let pending = match action {
        Action::Complete { .. } => Some(PaymentStatus::CapturePending),
        Action::Cancel => Some(PaymentStatus::ReleasePending),
        Action::Confirm | Action::Start => None,
    };
    let mut settlement = None;
    if let Some(pending) = pending
        && let Some((reference, PaymentStatus::Authorized)) =
            bookings::find_payment(transaction, booking_id).await?
    {
        bookings::set_payment_status(transaction, booking_id, PaymentStatus::Authorized, pending)
            .await?;
        settlement = Some(Settlement { reference, pending });
    }
    let actual_duration_min = match action {
        Action::Complete {
            actual_duration_min,
        } => Some(actual_duration_min),
        _ => None,
    };
    bookings::set_status(transaction, booking_id, next, actual_duration_min).await?;
    let booking = bookings::find_booking(transaction, booking_id)
        .await?
        .ok_or(CoreError::NotFound)?;
    record_change(transaction, action.event_type(), &booking, reason).await?;
    Ok(settlement)
}

/// How long a repeated request waits for the same request's payment step to finish.
pub(super) const HELD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Returns the booking an earlier request with this key made, if the request is the same.
/// While that request's payment step is still under way, waits for it (up to
/// [`HELD_WAIT`]), holding no connection in between.
pub(super) async fn replay(
    pool: &PgPool,
    customer_id: Uuid,
    idempotency_key: &str,
    fingerprint: &[u8],
) -> Result<Option<Booking>, CoreError> {
    let reused = || {
        CoreError::invalid(
            "idempotency_key",
            "was already used for a different booking request; use a new key",
        )
    };
    let started = tokio::time::Instant::now();
    let mut seen_held = false;
    loop {
        let earlier = {
            let mut connection = pool.acquire().await?;
            bookings::find_by_idempotency_key(&mut connection, customer_id, idempotency_key).await?
        };
        match earlier {
            Some(Earlier::Booking(booking, hash)) if hash == fingerprint => {
                return Ok(Some(booking));
            }
            Some(Earlier::Held(hash)) if hash == fingerprint => {
                if started.elapsed() >= HELD_WAIT {
                    return Err(CoreError::PaymentUnavailable);
                }
                seen_held = true;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Some(_) => return Err(reused()),
            // The hold waited for was dropped (the card was refused): asking again decides.
            None if seen_held => return Err(CoreError::PaymentUnavailable),
            None => return Ok(None),
        }
    }
}

/// `at` in the cleaner's time zone, as their availability is written.
pub(super) fn local_start(at: DateTime<Utc>, timezone: &str) -> Result<LocalStart, CoreError> {
    LocalStart::of(at, timezone)
        .ok_or_else(|| CoreError::invalid("cleaner_id", "has an unknown time zone"))
}

/// Writes a booking.* event with the booking as it now is.
pub(super) async fn record_change(
    connection: &mut PgConnection,
    event_type: &str,
    booking: &Booking,
    reason: &str,
) -> Result<(), CoreError> {
    spruce_bus::enqueue(connection, &change_event(event_type, booking, reason)).await?;
    Ok(())
}

/// A booking.* event with the booking as it now is; `reason` says why it was cancelled.
pub(super) fn change_event(event_type: &str, booking: &Booking, reason: &str) -> Envelope {
    spruce_bus::envelope(
        event_type,
        booking.id,
        booking.version,
        Payload::BookingChanged(BookingChanged {
            booking_id: booking.id.to_string(),
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
            currency: booking.currency.clone(),
            status: booking.status.to_string(),
            booking_status: WireStatus::from_wire_name(booking.status.as_str()).into(),
            actual_duration_min: booking.actual_duration_min.unwrap_or(0),
            reason: reason.to_owned(),
        }),
    )
}
