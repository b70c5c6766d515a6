//! Feature flags from a flagd flag file, changed while the gateway runs: fault injection on
//! cleaner searches, and recommendations switched off.

use std::{path::Path, time::Duration};

use serde_json::Value;
use spruce_testkit::{TempFolder, eventually};

use crate::{helpers::TestApp, scene::Scene};

/// The repo's flag file with `flag` set to serve `variant`.
fn flag_file_serving(flag: &str, variant: &str) -> String {
    let mut flags: Value = serde_json::from_str(include_str!("../../../../config/flags.json"))
        .expect("config/flags.json is JSON");
    let entry = &mut flags["flags"][flag];
    assert!(entry.is_object(), "config/flags.json has no flag {flag}");
    entry["defaultVariant"] = Value::from(variant);
    flags.to_string()
}

/// Replaces the flag file at once (written aside, then renamed), as an editor or a
/// ConfigMap update does.
fn write_flags(path: &Path, contents: &str) {
    let aside = path.with_extension("json.new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

const SEARCH: &str = "/v1/search/cleaners?lat=52.529&lng=13.401";

/// How many of `count` searches answered 503 (every other answer must be 200).
async fn unavailable_of(scene: &Scene, count: usize) -> usize {
    let mut unavailable = 0;
    for _ in 0..count {
        let response = scene.app.get(SEARCH, Some(&scene.customer)).await;
        match response.status().as_u16() {
            200 => {}
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                unavailable += 1;
            }
            other => panic!("a search answered {other}"),
        }
    }
    unavailable
}

#[tokio::test]
async fn a_flag_file_change_makes_half_the_searches_503_within_seconds_and_back() {
    let folder = TempFolder::new("flags");
    let file = folder.path().join("flags.json");
    write_flags(
        &file,
        &flag_file_serving("fault-gateway-search-error-rate", "off"),
    );
    let app = TestApp::builder()
        .with_search()
        .flags_file(file.to_str().unwrap())
        .spawn()
        .await;
    let scene = Scene::on(app).await;
    assert_eq!(unavailable_of(&scene, 20).await, 0);

    write_flags(
        &file,
        &flag_file_serving("fault-gateway-search-error-rate", "half"),
    );
    eventually(
        "a search failing after the change",
        Duration::from_secs(5),
        || async {
            match unavailable_of(&scene, 10).await {
                0 => Err("every search answered 200"),
                _ => Ok(()),
            }
        },
    )
    .await;
    let unavailable = unavailable_of(&scene, 400).await;
    assert!(
        (160..=240).contains(&unavailable),
        "{unavailable} of 400 searches answered 503, not 50 % ± 10 %"
    );

    write_flags(
        &file,
        &flag_file_serving("fault-gateway-search-error-rate", "off"),
    );
    eventually(
        "every search answering after the change back",
        Duration::from_secs(5),
        || async {
            match unavailable_of(&scene, 20).await {
                0 => Ok(()),
                failed => Err(format!("{failed} of 20 searches answered 503")),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn recommendations_switched_off_answer_an_empty_list_marked_disabled() {
    let folder = TempFolder::new("flags");
    let file = folder.path().join("flags.json");
    write_flags(&file, &flag_file_serving("recommendations-enabled", "off"));
    let app = TestApp::builder()
        .flags_file(file.to_str().unwrap())
        .spawn()
        .await;
    let scene = Scene::on(app).await;
    let path = format!("/v1/recommendations?address_id={}", scene.address_id);
    // Search does not run: only the switch can answer 200.
    let answered = eventually(
        "recommendations answering 200",
        Duration::from_secs(5),
        || async {
            let response = scene.app.get(&path, Some(&scene.customer)).await;
            match response.status().as_u16() {
                200 => Ok(response),
                status => Err(status),
            }
        },
    )
    .await;
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"items": [], "disabled": true}));
}
