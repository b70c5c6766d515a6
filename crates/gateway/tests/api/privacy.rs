//! A cleaner's home stays private: searches and recommendations show a point 320–800 m
//! away, distances are rounded, radii start at 1 km and searches are limited per user.

use serde_json::Value;

use crate::{
    helpers::{TestApp, field_names, problem},
    scene::Scene,
    search::found_within_freshness,
};

/// Kilometres between two (lat, lng) points (haversine).
fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let (d_lat, d_lng) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lng / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// The point whose distances to the `measured` points best match them (least squares, by
/// a coarse then finer grid around `near`): what an attacker trilaterating would find.
fn trilaterate(measured: &[((f64, f64), f64)], near: (f64, f64)) -> (f64, f64) {
    let error = |p: (f64, f64)| -> f64 {
        measured
            .iter()
            .map(|(at, distance)| (km(p, *at) - distance).powi(2))
            .sum()
    };
    let mut best = near;
    for step in [0.002, 0.000_2, 0.000_02] {
        let centre = best;
        for i in -50..=50 {
            for j in -50..=50 {
                let p = (
                    centre.0 + f64::from(i) * step,
                    centre.1 + f64::from(j) * step * 1.6,
                );
                if error(p) < error(best) {
                    best = p;
                }
            }
        }
    }
    best
}

#[tokio::test]
async fn no_number_of_searches_places_a_home_closer_than_300_metres() {
    let scene = Scene::on(TestApp::builder().with_search().spawn().await).await;
    let home = (52.520, 13.405);
    let query = |at: (f64, f64), radius: f64| {
        format!("lat={}&lng={}&radius_km={radius}&limit=100", at.0, at.1)
    };
    assert!(
        found_within_freshness(
            &scene.app,
            &scene.customer,
            &query(home, 5.0),
            &scene.cleaner_id,
            true
        )
        .await
    );
    // Searches from 48 points on three circles around the home, each giving a distance.
    let mut measured = Vec::new();
    for ring in 1..=3 {
        for step in 0..16 {
            let angle = f64::from(step) * std::f64::consts::TAU / 16.0 + f64::from(ring);
            let reach = f64::from(ring) * 1.5;
            let at = (
                home.0 + reach / 111.195 * angle.cos(),
                home.1 + reach / (111.195 * home.0.to_radians().cos()) * angle.sin(),
            );
            let response = scene
                .app
                .get(
                    &format!("/v1/search/cleaners?{}", query(at, 10.0)),
                    Some(&scene.customer),
                )
                .await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            let hit = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|hit| hit["cleaner_id"] == scene.cleaner_id.as_str())
                .cloned()
                .expect("the cleaner is within 10 km of every point");
            let distance = hit["distance_km"].as_f64().unwrap();
            // Rounded to 100 m.
            assert!(
                ((distance * 10.0).round() - distance * 10.0).abs() < 1e-9,
                "{distance}"
            );
            measured.push((at, distance));
        }
    }
    let found = trilaterate(&measured, home);
    let off = km(found, home);
    // The trilateration works: it finds the public point core drew...
    let (area_lat, area_lng): (f64, f64) = sqlx::query_as(
        "SELECT area_lat, area_lng FROM cleaner_profiles WHERE cleaner_id = $1::uuid",
    )
    .bind(&scene.cleaner_id)
    .fetch_one(&scene.app.core_pool)
    .await
    .unwrap();
    assert!(km(found, (area_lat, area_lng)) < 0.1, "{found:?}");
    // ...which is no closer to the home than 300 m.
    assert!(off >= 0.3, "the home was placed within {off} km");

    // A radius under 1 km is refused; moving the home draws a new point.
    let narrow = scene
        .app
        .get(
            &format!("/v1/search/cleaners?{}", query(home, 0.5)),
            Some(&scene.customer),
        )
        .await;
    assert_eq!(field_names(&problem(narrow, 422).await), ["radius_km"]);
    let mut moved = Scene::profile("08:00");
    moved["home"] = serde_json::json!({"lat": 52.53, "lng": 13.41});
    let response = scene
        .app
        .put_authorized("/v1/me/cleaner-profile", &scene.cleaner, &moved)
        .await;
    assert_eq!(response.status(), 200);
    let (new_lat, new_lng): (f64, f64) = sqlx::query_as(
        "SELECT area_lat, area_lng FROM cleaner_profiles WHERE cleaner_id = $1::uuid",
    )
    .bind(&scene.cleaner_id)
    .fetch_one(&scene.app.core_pool)
    .await
    .unwrap();
    let from_new_home = km((new_lat, new_lng), (52.53, 13.41));
    assert!((0.3..=0.81).contains(&from_new_home), "{from_new_home}");
    // The same home again keeps the point.
    let response = scene
        .app
        .put_authorized("/v1/me/cleaner-profile", &scene.cleaner, &moved)
        .await;
    assert_eq!(response.status(), 200);
    let kept: (f64, f64) = sqlx::query_as(
        "SELECT area_lat, area_lng FROM cleaner_profiles WHERE cleaner_id = $1::uuid",
    )
    .bind(&scene.cleaner_id)
    .fetch_one(&scene.app.core_pool)
    .await
    .unwrap();
    assert_eq!(kept, (new_lat, new_lng));
}

#[tokio::test]
async fn searches_are_limited_per_user_with_retry_after() {
    let scene = Scene::on(
        TestApp::builder()
            .with_search()
            .search_limit(5)
            .spawn()
            .await,
    )
    .await;
    let search = "/v1/search/cleaners?lat=52.52&lng=13.405&radius_km=5";
    for _ in 0..5 {
        let response = scene.app.get(search, Some(&scene.customer)).await;
        assert_eq!(response.status(), 200);
    }
    let limited = scene.app.get(search, Some(&scene.customer)).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        problem(limited, 429).await["type"],
        "urn:spruce:problem:too_many_attempts"
    );
    // Recommendations count too; another user is not held up.
    let recommendations = format!("/v1/recommendations?address_id={}", scene.address_id);
    problem(
        scene.app.get(&recommendations, Some(&scene.customer)).await,
        429,
    )
    .await;
    let other = scene.app.signup(&crate::helpers::unique_email()).await;
    let response = scene.app.get(search, other["access_token"].as_str()).await;
    assert_eq!(response.status(), 200);
}
