use super::*;
use crate::domain::cleaner::AvailabilityWindow;

/// A Berlin flat of `size_m2` with two bedrooms and a bathroom.
pub(crate) fn home(size_m2: u32, has_pets: bool) -> AddressInput {
    AddressInput {
        label: "Home".to_owned(),
        line1: "Torstrasse 1".to_owned(),
        city: "Berlin".to_owned(),
        postal_code: "10119".to_owned(),
        location: GeoPoint {
            lat: 52.53,
            lng: 13.40,
        },
        size_m2,
        bedrooms: 2,
        bathrooms: 1,
        has_pets,
    }
}

fn cleaner() -> ProfileInput {
    ProfileInput {
        bio: String::new(),
        hourly_rate_cents: 3_000,
        services: vec![Service::Standard],
        home: GeoPoint {
            lat: 52.52,
            lng: 13.405,
        },
        service_radius_km: 5.0,
        weekly_availability: vec![AvailabilityWindow {
            weekday: 0,
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        }],
        timezone: "Europe/Berlin".to_owned(),
    }
}

#[test]
fn the_happy_path_goes_requested_confirmed_in_progress_completed() {
    let complete = Action::Complete {
        actual_duration_min: 130,
    };
    let confirmed = transition(
        BookingStatus::Requested,
        Action::Confirm,
        Party::Cleaner,
        true,
    )
    .unwrap();
    let started = transition(confirmed, Action::Start, Party::Cleaner, true).unwrap();
    let done = transition(started, complete, Party::Cleaner, true).unwrap();
    assert_eq!(done, BookingStatus::Completed);
}

#[test]
fn illegal_transitions_name_the_status() {
    let error = transition(
        BookingStatus::Requested,
        Action::Start,
        Party::Cleaner,
        true,
    )
    .unwrap_err();
    assert_eq!(
        error,
        TransitionError::Illegal {
            from: BookingStatus::Requested,
            action: "start"
        }
    );
    assert!(
        transition(
            BookingStatus::InProgress,
            Action::Cancel,
            Party::Customer,
            true
        )
        .is_err()
    );
    assert!(transition(BookingStatus::Completed, Action::Cancel, Party::Admin, true).is_err());
    assert!(
        transition(
            BookingStatus::Cancelled,
            Action::Confirm,
            Party::Admin,
            true
        )
        .is_err()
    );
    // Nobody can confirm a booking no cleaner holds yet.
    assert!(
        transition(
            BookingStatus::Requested,
            Action::Confirm,
            Party::Admin,
            false
        )
        .is_err()
    );
}

#[test]
fn each_party_does_only_its_part() {
    assert!(matches!(
        transition(
            BookingStatus::Requested,
            Action::Confirm,
            Party::Customer,
            true
        ),
        Err(TransitionError::NotAllowed(_))
    ));
    assert!(matches!(
        transition(
            BookingStatus::Confirmed,
            Action::Cancel,
            Party::Cleaner,
            true
        ),
        Err(TransitionError::NotAllowed(_))
    ));
    assert_eq!(
        transition(
            BookingStatus::Confirmed,
            Action::Cancel,
            Party::Customer,
            true
        ),
        Ok(BookingStatus::Cancelled)
    );
    assert_eq!(
        transition(
            BookingStatus::Requested,
            Action::Confirm,
            Party::Admin,
            true
        ),
        Ok(BookingStatus::Confirmed)
    );
}

#[test]
fn completing_needs_a_duration() {
    assert!(Action::parse("complete", 0).is_err());
    assert_eq!(
        Action::parse("complete", 95),
        Ok(Action::Complete {
            actual_duration_min: 95
        })
    );
    assert!(Action::parse("dance", 0).is_err());
}

#[test]
fn a_cleaning_starts_from_half_an_hour_before_it_is_due() {
    let starts_at = Utc::now() + Duration::days(1);
    let at = |before: Duration| check_timing(Action::Start, starts_at, 120, starts_at - before);
    assert_eq!(
        at(Duration::days(1)),
        Err(TimingError::TooEarly { starts_at })
    );
    assert_eq!(
        at(Duration::minutes(31)),
        Err(TimingError::TooEarly { starts_at })
    );
    assert_eq!(at(Duration::minutes(30)), Ok(()));
    assert_eq!(at(Duration::minutes(-90)), Ok(()));
    // Other steps do not look at the clock.
    for action in [Action::Confirm, Action::Cancel] {
        assert_eq!(
            check_timing(action, starts_at, 120, starts_at - Duration::days(6)),
            Ok(())
        );
    }
}

#[test]
fn a_completion_reports_between_a_quarter_hour_and_three_estimates_and_at_most_twelve_hours() {
    let complete = |minutes| Action::Complete {
        actual_duration_min: minutes,
    };
    let now = Utc::now();
    let check = |minutes, estimate| check_timing(complete(minutes), now, estimate, now);
    let refused = |min, max| Err(TimingError::ImplausibleDuration { min, max });
    assert_eq!(check(14, 120), refused(15, 360));
    assert_eq!(check(15, 120), Ok(()));
    assert_eq!(check(360, 120), Ok(()));
    assert_eq!(check(361, 120), refused(15, 360));
    assert_eq!(check(1_440, 120), refused(15, 360));
    // A long estimate is capped at 12 hours, a tiny one still allows a quarter hour.
    assert_eq!(check(721, 600), refused(15, 720));
    assert_eq!(check(720, 600), Ok(()));
    assert_eq!(plausible_durations(4), 15..=15);
    assert_eq!(plausible_durations(u32::MAX), 15..=720);
}

#[test]
fn bigger_homes_and_deeper_cleans_take_longer() {
    let small = estimate_duration_min(Service::Standard, &home(40, false));
    let large = estimate_duration_min(Service::Standard, &home(120, false));
    let deep = estimate_duration_min(Service::Deep, &home(120, false));
    let pets = estimate_duration_min(Service::Standard, &home(120, true));
    assert!(
        small < large && large < deep && large < pets,
        "{small} {large} {deep} {pets}"
    );
    assert_eq!(large % 15, 0);
    assert_eq!(
        estimate_duration_min(Service::Standard, &home(10, false)),
        90
    );
    assert_eq!(
        estimate_duration_min(Service::MoveOut, &home(2_000, true)),
        600
    );
}

#[test]
fn what_estimated_a_booking_reads_back_as_stored() {
    for estimated_by in [EstimatedBy::Model { version: 7 }, EstimatedBy::RuleOfThumb] {
        assert_eq!(
            EstimatedBy::from_stored(estimated_by.as_str(), estimated_by.model_version()),
            Ok(estimated_by)
        );
    }
    assert!(EstimatedBy::from_stored("model", None).is_err());
    assert!(EstimatedBy::from_stored("model", Some(0)).is_err());
    assert!(EstimatedBy::from_stored("rule_of_thumb", Some(3)).is_err());
    assert!(EstimatedBy::from_stored("guess", None).is_err());
}

#[test]
fn only_quarter_hours_from_one_to_ten_hours_are_bookable_estimates() {
    for minutes in [60, 75, 135, 600] {
        assert!(bookable_estimate(minutes), "{minutes}");
    }
    for minutes in [0, 7, 45, 61, 615, u32::MAX] {
        assert!(!bookable_estimate(minutes), "{minutes}");
    }
}

#[test]
fn prices_round_up_to_the_cent() {
    assert_eq!(price_cents(90, 3_000), 4_500);
    assert_eq!(price_cents(1, 100), 2);
}

#[test]
fn a_cleaner_fits_only_within_service_radius_and_availability() {
    let here = GeoPoint {
        lat: 52.53,
        lng: 13.40,
    };
    let monday_ten = LocalStart {
        weekday: 0,
        minute: 600,
    };
    assert!(check_cleaner_fit(&cleaner(), Service::Standard, &here, monday_ten, 120).is_ok());
    let (field, _) =
        check_cleaner_fit(&cleaner(), Service::Deep, &here, monday_ten, 120).unwrap_err();
    assert_eq!(field, "service");
    let far = GeoPoint {
        lat: 52.40,
        lng: 13.06,
    };
    let (field, message) =
        check_cleaner_fit(&cleaner(), Service::Standard, &far, monday_ten, 120).unwrap_err();
    assert_eq!(field, "address_id");
    assert_eq!(
        message,
        "the address is outside this cleaner's service area"
    );
    let too_late = LocalStart {
        weekday: 0,
        minute: 16 * 60,
    };
    assert_eq!(
        check_cleaner_fit(&cleaner(), Service::Standard, &here, too_late, 120)
            .unwrap_err()
            .0,
        "starts_at"
    );
    let tuesday = LocalStart {
        weekday: 1,
        minute: 600,
    };
    assert_eq!(
        check_cleaner_fit(&cleaner(), Service::Standard, &here, tuesday, 60)
            .unwrap_err()
            .0,
        "starts_at"
    );
}

#[test]
fn hours_round_the_clock_take_a_booking_across_midnight() {
    let here = GeoPoint {
        lat: 52.53,
        lng: 13.40,
    };
    let mut always = cleaner();
    always.weekly_availability = (0..7)
        .map(|weekday| AvailabilityWindow {
            weekday,
            start_minute: 0,
            end_minute: 24 * 60,
        })
        .collect();
    let sunday_late = LocalStart {
        weekday: 6,
        minute: 23 * 60 + 5,
    };
    assert!(check_cleaner_fit(&always, Service::Standard, &here, sunday_late, 120).is_ok());
    // The usual 08:00-18:00 does not.
    assert!(check_cleaner_fit(&cleaner(), Service::Standard, &here, sunday_late, 120).is_err());
}

#[test]
fn a_booking_request_reports_every_bad_field() {
    let raw = RawNewBooking {
        idempotency_key: "",
        address_id: "nope",
        service: "windows",
        starts_at: None,
        cleaner_id: "x",
        payment_token: " ",
    };
    let fields: Vec<_> = NewBooking::parse(&raw)
        .unwrap_err()
        .into_iter()
        .map(|error| error.field)
        .collect();
    assert_eq!(
        fields,
        [
            "idempotency_key",
            "address_id",
            "service",
            "starts_at",
            "cleaner_id",
            "payment_token"
        ]
    );
}

#[test]
fn fingerprints_tell_requests_apart() {
    let address_id = Uuid::new_v4().to_string();
    let raw = RawNewBooking {
        idempotency_key: "key",
        address_id: &address_id,
        service: "standard",
        starts_at: Some(Utc::now()),
        cleaner_id: "",
        payment_token: "tok_visa",
    };
    let first = NewBooking::parse(&raw).unwrap();
    let same = NewBooking::parse(&raw).unwrap();
    let other = NewBooking::parse(&RawNewBooking {
        service: "deep",
        ..raw
    })
    .unwrap();
    assert_eq!(first.fingerprint(), same.fingerprint());
    assert_ne!(first.fingerprint(), other.fingerprint());
}

#[test]
fn bookings_start_in_the_future() {
    let now = Utc::now();
    assert!(check_in_future(now - Duration::minutes(1), now).is_err());
    assert!(check_in_future(now + Duration::days(400), now).is_err());
    assert!(check_in_future(now + Duration::days(2), now).is_ok());
}
