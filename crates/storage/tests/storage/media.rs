//! Uploads are told apart by their bytes, and profile photos come out as small JPEGs
//! without the upload's metadata.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use spruce_storage::media::{MediaError, MediaType, PHOTO_MAX_SIDE, profile_photo};

fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let picture = DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }));
    let mut bytes = Cursor::new(Vec::new());
    picture.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A JPEG with an EXIF segment (a camera's make and a GPS tag's bytes) right after its start.
fn jpeg_with_exif() -> Vec<u8> {
    let plain = encoded(2000, 1500, ImageFormat::Jpeg);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08SecretCam GPSLatitude 52.5200";
    let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
    let mut with_exif = vec![0xFF, 0xD8, 0xFF, 0xE1, length[0], length[1]];
    with_exif.extend_from_slice(payload);
    with_exif.extend_from_slice(&plain[2..]);
    with_exif
}

#[test]
fn the_type_is_read_from_the_bytes() {
    assert_eq!(
        MediaType::sniff(&encoded(4, 4, ImageFormat::Jpeg)),
        Some(MediaType::Jpeg)
    );
    assert_eq!(
        MediaType::sniff(&encoded(4, 4, ImageFormat::Png)),
        Some(MediaType::Png)
    );
    assert_eq!(
        MediaType::sniff(&encoded(4, 4, ImageFormat::WebP)),
        Some(MediaType::Webp)
    );
    assert_eq!(MediaType::sniff(b"%PDF-1.7\n..."), Some(MediaType::Pdf));
    for other in [
        &b"just some text, saved as photo.jpg"[..],
        b"GIF89a\x01\x00\x01\x00",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"",
        b"\xFF\xD8",
    ] {
        assert_eq!(MediaType::sniff(other), None, "{other:?}");
    }
}

#[test]
fn a_large_photo_is_scaled_to_fit_and_loses_its_metadata() {
    let upload = jpeg_with_exif();
    assert!(upload.windows(9).any(|w| w == b"SecretCam"));
    let photo = profile_photo(&upload).unwrap();
    assert_eq!((photo.width, photo.height), (PHOTO_MAX_SIDE, 768));
    assert_eq!(MediaType::sniff(&photo.jpeg), Some(MediaType::Jpeg));
    assert!(!photo.jpeg.windows(4).any(|w| w == b"Exif"));
    assert!(!photo.jpeg.windows(9).any(|w| w == b"SecretCam"));
    let decoded = image::load_from_memory(&photo.jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1024, 768));
}

#[test]
fn png_and_webp_become_jpeg_and_a_small_one_keeps_its_size() {
    for format in [ImageFormat::Png, ImageFormat::WebP] {
        let photo = profile_photo(&encoded(300, 200, format)).unwrap();
        assert_eq!(
            MediaType::sniff(&photo.jpeg),
            Some(MediaType::Jpeg),
            "{format:?}"
        );
        assert_eq!((photo.width, photo.height), (300, 200));
    }
    let tall = profile_photo(&encoded(500, 3000, ImageFormat::Png)).unwrap();
    assert_eq!(tall.height, PHOTO_MAX_SIDE);
}

#[test]
fn what_is_not_a_picture_or_does_not_decode_is_refused() {
    assert_eq!(
        profile_photo(b"just some text, saved as photo.jpg").unwrap_err(),
        MediaError::Unsupported
    );
    assert_eq!(
        profile_photo(b"%PDF-1.7").unwrap_err(),
        MediaError::Unsupported
    );
    let mut cut = encoded(400, 400, ImageFormat::Png);
    cut.truncate(cut.len() / 2);
    assert!(matches!(profile_photo(&cut), Err(MediaError::Broken(_))));
    // A well-formed PNG header claiming 100,000 pixels a side (40 GB to decode) is refused
    // before its pixels are made.
    let mut huge = encoded(1, 1, ImageFormat::Png);
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let checksum = crc32(&huge[12..29]).to_be_bytes();
    huge[29..33].copy_from_slice(&checksum);
    let refused = profile_photo(&huge).unwrap_err();
    assert!(
        matches!(&refused, MediaError::Broken(why) if why.contains("limit")),
        "{refused:?}"
    );
}

/// PNG's chunk checksum (CRC-32, ISO-HDLC).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
