//! Bookings: the use cases behind `BookingService`. Each change and its event commit in one
//! short transaction; the payment provider and search are called between transactions,
//! never inside one, so a slow provider holds no database connection. A declined payment
//! leaves no booking behind, and a step a crash interrupts is finished by the sweeper.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use spruce_platform::{
    identity::{Caller, Principal, Role},
    paging::{Cursor, split_page},
    time::to_timestamp,
};
use spruce_proto::{
    core::v1::{BookingStatus as WireStatus, ServiceKind},
    events::v1::{BookingChanged, Envelope, PaymentFailed, envelope::Payload},
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    authz::{authenticated, require_admin_or_service, require_role},
    domain::{
        address::Address,
        booking::{
            Action, Booking, BookingStatus, DEFAULT_HOURLY_RATE_CENTS, EXPIRED_UNCONFIRMED,
            EstimatedBy, HOLD_EXPIRES_AFTER, LocalStart, NewBooking, PaymentStatus,
            SETTLEMENT_RETRY_AFTER, START_WINDOW_BEFORE, TimingError, TransitionError,
            UNCONFIRMED_EXPIRES_AFTER, UNCONFIRMED_EXPIRES_BEFORE_START, bookable_estimate,
            check_cleaner_fit, check_in_future, check_timing, estimate_duration_min, price_cents,
            transition,
        },
        cleaner::CURRENCY,
    },
    error::CoreError,
    metrics::{PAYMENTS_AUTHORIZED, PAYMENTS_DECLINED},
    payments::{PaymentError, PaymentProvider},
    store::{
        addresses,
        bookings::{self, AuthorizedPayment, BookingRow, Earlier, InsertError, Scope, StaleHold},
        cleaners,
    },
    upstream::{DurationModel, Job},
};

/// The reason a cancellation gives when a party deleted their account.
pub const ACCOUNT_DELETED: &str = "account_deleted";

mod steps;
#[cfg(test)]
mod tests;

use self::steps::*;

const MATCHING_ONLY: &str = "only the scheduler's matching engine (or an admin) does this";

/// The booking use cases.
#[derive(Clone)]
pub struct Bookings {
    pool: PgPool,
    payments: Arc<dyn PaymentProvider>,
    durations: Arc<dyn DurationModel>,
    /// Customers book, and cleaners are booked, only with a verified email.
    require_verified_email: bool,
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
            require_verified_email: true,
        }
    }

    /// Lets people without a verified email book and be booked (where not production-like).
    #[must_use]
    pub fn without_email_verification(mut self) -> Self {
        self.require_verified_email = false;
        self
    }

    /// Books a cleaning for the calling customer and authorizes its payment. No transaction
    /// stays open across a remote call: the request is checked and quoted first, the slot is
    /// held in one short transaction, the card is authorized outside any, and a second short
    /// transaction confirms the hold or drops it. A hold whose second step never comes (a
    /// crash) is released by [`Bookings::sweep`].
    #[tracing::instrument(skip_all, fields(booking_id = tracing::field::Empty))]
    pub async fn create(
        &self,
        caller: Option<Caller>,
        request: NewBooking,
    ) -> Result<Booking, CoreError> {
        let caller = require_role(caller, Role::Customer, "only customers book cleanings")?;
        let fingerprint = request.fingerprint();
        let replayed = || {
            replay(
                &self.pool,
                caller.user_id,
                &request.idempotency_key,
                &fingerprint,
            )
        };
        // A repeated request is told apart at the insert (most requests are new); one that
        // no longer passes the checks (its start has passed, say) is looked up here.
        let checked = check_request(
            &self.pool,
            self.durations.as_ref(),
            caller.user_id,
            &request,
            self.require_verified_email,
        )
        .await;
        let Checked {
            address,
            duration_min,
            estimated_by,
            hourly_rate_cents,
        } = match checked {
            Ok(checked) => checked,
            Err(error @ CoreError::Validation(_)) => return replayed().await?.ok_or(error),
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
        let held = async {
            let mut connection = self.pool.acquire().await?;
            Ok::<_, CoreError>(
                bookings::insert_hold(&mut connection, &row, &request.payment_token).await,
            )
        };
        let created_at = match held.await? {
            Ok(Some(created_at)) => created_at,
            // The key was used before (or by a concurrent request, now committed).
            Ok(None) => return replayed().await?.ok_or(CoreError::NotFound),
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
                let hold = StaleHold {
                    booking_id,
                    amount_cents: price,
                    currency: CURRENCY.to_owned(),
                    payment_token: request.payment_token.clone(),
                };
                return Err(self
                    .payment_refused(&hold, caller.user_id, request.cleaner_id, error)
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
        let payment = AuthorizedPayment {
            booking_id,
            provider: self.payments.name(),
            reference: &reference,
            amount_cents: price,
            currency: CURRENCY,
        };
        let confirmed = async {
            let mut connection = self.pool.acquire().await?;
            let event = change_event("booking.created", &booking, "");
            bookings::confirm_hold(&mut connection, &payment, &event).await
        };
        match confirmed.await {
            Ok(true) => {
                tracing::info!(booking_id = %booking.id, "booking created");
                Ok(booking)
            }
            outcome => {
                // The hold is gone (the sweeper took it) or could not be confirmed: the
                // authorization must not outlive the booking that never was.
                self.payments.release(&reference).await.ok();
                Err(outcome.err().unwrap_or(CoreError::PaymentUnavailable))
            }
        }
    }

    /// Drops the hold of a booking whose card was not authorized, recording `payment.failed`
    /// with it for a declined card, and turns the provider's answer into the client's error.
    /// A provider that did not answer may still have authorized: that is voided now if it
    /// can be, or else by [`Bookings::sweep`].
    async fn payment_refused(
        &self,
        hold: &StaleHold,
        customer_id: Uuid,
        cleaner_id: Option<Uuid>,
        error: PaymentError,
    ) -> CoreError {
        let booking_id = hold.booking_id;
        let declined = match error {
            PaymentError::Declined(reason) => reason,
            PaymentError::InvalidToken => {
                if let Err(error) = self.drop_hold(booking_id, None).await {
                    return error;
                }
                return CoreError::invalid("payment_token", "is not a payment token we accept");
            }
            PaymentError::Unavailable(message) => {
                tracing::warn!(%message, "payment provider unavailable");
                // It may have authorized all the same: void that now if it answers, so the
                // slot is free for the customer's retry, or leave the hold to the sweeper.
                if let Err(error) = self.void_and_drop(hold).await {
                    return error;
                }
                return CoreError::PaymentUnavailable;
            }
        };
        PAYMENTS_DECLINED.inc();
        tracing::info!(%customer_id, reason = %declined, "payment declined");
        let event = spruce_bus::envelope(
            "payment.failed",
            customer_id,
            1,
            Payload::PaymentFailed(PaymentFailed {
                customer_id: customer_id.to_string(),
                cleaner_id: cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
                amount_cents: hold.amount_cents,
                currency: CURRENCY.to_owned(),
                reason: declined,
            }),
        );
        match self.drop_hold(booking_id, Some(&event)).await {
            Ok(()) => CoreError::PaymentDeclined,
            Err(error) => error,
        }
    }

    /// Deletes the hold `booking_id`, with `event` in the outbox in the same transaction.
    async fn drop_hold(&self, booking_id: Uuid, event: Option<&Envelope>) -> Result<(), CoreError> {
        let mut transaction = self.pool.begin().await?;
        bookings::drop_hold(&mut transaction, booking_id).await?;
        if let Some(event) = event {
            spruce_bus::enqueue(&mut transaction, event).await?;
        }
        transaction.commit().await?;
        Ok(())
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
    /// releases it. The move and its event commit first; the provider is asked after, outside
    /// any transaction (see [`Bookings::settle`]).
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
        let reason = if action == Action::Cancel {
            party.as_str()
        } else {
            ""
        };
        let settlement = move_booking(&mut transaction, booking_id, action, next, reason).await?;
        transaction.commit().await?;
        if let Some(settlement) = settlement {
            self.settle(booking_id, &settlement).await;
        }
        let mut connection = self.pool.acquire().await?;
        bookings::find_booking(&mut connection, booking_id)
            .await?
            .ok_or(CoreError::NotFound)
    }

    /// Asks the provider for a capture or release already recorded as pending, and records
    /// the answer; a failure leaves it pending for [`Bookings::sweep`] to ask again. Returns
    /// whether it is settled.
    async fn settle(&self, booking_id: Uuid, settlement: &Settlement) -> bool {
        let (step, done) = match settlement.pending {
            PaymentStatus::CapturePending => (
                self.payments.capture(&settlement.reference),
                PaymentStatus::Captured,
            ),
            _ => (
                self.payments.release(&settlement.reference),
                PaymentStatus::Released,
            ),
        };
        if let Err(error) = step.await {
            tracing::warn!(%booking_id, %error, "payment step failed; it will be asked again");
            return false;
        }
        let recorded = async {
            let mut connection = self.pool.acquire().await?;
            bookings::set_payment_status(&mut connection, booking_id, settlement.pending, done)
                .await
        };
        match recorded.await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%booking_id, %error, "cannot record a payment step; it will be asked again");
                false
            }
        }
    }

    /// Finishes what a crash or an unreachable provider left half done: releases holds
    /// older than [`HOLD_EXPIRES_AFTER`] (voiding any authorization made for them) and asks
    /// again for captures and releases pending longer than [`SETTLEMENT_RETRY_AFTER`], up to
    /// `limit` of each; returns how many of each it finished.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn sweep(&self, limit: i64) -> Result<(usize, usize), CoreError> {
        let now = Utc::now();
        let (holds, unsettled) = {
            let mut connection = self.pool.acquire().await?;
            let holds =
                bookings::stale_holds(&mut connection, now - HOLD_EXPIRES_AFTER, limit).await?;
            let unsettled =
                bookings::unsettled_payments(&mut connection, now - SETTLEMENT_RETRY_AFTER, limit)
                    .await?;
            (holds, unsettled)
        };
        let mut released = 0;
        for hold in holds {
            if self.void_and_drop(&hold).await? {
                tracing::info!(booking_id = %hold.booking_id, "stale hold released");
                released += 1;
            }
        }
        let mut settled = 0;
        for (booking_id, reference, pending) in unsettled {
            if self
                .settle(booking_id, &Settlement { reference, pending })
                .await
            {
                settled += 1;
            }
        }
        Ok((released, settled))
    }

    /// Voids whatever authorization was made for `hold` and drops it; returns `false` (and
    /// keeps the hold for a later sweep) when the provider cannot say.
    async fn void_and_drop(&self, hold: &StaleHold) -> Result<bool, CoreError> {
        // The same idempotency key gives back the authorization the lost request made, if it
        // made one; a decline means there is nothing to void.
        let voided = match self
            .payments
            .authorize(
                hold.amount_cents,
                &hold.currency,
                &hold.payment_token,
                &hold.booking_id.to_string(),
            )
            .await
        {
            Ok(reference) => self.payments.release(&reference).await,
            Err(PaymentError::Declined(_) | PaymentError::InvalidToken) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = voided {
            tracing::warn!(booking_id = %hold.booking_id, %error, "cannot void a hold yet");
            return Ok(false);
        }
        self.drop_hold(hold.booking_id, None).await?;
        Ok(true)
    }

    /// Runs [`Bookings::sweep`] every `every` until `shutdown`.
    pub async fn sweep_until_stopped(
        self,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        const BATCH: i64 = 100;
        loop {
            if let Err(error) = self.sweep(BATCH).await {
                tracing::warn!(%error, "cannot sweep holds and payments");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Cancels every open booking `user_id` is party to (they are leaving), each with its
    /// payment released and `booking.cancelled` (reason `account_deleted`); returns how many.
    pub async fn cancel_all_of(&self, user_id: Uuid) -> Result<usize, CoreError> {
        let open = bookings::open_of(&mut *self.pool.acquire().await?, user_id).await?;
        let mut cancelled = 0;
        for booking_id in open {
            let open = [BookingStatus::Requested, BookingStatus::Confirmed];
            if self.cancel_if(booking_id, &open, ACCOUNT_DELETED).await? {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    /// Cancels `booking_id` when it is still in one of the `statuses`, in its own
    /// transaction with `booking.cancelled` (`reason`), then releases its payment; returns
    /// whether it did.
    async fn cancel_if(
        &self,
        booking_id: Uuid,
        statuses: &[BookingStatus],
        reason: &str,
    ) -> Result<bool, CoreError> {
        let mut transaction = self.pool.begin().await?;
        let Some(booking) = bookings::lock_booking(&mut transaction, booking_id).await? else {
            return Ok(false);
        };
        if !statuses.contains(&booking.status) {
            return Ok(false);
        }
        let settlement = move_booking(
            &mut transaction,
            booking_id,
            Action::Cancel,
            BookingStatus::Cancelled,
            reason,
        )
        .await?;
        transaction.commit().await?;
        if let Some(settlement) = settlement {
            self.settle(booking_id, &settlement).await;
        }
        Ok(true)
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
            // A booking confirmed meanwhile is left alone.
            if self
                .cancel_if(booking_id, &[BookingStatus::Requested], EXPIRED_UNCONFIRMED)
                .await?
            {
                tracing::info!(booking_id = %booking_id, "unconfirmed booking expired");
                expired.push(booking_id);
            }
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
        spruce_bus::enqueue_many(&mut transaction, &events).await?;
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
