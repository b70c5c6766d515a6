//! What uploaded files are, read from their first bytes (never from a name or a header),
//! and profile photos made fit to keep: decoded within limits, scaled to at most
//! [`PHOTO_MAX_SIDE`] pixels a side and written again as JPEG, which leaves every metadata
//! segment of the upload (EXIF with its GPS position, comments, colour profiles) behind.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, codecs::jpeg::JpegEncoder};

/// The longest side of a stored profile photo, in pixels.
pub const PHOTO_MAX_SIDE: u32 = 1024;
/// The largest picture decoded, a side, in pixels.
const MAX_DECODED_SIDE: u32 = 12_000;
/// The most memory one decode may take.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
const JPEG_QUALITY: u8 = 85;

/// A kind of file the services accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl MediaType {
    /// The type `bytes` start like, if it is one of ours.
    pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(MediaType::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(MediaType::Png),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(MediaType::Webp),
            [b'%', b'P', b'D', b'F', b'-', ..] => Some(MediaType::Pdf),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
            MediaType::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
            MediaType::Webp => "webp",
            MediaType::Pdf => "pdf",
        }
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            MediaType::Jpeg => Some(ImageFormat::Jpeg),
            MediaType::Png => Some(ImageFormat::Png),
            MediaType::Webp => Some(ImageFormat::WebP),
            MediaType::Pdf => None,
        }
    }
}

/// Why an upload cannot be a photo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("not a JPEG, PNG or WebP picture")]
    Unsupported,
    #[error("the picture cannot be read: {0}")]
    Broken(String),
}

/// A profile photo as stored: JPEG, at most [`PHOTO_MAX_SIDE`] a side.
#[derive(Debug, Clone)]
pub struct Photo {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Makes `upload` (a JPEG, PNG or WebP, by its bytes) a profile photo. CPU-bound: run it
/// off the async workers.
///
/// # Errors
/// [`MediaError::Unsupported`] for anything else, [`MediaError::Broken`] for a picture that
/// does not decode or is larger than the limits.
pub fn profile_photo(upload: &[u8]) -> Result<Photo, MediaError> {
    let format = MediaType::sniff(upload)
        .and_then(MediaType::image_format)
        .ok_or(MediaError::Unsupported)?;
    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader
        .decode()
        .map_err(|error| MediaError::Broken(error.to_string()))?;
    let picture = if picture.width() > PHOTO_MAX_SIDE || picture.height() > PHOTO_MAX_SIDE {
        // Area averaging: every source pixel counts once, so no aliasing, in one pass and
        // several times faster than a triangle filter (BENCHMARKS.md, "Profile photos").
        picture.thumbnail(PHOTO_MAX_SIDE, PHOTO_MAX_SIDE)
    } else {
        picture
    };
    // JPEG has no transparency: what was transparent becomes black, as most viewers show it.
    let picture = DynamicImage::ImageRgb8(picture.to_rgb8());
    let mut jpeg = Vec::new();
    picture
        .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY))
        .map_err(|error| MediaError::Broken(error.to_string()))?;
    Ok(Photo {
        jpeg,
        width: picture.width(),
        height: picture.height(),
    })
}
