//! The `bookings` and `payments` tables.

use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _, stream::BoxStream};
use spruce_bus::Envelope;
use spruce_platform::paging::Cursor;
use sqlx::{FromRow, PgConnection, Row as _};
use uuid::Uuid;

use super::{
    addresses::{StoredAddress, address_columns, into_address},
    cleaners::{StoredProfile, into_profile, profile_columns},
    violated_constraint,
};
use crate::{
    domain::{
        address::Address,
        booking::{
            Booking, BookingPair, BookingStatus, CompletedJob, EstimatedBy, PaymentStatus,
            plausible_durations,
        },
        cleaner::{CleanerProfile, Service},
    },
    error::CoreError,
};

/// A booking about to be stored.
#[derive(Debug, Clone)]
pub struct BookingRow<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub cleaner_id: Option<Uuid>,
    pub address_id: Uuid,
    pub service: Service,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_min: u32,
    pub estimated_by: EstimatedBy,
    pub price_cents: i64,
    pub currency: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
}

/// What a booking request names, as stored: whether the customer's email is verified,
/// their address, and the cleaner's profile (each `None` when there is no such row).
#[derive(Debug)]
pub struct RequestParties {
    pub customer_verified: bool,
    pub address: Option<Address>,
    pub cleaner: Option<CleanerProfile>,
}

/// Reads what a booking request names in one statement: the customer `customer_id`, their
/// address `address_id` and the profile of `cleaner_id`.
pub async fn request_parties(
    connection: &mut PgConnection,
    customer_id: Uuid,
    address_id: Uuid,
    cleaner_id: Option<Uuid>,
) -> Result<RequestParties, CoreError> {
    // One row whatever exists: the address's columns and the profile's have no name in
    // common, and each part is absent (NULL) when its row is.
    let row = sqlx::query(concat!(
        "SELECT c.email_verified_at IS NOT NULL AS customer_verified, a.*, pr.* \
         FROM (SELECT $1::uuid AS id) request \
         LEFT JOIN users c ON c.id = request.id \
         LEFT JOIN LATERAL (SELECT ",
        address_columns!(),
        " FROM addresses WHERE id = $2 AND customer_id = request.id) a ON true \
         LEFT JOIN LATERAL (SELECT ",
        profile_columns!(),
        " FROM cleaner_profiles p JOIN users u ON u.id = p.cleaner_id \
         WHERE p.cleaner_id = $3) pr ON true"
    ))
    .bind(customer_id)
    .bind(address_id)
    .bind(cleaner_id)
    .fetch_one(connection)
    .await?;
    let address = match row.try_get::<Option<Uuid>, _>("id")? {
        Some(_) => Some(into_address(StoredAddress::from_row(&row)?)),
        None => None,
    };
    let cleaner = match row.try_get::<Option<Uuid>, _>("cleaner_id")? {
        Some(_) => Some(into_profile(StoredProfile::from_row(&row)?)?),
        None => None,
    };
    Ok(RequestParties {
        customer_verified: row.try_get("customer_verified")?,
        address,
        cleaner,
    })
}

/// Whose bookings a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Customer(Uuid),
    Cleaner(Uuid),
    Everyone,
}

/// `SELECT` of a booking (the columns [`StoredBooking`] reads) with its payment's status,
/// then `$rest`; a literal, so the hot read paths build no SQL at run time.
macro_rules! select_booking {
    ($rest:literal) => {
        concat!(
            "SELECT b.id, b.customer_id, b.cleaner_id, b.address_id, b.service, b.starts_at, b.ends_at, ",
            "b.duration_min, b.price_cents, b.currency, b.status, ",
            "coalesce(p.status, 'none') AS payment_status, ",
            "b.actual_duration_min, b.estimated_by, b.model_version, b.version, b.created_at, ",
            "b.request_hash ",
            "FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id ",
            $rest
        )
    };
}

spruce_db::named_row! {
    /// A booking as [`select_booking`] reads it.
    struct StoredBooking {
        id: Uuid,
        customer_id: Uuid,
        cleaner_id: Option<Uuid>,
        address_id: Uuid,
        service: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        duration_min: i32,
        price_cents: i64,
        currency: String,
        status: String,
        payment_status: String,
        actual_duration_min: Option<i32>,
        estimated_by: String,
        model_version: Option<i64>,
        version: i64,
        created_at: DateTime<Utc>,
        request_hash: Vec<u8>,
    }
}

fn into_booking(row: StoredBooking) -> Result<Booking, CoreError> {
    let id = row.id;
    let corrupt =
        |what: String| CoreError::Unexpected(anyhow::anyhow!("stored booking {id}: {what}"));
    Ok(Booking {
        id,
        customer_id: row.customer_id,
        cleaner_id: row.cleaner_id,
        address_id: row.address_id,
        service: row.service.parse().map_err(corrupt)?,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        duration_min: u32::try_from(row.duration_min).unwrap_or(0),
        price_cents: row.price_cents,
        currency: row.currency,
        status: row.status.parse().map_err(corrupt)?,
        payment_status: row.payment_status.parse().map_err(corrupt)?,
        actual_duration_min: row
            .actual_duration_min
            .and_then(|minutes| u32::try_from(minutes).ok()),
        estimated_by: EstimatedBy::from_stored(&row.estimated_by, row.model_version)
            .map_err(corrupt)?,
        version: row.version,
        created_at: row.created_at,
    })
}

/// Why a booking could not be inserted.
#[derive(Debug)]
pub enum InsertError {
    /// The cleaner already holds an overlapping live booking.
    SlotTaken,
    Other(CoreError),
}

/// The SQL that takes the booking-time lock of cleaner `c` until the transaction ends: the
/// one place the lock's key is made, as a booking and an assignment must take the same lock.
///
/// Without it, two transactions writing overlapping bookings of one cleaner at the same
/// moment can each find the other's row in `bookings_no_overlap` and wait for each other:
/// PostgreSQL breaks the deadlock after a second by failing one of them with an error that
/// names no constraint, and a crowd racing for one slot can chain such deadlocks for
/// seconds (seen once in the 50-request race test: every loser got 500). Queued behind this
/// lock, a loser finds the winner's committed row and gets `SlotTaken` at once.
///
/// A change of a stored booking that keeps it live (a hold confirmed, a booking confirmed
/// or started) is checked against `bookings_no_overlap` too, so it takes the same lock
/// first ([`booked_cleaner_time_lock`]): otherwise its check and a racing insert's wait on
/// each other (seen in the race test as one 500 in about 25 runs).
macro_rules! cleaner_time_lock {
    () => {
        "pg_advisory_xact_lock(hashtextextended(c::text, 0))"
    };
}

/// A one-row `FROM` item that takes the time lock ([`cleaner_time_lock`]) of the cleaner of
/// the booking whose id is parameter `$n` (none for a booking without a cleaner). Joined to
/// an `UPDATE`, its aggregate finishes, and so the lock is held, before any row is changed.
macro_rules! booked_cleaner_time_lock {
    ($n:literal) => {
        concat!(
            "(SELECT count(",
            cleaner_time_lock!(),
            ") FROM (SELECT cleaner_id FROM bookings WHERE id = $",
            $n,
            ") AS t(c) WHERE c IS NOT NULL) AS claimed"
        )
    };
}

/// Holds a new booking's slot: stores it in status `pending_payment` with the payment token
/// it will be authorized with (see [`confirm_hold`], [`drop_hold`] and [`stale_holds`]);
/// returns when it was stored, or `None` when the customer has used its idempotency key
/// before (nothing is stored then). One statement, run on its own (it is its own
/// transaction): it first takes the cleaner's time lock ([`cleaner_time_lock`]), held until
/// it commits.
pub async fn insert_hold(
    connection: &mut PgConnection,
    booking: &BookingRow<'_>,
    payment_token: &str,
) -> Result<Option<DateTime<Utc>>, InsertError> {
    // The key's unique constraint is checked first, so a repeated request is never mistaken
    // for a clash with its own booking's slot. The lock's one-row subquery runs before the
    // row is built; a booking without a cleaner takes none.
    let result: Result<Option<DateTime<Utc>>, sqlx::Error> = sqlx::query_scalar(concat!(
        "INSERT INTO bookings (id, customer_id, cleaner_id, address_id, service, starts_at, ends_at, \
         duration_min, price_cents, currency, status, idempotency_key, request_hash, \
         estimated_by, model_version, payment_token) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending_payment', $11, $12, $13, $14, $15 \
         FROM (SELECT count(",
        cleaner_time_lock!(),
        ") FROM unnest(ARRAY[$3::uuid]) AS t(c) WHERE c IS NOT NULL) AS claimed \
         ON CONFLICT ON CONSTRAINT bookings_idempotency_key DO NOTHING RETURNING created_at",
    ))
    .bind(booking.id)
    .bind(booking.customer_id)
    .bind(booking.cleaner_id)
    .bind(booking.address_id)
    .bind(booking.service.as_str())
    .bind(booking.starts_at)
    .bind(booking.ends_at)
    .bind(i32::try_from(booking.duration_min).unwrap_or(i32::MAX))
    .bind(booking.price_cents)
    .bind(booking.currency)
    .bind(booking.idempotency_key)
    .bind(booking.request_hash)
    .bind(booking.estimated_by.as_str())
    .bind(booking.estimated_by.model_version())
    .bind(payment_token)
    .fetch_optional(connection)
    .await;
    match result {
        Ok(created_at) => Ok(created_at),
        Err(error) => Err(match violated_constraint(&error) {
            Some("bookings_no_overlap") => InsertError::SlotTaken,
            _ => InsertError::Other(error.into()),
        }),
    }
}

/// An authorization the provider gave for a booking.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizedPayment<'a> {
    pub booking_id: Uuid,
    pub provider: &'a str,
    pub reference: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
}

/// Turns the hold of `payment`'s booking into a `requested` booking with its authorized
/// payment, and `event` in the outbox; returns `false` (and changes nothing) when the hold
/// is gone (the sweeper released it meanwhile). One statement, run on its own; it takes the
/// cleaner's time lock ([`cleaner_time_lock`]) before it changes the row.
pub async fn confirm_hold(
    connection: &mut PgConnection,
    payment: &AuthorizedPayment<'_>,
    event: &Envelope,
) -> Result<bool, CoreError> {
    let confirmed = spruce_bus::enqueue_guarded(
        event,
        concat!(
            "UPDATE bookings b SET status = 'requested', payment_token = NULL, updated_at = now() FROM ",
            booked_cleaner_time_lock!("6"),
            " WHERE b.id = $6 AND b.status = 'pending_payment' RETURNING b.id"
        ),
        "INSERT INTO payments (id, booking_id, provider, provider_reference, amount_cents, currency, status) \
         SELECT $5, id, $7, $8, $9, $10, 'authorized' FROM guard",
    )?
    .bind(Uuid::new_v4())
    .bind(payment.booking_id)
    .bind(payment.provider)
    .bind(payment.reference)
    .bind(payment.amount_cents)
    .bind(payment.currency)
    .execute(connection)
    .await?;
    Ok(confirmed.rows_affected() == 1)
}

/// Deletes the hold `booking_id`, if it is still one; returns whether it was.
pub async fn drop_hold(connection: &mut PgConnection, booking_id: Uuid) -> Result<bool, CoreError> {
    let dropped = sqlx::query("DELETE FROM bookings WHERE id = $1 AND status = 'pending_payment'")
        .bind(booking_id)
        .execute(connection)
        .await?;
    Ok(dropped.rows_affected() == 1)
}

/// A hold whose payment step never finished: what the sweeper needs to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleHold {
    pub booking_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_token: String,
}

/// Returns up to `limit` holds made before `before`, oldest first.
pub async fn stale_holds(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StaleHold>, CoreError> {
    let rows: Vec<(Uuid, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, price_cents, currency, payment_token FROM bookings \
         WHERE is_open AND status = 'pending_payment' AND created_at < $1 \
         ORDER BY created_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(booking_id, amount_cents, currency, token)| StaleHold {
            booking_id,
            amount_cents,
            currency,
            payment_token: token.unwrap_or_default(),
        })
        .collect())
}

/// What an earlier request with an idempotency key left.
#[derive(Debug)]
pub enum Earlier {
    /// Its booking, and the digest of its request.
    Booking(Booking, Vec<u8>),
    /// Its hold, still waiting for the payment step, and the digest of its request.
    Held(Vec<u8>),
}

/// Returns what a customer's earlier request with `idempotency_key` left, if anything.
pub async fn find_by_idempotency_key(
    connection: &mut PgConnection,
    customer_id: Uuid,
    idempotency_key: &str,
) -> Result<Option<Earlier>, CoreError> {
    let row = sqlx::query(select_booking!(
        "WHERE b.customer_id = $1 AND b.idempotency_key = $2"
    ))
    .bind(customer_id)
    .bind(idempotency_key)
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let row = StoredBooking::from_row(&row)?;
    let hash = row.request_hash.clone();
    if row.status == "pending_payment" {
        return Ok(Some(Earlier::Held(hash)));
    }
    Ok(Some(Earlier::Booking(into_booking(row)?, hash)))
}

/// Returns a booking.
pub async fn find_booking(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Booking>, CoreError> {
    let row: Option<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE b.id = $1 AND b.status <> 'pending_payment'"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(into_booking).transpose()
}

/// Returns a booking and locks its row until the transaction ends, so transitions happen
/// one at a time.
pub async fn lock_booking(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Booking>, CoreError> {
    let row: Option<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE b.id = $1 AND b.status <> 'pending_payment' FOR UPDATE OF b"
    ))
    .bind(id)
    .fetch_optional(connection)
    .await?;
    row.map(into_booking).transpose()
}

/// Moves a booking to `status`, raising its version; takes its cleaner's time lock first
/// ([`cleaner_time_lock`]).
pub async fn set_status(
    connection: &mut PgConnection,
    id: Uuid,
    status: BookingStatus,
    actual_duration_min: Option<u32>,
) -> Result<(), CoreError> {
    sqlx::query(concat!(
        "UPDATE bookings b SET status = $2, actual_duration_min = coalesce($3, b.actual_duration_min), \
         version = b.version + 1, updated_at = now() FROM ",
        booked_cleaner_time_lock!("1"),
        " WHERE b.id = $1"
    ))
    .bind(id)
    .bind(status.as_str())
    .bind(actual_duration_min.and_then(|minutes| i32::try_from(minutes).ok()))
    .execute(connection)
    .await?;
    Ok(())
}

/// Returns up to `limit` bookings in `scope`, newest first, after `after`.
pub async fn list_bookings(
    connection: &mut PgConnection,
    scope: Scope,
    status: Option<BookingStatus>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Booking>, CoreError> {
    let (customer, cleaner) = match scope {
        Scope::Customer(id) => (Some(id), None),
        Scope::Cleaner(id) => (None, Some(id)),
        Scope::Everyone => (None, None),
    };
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE ($1::uuid IS NULL OR b.customer_id = $1) AND ($2::uuid IS NULL OR b.cleaner_id = $2) \
         AND ($3::text IS NULL OR b.status = $3) AND b.status <> 'pending_payment' \
         AND ($4::timestamptz IS NULL OR (b.created_at, b.id) < ($4, $5)) \
         ORDER BY b.created_at DESC, b.id DESC LIMIT $6"
    ))
    .bind(customer)
    .bind(cleaner)
    .bind(status.map(BookingStatus::as_str))
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(into_booking).collect()
}

/// Returns up to `limit` requested bookings without a cleaner that start after
/// `starting_after`, oldest request first, after `after`.
pub async fn list_open(
    connection: &mut PgConnection,
    starting_after: DateTime<Utc>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Booking>, CoreError> {
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE b.is_open AND b.status = 'requested' AND b.cleaner_id IS NULL AND b.starts_at > $1 \
         AND ($2::timestamptz IS NULL OR (b.created_at, b.id) > ($2, $3)) \
         ORDER BY b.created_at, b.id LIMIT $4"
    ))
    .bind(starting_after)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(into_booking).collect()
}

/// Returns each booking's address coordinates (lat, lng), by booking id.
pub async fn locations(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, f64, f64)>, CoreError> {
    Ok(sqlx::query_as(
        "SELECT b.id, a.lat, a.lng FROM bookings b JOIN addresses a ON a.id = b.address_id \
         WHERE b.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(connection)
    .await?)
}

/// Returns up to `limit` requested bookings made before `made_before` or starting before
/// `starting_before`, oldest request first.
pub async fn due_unconfirmed(
    connection: &mut PgConnection,
    made_before: DateTime<Utc>,
    starting_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, CoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM bookings WHERE is_open AND status = 'requested' \
         AND (created_at < $1 OR starts_at < $2) ORDER BY created_at, id LIMIT $3",
    )
    .bind(made_before)
    .bind(starting_before)
    .bind(limit)
    .fetch_all(connection)
    .await?)
}

/// Returns the provider reference of a booking's payment and where it is.
pub async fn find_payment(
    connection: &mut PgConnection,
    booking_id: Uuid,
) -> Result<Option<(String, PaymentStatus)>, CoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT provider_reference, status FROM payments WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(connection)
            .await?;
    row.map(|(reference, status)| Ok((reference, parse_payment_status(booking_id, &status)?)))
        .transpose()
}

fn parse_payment_status(booking_id: Uuid, status: &str) -> Result<PaymentStatus, CoreError> {
    status.parse().map_err(|what: String| {
        CoreError::Unexpected(anyhow::anyhow!("payment of {booking_id}: {what}"))
    })
}

/// Moves a booking's payment from `from` to `to`; returns whether it was at `from`.
pub async fn set_payment_status(
    connection: &mut PgConnection,
    booking_id: Uuid,
    from: PaymentStatus,
    to: PaymentStatus,
) -> Result<bool, CoreError> {
    let moved = sqlx::query(
        "UPDATE payments SET status = $3, updated_at = now() WHERE booking_id = $1 AND status = $2",
    )
    .bind(booking_id)
    .bind(from.as_str())
    .bind(to.as_str())
    .execute(connection)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Returns up to `limit` payments waiting for a capture or release asked before `before`:
/// (booking, provider reference, status).
pub async fn unsettled_payments(
    connection: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, String, PaymentStatus)>, CoreError> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT booking_id, provider_reference, status FROM payments \
         WHERE status IN ('capture_pending', 'release_pending') AND updated_at < $1 \
         ORDER BY updated_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|(booking_id, reference, status)| {
            Ok((
                booking_id,
                reference,
                parse_payment_status(booking_id, &status)?,
            ))
        })
        .collect()
}

/// Takes the booking-time lock of each of `cleaners` (see [`cleaner_time_lock`]; sorted,
/// so that two transactions taking several never wait on each other in a circle).
pub async fn claim_cleaners_time(
    connection: &mut PgConnection,
    cleaners: &[Uuid],
) -> Result<(), CoreError> {
    let mut sorted = cleaners.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // Core's only other advisory lock is sqlx's, around migrations: a clash of keys would
    // at worst make one booking wait for a migration.
    sqlx::query(concat!(
        "SELECT ",
        cleaner_time_lock!(),
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS t(c, n) ORDER BY n"
    ))
    .bind(&sorted)
    .execute(connection)
    .await?;
    Ok(())
}

/// Returns the bookings `ids` and locks their rows until the transaction ends.
pub async fn lock_bookings(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Booking>, CoreError> {
    let rows: Vec<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE b.id = ANY($1) AND b.status <> 'pending_payment' ORDER BY b.id FOR UPDATE OF b"
    ))
    .bind(ids)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(into_booking).collect()
}

/// Returns the bookings `ids`.
pub async fn find_bookings(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Booking>, CoreError> {
    let rows: Vec<StoredBooking> = sqlx::query_as(select_booking!(
        "WHERE b.id = ANY($1) AND b.status <> 'pending_payment'"
    ))
    .bind(ids)
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(into_booking).collect()
}

/// A booking to give a cleaner, with its time: (booking, cleaner, start, end).
pub type TimedPair = (Uuid, Uuid, DateTime<Utc>, DateTime<Utc>);

/// Of `pairs`, returns the bookings whose cleaner already holds a live booking overlapping
/// that time.
pub async fn clashing(
    connection: &mut PgConnection,
    pairs: &[TimedPair],
) -> Result<Vec<Uuid>, CoreError> {
    let column = |pick: fn(&TimedPair) -> Uuid| pairs.iter().map(pick).collect::<Vec<_>>();
    let starts: Vec<DateTime<Utc>> = pairs.iter().map(|pair| pair.2).collect();
    let ends: Vec<DateTime<Utc>> = pairs.iter().map(|pair| pair.3).collect();
    Ok(sqlx::query_scalar(
        "SELECT p.booking FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[]) \
         AS p(booking, cleaner, starts_at, ends_at) WHERE EXISTS (SELECT 1 FROM bookings x \
         WHERE x.cleaner_id = p.cleaner \
         AND x.holds_time \
         AND tstzrange(x.starts_at, x.ends_at) && tstzrange(p.starts_at, p.ends_at))",
    )
    .bind(column(|pair| pair.0))
    .bind(column(|pair| pair.1))
    .bind(starts)
    .bind(ends)
    .fetch_all(connection)
    .await?)
}

/// Gives each (booking, cleaner) of `pairs` its cleaner and confirms it, in one statement.
pub async fn assign_and_confirm(
    connection: &mut PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<(), InsertError> {
    let bookings: Vec<Uuid> = pairs.iter().map(|pair| pair.0).collect();
    let cleaners: Vec<Uuid> = pairs.iter().map(|pair| pair.1).collect();
    let result = sqlx::query(
        "UPDATE bookings b SET cleaner_id = p.cleaner, status = 'confirmed', \
         version = b.version + 1, updated_at = now() \
         FROM unnest($1::uuid[], $2::uuid[]) AS p(booking, cleaner) WHERE b.id = p.booking",
    )
    .bind(bookings)
    .bind(cleaners)
    .execute(connection)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) => Err(match violated_constraint(&error) {
            Some("bookings_no_overlap") => InsertError::SlotTaken,
            _ => InsertError::Other(error.into()),
        }),
    }
}

/// Streams every booking with a cleaner that was not cancelled (nor is a hold), as the connection's
/// transaction sees them.
pub fn stream_pairs(
    connection: &mut PgConnection,
) -> BoxStream<'_, Result<BookingPair, CoreError>> {
    sqlx::query_as::<_, (Uuid, Uuid, Uuid, i64)>(
        "SELECT id, customer_id, cleaner_id, version FROM bookings \
         WHERE cleaner_id IS NOT NULL AND status NOT IN ('cancelled', 'pending_payment')",
    )
    .fetch(connection)
    .map(|row| {
        let (booking_id, customer_id, cleaner_id, version) = row?;
        Ok(BookingPair {
            booking_id,
            customer_id,
            cleaner_id,
            version,
        })
    })
    .boxed()
}

/// Streams every completed booking with its home and actual duration, as the connection's
/// transaction sees them; a completion whose duration is not plausible for its estimate
/// (stored before completions were checked) is left out, so it teaches the model nothing.
pub fn stream_completed(
    connection: &mut PgConnection,
) -> BoxStream<'_, Result<CompletedJob, CoreError>> {
    sqlx::query_as::<_, (Uuid, Uuid, String, i32, i32, i32, bool, i32, i32)>(
        "SELECT b.id, b.cleaner_id, b.service, a.size_m2, a.bedrooms, a.bathrooms, a.has_pets, \
         b.actual_duration_min, b.duration_min FROM bookings b \
         JOIN addresses a ON a.id = b.address_id \
         WHERE b.status = 'completed' AND b.cleaner_id IS NOT NULL \
         AND b.actual_duration_min IS NOT NULL",
    )
    .fetch(connection)
    .try_filter(|row| {
        let (minutes, estimate) = (row.7, row.8);
        let plausible = u32::try_from(minutes).is_ok_and(|minutes| {
            u32::try_from(estimate)
                .is_ok_and(|estimate| plausible_durations(estimate).contains(&minutes))
        });
        std::future::ready(plausible)
    })
    .map(|row| {
        let (booking_id, cleaner_id, service, size_m2, bedrooms, bathrooms, has_pets, minutes, _) =
            row?;
        Ok(CompletedJob {
            booking_id,
            cleaner_id,
            service,
            size_m2,
            bedrooms,
            bathrooms,
            has_pets,
            actual_duration_min: minutes,
        })
    })
    .boxed()
}

/// Returns the ids of the bookings a user is party to (customer or cleaner) that can still
/// be cancelled: requested or confirmed.
pub async fn open_of(connection: &mut PgConnection, user_id: Uuid) -> Result<Vec<Uuid>, CoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM bookings WHERE (customer_id = $1 OR cleaner_id = $1) \
         AND status IN ('requested', 'confirmed')",
    )
    .bind(user_id)
    .fetch_all(connection)
    .await?)
}
