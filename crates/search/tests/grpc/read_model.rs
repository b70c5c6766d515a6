//! The read model follows core through a restart and through a lost broker connection: what
//! changed while search was down or cut off (a new cleaner, a new price, a cancellation) and
//! after it is answered as a scan of core's own state would answer; replicas replaced under
//! load leave no queue behind.

use std::time::Duration;

use chrono::{DateTime, Utc};
use spruce_bus::testing::{HeldQueue, Listener};
use spruce_core::testing::{TestCore, booking, cleaner_profile, tomorrow_at};
use spruce_platform::grpc::request_with_token as with_token;
use spruce_proto::events::v1::envelope::Payload;
use spruce_proto::{
    core::v1::{GeoPoint, ServiceKind},
    search::v1::SearchCleanersRequest,
};
use spruce_search::{domain::query::RawQuery, testing::scan_of_core};
use spruce_testkit::{close_connections_named, queues_named};
use tokio_util::sync::CancellationToken;

use crate::Search;

/// How soon a change must be searchable.
const FRESHNESS: Duration = Duration::from_secs(2);

/// Every hit of `request` as `token`'s holder searches, two to a page.
async fn all_pages(search: &Search, token: &str, request: &SearchCleanersRequest) -> Vec<String> {
    let mut client = search.client().await;
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = SearchCleanersRequest {
            limit: 2,
            cursor: cursor.clone(),
            ..request.clone()
        };
        let answer = client
            .search_cleaners(with_token(page, token))
            .await
            .unwrap()
            .into_inner();
        ids.extend(answer.cleaners.into_iter().map(|hit| hit.cleaner_id));
        if answer.next_cursor.is_empty() {
            return ids;
        }
        cursor = answer.next_cursor;
    }
}

/// Waits until `search` answers `request` as a scan of core answers `raw`; returns that
/// answer.
async fn answers_as_core(
    core: &TestCore,
    search: &Search,
    customer: &str,
    request: &SearchCleanersRequest,
    raw: &RawQuery,
    within: Duration,
) -> Vec<String> {
    let expected = scan_of_core(&core.url, raw).await;
    let searched = spruce_testkit::try_eventually(within, || async {
        let searched = all_pages(search, customer, request).await;
        if searched == expected {
            Ok(())
        } else {
            Err(searched)
        }
    })
    .await;
    assert_eq!(
        searched,
        Ok(()),
        "{raw:?}: search says what Err holds, a scan of core says {expected:?}"
    );
    expected
}

/// Everyone within 30 km of the scene, as a request and as the scan's query.
fn nearby() -> (SearchCleanersRequest, RawQuery) {
    let request = SearchCleanersRequest {
        lat: 52.529,
        lng: 13.401,
        radius_km: 30.0,
        ..SearchCleanersRequest::default()
    };
    let raw = RawQuery {
        lat: Some(request.lat),
        lng: Some(request.lng),
        radius_km: Some(request.radius_km),
        limit: Some(100),
        ..RawQuery::default()
    };
    (request, raw)
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

#[tokio::test]
async fn search_restarted_while_things_change_answers_as_a_scan_of_core() {
    let core = TestCore::start().await;
    let mut search = Search::beside(&core).await;
    let (cleaner_id, _) = core.cleaner(cleaner_profile("08:00")).await;
    let (customer, address_id) = core.customer_with_home().await;
    let mut cleaners = Vec::new();
    for (n, (lat, rate, services)) in [
        (52.53, 2_000, vec![ServiceKind::Standard]),
        (52.50, 4_000, vec![ServiceKind::Deep, ServiceKind::Standard]),
        (52.56, 2_500, vec![ServiceKind::Office]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut profile = cleaner_profile("08:00");
        profile.home = Some(GeoPoint { lat, lng: 13.40 });
        profile.hourly_rate_cents = rate;
        profile.service_kinds = services.into_iter().map(Into::into).collect();
        profile.bio = format!("cleaner number {n}");
        cleaners.push(core.cleaner(profile).await.1);
    }
    let noon = tomorrow_at(0, 12);
    let first = core
        .book(&customer, booking("r-1", &address_id, &cleaner_id, noon))
        .await;

    search
        .restart(async {
            // While search is down: a newcomer, a new price, a cancellation.
            core.cleaner(cleaner_profile("06:00")).await;
            let mut cheaper = cleaner_profile("08:00");
            cheaper.home = Some(GeoPoint {
                lat: 52.53,
                lng: 13.40,
            });
            cheaper.hourly_rate_cents = 900;
            cheaper.service_kinds = vec![ServiceKind::Standard.into()];
            core.upsert_profile(&cleaners[0], cheaper).await;
            core.cancel(&customer, &first.id).await;
        })
        .await;
    // And after it is back: a new booking.
    let later = tomorrow_at(0, 15);
    core.book(&customer, booking("r-2", &address_id, &cleaner_id, later))
        .await;

    let (base, raw_base) = nearby();
    // Each with how many cleaners answer it: the scene's, three more, the newcomer.
    let cases = [
        (5, base.clone(), raw_base.clone()),
        (
            3,
            SearchCleanersRequest {
                service_kind: ServiceKind::Standard.into(),
                max_rate_cents: 3_000,
                ..base.clone()
            },
            RawQuery {
                service: Some("standard".to_owned()),
                max_rate_cents: Some(3_000),
                ..raw_base.clone()
            },
        ),
        (
            5,
            SearchCleanersRequest {
                starts_at: Some(timestamp(noon)),
                duration_min: 60,
                ..base.clone()
            },
            RawQuery {
                starts_at: Some(noon),
                duration_min: Some(60),
                ..raw_base.clone()
            },
        ),
        (
            4,
            SearchCleanersRequest {
                starts_at: Some(timestamp(later)),
                duration_min: 60,
                ..base.clone()
            },
            RawQuery {
                starts_at: Some(later),
                duration_min: Some(60),
                ..raw_base.clone()
            },
        ),
    ];
    for (count, request, raw) in cases {
        let expected = answers_as_core(&core, &search, &customer, &request, &raw, FRESHNESS).await;
        assert_eq!(expected.len(), count, "{raw:?}: {expected:?}");
    }
}

#[tokio::test]
async fn what_is_published_while_the_replica_reconnects_comes_with_a_new_snapshot() {
    let core = TestCore::start().await;
    let search = Search::beside(&core).await;
    let (customer, _) = core.customer_with_home().await;
    let names = search.running().queues();
    let mut published = Listener::start(core.bus(), "cleaner.updated").await;
    // The replica's connection cut, and its queue's name held by the test until a new
    // cleaner's profile is published: the event reaches the exchange while the replica has
    // no queue, so only a new snapshot can bring it.
    let mut held = None;
    for _ in 0..20 {
        close_connections_named(&names.connection_name());
        held = HeldQueue::try_hold(core.bus(), &names.main).await;
        if held.is_some() {
            break;
        }
    }
    let held = held.expect("the test holds the replica's queue name");
    let (newcomer, _) = core.cleaner(cleaner_profile("06:00")).await;
    let event = published
        .next(Duration::from_secs(10))
        .await
        .expect("the newcomer's profile is published");
    let Some(Payload::CleanerUpdated(updated)) = event.payload else {
        panic!("not a profile: {event:?}");
    };
    assert_eq!(updated.cleaner_id, newcomer);
    held.release().await;

    let (request, raw) = nearby();
    // Reconnecting backs off while the name is held.
    let found = answers_as_core(
        &core,
        &search,
        &customer,
        &request,
        &raw,
        Duration::from_secs(30),
    )
    .await;
    assert!(found.contains(&newcomer), "{found:?}");
}

#[tokio::test]
async fn replicas_replaced_under_load_leave_only_the_live_replicas_queues() {
    let core = TestCore::start().await;
    let mut search = Search::beside(&core).await;
    let (customer, _) = core.customer_with_home().await;
    let first = search.running().queues();
    let prefix = first
        .parked
        .strip_suffix("events.parked")
        .expect("a parked queue's name")
        .to_owned();

    // Cleaners keep joining while the replica is replaced five times.
    let stop = CancellationToken::new();
    let load = async {
        let mut joined = 0;
        while !stop.is_cancelled() {
            core.cleaner(cleaner_profile("07:00")).await;
            joined += 1;
        }
        joined
    };
    let replacements = async {
        for n in 2..=6 {
            search.replace(&format!("r{n}")).await;
        }
        stop.cancel();
    };
    let (joined, ()) = tokio::join!(load, replacements);
    assert!(joined >= 5, "only {joined} cleaners joined meanwhile");

    let live = search.running().queues();
    assert_eq!(queues_named("/", &prefix), vec![live.parked, live.main]);
    let (request, raw) = nearby();
    let found = answers_as_core(&core, &search, &customer, &request, &raw, FRESHNESS).await;
    assert_eq!(found.len(), joined, "{found:?}");
}
