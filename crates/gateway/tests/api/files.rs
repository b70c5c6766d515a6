//! Cleaners' photos and documents: what is kept of an upload, who can read it, what is
//! refused, and that a deleted account's files go.

use std::{io::Cursor, path::Path, time::Duration};

use reqwest::Response;
use serde_json::{Value, json};
use spruce_storage::StorageSettings;
use spruce_testkit::{Moto, eventually};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{
    helpers::{PASSWORD, TestApp, problem, unique_email, user_token},
    scene::{Scene, json_of},
};

/// A `width` × `height` picture in `format`, with a gradient so that it compresses like one.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Cursor::new(Vec::new());
    pixels.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    picture(width, height, image::ImageFormat::Png)
}

/// Marks what a phone writes into a photo: where it was taken.
const SECRET: &[u8] = b"GPS 52.5200N 13.4050E home of the cleaner";

/// A JPEG carrying an EXIF segment with [`SECRET`] in it.
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let jpeg = picture(width, height, image::ImageFormat::Jpeg);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(SECRET);
    let length = u16::try_from(exif.len() + 2).unwrap();
    let mut marked = jpeg[..2].to_vec();
    marked.extend_from_slice(&[0xFF, 0xE1]);
    marked.extend_from_slice(&length.to_be_bytes());
    marked.extend_from_slice(&exif);
    marked.extend_from_slice(&jpeg[2..]);
    marked
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn put_bytes(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response {
    app.client
        .put(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn put_photo(app: &TestApp, token: &str, bytes: Vec<u8>) -> Response {
    put_bytes(
        app,
        "/v1/me/cleaner-profile/photo",
        token,
        "image/jpeg",
        bytes,
    )
    .await
}

/// Sends a PUT of `body` with `headers` over a connection of its own and returns the status
/// of the answer, read without sending more: the server may answer before the body ends.
async fn raw_put(app: &TestApp, path: &str, token: &str, headers: &str, body: &[u8]) -> u16 {
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n{headers}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !contains(&answer, b"\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&answer);
    status_line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Every file kept in the store's folder, as keys.
fn stored_keys(root: &Path) -> Vec<String> {
    fn walk(folder: &Path, root: &Path, keys: &mut Vec<String>) {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, keys);
            } else {
                keys.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut keys = Vec::new();
    walk(root, root, &mut keys);
    keys.sort();
    keys
}

#[tokio::test]
async fn a_cleaner_s_photo_is_scaled_stripped_of_its_location_and_served_at_its_url() {
    let scene = Scene::new().await;
    let app = &scene.app;
    let upload = jpeg_with_exif(2400, 1600);
    assert!(contains(&upload, SECRET));

    let profile = json_of(put_photo(app, &scene.cleaner, upload).await, 200).await;
    let url = profile["photo_url"]
        .as_str()
        .expect("the profile has a photo_url");
    assert!(url.starts_with(&format!(
        "{}/v1/files/photos/{}/",
        app.address, scene.cleaner_id
    )));

    let served = app.client.get(url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let bytes = served.bytes().await.unwrap();
    assert!(
        !contains(&bytes, SECRET),
        "the upload's EXIF must not be kept"
    );
    let photo = image::load_from_memory(&bytes).unwrap();
    assert_eq!(photo.width(), 1024);
    assert!((682..=683).contains(&photo.height()), "{}", photo.height());

    // Others see the same photo on the profile.
    let seen = json_of(
        app.get(
            &format!("/v1/cleaners/{}", scene.cleaner_id),
            Some(&scene.customer),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(seen["photo_url"], url);

    // The event others build on names the photo.
    let key = url.split("/v1/files/").nth(1).unwrap().to_owned();
    let announced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE routing_key = 'cleaner.updated' \
         AND position($1::bytea IN payload) > 0",
    )
    .bind(key.as_bytes())
    .fetch_one(&app.core_pool)
    .await
    .unwrap();
    assert_eq!(announced, 1);

    // A new photo replaces the old one, whose URL then finds nothing.
    let png = png(300, 200);
    let replaced = json_of(put_photo(app, &scene.cleaner, png).await, 200).await;
    let new_url = replaced["photo_url"].as_str().unwrap();
    assert_ne!(new_url, url);
    let image = app.client.get(new_url).send().await.unwrap();
    assert_eq!(image.status(), 200);
    let small = image::load_from_memory(&image.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (300, 200));
    problem(app.client.get(url).send().await.unwrap(), 404).await;
    assert_eq!(stored_keys(app.files.path()).len(), 1);

    // Removed: no URL, and no file left.
    let removed = app
        .client
        .delete(format!("{}/v1/me/cleaner-profile/photo", app.address))
        .bearer_auth(&scene.cleaner)
        .send()
        .await
        .unwrap();
    let removed = json_of(removed, 200).await;
    assert!(removed.get("photo_url").is_none_or(Value::is_null));
    problem(app.client.get(new_url).send().await.unwrap(), 404).await;
    assert!(stored_keys(app.files.path()).is_empty());
}

#[tokio::test]
async fn in_s3_a_photo_is_served_by_a_presigned_url_and_documents_through_the_gateway() {
    let moto = Moto::start().await;
    let bucket = moto.bucket().await;
    let store = StorageSettings {
        url: format!("s3://{bucket}/uploads"),
        region: "eu-west-1".to_owned(),
        endpoint: moto.endpoint.clone(),
        access_key_id: "test".to_owned(),
        secret_access_key: "test".to_owned(),
        url_ttl: Duration::from_secs(60),
        ..StorageSettings::default()
    };
    let scene = Scene::on(TestApp::builder().object_store(store).spawn().await).await;
    let app = &scene.app;

    let profile = json_of(
        put_photo(app, &scene.cleaner, jpeg_with_exif(1600, 1200)).await,
        200,
    )
    .await;
    let url = profile["photo_url"].as_str().unwrap();
    let photos = format!(
        "{}/{bucket}/uploads/photos/{}/",
        moto.endpoint, scene.cleaner_id
    );
    assert!(url.starts_with(&photos), "{url}");
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=60"),
        "{url}"
    );
    let served = app.client.get(url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    let bytes = served.bytes().await.unwrap();
    assert!(!contains(&bytes, SECRET));
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 1024);

    // Replaced: the old object is gone from the bucket, so its URL answers 404.
    let replaced = json_of(put_photo(app, &scene.cleaner, png(300, 200)).await, 200).await;
    let new_url = replaced["photo_url"].as_str().unwrap();
    assert_eq!(app.client.get(new_url).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 404);
    // The gateway serves files itself only from a local store.
    let key = new_url
        .split("/uploads/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    problem(app.get(&format!("/v1/files/{key}"), None).await, 404).await;

    // A document goes into the bucket and comes back through the gateway to its cleaner.
    let pdf = b"%PDF-1.7\n%%EOF\n".to_vec();
    let path = "/v1/me/cleaner-profile/documents/passport";
    json_of(
        put_bytes(app, path, &scene.cleaner, "application/pdf", pdf.clone()).await,
        200,
    )
    .await;
    let document = format!("/v1/cleaners/{}/documents/passport", scene.cleaner_id);
    let own = app.get(&document, Some(&scene.cleaner)).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.bytes().await.unwrap(), pdf);
    problem(app.get(&document, Some(&scene.customer)).await, 404).await;
}

#[tokio::test]
async fn uploads_that_are_not_pictures_or_too_large_are_refused_and_nothing_is_kept() {
    let scene = Scene::new().await;
    let app = &scene.app;
    let token = &scene.cleaner;

    // A text file sent as a JPEG: the bytes decide.
    let text = b"just some text, named photo.jpg".to_vec();
    let refused = problem(put_photo(app, token, text).await, 415).await;
    assert_eq!(refused["type"], "urn:spruce:problem:unsupported_media_type");
    // A GIF and a PDF are not among the photo formats.
    problem(
        put_photo(app, token, b"GIF89a\x01\x00\x01\x00".to_vec()).await,
        415,
    )
    .await;
    problem(put_photo(app, token, b"%PDF-1.7\n".to_vec()).await, 415).await;
    // A PNG cut short is a picture that cannot be read.
    let mut cut = png(400, 400);
    cut.truncate(cut.len() / 2);
    problem(put_photo(app, token, cut).await, 422).await;
    // One byte over 5 MiB, declared up front: refused before a byte of it is read.
    let limit = 5 * 1024 * 1024;
    let path = "/v1/me/cleaner-profile/photo";
    let declared = format!("content-length: {}\r\n", limit + 1);
    assert_eq!(raw_put(app, path, token, &declared, &[]).await, 413);
    // Without a length (chunked): refused once the bytes pass the limit.
    let mut large = png(64, 64);
    large.resize(limit + 1, 0);
    let mut chunk = format!("{:x}\r\n", large.len()).into_bytes();
    chunk.extend_from_slice(&large);
    chunk.extend_from_slice(b"\r\n");
    let chunked = "transfer-encoding: chunked\r\n";
    assert_eq!(raw_put(app, path, token, chunked, &chunk).await, 413);
    // Exactly the limit is read (and then found to be no picture).
    problem(put_photo(app, token, vec![b'x'; limit]).await, 415).await;

    // Customers have no photo; a cleaner without a profile has nowhere to put one.
    problem(put_photo(app, &scene.customer, png(10, 10)).await, 403).await;
    let newcomer = app.signup_as(&unique_email(), "cleaner").await;
    let newcomer = newcomer["access_token"].as_str().unwrap();
    problem(put_photo(app, newcomer, png(10, 10)).await, 404).await;
    // Unauthenticated.
    let anonymous = app
        .client
        .put(format!("{}/v1/me/cleaner-profile/photo", app.address))
        .body(png(10, 10))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;

    assert!(stored_keys(app.files.path()).is_empty());
}

#[tokio::test]
async fn documents_are_readable_by_their_cleaner_and_admins_only() {
    let scene = Scene::new().await;
    let app = &scene.app;
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec();
    let path = "/v1/me/cleaner-profile/documents/passport";
    let kept = json_of(
        put_bytes(app, path, &scene.cleaner, "image/png", pdf.clone()).await,
        200,
    )
    .await;
    assert_eq!(
        kept,
        json!({"kind": "passport", "content_type": "application/pdf", "size_bytes": pdf.len()})
    );

    let document = format!("/v1/cleaners/{}/documents/passport", scene.cleaner_id);
    let own = app.get(&document, Some(&scene.cleaner)).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["content-type"], "application/pdf");
    assert_eq!(own.headers()["cache-control"], "private, no-store");
    assert_eq!(own.bytes().await.unwrap(), pdf);
    let admin = app.get(&document, Some(&user_token("admin"))).await;
    assert_eq!(admin.status(), 200);
    assert_eq!(admin.bytes().await.unwrap(), pdf);

    // Anyone else: no such document, as for one never handed in.
    let other = app.signup_as(&unique_email(), "cleaner").await;
    let other = other["access_token"].as_str().unwrap();
    let theirs = problem(app.get(&document, Some(other)).await, 404).await;
    let missing = problem(
        app.get(
            &format!("/v1/cleaners/{}/documents/id_card", scene.cleaner_id),
            Some(&scene.cleaner),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(theirs["detail"], missing["detail"]);
    problem(app.get(&document, Some(&scene.customer)).await, 404).await;
    problem(app.get(&document, None).await, 401).await;
    // Documents are never served as public files.
    let key = format!("documents/{}/passport", scene.cleaner_id);
    problem(app.get(&format!("/v1/files/{key}"), None).await, 404).await;

    // Refused: an unknown kind, a text file, more than 10 MiB, a customer.
    let unknown = problem(
        put_bytes(
            app,
            "/v1/me/cleaner-profile/documents/selfie",
            &scene.cleaner,
            "application/pdf",
            pdf.clone(),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "kind");
    problem(
        put_bytes(
            app,
            path,
            &scene.cleaner,
            "application/pdf",
            b"not a pdf".to_vec(),
        )
        .await,
        415,
    )
    .await;
    let mut large = pdf.clone();
    large.resize(10 * 1024 * 1024 + 1, b' ');
    problem(
        put_bytes(app, path, &scene.cleaner, "application/pdf", large).await,
        413,
    )
    .await;
    problem(
        put_bytes(app, path, &scene.customer, "application/pdf", pdf.clone()).await,
        403,
    )
    .await;

    // The refusals left the kept one as it was.
    let again = app.get(&document, Some(&scene.cleaner)).await;
    assert_eq!(again.bytes().await.unwrap(), pdf);
}

#[tokio::test]
async fn a_deleted_cleaner_s_photo_and_documents_are_removed() {
    let scene = Scene::new().await;
    let app = &scene.app;
    json_of(put_photo(app, &scene.cleaner, png(50, 50)).await, 200).await;
    let pdf = b"%PDF-1.7\n%%EOF\n".to_vec();
    for kind in ["passport", "proof_of_address"] {
        let path = format!("/v1/me/cleaner-profile/documents/{kind}");
        json_of(
            put_bytes(app, &path, &scene.cleaner, "application/pdf", pdf.clone()).await,
            200,
        )
        .await;
    }
    // Someone else's files stay.
    let other = app.signup_as(&unique_email(), "cleaner").await;
    let other_id = other["user"]["id"].as_str().unwrap().to_owned();
    let other = other["access_token"].as_str().unwrap();
    json_of(
        put_bytes(
            app,
            "/v1/me/cleaner-profile/documents/id_card",
            other,
            "application/pdf",
            pdf,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(stored_keys(app.files.path()).len(), 4);

    let deleted = app
        .client
        .delete(format!("{}/v1/me", app.address))
        .bearer_auth(&scene.cleaner)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let left = eventually(
        "the deleted cleaner's files are removed",
        Duration::from_secs(10),
        || async {
            let keys = stored_keys(app.files.path());
            if keys.len() == 1 { Ok(keys) } else { Err(keys) }
        },
    )
    .await;
    assert_eq!(left, [format!("documents/{other_id}/id_card")]);
}

#[tokio::test]
async fn uploads_beyond_the_few_processed_at_once_get_503_and_trickled_bodies_are_cut_off() {
    let scene = Scene::new().await;
    let app = &scene.app;
    // Four slow clients each send part of a large body and wait: each holds a permit.
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "PUT /v1/me/cleaner-profile/photo HTTP/1.1\r\nhost: {host}\r\n\
             authorization: Bearer {}\r\ncontent-length: 4000000\r\n\r\n",
            scene.cleaner
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[0xFF, 0xD8, 0xFF, 0xE0]).await.unwrap();
        stream.flush().await.unwrap();
        slow.push(stream);
    }
    let busy = eventually(
        "a fifth upload is refused",
        Duration::from_secs(5),
        || async {
            let response = put_photo(app, &scene.cleaner, png(10, 10)).await;
            if response.status() == 503 {
                Ok(response)
            } else {
                Err(response.status())
            }
        },
    )
    .await;
    assert_eq!(busy.headers()["retry-after"], "5");
    // The slow clients are cut off once their bodies are overdue: the permits come back.
    let mut answer = [0_u8; 64];
    let read = slow[0].read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );
    eventually(
        "uploads are taken again",
        Duration::from_secs(10),
        || async {
            let response = put_photo(app, &scene.cleaner, png(10, 10)).await;
            if response.status() == 200 {
                Ok(())
            } else {
                Err(response.status())
            }
        },
    )
    .await;
}
