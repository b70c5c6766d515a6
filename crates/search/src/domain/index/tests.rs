use chrono::{Duration, TimeZone as _, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::{
    cleaner::{Services, Window},
    query::{RawQuery, SearchQuery},
};

const SERVICE_NAMES: [&str; 4] = crate::domain::cleaner::SERVICES;
const NAMES: [&str; 4] = ["Zoë Müller", "Ana Lima", "Jan Nowak", "Lea Weiß"];

fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 3, 0, 0, 0).unwrap()
}

prop_compose! {
    fn cleaner()(
        lat in 52.3..52.7f64,
        lng in 13.1..13.7f64,
        radius in 5.0..40.0f64,
        rate in 500..50_000i64,
        reviews in 0..50u32,
        stars in 0..=5u32,
        services in 1..16u8,
        name in 0..4usize,
        start_hour in 6..12u16,
        length in 2..10u16,
        days in prop::collection::vec(0..7u8, 2..7),
        busy_hours in prop::collection::vec(0..(7 * 24i64), 0..4),
        // Mostly one zone, so that cells can be skipped by their hours; sometimes
        // another, so that cells of mixed zones are searched too.
        zone in prop::sample::select(vec![
            Zone::named("Europe/Berlin").unwrap(),
            Zone::named("Europe/Berlin").unwrap(),
            Zone::named("Europe/Berlin").unwrap(),
            Zone::named("Asia/Tokyo").unwrap(),
        ]),
    ) -> Cleaner {
        let offered = (0..4).filter(|bit| services & (1 << bit) != 0).map(|bit| SERVICE_NAMES[bit]);
        Cleaner::new(
            Uuid::new_v4(),
            NAMES[name].to_owned(),
            "tidy".to_owned(),
            Services::parse(offered).unwrap(),
            (lat, lng),
            radius,
            rate,
            (f64::from(stars), reviews),
            zone,
            days.into_iter().map(|weekday| Window {
                weekday,
                start_minute: start_hour * 60,
                end_minute: (start_hour + length) * 60,
            }).collect(),
            busy_hours.into_iter().map(|hour| {
                let start = base() + Duration::hours(hour);
                (start, start + Duration::hours(2))
            }).collect(),
        )
    }
}

prop_compose! {
    fn query()(
        lat in 52.3..52.7f64,
        lng in 13.1..13.7f64,
        radius in 1.0..40.0f64,
        service in prop::option::weighted(0.3, 0..4usize),
        starts_hour in prop::option::weighted(0.3, 0..(7 * 24i64)),
        duration in 30..300u32,
        min_rating in prop::option::weighted(0.3, 0.0..4.5f64),
        max_rate in prop::option::weighted(0.3, 5_000..50_000i64),
        text in prop::option::weighted(0.2, 0..4usize),
        limit in 1..15usize,
    ) -> SearchQuery {
        let raw = RawQuery {
            lat: Some(lat),
            lng: Some(lng),
            radius_km: Some(radius),
            service: service.map(|index| SERVICE_NAMES[index].to_owned()),
            starts_at: starts_hour.map(|hour| base() + Duration::hours(hour)),
            duration_min: starts_hour.map(|_| duration),
            min_rating,
            max_rate_cents: max_rate,
            q: text.map(|index| NAMES[index].split(' ').next().unwrap().to_lowercase()),
            limit: Some(limit),
            after: None,
        };
        SearchQuery::parse(&raw, base() - Duration::days(1)).unwrap()
    }
}

/// Every page of `query`, following the cursors.
fn all_pages(mut query: SearchQuery, page: impl Fn(&SearchQuery) -> Page) -> Vec<Hit> {
    let mut hits = Vec::new();
    loop {
        let found = page(&query);
        hits.extend(found.hits);
        match found.next {
            Some(cursor) => query.after = Some(cursor),
            None => return hits,
        }
    }
}

/// Moves the first of `cleaners` to the areas of `moved` (same id, new area and all),
/// then removes the first `removed` of them; returns the cleaners the index should
/// hold, by id.
fn move_and_remove(
    index: &mut SearchIndex,
    cleaners: &[Cleaner],
    moved: Vec<Cleaner>,
    removed: usize,
) -> Result<HashMap<Uuid, Cleaner>, TestCaseError> {
    let mut current: HashMap<Uuid, Cleaner> = cleaners
        .iter()
        .map(|cleaner| (cleaner.id, cleaner.clone()))
        .collect();
    for (old, mut new) in cleaners.iter().zip(moved) {
        new.id = old.id;
        index.upsert(new.clone());
        current.insert(new.id, new);
    }
    for cleaner in cleaners.iter().take(removed) {
        prop_assert!(index.remove(cleaner.id).is_some());
        current.remove(&cleaner.id);
    }
    Ok(current)
}

proptest! {
    // Over these strategies about two queries in three find someone, eight cleaners on
    // average (measured while writing them), so paging is exercised too.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn search_equals_a_brute_force_scan(
        cleaners in prop::collection::vec(cleaner(), 0..150),
        query in query(),
    ) {
        let index = SearchIndex::from_cleaners(cleaners.clone());
        prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
        // Paging through every page gives the whole ranked answer once, in order.
        let paged = all_pages(query.clone(), |query| index.search(query));
        let mut whole = query.clone();
        whole.limit = usize::MAX;
        prop_assert_eq!(paged, scan(&cleaners, &whole).hits);
    }

    #[test]
    fn updates_keep_the_index_equal_to_a_scan(
        cleaners in prop::collection::vec(cleaner(), 1..60),
        moved in prop::collection::vec(cleaner(), 1..20),
        removed in 0..10usize,
        query in query(),
    ) {
        let mut index = SearchIndex::from_cleaners(cleaners.clone());
        let current = move_and_remove(&mut index, &cleaners, moved, removed)?;
        prop_assert_eq!(index.len(), current.len());
        prop_assert_eq!(index.search(&query), scan(current.values(), &query));
    }
}

/// Where a crowded cleaner lives: in a box of about 4.5 × 2.7 km around a cell of the
/// grid in Berlin, or of 5.5 × 5.5 km across the antimeridian on the equator.
fn crowded() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        (52.495..52.535f64, 13.395..13.435f64),
        (-0.025..0.025f64, 179.975..180.025f64)
            .prop_map(|(lat, lng)| { (lat, if lng > 180.0 { lng - 360.0 } else { lng }) }),
    ]
}

/// Cleaners of [`cleaner`] crowded into a few cells, so that thousands share a cell and
/// its parts.
fn crowded_cleaners(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Cleaner>> {
    (
        any::<bool>(),
        prop::collection::vec((cleaner(), crowded(), crowded()), count),
    )
        .prop_map(|(in_berlin, cleaners)| {
            cleaners
                .into_iter()
                .map(|(mut cleaner, berlin, equator)| {
                    cleaner.area = if in_berlin { berlin } else { equator };
                    cleaner
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Cells of many members are cut into up to 4 × 4 parts, each bounded on its own
    /// (see [`Cell::split_for`]); cleaners are added one by one (the cell cut again as
    /// it fills), moved and removed (cut again as it empties).
    #[test]
    fn cells_cut_into_parts_search_as_a_scan(
        cleaners in crowded_cleaners(0..4_000),
        moved in crowded_cleaners(0..300),
        removed in 0..4_000usize,
        query in query(),
        at in crowded(),
        radius_km in 0.2..5.0f64,
    ) {
        // Near the cleaners: both in Berlin, or both on the equator.
        let at = match cleaners.first() {
            Some(first) if (first.area.0 > 10.0) != (at.0 > 10.0) => first.area,
            _ => at,
        };
        let query = SearchQuery { at, radius_km, ..query };
        let built = SearchIndex::from_cleaners(cleaners.clone());
        prop_assert_eq!(built.search(&query), scan(&cleaners, &query));
        let mut index = SearchIndex::default();
        for cleaner in &cleaners {
            index.upsert(cleaner.clone());
        }
        prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
        let current = move_and_remove(&mut index, &cleaners, moved, removed)?;
        prop_assert_eq!(index.search(&query), scan(current.values(), &query));
    }
}

/// A key holds rates up to `u16::MAX` cents and ratings to 5.1 stars; beyond, the
/// search must still tell the rates apart on the cleaner.
#[test]
fn rates_and_ratings_beyond_what_a_key_holds_are_decided_exactly() {
    let at = (52.52, 13.4);
    let cleaners: Vec<Cleaner> = [(65_535, 5.0), (70_000, 5.0), (100_000, 5.0), (70_001, 0.0)]
        .into_iter()
        .map(|(rate, stars)| {
            Cleaner::new(
                Uuid::new_v4(),
                format!("Rate {rate}"),
                String::new(),
                Services::parse(["standard"]).unwrap(),
                at,
                10.0,
                rate,
                (stars, 10),
                Zone::named("Europe/Berlin").unwrap(),
                Vec::new(),
                Vec::new(),
            )
        })
        .collect();
    let index = SearchIndex::from_cleaners(cleaners.clone());
    for (max_rate_cents, min_rating, expected) in [
        (70_000, None, 2),
        (69_999, None, 1),
        (70_001, Some(4.9), 2),
        (1_000_000, None, 4),
        (1_000_000, Some(5.0), 3),
    ] {
        let query = SearchQuery::parse(
            &RawQuery {
                lat: Some(at.0),
                lng: Some(at.1),
                radius_km: Some(5.0),
                min_rating,
                max_rate_cents: Some(max_rate_cents),
                ..RawQuery::default()
            },
            Utc::now(),
        )
        .unwrap();
        let found = index.search(&query);
        assert_eq!(found, scan(&cleaners, &query), "{max_rate_cents}");
        assert_eq!(
            found.hits.len(),
            expected,
            "{max_rate_cents} {min_rating:?}"
        );
    }
}

/// The rounded fields of a member must never rule out a cleaner exactly at a limit:
/// the search radius, their own radius, the lowest rating and the highest rate asked.
#[test]
fn cleaners_exactly_at_every_limit_are_found() {
    let at = (52.601_234_567, 13.398_765_432);
    for n in 0..200 {
        let step = f64::from(n);
        let area = (52.52 + step * 0.000_713, 13.3 + step * 0.001_357);
        let distance = crate::domain::distance_km(at, area);
        let cleaner = Cleaner::new(
            Uuid::new_v4(),
            "Edge".to_owned(),
            "exactly".to_owned(),
            Services::parse(["standard"]).unwrap(),
            area,
            distance,
            3_333,
            (3.7, 3),
            Zone::named("Europe/Berlin").unwrap(),
            Vec::new(),
            Vec::new(),
        );
        let index = SearchIndex::from_cleaners([cleaner.clone()]);
        let query = SearchQuery::parse(
            &RawQuery {
                lat: Some(at.0),
                lng: Some(at.1),
                radius_km: Some(distance),
                min_rating: Some(3.7),
                max_rate_cents: Some(3_333),
                q: Some("exact".to_owned()),
                ..RawQuery::default()
            },
            Utc::now(),
        )
        .unwrap();
        let found = index.search(&query);
        assert_eq!(found, scan([&cleaner], &query), "{area:?}");
        assert_eq!(found.hits.len(), 1, "{area:?}");
    }
}

#[test]
fn a_cleaners_own_radius_is_honoured() {
    let near = Cleaner::new(
        Uuid::new_v4(),
        "Near".to_owned(),
        String::new(),
        Services::parse(["standard"]).unwrap(),
        (52.52, 13.40),
        2.0,
        2_500,
        (0.0, 0),
        Zone::named("Europe/Berlin").unwrap(),
        Vec::new(),
        Vec::new(),
    );
    let index = SearchIndex::from_cleaners([near]);
    let at = |lat: f64| {
        SearchQuery::parse(
            &RawQuery {
                lat: Some(lat),
                lng: Some(13.40),
                radius_km: Some(50.0),
                ..RawQuery::default()
            },
            Utc::now(),
        )
        .unwrap()
    };
    // 0.01° of latitude is about 1.1 km; 0.03° about 3.3 km, past the cleaner's 2 km.
    assert_eq!(index.search(&at(52.53)).hits.len(), 1);
    assert!(index.search(&at(52.55)).hits.is_empty());
}

#[test]
fn cleaners_that_prove_no_hit_when_read_let_the_walk_go_on() {
    // At the point, rated 4 stars: cleaners whose text holds every pair of characters
    // of "abc" but not "abc" itself, so that only reading them rules them out. In the
    // next cell north, 2 km away, rated a little better: three booked over the window,
    // then the two hits. A search expects the first ones to be hits and sets the
    // others aside as unable to beat them; reading the first must bring the others
    // back, the booked ones first, and then the hits. With 120 at the point, more than
    // a search keeps waiting (80 for a page of one), it reads them in rounds.
    let starts_at = base() + Duration::hours(10);
    let cleaner = |n: u32, text: &str, lat: f64, stars: f64, busy: bool| {
        Cleaner::new(
            Uuid::from_u128(u128::from(n)),
            format!("Cleaner {n}"),
            text.to_owned(),
            Services::parse(["standard"]).unwrap(),
            (lat, 13.41),
            20.0,
            2_500,
            (stars, 40),
            Zone::named("Europe/Berlin").unwrap(),
            vec![Window {
                weekday: 0,
                start_minute: 8 * 60,
                end_minute: 18 * 60,
            }],
            if busy {
                vec![(starts_at, starts_at + Duration::hours(1))]
            } else {
                Vec::new()
            },
        )
    };
    // The southern edge of a row of cells near Berlin: the point is just south of it,
    // the others 2 km north of it.
    let edge = (52.54 / CELL_DEGREES).ceil() * CELL_DEGREES;
    let point = edge - 0.0005;
    const { assert!(CELL_DEGREES > 0.019, "the others must fit in the next row") };
    for failing in [3, 120] {
        let mut cleaners: Vec<Cleaner> = (0..failing)
            .map(|n| cleaner(n, "ab bc", point, 4.0, false))
            .collect();
        cleaners.extend((100..103).map(|n| {
            cleaner(
                n,
                "abc",
                edge + 0.0175 + f64::from(n - 100) * 1e-4,
                4.2,
                true,
            )
        }));
        cleaners.extend((200..202).map(|n| {
            cleaner(
                n,
                "abc",
                edge + 0.018 + f64::from(n - 200) * 1e-4,
                4.1,
                false,
            )
        }));
        let index = SearchIndex::from_cleaners(cleaners.clone());
        let query = SearchQuery::parse(
            &RawQuery {
                lat: Some(point),
                lng: Some(13.41),
                radius_km: Some(10.0),
                starts_at: Some(starts_at),
                duration_min: Some(60),
                q: Some("abc".to_owned()),
                limit: Some(1),
                ..RawQuery::default()
            },
            base(),
        )
        .unwrap();
        let page = index.search(&query);
        assert_eq!(page, scan(&cleaners, &query), "{failing} failing");
        assert_eq!(page.hits[0].id, Uuid::from_u128(200), "{failing} failing");
        let mut whole = query.clone();
        whole.limit = usize::MAX;
        let found = all_pages(query, |query| index.search(query));
        assert_eq!(found, scan(&cleaners, &whole).hits, "{failing} failing");
        assert_eq!(found.len(), 2, "{failing} failing");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Across the antimeridian and near the poles the grid's rows and columns wrap or
    /// span everything; the answer must still be the scan's.
    #[test]
    fn search_equals_a_scan_at_the_ends_of_the_map(
        areas in prop::collection::vec((prop::sample::select(vec![-89.9, -60.0, 0.0, 60.0, 89.9]), -0.3..0.3f64, -0.4..0.4f64), 1..40),
        centre in prop::sample::select(vec![(-89.9, 179.9), (60.0, -179.95), (0.0, 180.0), (89.9, 0.0)]),
        offset in (-0.2..0.2f64, -0.3..0.3f64),
        radius in 1.0..100.0f64,
    ) {
        let cleaners: Vec<Cleaner> = areas
            .into_iter()
            .map(|(band, dlat, dlng)| {
                let lat = (band + dlat).clamp(-90.0, 90.0);
                let mut lng = centre.1 + dlng;
                if lng > 180.0 { lng -= 360.0; }
                if lng < -180.0 { lng += 360.0; }
                Cleaner::new(
                    Uuid::new_v4(),
                    "Far".to_owned(),
                    String::new(),
                    Services::parse(["standard"]).unwrap(),
                    (lat, lng),
                    100.0,
                    2_500,
                    (4.0, 3),
                    Zone::UTC,
                    Vec::new(),
                    Vec::new(),
                )
            })
            .collect();
        let index = SearchIndex::from_cleaners(cleaners.clone());
        let mut lng = centre.1 + offset.1;
        if lng > 180.0 { lng -= 360.0; }
        if lng < -180.0 { lng += 360.0; }
        let query = SearchQuery::parse(
            &RawQuery {
                lat: Some((centre.0 + offset.0).clamp(-90.0, 90.0)),
                lng: Some(lng),
                radius_km: Some(radius),
                limit: Some(100),
                ..RawQuery::default()
            },
            Utc::now(),
        )
        .unwrap();
        prop_assert_eq!(index.search(&query), scan(&cleaners, &query));
    }
}
