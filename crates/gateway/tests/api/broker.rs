//! A broker outage leaves the API serving: readiness leaves the bus out, bookings commit to
//! the outbox, and every event is published once the broker is back.

use std::time::Duration;

use spruce_testkit::eventually;

use crate::{
    helpers::TestApp,
    scene::{Scene, json_of},
};

/// Outbox rows the relay has not published yet.
async fn unpublished(scene: &Scene) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&scene.app.core_pool)
        .await
        .unwrap()
}

/// Core's `messaging_broker_connected` of its outbox relay, from its /metrics.
async fn relay_connected(scene: &Scene) -> Option<bool> {
    let metrics = scene
        .app
        .client
        .get(format!("{}/metrics", scene.app.core_ops_url))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metrics
        .lines()
        .find(|line| line.starts_with("messaging_broker_connected{client=\"outbox:"))
        .map(|line| line.ends_with(" 1"))
}

#[tokio::test]
async fn with_the_broker_away_core_stays_ready_reads_and_bookings_succeed_and_every_event_follows()
{
    let scene = Scene::on(TestApp::builder().own_vhost().spawn().await).await;
    let app = &scene.app;
    eventually(
        "the scene's events published",
        Duration::from_secs(30),
        || async {
            match unpublished(&scene).await {
                0 => Ok(()),
                left => Err(left),
            }
        },
    )
    .await;

    app.take_broker_away();
    eventually(
        "the relay reporting the broker lost",
        Duration::from_secs(30),
        || async {
            match relay_connected(&scene).await {
                Some(false) => Ok(()),
                seen => Err(seen),
            }
        },
    )
    .await;
    let core_ready = app
        .client
        .get(format!("{}/readyz", app.core_ops_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        core_ready.status(),
        200,
        "core stays ready without the broker"
    );
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let me = app.get("/v1/me", Some(&scene.customer)).await;
    assert_eq!(me.status(), 200);
    let booking = json_of(
        scene
            .book(
                "during-the-outage",
                &scene.booking(&Scene::at(1, 10), "tok_visa"),
            )
            .await,
        201,
    )
    .await;
    let id = booking["id"].as_str().unwrap();
    assert_eq!(scene.fetch(id, &scene.customer).await["id"], id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        unpublished(&scene).await > 0,
        "the booking's events wait in the outbox"
    );

    app.bring_broker_back();
    eventually(
        "every event published after the broker returns",
        Duration::from_secs(30),
        || async {
            match unpublished(&scene).await {
                0 => Ok(()),
                left => Err(left),
            }
        },
    )
    .await;
    assert_eq!(relay_connected(&scene).await, Some(true));
}
