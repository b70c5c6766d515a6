//! The matching engine's calls: AssignBooking and AssignBookings, for the scheduler only.

use spruce_core::testing::{TestCore, booking, cleaner_profile, tomorrow_at};
use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    testing::{service_token, user_token},
};
use spruce_proto::core::v1::{
    AssignBookingRequest, AssignBookingsRequest, Booking, BookingStatus, GetBookingRequest, Role,
    ServiceKind, booking_service_client::BookingServiceClient,
};
use tonic::Code;

/// A cleaner available 08:00–18:00 UTC every day, a customer with a home 1 km away.
struct Scene {
    core: TestCore,
    customer: String,
    cleaner: String,
    cleaner_id: String,
    address_id: String,
}

impl Scene {
    async fn new() -> Self {
        let core = TestCore::start().await;
        let (cleaner_id, cleaner) = core.register_verified(Role::Cleaner).await;
        let stored = core
            .upsert_profile(&cleaner, cleaner_profile("08:00"))
            .await;
        // Both spellings come back: the enums, and the strings for older callers.
        assert_eq!(stored.services, ["standard", "deep"]);
        assert_eq!(
            stored.service_kinds().collect::<Vec<_>>(),
            [ServiceKind::Standard, ServiceKind::Deep]
        );
        let (customer, address_id) = core.customer_with_home().await;
        Scene {
            core,
            customer,
            cleaner,
            cleaner_id,
            address_id,
        }
    }

    async fn bookings(&self) -> BookingServiceClient<tonic::transport::Channel> {
        self.core.bookings().await
    }

    /// Books a standard cleaning without a cleaner, tomorrow (plus `days`) at 09:00 UTC.
    async fn book_open(&self, key: &str, days: i64) -> Booking {
        self.book(key, days, "").await
    }

    /// Books a standard cleaning with `cleaner_id` (empty: none), tomorrow (plus `days`) at
    /// 09:00 UTC.
    async fn book(&self, key: &str, days: i64, cleaner_id: &str) -> Booking {
        let request = booking(key, &self.address_id, cleaner_id, tomorrow_at(days, 9));
        self.core.book(&self.customer, request).await
    }

    fn pair(&self, booking: &Booking) -> AssignBookingRequest {
        AssignBookingRequest {
            booking_id: booking.id.clone(),
            cleaner_id: self.cleaner_id.clone(),
        }
    }

    async fn fetch(&self, id: &str, token: &str) -> Booking {
        let request = GetBookingRequest {
            booking_id: id.to_owned(),
        };
        self.bookings()
            .await
            .get_booking(with_token(request, token))
            .await
            .unwrap()
            .into_inner()
    }

    async fn outbox(&self, routing_key: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE routing_key = $1")
            .bind(routing_key)
            .fetch_one(&self.core.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_matching_engine_assigns_a_cleaner_to_an_open_booking() {
    let scene = Scene::new().await;
    let open = scene.book_open("m-1", 0).await;
    assert_eq!(open.cleaner_id, "");
    assert_eq!(open.price_cents, 5625, "135 minutes at the default 25 €/h");

    let mut client = scene.bookings().await;
    let denied = client
        .assign_booking(with_token(scene.pair(&open), &user_token("customer")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Services other than the scheduler may not assign either.
    for (name, key) in [
        ("gateway", keys::dev::GATEWAY_PRIVATE_KEY),
        ("search", keys::dev::SEARCH_PRIVATE_KEY),
    ] {
        let refused = client
            .assign_booking(with_token(
                scene.pair(&open),
                &service_token(key, name, "core"),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{name}");
    }
    // The scheduler's matching engine assigns, and that confirms the booking.
    let scheduler = service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "core");
    let assigned = client
        .assign_booking(with_token(scene.pair(&open), &scheduler))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.cleaner_id, scene.cleaner_id);
    assert_eq!(assigned.status, "confirmed");
    assert_eq!(assigned.booking_status(), BookingStatus::Confirmed);
    assert_eq!(assigned.service_kind(), ServiceKind::Standard);
    assert_eq!(
        assigned.service, "standard",
        "the string beside it, for older callers"
    );
    assert_eq!(
        assigned.price_cents, 5625,
        "the customer keeps the quoted price"
    );
    let again = client
        .assign_booking(with_token(scene.pair(&open), &user_token("admin")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(scene.outbox("booking.assigned").await, 1);
    let seen = scene.fetch(&open.id, &scene.cleaner).await;
    assert_eq!(seen.status, "confirmed", "the cleaner's booking now");
}

#[tokio::test]
async fn a_batch_of_assignments_answers_each_pair_and_never_double_books() {
    let scene = Scene::new().await;
    let first = scene.book_open("batch-1", 0).await;
    let second = scene.book_open("batch-2", 0).await;
    let confirmed = scene.book("batch-3", 1, &scene.cleaner_id).await;
    let scheduler = service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "core");
    let mut client = scene.bookings().await;
    let request = AssignBookingsRequest {
        pairs: vec![
            scene.pair(&first),
            scene.pair(&second),
            scene.pair(&confirmed),
            scene.pair(&first),
        ],
    };
    let results = client
        .assign_bookings(with_token(request, &scheduler))
        .await
        .unwrap()
        .into_inner()
        .results;
    let outcomes: Vec<&str> = results
        .iter()
        .map(|result| result.outcome.as_str())
        .collect();
    // The same hour twice: the second pair clashes with the first; the third has a cleaner;
    // the fourth repeats the first.
    assert_eq!(outcomes, ["assigned", "slot_taken", "not_open", "not_open"]);
    assert_eq!(scene.outbox("booking.assigned").await, 1);
    let second = scene.fetch(&second.id, &scene.customer).await;
    assert_eq!(second.status, "requested");
    assert_eq!(second.cleaner_id, "");
    // Only the scheduler (or an admin), and 1 to 500 pairs.
    let refused = client
        .assign_bookings(with_token(
            AssignBookingsRequest {
                pairs: vec![scene.pair(&second)],
            },
            &user_token("customer"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let empty = client
        .assign_bookings(with_token(AssignBookingsRequest::default(), &scheduler))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn confirming_a_hold_rewrites_the_row_in_place_adding_no_index_entry() {
    let scene = Scene::new().await;
    for days in 0..3 {
        let booked = scene
            .book(&format!("in-place-{days}"), days, &scene.cleaner_id)
            .await;
        assert_eq!(booked.booking_status(), BookingStatus::Requested);
    }
    // Each hold was confirmed by an update. PostgreSQL's counters arrive once the backend
    // that made the changes flushes them, within about 10 s of going idle.
    let (updated, in_place): (i64, i64) = spruce_testkit::eventually(
        "the confirmations are counted",
        std::time::Duration::from_secs(30),
        || async {
            let counted: (i64, i64) = sqlx::query_as(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
                 WHERE relname = 'bookings'",
            )
            .fetch_one(&scene.core.pool)
            .await
            .unwrap();
            if counted.0 >= 3 {
                Ok(counted)
            } else {
                Err(counted)
            }
        },
    )
    .await;
    assert_eq!(in_place, updated, "every confirmation is a HOT update");
}
