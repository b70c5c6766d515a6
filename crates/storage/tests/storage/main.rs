//! The object store against a local folder and against a real S3-compatible server (moto's
//! server mode, which `make test` installs): objects in and out, removal by prefix, and the
//! URLs handed out (pre-signed ones included) read the object or answer 404.

mod media;

use std::time::Duration;

use bytes::Bytes;
use spruce_storage::{Key, Storage, StorageError, StorageSettings};
use spruce_testkit::{Moto, TempFolder};

/// A store in a new bucket of `moto`'s, under `prefix`.
async fn s3_settings(moto: &Moto, prefix: &str) -> StorageSettings {
    StorageSettings {
        url: format!("s3://{}/{prefix}", moto.bucket().await),
        region: "eu-west-1".to_owned(),
        endpoint: moto.endpoint.clone(),
        access_key_id: "test".to_owned(),
        secret_access_key: "test".to_owned(),
        url_ttl: Duration::from_secs(60),
        ..StorageSettings::default()
    }
}

fn folder_settings() -> (StorageSettings, TempFolder) {
    let folder = TempFolder::new("objects");
    let settings = StorageSettings {
        url: folder.url(),
        public_url: "http://gateway.test/v1/files/".to_owned(),
        ..StorageSettings::default()
    };
    (settings, folder)
}

fn key(text: &str) -> Key {
    Key::new(text).unwrap()
}

/// What every store must do, whatever is behind it.
async fn objects_go_in_come_out_and_are_removed(storage: &Storage) {
    let photo = key("photos/ann/1.jpg");
    assert_eq!(storage.get(&photo).await.unwrap(), None);
    storage
        .put(&photo, Bytes::from_static(b"first"))
        .await
        .unwrap();
    storage
        .put(&photo, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(&photo).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    for name in [
        "photos/ann/2.jpg",
        "documents/ann/id.pdf",
        "photos/bob/1.jpg",
    ] {
        storage
            .put(&key(name), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    let mut under = storage.keys_under(&key("photos/ann")).await.unwrap();
    under.sort();
    assert_eq!(under, ["photos/ann/1.jpg", "photos/ann/2.jpg"]);
    assert_eq!(storage.delete_under(&key("photos/ann")).await.unwrap(), 2);
    assert_eq!(storage.get(&photo).await.unwrap(), None);
    assert!(
        storage
            .get(&key("photos/bob/1.jpg"))
            .await
            .unwrap()
            .is_some()
    );
    storage.delete(&key("photos/bob/1.jpg")).await.unwrap();
    storage.delete(&key("photos/bob/1.jpg")).await.unwrap();
    assert_eq!(storage.get(&key("photos/bob/1.jpg")).await.unwrap(), None);
}

#[tokio::test]
async fn a_local_folder_keeps_objects_and_names_their_public_url() {
    let (settings, _folder) = folder_settings();
    let storage = Storage::new(&settings).unwrap();
    objects_go_in_come_out_and_are_removed(&storage).await;
    assert_eq!(
        storage.url(&key("photos/ann/1.jpg")).await.unwrap(),
        "http://gateway.test/v1/files/photos/ann/1.jpg"
    );
}

#[tokio::test]
async fn an_s3_bucket_keeps_objects_under_its_prefix() {
    let moto = Moto::start().await;
    let settings = s3_settings(&moto, "spruce").await;
    let storage = Storage::new(&settings).unwrap();
    objects_go_in_come_out_and_are_removed(&storage).await;
    // Under the prefix, as another reader of the bucket sees it.
    storage
        .put(&key("documents/ann/id.pdf"), Bytes::from_static(b"%PDF"))
        .await
        .unwrap();
    let bucket = settings
        .url
        .trim_start_matches("s3://")
        .trim_end_matches("/spruce");
    let listing = reqwest::get(format!("{}/{bucket}?list-type=2", moto.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains("<Key>spruce/documents/ann/id.pdf</Key>"),
        "{listing}"
    );
}

#[tokio::test]
async fn a_presigned_url_reads_the_object_and_an_unknown_one_answers_404() {
    let moto = Moto::start().await;
    let storage = Storage::new(&s3_settings(&moto, "").await).unwrap();
    let photo = key("photos/ann/1.jpg");
    storage
        .put(&photo, Bytes::from_static(b"\xff\xd8jpeg"))
        .await
        .unwrap();
    let url = storage.url(&photo).await.unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(url.contains("X-Amz-Expires=60"), "{url}");
    let read = reqwest::get(&url).await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.bytes().await.unwrap().as_ref(), b"\xff\xd8jpeg");
    // Without its signature the same object is not readable.
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(reqwest::get(unsigned).await.unwrap().status(), 403);

    storage.delete(&photo).await.unwrap();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    let unknown = storage.url(&key("photos/nobody/1.jpg")).await.unwrap();
    assert_eq!(reqwest::get(&unknown).await.unwrap().status(), 404);
}

#[tokio::test]
async fn keys_that_could_leave_their_folder_are_refused() {
    for bad in [
        "",
        "../etc/passwd",
        "photos/../../x",
        "photos//x",
        "/photos/x",
        "photos/x/",
        "photos/./x",
        "photos/a b.jpg",
        "photos/ä.jpg",
        &"a".repeat(513),
    ] {
        assert!(
            matches!(Key::new(bad), Err(StorageError::BadKey(_))),
            "{bad:?} was taken"
        );
    }
    assert!(Key::new("analytics/events/dt=2026-12-07/part-1.parquet").is_ok());
}

#[tokio::test]
async fn a_store_url_of_another_kind_is_refused_naming_the_key() {
    for url in ["http://bucket", "s3://", "file://relative/folder", ""] {
        let settings = StorageSettings {
            url: url.to_owned(),
            ..StorageSettings::default()
        };
        let error = Storage::new(&settings).unwrap_err().to_string();
        assert!(error.contains("storage.url"), "{url}: {error}");
    }
}
