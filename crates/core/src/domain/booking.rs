//! Bookings: the state machine, the duration estimate, the price, and what makes a
//! requested slot acceptable for a cleaner.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{
    FieldError, Validator,
    address::AddressInput,
    cleaner::{CleanerProfile, ProfileInput, Service},
    geo::GeoPoint,
};

wire_enum! {
    /// Where a booking's payment is: reserved on the card, being taken, taken, being given
    /// back, given back, or (a booking made before payments existed) none. The pending
    /// states last until the provider confirms the step; core asks again until it does.
    pub enum PaymentStatus {
        Authorized => "authorized",
        CapturePending => "capture_pending",
        Captured => "captured",
        ReleasePending => "release_pending",
        Released => "released",
        None => "none",
    }
}

/// A hold (a booking whose payment step has not finished) older than this is released by
/// the sweeper, and its authorization, if one was made, voided.
pub const HOLD_EXPIRES_AFTER: Duration = Duration::minutes(2);
/// A capture or release the provider has not confirmed is asked again this long after.
pub const SETTLEMENT_RETRY_AFTER: Duration = Duration::minutes(1);

wire_enum! {
    /// Where a booking is in its life.
    pub enum BookingStatus {
        Requested => "requested",
        Confirmed => "confirmed",
        InProgress => "in_progress",
        Completed => "completed",
        Cancelled => "cancelled",
    }
}

/// Who booked whom: a booking with a cleaner that was not cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingPair {
    pub booking_id: Uuid,
    pub customer_id: Uuid,
    pub cleaner_id: Uuid,
    pub version: i64,
}

/// A completed booking with its home and how long it took: what the duration model learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedJob {
    pub booking_id: Uuid,
    pub cleaner_id: Uuid,
    pub service: String,
    pub size_m2: i32,
    pub bedrooms: i32,
    pub bathrooms: i32,
    pub has_pets: bool,
    pub actual_duration_min: i32,
}

/// What someone asks to do with a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Start,
    Complete { actual_duration_min: u32 },
    Cancel,
}

impl Action {
    /// Parses an action name; `actual_duration_min` matters only for `complete`.
    ///
    /// # Errors
    /// A message fit for the client.
    pub fn parse(name: &str, actual_duration_min: u32) -> Result<Self, String> {
        match name {
            "confirm" => Ok(Action::Confirm),
            "start" => Ok(Action::Start),
            "complete" if actual_duration_min > 0 => Ok(Action::Complete {
                actual_duration_min,
            }),
            "complete" => Err("is required to complete a booking (minutes, e.g. 95)".to_owned()),
            "cancel" => Ok(Action::Cancel),
            other => Err(format!(
                "{other:?} is not one of confirm, start, complete, cancel"
            )),
        }
    }

    /// Returns the event type the action records.
    pub fn event_type(self) -> &'static str {
        match self {
            Action::Confirm => "booking.confirmed",
            Action::Start => "booking.started",
            Action::Complete { .. } => "booking.completed",
            Action::Cancel => "booking.cancelled",
        }
    }
}

/// How the caller relates to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The customer who booked it.
    Customer,
    /// The cleaner assigned to it.
    Cleaner,
    Admin,
}

impl Party {
    /// Returns the party's name, the reason a cancellation by them gives.
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Customer => "customer",
            Party::Cleaner => "cleaner",
            Party::Admin => "admin",
        }
    }
}

/// A requested booking nobody confirmed is cancelled this long after it was made...
pub const UNCONFIRMED_EXPIRES_AFTER: chrono::Duration = chrono::Duration::hours(2);
/// ...or this long before it starts, whichever comes first.
pub const UNCONFIRMED_EXPIRES_BEFORE_START: chrono::Duration = chrono::Duration::hours(1);
/// The reason such a cancellation gives.
pub const EXPIRED_UNCONFIRMED: &str = "unconfirmed";

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The caller's part in the booking does not allow the action.
    NotAllowed(&'static str),
    /// The booking's status does not allow the action.
    Illegal {
        from: BookingStatus,
        action: &'static str,
    },
}

/// Returns the status `action` by `party` leads to from `from`.
///
/// The customer cancels (before the cleaning starts); the cleaner confirms, starts and
/// completes; an admin may do all of it.
///
/// # Errors
/// [`TransitionError`] saying whether the party or the status is wrong.
pub fn transition(
    from: BookingStatus,
    action: Action,
    party: Party,
    has_cleaner: bool,
) -> Result<BookingStatus, TransitionError> {
    use BookingStatus::{Cancelled, Completed, Confirmed, InProgress, Requested};
    let (allowed, name) = match action {
        Action::Cancel => (matches!(party, Party::Customer | Party::Admin), "cancel"),
        Action::Confirm => (matches!(party, Party::Cleaner | Party::Admin), "confirm"),
        Action::Start => (matches!(party, Party::Cleaner | Party::Admin), "start"),
        Action::Complete { .. } => (matches!(party, Party::Cleaner | Party::Admin), "complete"),
    };
    if !allowed {
        return Err(TransitionError::NotAllowed(match action {
            Action::Cancel => "only the customer (or an admin) can cancel a booking",
            _ => "only the booking's cleaner (or an admin) can do that",
        }));
    }
    let next = match (from, action) {
        (Requested, Action::Confirm) if has_cleaner => Confirmed,
        (Confirmed, Action::Start) => InProgress,
        (InProgress, Action::Complete { .. }) => Completed,
        (Requested | Confirmed, Action::Cancel) => Cancelled,
        _ => return Err(TransitionError::Illegal { from, action: name }),
    };
    Ok(next)
}

/// A cleaning can be started this long before it is due, not earlier.
pub const START_WINDOW_BEFORE: Duration = Duration::minutes(30);
/// The shortest cleaning a completion may report, in minutes.
pub const MIN_ACTUAL_DURATION_MIN: u32 = 15;
/// The longest cleaning a completion may report, in minutes, whatever the estimate.
pub const MAX_ACTUAL_DURATION_MIN: u32 = 12 * 60;
/// A completion may report at most this many times the estimate.
pub const MAX_ACTUAL_TO_ESTIMATE: u32 = 3;

/// Why the clock or the reported duration refuses a step the state machine allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimingError {
    /// Started more than [`START_WINDOW_BEFORE`] before `starts_at`.
    TooEarly { starts_at: DateTime<Utc> },
    /// The reported duration lies outside [`plausible_durations`].
    ImplausibleDuration { min: u32, max: u32 },
}

/// Returns the actual durations a completion of a booking estimated at `estimate_min` may
/// report: from [`MIN_ACTUAL_DURATION_MIN`] to [`MAX_ACTUAL_TO_ESTIMATE`] times the
/// estimate, and never over [`MAX_ACTUAL_DURATION_MIN`]. Only such completions are charged
/// and teach the duration model.
pub fn plausible_durations(estimate_min: u32) -> std::ops::RangeInclusive<u32> {
    let max = estimate_min
        .saturating_mul(MAX_ACTUAL_TO_ESTIMATE)
        .clamp(MIN_ACTUAL_DURATION_MIN, MAX_ACTUAL_DURATION_MIN);
    MIN_ACTUAL_DURATION_MIN..=max
}

/// Checks the rules of time on a step: a cleaning starts no earlier than
/// [`START_WINDOW_BEFORE`] its start, and a completion reports a plausible duration for its
/// estimate. Other actions pass.
///
/// # Errors
/// [`TimingError`] saying which rule refused.
pub fn check_timing(
    action: Action,
    starts_at: DateTime<Utc>,
    estimate_min: u32,
    now: DateTime<Utc>,
) -> Result<(), TimingError> {
    match action {
        Action::Start if now < starts_at - START_WINDOW_BEFORE => {
            Err(TimingError::TooEarly { starts_at })
        }
        Action::Complete {
            actual_duration_min,
        } => {
            let plausible = plausible_durations(estimate_min);
            if plausible.contains(&actual_duration_min) {
                Ok(())
            } else {
                Err(TimingError::ImplausibleDuration {
                    min: *plausible.start(),
                    max: *plausible.end(),
                })
            }
        }
        _ => Ok(()),
    }
}

/// Which estimate set a booking's duration and price: search's duration model, with the
/// version that answered, or core's rule of thumb when search could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstimatedBy {
    Model { version: i64 },
    RuleOfThumb,
}

impl EstimatedBy {
    /// The stored and wire name: `model` or `rule_of_thumb`.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimatedBy::Model { .. } => "model",
            EstimatedBy::RuleOfThumb => "rule_of_thumb",
        }
    }

    /// The model's version, when a model estimated.
    pub fn model_version(self) -> Option<i64> {
        match self {
            EstimatedBy::Model { version } => Some(version),
            EstimatedBy::RuleOfThumb => None,
        }
    }

    /// Reads the stored pair back.
    ///
    /// # Errors
    /// Says what is inconsistent.
    pub fn from_stored(name: &str, version: Option<i64>) -> Result<Self, String> {
        match (name, version) {
            ("model", Some(version)) if version > 0 => Ok(EstimatedBy::Model { version }),
            ("rule_of_thumb", None) => Ok(EstimatedBy::RuleOfThumb),
            _ => Err(format!(
                "estimated_by {name:?} with model_version {version:?}"
            )),
        }
    }
}

/// Whether a model's estimate can be booked as it is: a whole number of quarter hours within
/// the range the rule of thumb keeps to. Anything else means a broken model or a confused
/// peer, and the rule of thumb is used instead.
pub fn bookable_estimate(minutes: u32) -> bool {
    billable_minutes(f64::from(minutes)) == minutes
}

/// The rule-of-thumb duration estimate, in minutes, for when search's learned model cannot
/// answer: [`spruce_domain::pricing::rule_of_thumb_minutes`], the one rule search quotes
/// with too.
pub fn estimate_duration_min(service: Service, home: &AddressInput) -> u32 {
    spruce_domain::pricing::rule_of_thumb_minutes(
        service.as_str(),
        spruce_domain::pricing::Home {
            size_m2: home.size_m2,
            bedrooms: home.bedrooms,
            bathrooms: home.bathrooms,
            has_pets: home.has_pets,
        },
    )
}

pub use spruce_domain::pricing::{DEFAULT_HOURLY_RATE_CENTS, billable_minutes, price_cents};

/// The slot's start in the cleaner's time zone: weekday (0 = Monday) and minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStart {
    pub weekday: u8,
    pub minute: u16,
}

impl LocalStart {
    /// Returns the weekday (0 = Monday) and minute of the day of `at` in the IANA zone
    /// `timezone`; `None` for a zone the time zone database does not know.
    pub fn of(at: DateTime<Utc>, timezone: &str) -> Option<Self> {
        use chrono::{Datelike as _, Timelike as _};

        let zone = spruce_domain::zone::Zone::named(timezone)?;
        let local = at.with_timezone(&zone);
        Some(LocalStart {
            weekday: u8::try_from(local.weekday().num_days_from_monday()).ok()?,
            minute: u16::try_from(local.hour() * 60 + local.minute()).ok()?,
        })
    }
}

/// Checks that `cleaner` can take a booking at `location` for `service`, starting at
/// `local_start` (their time zone) for `duration_min`.
///
/// # Errors
/// A reason a person understands, for the field it concerns.
pub fn check_cleaner_fit(
    cleaner: &ProfileInput,
    service: Service,
    location: &GeoPoint,
    local_start: LocalStart,
    duration_min: u32,
) -> Result<(), (&'static str, String)> {
    if !cleaner.services.contains(&service) {
        return Err((
            "service",
            format!("this cleaner does not offer {service} cleaning"),
        ));
    }
    // No distance in the message: three far-away addresses would locate the cleaner's home.
    if cleaner.home.distance_km(location) > cleaner.service_radius_km {
        return Err((
            "address_id",
            "the address is outside this cleaner's service area".to_owned(),
        ));
    }
    let hours = cleaner
        .weekly_availability
        .iter()
        .map(|window| (window.weekday, window.start_minute, window.end_minute));
    let available = spruce_domain::hours::covers(
        &hours,
        local_start.weekday,
        u32::from(local_start.minute),
        duration_min,
    );
    if !available {
        return Err((
            "starts_at",
            format!(
                "the cleaner is not available for the {duration_min} minutes from then (see their weekly_availability)"
            ),
        ));
    }
    Ok(())
}

/// Checks that a booking starts in the future.
///
/// # Errors
/// A reason a person understands.
pub fn check_in_future(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if starts_at <= now {
        return Err("must be in the future".to_owned());
    }
    if starts_at > now + Duration::days(365) {
        return Err("must be within a year".to_owned());
    }
    Ok(())
}

/// A valid request for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    pub idempotency_key: String,
    pub address_id: Uuid,
    pub service: Service,
    pub starts_at: DateTime<Utc>,
    pub cleaner_id: Option<Uuid>,
    pub payment_token: String,
}

/// The raw fields of a booking request, as the wire carries them.
#[derive(Debug, Clone, Default)]
pub struct RawNewBooking<'a> {
    pub idempotency_key: &'a str,
    pub address_id: &'a str,
    pub service: &'a str,
    pub starts_at: Option<DateTime<Utc>>,
    pub cleaner_id: &'a str,
    pub payment_token: &'a str,
}

impl NewBooking {
    /// Validates every field at once.
    ///
    /// # Errors
    /// One [`FieldError`] per broken rule.
    pub fn parse(raw: &RawNewBooking<'_>) -> Result<Self, Vec<FieldError>> {
        let mut validator = Validator::default();
        let key = raw.idempotency_key.trim();
        validator.check((1..=255).contains(&key.len()), "idempotency_key", || {
            "the Idempotency-Key header must be 1 to 255 characters".to_owned()
        });
        let address_id = raw
            .address_id
            .parse::<Uuid>()
            .map_err(|_| validator.fail("address_id", "must be the id of one of your addresses"))
            .ok();
        let service = raw
            .service
            .parse::<Service>()
            .map_err(|message| validator.fail("service", message))
            .ok();
        if raw.starts_at.is_none() {
            validator.fail(
                "starts_at",
                "is required (RFC 3339, e.g. 2030-05-17T09:00:00Z)",
            );
        }
        let cleaner_id = match raw.cleaner_id.trim() {
            "" => None,
            text => text
                .parse::<Uuid>()
                .map_err(|_| validator.fail("cleaner_id", "must be a cleaner's id"))
                .ok(),
        };
        validator.check(
            !raw.payment_token.trim().is_empty(),
            "payment_token",
            || "is required".to_owned(),
        );
        let parsed = match (address_id, service, raw.starts_at) {
            (Some(address_id), Some(service), Some(starts_at)) => Some(NewBooking {
                idempotency_key: key.to_owned(),
                address_id,
                service,
                starts_at,
                cleaner_id,
                payment_token: raw.payment_token.trim().to_owned(),
            }),
            _ => None,
        };
        validator.finish(parsed)
    }

    /// Returns a digest of what was asked, to tell a replay from a different request that
    /// reuses the idempotency key.
    pub fn fingerprint(&self) -> Vec<u8> {
        use sha2::{Digest as _, Sha256};
        let canonical = format!(
            "{}|{}|{}|{}|{}",
            self.address_id,
            self.service,
            self.starts_at.timestamp_micros(),
            self.cleaner_id.map(|id| id.to_string()).unwrap_or_default(),
            self.payment_token
        );
        Sha256::digest(canonical.as_bytes()).to_vec()
    }
}

/// A stored booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub cleaner_id: Option<Uuid>,
    pub address_id: Uuid,
    pub service: Service,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_min: u32,
    pub price_cents: i64,
    pub currency: String,
    pub status: BookingStatus,
    pub payment_status: PaymentStatus,
    pub actual_duration_min: Option<u32>,
    pub estimated_by: EstimatedBy,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Booking {
    /// Returns how `user_id` (with `admin` rights or not) relates to this booking, if at all.
    pub fn party_of(&self, user_id: Uuid, admin: bool) -> Option<Party> {
        if admin {
            Some(Party::Admin)
        } else if self.customer_id == user_id {
            Some(Party::Customer)
        } else if self.cleaner_id == Some(user_id) {
            Some(Party::Cleaner)
        } else {
            None
        }
    }
}

/// A cleaner as another service's read model loads it: the profile and the bookings that
/// hold the cleaner's time.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerState {
    pub profile: CleanerProfile,
    pub bookings: Vec<LiveBooking>,
}

/// A booking that is requested, confirmed or in progress and has not yet ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveBooking {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: BookingStatus,
    pub version: i64,
}

#[cfg(test)]
#[path = "booking_tests.rs"]
pub(crate) mod tests;
