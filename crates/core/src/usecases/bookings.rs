//! Bookings: the use cases behind `BookingService`. Each change and its event commit in one
//! transaction; the payment provider is called inside it, so a declined or failed payment
//! leaves no booking behind.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use spruce_platform::{
    bus,
    identity::{Caller, Principal, Role},
    paging::{Cursor, split_page},
    time::to_timestamp,
};
use spruce_proto::events::v1::{BookingChanged, Envelope, PaymentFailed, envelope::Payload};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    authz::{authenticated, require_admin_or_service, require_role},
    domain::{
        address::Address,
        booking::{
            Action, Booking, BookingStatus, DEFAULT_HOURLY_RATE_CENTS, EXPIRED_UNCONFIRMED,
            EstimatedBy, LocalStart, NewBooking, PaymentStatus, START_WINDOW_BEFORE, TimingError,
            TransitionError, UNCONFIRMED_EXPIRES_AFTER, UNCONFIRMED_EXPIRES_BEFORE_START,
            bookable_estimate, check_cleaner_fit, check_in_future, check_timing,
            estimate_duration_min, price_cents, transition,
        },
        cleaner::CURRENCY,
    },
    durations::{DurationModel, Job},
    error::CoreError,
    metrics::{PAYMENTS_AUTHORIZED, PAYMENTS_DECLINED},
    payments::{PaymentError, PaymentProvider},
    store::{
        addresses,
        bookings::{self, BookingRow, InsertError, Scope},
        cleaners,
    },
};

const MATCHING_ONLY: &str = "only the scheduler's matching engine (or an admin) does this";

/// The booking use cases.
#[derive(Clone)]
pub struct Bookings {
    pool: PgPool,
    payments: Arc<dyn PaymentProvider>,
    durations: Arc<dyn DurationModel>,
}

impl Bookings {
    /// Creates the use cases over `pool`, paying through `payments` and estimating
    /// durations with `durations` (the rule of thumb when it cannot answer).
    pub fn new(
        pool: PgPool,
        payments: Arc<dyn PaymentProvider>,
        durations: Arc<dyn DurationModel>,
    ) -> Self {
        Bookings {
            pool,
            payments,
            durations,
        }
    }

    /// Books a cleaning for the calling customer and authorizes its payment.
    #[tracing::instrument(skip_all, fields(booking_id = tracing::field::Empty))]
    pub async fn create(
        &self,
        caller: Option<Caller>,
        request: NewBooking,
    ) -> Result<Booking, CoreError> {
        let caller = require_role(caller, Role::Customer, "only customers book cleanings")?;
        let fingerprint = request.fingerprint();
        let mut transaction = self.pool.begin().await?;
        // A repeated request is told apart at the insert (most requests are new); one that
        // no longer passes the checks (its start has passed, say) is looked up here.
        let checked = check_request(
            &mut transaction,
            self.durations.as_ref(),
            caller.user_id,
            &request,
        )
        .await;
        let Checked {
            address,
            duration_min,
            estimated_by,
            hourly_rate_cents,
        } = match checked {
            Ok(checked) => checked,
            Err(error @ CoreError::Validation(_)) => {
                return replay(
                    &mut transaction,
                    caller.user_id,
                    &request.idempotency_key,
                    &fingerprint,
                )
                .await?
                .ok_or(error);
            }
            Err(error) => return Err(error),
        };
        let price = price_cents(duration_min, hourly_rate_cents);
        let booking_id = Uuid::new_v4();
        tracing::Span::current().record("booking_id", tracing::field::display(booking_id));
        let row = BookingRow {
            id: booking_id,
            customer_id: caller.user_id,
            cleaner_id: request.cleaner_id,
            address_id: address.id,
            service: request.service,
            starts_at: request.starts_at,
            ends_at: request.starts_at + Duration::minutes(i64::from(duration_min)),
            duration_min,
            estimated_by,
            price_cents: price,
            currency: CURRENCY,
            idempotency_key: &request.idempotency_key,
            request_hash: &fingerprint,
        };
        let created_at = match bookings::insert_booking(&mut transaction, &row).await {
            Ok(Some(created_at)) => created_at,
            Ok(None) => {
                // The key was used before (or by a concurrent request, now committed).
                return replay(
                    &mut transaction,
                    caller.user_id,
                    &request.idempotency_key,
                    &fingerprint,
                )
                .await?
                .ok_or(CoreError::NotFound);
            }
            Err(InsertError::SlotTaken) => return Err(CoreError::SlotTaken),
            Err(InsertError::Other(error)) => return Err(error),
        };
        let authorization = self
            .payments
            .authorize(
                price,
                CURRENCY,
                &request.payment_token,
                &booking_id.to_string(),
            )
            .await;
        let reference = match authorization {
            Ok(reference) => {
                PAYMENTS_AUTHORIZED.inc();
                reference
            }
            Err(error) => {
                transaction.rollback().await?;
                return Err(self
                    .payment_refused(caller.user_id, request.cleaner_id, price, error)
                    .await);
            }
        };
        let booking = Booking {
            id: booking_id,
            customer_id: caller.user_id,
            cleaner_id: request.cleaner_id,
            address_id: address.id,
            service: request.service,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            duration_min,
            price_cents: price,
            currency: CURRENCY.to_owned(),
            status: BookingStatus::Requested,
            payment_status: PaymentStatus::Authorized,
            actual_duration_min: None,
            estimated_by,
            version: 1,
            created_at,
        };
        // The payment row and the event go in one statement: one round trip less per booking.
        let stored = async {
            bookings::insert_payment(
                &mut transaction,
                booking_id,
                self.payments.name(),
                &reference,
                price,
                CURRENCY,
                &change_event("booking.created", &booking, ""),
            )
            .await?;
            transaction.commit().await.map_err(CoreError::from)
        };
        if let Err(error) = stored.await {
            // The authorization must not outlive the booking that never was.
            self.payments.release(&reference).await.ok();
            return Err(error);
        }
        tracing::info!(booking_id = %booking.id, "booking created");
        Ok(booking)
    }

    /// Records `payment.failed` for a declined card and turns the provider's answer into
    /// the client's error.
    async fn payment_refused(
        &self,
        customer_id: Uuid,
        cleaner_id: Option<Uuid>,
        amount_cents: i64,
        error: PaymentError,
    ) -> CoreError {
        match error {
            PaymentError::Declined(reason) => {
                let event = bus::envelope(
                    "payment.failed",
                    customer_id,
                    1,
                    Payload::PaymentFailed(PaymentFailed {
                        customer_id: customer_id.to_string(),
                        cleaner_id: cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
                        amount_cents,
                        currency: CURRENCY.to_owned(),
                        reason: reason.clone(),
                    }),
                );
                let recorded = async {
                    let mut transaction = self.pool.begin().await?;
                    bus::enqueue(&mut transaction, &event).await?;
                    transaction.commit().await
                };
                PAYMENTS_DECLINED.inc();
                tracing::info!(%customer_id, %reason, "payment declined");
                if let Err(error) = recorded.await {
                    return CoreError::Unexpected(
                        anyhow::Error::new(error).context("failed to record payment.failed"),
                    );
                }
                CoreError::PaymentDeclined
            }
            PaymentError::InvalidToken => {
                CoreError::invalid("payment_token", "is not a payment token we accept")
            }
            PaymentError::Unavailable(message) => {
                tracing::warn!(%message, "payment provider unavailable");
                CoreError::PaymentUnavailable
            }
        }
    }

    /// Returns a booking its customer, its cleaner or an admin may see.
    pub async fn get(
        &self,
        caller: Option<Caller>,
        booking_id: Uuid,
    ) -> Result<Booking, CoreError> {
        let caller = authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        let booking = bookings::find_booking(&mut connection, booking_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        // Someone else's booking is "not found", revealing nothing.
        booking
            .party_of(caller.user_id, caller.role == Role::Admin)
            .map(|_| booking)
            .ok_or(CoreError::NotFound)
    }

    /// Returns a page of the caller's bookings, newest first, and the next page's cursor.
    pub async fn list(
        &self,
        caller: Option<Caller>,
        status: Option<BookingStatus>,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<Booking>, Option<Cursor>), CoreError> {
        let caller = authenticated(caller)?;
        let scope = match caller.role {
            Role::Customer => Scope::Customer(caller.user_id),
            Role::Cleaner => Scope::Cleaner(caller.user_id),
            Role::Admin => Scope::Everyone,
        };
        let mut connection = self.pool.acquire().await?;
        let rows =
            bookings::list_bookings(&mut connection, scope, status, after, limit + 1).await?;
        Ok(split_page(rows, limit, |booking| Cursor {
            created_at: booking.created_at,
            id: booking.id,
        }))
    }

    /// Moves a booking along its state machine; completing captures the payment, cancelling
    /// releases it.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id))]
    pub async fn transition(
        &self,
        caller: Option<Caller>,
        booking_id: Uuid,
        action: Action,
    ) -> Result<Booking, CoreError> {
        let caller = authenticated(caller)?;
        let mut transaction = self.pool.begin().await?;
        let booking = bookings::lock_booking(&mut transaction, booking_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let party = booking
            .party_of(caller.user_id, caller.role == Role::Admin)
            .ok_or(CoreError::NotFound)?;
        let next = transition(booking.status, action, party, booking.cleaner_id.is_some())
            .map_err(|error| match error {
                TransitionError::NotAllowed(why) => CoreError::PermissionDenied(why),
                TransitionError::Illegal { from, action } => CoreError::IllegalTransition(format!(
                    "a {from} booking cannot be asked to {action}"
                )),
            })?;
        check_timing(action, booking.starts_at, booking.duration_min, Utc::now()).map_err(
            |error| match error {
                TimingError::TooEarly { starts_at } => CoreError::TooEarly(format!(
                    "the cleaning can be started from {} minutes before it is due ({})",
                    START_WINDOW_BEFORE.num_minutes(),
                    starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
                TimingError::ImplausibleDuration { min, max } => CoreError::invalid(
                    "actual_duration_min",
                    format!("must be between {min} and {max} minutes for this booking"),
                ),
            },
        )?;
        let booking = self
            .settle_and_move(&mut transaction, booking_id, action, next)
            .await?;
        let reason = if action == Action::Cancel {
            party.as_str()
        } else {
            ""
        };
        record_change(&mut transaction, action.event_type(), &booking, reason).await?;
        transaction.commit().await?;
        Ok(booking)
    }

    /// Takes the money on completing and gives the reservation back on cancelling, then
    /// moves the booking to `next`; returns it as it now is.
    async fn settle_and_move(
        &self,
        transaction: &mut PgConnection,
        booking_id: Uuid,
        action: Action,
        next: BookingStatus,
    ) -> Result<Booking, CoreError> {
        let settles = matches!(action, Action::Complete { .. } | Action::Cancel);
        if settles
            && let Some(reference) = bookings::payment_reference(transaction, booking_id).await?
        {
            let (step, payment_status) = match action {
                Action::Cancel => (self.payments.release(&reference), PaymentStatus::Released),
                _ => (self.payments.capture(&reference), PaymentStatus::Captured),
            };
            step.await.map_err(|error| {
                tracing::warn!(%error, "payment step failed");
                CoreError::PaymentUnavailable
            })?;
            bookings::set_payment_status(transaction, booking_id, payment_status).await?;
        }
        let actual_duration_min = match action {
            Action::Complete {
                actual_duration_min,
            } => Some(actual_duration_min),
            _ => None,
        };
        bookings::set_status(transaction, booking_id, next, actual_duration_min).await?;
        bookings::find_booking(transaction, booking_id)
            .await?
            .ok_or(CoreError::NotFound)
    }

    /// Lists requested bookings without a cleaner that start at least
    /// [`UNCONFIRMED_EXPIRES_BEFORE_START`] from now (sooner ones expire), with their
    /// addresses' coordinates, oldest request first: the matching engine's input.
    pub async fn list_open(
        &self,
        principal: Option<&Principal>,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<(Booking, f64, f64)>, Option<Cursor>), CoreError> {
        require_admin_or_service(principal, "scheduler", MATCHING_ONLY)?;
        let mut connection = self.pool.acquire().await?;
        let starting_after = Utc::now() + UNCONFIRMED_EXPIRES_BEFORE_START;
        let rows = bookings::list_open(&mut connection, starting_after, after, limit + 1).await?;
        let (page, next) = split_page(rows, limit, |booking| Cursor {
            created_at: booking.created_at,
            id: booking.id,
        });
        let ids: Vec<Uuid> = page.iter().map(|booking| booking.id).collect();
        let locations = bookings::locations(&mut connection, &ids).await?;
        let located = page
            .into_iter()
            .filter_map(|booking| {
                let (_, lat, lng) = *locations.iter().find(|(id, _, _)| *id == booking.id)?;
                Some((booking, lat, lng))
            })
            .collect();
        Ok((located, next))
    }

    /// Cancels up to `limit` bookings nobody confirmed in time (see
    /// [`UNCONFIRMED_EXPIRES_AFTER`]), each in its own transaction with its payment
    /// released and `booking.cancelled` (reason "unconfirmed"); returns their ids and
    /// whether more were due. A booking confirmed meanwhile is left alone.
    pub async fn expire_unconfirmed(
        &self,
        principal: Option<&Principal>,
        limit: i64,
    ) -> Result<(Vec<Uuid>, bool), CoreError> {
        require_admin_or_service(
            principal,
            "scheduler",
            "only the scheduler expires bookings",
        )?;
        let now = Utc::now();
        let due = bookings::due_unconfirmed(
            &mut *self.pool.acquire().await?,
            now - UNCONFIRMED_EXPIRES_AFTER,
            now + UNCONFIRMED_EXPIRES_BEFORE_START,
            limit + 1,
        )
        .await?;
        let more = i64::try_from(due.len()).unwrap_or(i64::MAX) > limit;
        let mut expired = Vec::new();
        for booking_id in due.into_iter().take(usize::try_from(limit).unwrap_or(0)) {
            let mut transaction = self.pool.begin().await?;
            let Some(booking) = bookings::lock_booking(&mut transaction, booking_id).await? else {
                continue;
            };
            if booking.status != BookingStatus::Requested {
                continue;
            }
            let booking = self
                .settle_and_move(
                    &mut transaction,
                    booking_id,
                    Action::Cancel,
                    BookingStatus::Cancelled,
                )
                .await?;
            record_change(
                &mut transaction,
                "booking.cancelled",
                &booking,
                EXPIRED_UNCONFIRMED,
            )
            .await?;
            transaction.commit().await?;
            tracing::info!(booking_id = %booking_id, "unconfirmed booking expired");
            expired.push(booking_id);
        }
        Ok((expired, more))
    }

    /// Gives a requested booking without a cleaner to `cleaner_id` and confirms it (the
    /// scheduler's matching engine, or an admin). The customer keeps the quoted price.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id, cleaner_id = %cleaner_id))]
    pub async fn assign(
        &self,
        principal: Option<&Principal>,
        booking_id: Uuid,
        cleaner_id: Uuid,
    ) -> Result<Booking, CoreError> {
        let mut outcomes = self
            .assign_many(principal, &[(booking_id, cleaner_id)])
            .await?;
        outcomes.pop().expect("one outcome per pair")
    }

    /// Gives each requested booking without a cleaner of `pairs` its cleaner and confirms
    /// it, all in one transaction: a few queries for the whole batch, not a few per pair.
    /// Each pair gets its own answer; a refused pair (not open, the cleaner does not fit or
    /// is booked then, also by an earlier pair of the batch) leaves the others be.
    #[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
    pub async fn assign_many(
        &self,
        principal: Option<&Principal>,
        pairs: &[(Uuid, Uuid)],
    ) -> Result<Vec<Result<Booking, CoreError>>, CoreError> {
        require_admin_or_service(principal, "scheduler", MATCHING_ONLY)?;
        let booking_ids: Vec<Uuid> = pairs.iter().map(|pair| pair.0).collect();
        let cleaner_ids: Vec<Uuid> = pairs.iter().map(|pair| pair.1).collect();
        let mut transaction = self.pool.begin().await?;
        // Bookings made for these cleaners meanwhile wait for this transaction.
        bookings::claim_cleaners_time(&mut transaction, &cleaner_ids).await?;
        let found = bookings::lock_bookings(&mut transaction, &booking_ids).await?;
        let profiles = cleaners::find_profiles(&mut transaction, &cleaner_ids).await?;
        let address_ids: Vec<Uuid> = found.iter().map(|booking| booking.address_id).collect();
        let addresses = addresses::find_addresses(&mut transaction, &address_ids).await?;
        let times: Vec<_> = pairs
            .iter()
            .filter_map(|&(booking_id, cleaner_id)| {
                let booking = found.iter().find(|booking| booking.id == booking_id)?;
                Some((booking_id, cleaner_id, booking.starts_at, booking.ends_at))
            })
            .collect();
        let clashing = bookings::clashing(&mut transaction, &times).await?;
        let mut accepted: Vec<(Uuid, Uuid)> = Vec::new();
        let mut checks = Vec::with_capacity(pairs.len());
        for &(booking_id, cleaner_id) in pairs {
            let check = (|| {
                let booking = found
                    .iter()
                    .find(|booking| booking.id == booking_id)
                    .ok_or(CoreError::NotFound)?;
                if accepted.iter().any(|&(taken, _)| taken == booking_id) {
                    return Err(CoreError::IllegalTransition(
                        "the booking is in this batch twice".to_owned(),
                    ));
                }
                if booking.status != BookingStatus::Requested || booking.cleaner_id.is_some() {
                    return Err(CoreError::IllegalTransition(format!(
                        "a {} booking{} cannot be assigned",
                        booking.status,
                        if booking.cleaner_id.is_some() {
                            " with a cleaner"
                        } else {
                            ""
                        }
                    )));
                }
                let cleaner = profiles
                    .iter()
                    .find(|profile| profile.cleaner_id == cleaner_id)
                    .ok_or_else(|| {
                        CoreError::invalid("cleaner_id", "is not a cleaner on Spruce")
                    })?;
                let address = addresses
                    .iter()
                    .find(|address| {
                        address.id == booking.address_id
                            && address.customer_id == booking.customer_id
                    })
                    .ok_or(CoreError::NotFound)?;
                let local_start = local_start(booking.starts_at, &cleaner.profile.timezone)?;
                check_cleaner_fit(
                    &cleaner.profile,
                    booking.service,
                    &address.details.location,
                    local_start,
                    booking.duration_min,
                )
                .map_err(|(field, message)| CoreError::invalid(field, message))?;
                // Booked then already, or by an earlier pair of this batch.
                let taken_in_batch = accepted.iter().any(|&(other, other_cleaner)| {
                    other_cleaner == cleaner_id
                        && found.iter().any(|taken| {
                            taken.id == other
                                && taken.starts_at < booking.ends_at
                                && booking.starts_at < taken.ends_at
                        })
                });
                if clashing.contains(&booking_id) || taken_in_batch {
                    return Err(CoreError::SlotTaken);
                }
                Ok(())
            })();
            if check.is_ok() {
                accepted.push((booking_id, cleaner_id));
            }
            checks.push(check);
        }
        if !accepted.is_empty() {
            match bookings::assign_and_confirm(&mut transaction, &accepted).await {
                Ok(()) => {}
                Err(InsertError::SlotTaken) => return Err(CoreError::SlotTaken),
                Err(InsertError::Other(error)) => return Err(error),
            }
        }
        let accepted_ids: Vec<Uuid> = accepted.iter().map(|pair| pair.0).collect();
        let assigned = bookings::find_bookings(&mut transaction, &accepted_ids).await?;
        let events: Vec<Envelope> = assigned
            .iter()
            .map(|booking| change_event("booking.assigned", booking, ""))
            .collect();
        bus::enqueue_many(&mut transaction, &events).await?;
        transaction.commit().await?;
        Ok(pairs
            .iter()
            .zip(checks)
            .map(|(&(booking_id, _), check)| {
                check.and_then(|()| {
                    assigned
                        .iter()
                        .find(|booking| booking.id == booking_id)
                        .cloned()
                        .ok_or(CoreError::NotFound)
                })
            })
            .collect())
    }
}

/// Estimates a cleaning's duration with the model, or by the rule of thumb when the model
/// cannot answer (search down, slow, without a model) or answers nonsense.
async fn estimate(durations: &dyn DurationModel, job: Job<'_>) -> (u32, EstimatedBy) {
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
struct Checked {
    address: Address,
    duration_min: u32,
    estimated_by: EstimatedBy,
    hourly_rate_cents: i64,
}

/// Checks a new booking against the customer's address and the cleaner's profile, and
/// estimates its duration (the cleaner's time must cover it).
async fn check_request(
    connection: &mut PgConnection,
    durations: &dyn DurationModel,
    customer_id: Uuid,
    request: &NewBooking,
) -> Result<Checked, CoreError> {
    let address = addresses::find_address(connection, request.address_id, customer_id)
        .await?
        .ok_or_else(|| CoreError::invalid("address_id", "is not one of your addresses"))?;
    check_in_future(request.starts_at, Utc::now())
        .map_err(|message| CoreError::invalid("starts_at", message))?;
    let cleaner = match request.cleaner_id {
        Some(cleaner_id) => Some(
            cleaners::find_profile(&mut *connection, cleaner_id)
                .await?
                .ok_or_else(|| CoreError::invalid("cleaner_id", "is not a cleaner on Spruce"))?,
        ),
        None => None,
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

/// Returns the booking an earlier request with this key made, if the request is the same.
async fn replay(
    connection: &mut PgConnection,
    customer_id: Uuid,
    idempotency_key: &str,
    fingerprint: &[u8],
) -> Result<Option<Booking>, CoreError> {
    match bookings::find_by_idempotency_key(connection, customer_id, idempotency_key).await? {
        Some((booking, hash)) if hash == fingerprint => Ok(Some(booking)),
        Some(_) => Err(CoreError::invalid(
            "idempotency_key",
            "was already used for a different booking request; use a new key",
        )),
        None => Ok(None),
    }
}

/// `at` in the cleaner's time zone, as their availability is written.
fn local_start(at: DateTime<Utc>, timezone: &str) -> Result<LocalStart, CoreError> {
    LocalStart::of(at, timezone)
        .ok_or_else(|| CoreError::invalid("cleaner_id", "has an unknown time zone"))
}

/// Writes a booking.* event with the booking as it now is.
async fn record_change(
    connection: &mut PgConnection,
    event_type: &str,
    booking: &Booking,
    reason: &str,
) -> Result<(), CoreError> {
    bus::enqueue(connection, &change_event(event_type, booking, reason)).await?;
    Ok(())
}

/// A booking.* event with the booking as it now is; `reason` says why it was cancelled.
fn change_event(event_type: &str, booking: &Booking, reason: &str) -> Envelope {
    bus::envelope(
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
            starts_at: Some(to_timestamp(booking.starts_at)),
            ends_at: Some(to_timestamp(booking.ends_at)),
            duration_min: booking.duration_min,
            price_cents: booking.price_cents,
            currency: booking.currency.clone(),
            status: booking.status.to_string(),
            actual_duration_min: booking.actual_duration_min.unwrap_or(0),
            reason: reason.to_owned(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{booking::tests::home, cleaner::Service},
        durations::{EstimateFuture, ModelEstimate},
    };

    /// A model that always gives the same answer.
    struct Answers(Result<ModelEstimate, String>);

    impl DurationModel for Answers {
        fn estimate<'a>(&'a self, _job: Job<'a>) -> EstimateFuture<'a> {
            let answer = self.0.clone();
            Box::pin(async move { answer })
        }
    }

    #[tokio::test]
    async fn the_models_bookable_answer_is_used_and_anything_else_falls_back() {
        let home = home(70, false);
        let job = Job {
            service: Service::Standard,
            home: &home,
            cleaner_id: None,
        };
        let rule = (
            estimate_duration_min(Service::Standard, &home),
            EstimatedBy::RuleOfThumb,
        );
        let answer = |minutes, model_version| {
            Answers(Ok(ModelEstimate {
                minutes,
                model_version,
            }))
        };
        assert_eq!(
            estimate(&answer(105, 3), job).await,
            (105, EstimatedBy::Model { version: 3 })
        );
        for broken in [answer(7, 3), answer(2_000, 3), answer(105, 0)] {
            assert_eq!(estimate(&broken, job).await, rule);
        }
        let down = Answers(Err("search answered Unavailable".to_owned()));
        assert_eq!(estimate(&down, job).await, rule);
    }
}
