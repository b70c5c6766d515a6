//! What one profile photo upload costs the gateway in CPU: decoding a phone's picture,
//! scaling it to 1024 px and writing it again as JPEG (`media::profile_photo`).
//!
//! `cargo bench -p spruce-storage --bench photo`

use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};
use spruce_storage::media::profile_photo;

/// A `width` × `height` picture in `format`, a gradient with some noise, so that it
/// compresses like a photo rather than like a flat colour.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed % 24) as u8;
        image::Rgb([
            ((x * 255 / width) as u8).wrapping_add(noise),
            ((y * 255 / height) as u8).wrapping_add(noise),
            (((x + y) % 256) as u8).wrapping_add(noise),
        ])
    });
    let mut bytes = Cursor::new(Vec::new());
    pixels.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

fn photos(criterion: &mut Criterion) {
    let phone = picture(4032, 3024, image::ImageFormat::Jpeg);
    let screenshot = picture(1170, 2532, image::ImageFormat::Png);
    println!(
        "inputs: 12 MP JPEG {} bytes, 1170x2532 PNG {} bytes",
        phone.len(),
        screenshot.len()
    );
    criterion.bench_function("12 MP JPEG to a 1024 px photo", |bench| {
        bench.iter(|| profile_photo(std::hint::black_box(&phone)).expect("a photo"));
    });
    criterion.bench_function("1170x2532 PNG to a 1024 px photo", |bench| {
        bench.iter(|| profile_photo(std::hint::black_box(&screenshot)).expect("a photo"));
    });
    // The scaling step alone, the two ways side by side in one run.
    let decoded = image::load_from_memory(&phone).expect("decodes");
    let mut scaling = criterion.benchmark_group("scaling a 12 MP picture to 1024 px");
    scaling.bench_function(
        "area average (thumbnail, what profile_photo does)",
        |bench| {
            bench.iter(|| std::hint::black_box(&decoded).thumbnail(1024, 1024));
        },
    );
    scaling.bench_function("triangle filter (resize)", |bench| {
        bench.iter(|| {
            std::hint::black_box(&decoded).resize(1024, 1024, image::imageops::FilterType::Triangle)
        });
    });
    scaling.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = photos
}
criterion_main!(benches);
