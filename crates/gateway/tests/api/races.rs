//! Bookings under concurrency: repeats of one request and rivals for one slot make exactly
//! one booking.

use crate::{
    helpers::TestApp,
    scene::{Scene, json_of},
};
use futures_util::future::join_all;

#[tokio::test]
async fn simultaneous_repeats_of_one_request_all_get_its_one_booking() {
    // A phone retrying over a flaky network: the same key and body, all at once. Without a
    // cleaner, so only the key can make them clash.
    // Each attempt in flight counts against the customer's declined-payment limit.
    let scene = Scene::on(TestApp::builder().payment_limits(100, 100).spawn().await).await;
    let mut body = scene.booking(&Scene::at(3, 10), "tok_visa");
    body.as_object_mut().unwrap().remove("cleaner_id");
    let attempts = (0..10).map(|_| {
        let (body, scene) = (body.clone(), &scene);
        async move { json_of(scene.book("retried", &body).await, 201).await }
    });
    let bookings = join_all(attempts).await;
    assert!(
        bookings
            .iter()
            .all(|booking| booking["id"] == bookings[0]["id"]),
        "{bookings:?}"
    );
    assert_eq!(scene.bookings_stored().await, 1);
    assert_eq!(scene.outbox("booking.created").await, 1);
}

#[tokio::test]
async fn fifty_simultaneous_bookings_of_one_slot_make_exactly_one_booking() {
    // Each attempt in flight counts against the customer's declined-payment limit.
    let scene = Scene::on(TestApp::builder().payment_limits(100, 100).spawn().await).await;
    let body = scene.booking(&Scene::at(3, 10), "tok_visa");
    let attempts = (0..50).map(|attempt| {
        let key = format!("race-{attempt}");
        let body = body.clone();
        let scene = &scene;
        async move { scene.book(&key, &body).await.status().as_u16() }
    });
    let statuses = join_all(attempts).await;
    let created = statuses.iter().filter(|status| **status == 201).count();
    let conflicts = statuses.iter().filter(|status| **status == 409).count();
    assert_eq!((created, conflicts), (1, 49), "{statuses:?}");
    assert_eq!(scene.bookings_stored().await, 1);
    assert_eq!(scene.outbox("booking.created").await, 1);
}
