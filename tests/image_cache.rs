//! The shared image cache: background decode, thumbnails, LRU eviction by bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::image_cache::{ImageCache, ImageSource, ImageState, Resolution, decode};
use loupe::worker::Worker;
use std::time::{Duration, Instant};

fn write_png(dir: &std::path::Path, name: &str, w: u32, h: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, 255])
    })
    .save(&path)
    .unwrap();
    path
}

fn wait_ready(
    cache: &mut ImageCache,
    source: &ImageSource,
    res: Resolution,
) -> ([u32; 2], [usize; 2]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        cache.begin_frame();
        match cache.get(source, res) {
            ImageState::Ready(img) => return (img.original_size, img.texture.size()),
            ImageState::Failed(msg) => panic!("{msg}"),
            ImageState::Loading => {}
        }
        assert!(Instant::now() < deadline, "decode never finished");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn thumbnails_keep_aspect_and_report_the_original_size() {
    let dir = tempfile::tempdir().unwrap();
    let src = ImageSource::File(write_png(dir.path(), "wide.png", 400, 100));
    let d = decode(&src, Resolution::Thumbnail(64)).unwrap();
    assert_eq!(d.original_size, [400, 100]);
    assert_eq!(d.image.size, [64, 16]);
    // Small images are never upscaled.
    assert_eq!(
        decode(&src, Resolution::Thumbnail(1000))
            .unwrap()
            .image
            .size,
        [400, 100]
    );
    // Full resolution keeps every pixel value.
    let full = decode(&src, Resolution::Full).unwrap();
    assert_eq!(full.image.pixels[401], egui::Color32::from_rgb(1, 1, 7));
}

#[test]
fn bad_files_fail_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xFF\xD8\xFF\xE0 not really a jpeg").unwrap();
    let err = decode(&ImageSource::File(bad), Resolution::Full)
        .err()
        .unwrap();
    assert!(err.contains("broken.jpg"), "{err}");
    let missing = decode(
        &ImageSource::File(dir.path().join("gone.png")),
        Resolution::Full,
    )
    .err()
    .unwrap();
    assert!(missing.contains("gone.png"), "{missing}");
}

#[test]
fn decodes_in_the_background_and_evicts_least_recently_used_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = egui::Context::default();
    // Each 100×100 RGBA image is 40 000 bytes; the budget holds two.
    let mut cache = ImageCache::new(ctx, Worker::headless().unwrap(), 90_000);
    let sources: Vec<ImageSource> = (0..3)
        .map(|i| ImageSource::File(write_png(dir.path(), &format!("{i}.png"), 100, 100)))
        .collect();
    // The first request returns at once: decoding happens elsewhere.
    assert!(matches!(
        cache.get(&sources[0], Resolution::Full),
        ImageState::Loading
    ));
    assert_eq!(
        wait_ready(&mut cache, &sources[0], Resolution::Full),
        ([100, 100], [100, 100])
    );
    wait_ready(&mut cache, &sources[1], Resolution::Full);
    assert_eq!(cache.bytes(), 80_000);
    // Touch 0 so that 1 becomes least recently used, then load 2.
    cache.begin_frame();
    cache.get(&sources[0], Resolution::Full);
    wait_ready(&mut cache, &sources[2], Resolution::Full);
    // Next frame: over budget, so 1 goes (0 and 2 were used in the last frame).
    cache.begin_frame();
    assert_eq!(cache.bytes(), 80_000);
    assert_eq!(cache.len(), 2);
    assert!(
        matches!(
            cache.get(&sources[1], Resolution::Full),
            ImageState::Loading
        ),
        "1 was evicted"
    );
    assert!(matches!(
        cache.get(&sources[0], Resolution::Full),
        ImageState::Ready(_)
    ));
}
