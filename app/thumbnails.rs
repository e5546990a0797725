//! Fast thumbnails for grids of large figures.
//!
//! - JPEG DCT-domain downscaling: `jpeg-decoder` runs a 1×1, 2×2 or 4×4 inverse DCT
//!   per 8×8 block instead of the full one (libjpeg's `scale_denom`), so a 4000-px
//!   figure decodes straight to ~500 px; a box filter then makes the exact size. The
//!   `image` crate's decoder (zune-jpeg) cannot scale while decoding.
//! - An on-disk cache of finished thumbnails (small JPEGs under the cache folder), keyed
//!   by the source's location, its container's size and mtime, and the thumbnail size,
//!   so reopening a dataset shows its grid without decoding any figure again.

use crate::image_cache::ImageSource;
use image::{DynamicImage, GrayImage, RgbImage};
use std::path::{Path, PathBuf};

/// Decode `bytes` (a JPEG) at the smallest DCT scale whose longer side is still at
/// least `side`, then box-filter to at most `side`. Returns the thumbnail and the
/// image's full size; `None` when this path cannot take the file (not a JPEG, CMYK,
/// 16-bit, or any decoding error): the caller then decodes it in full.
pub fn decode_jpeg_scaled(bytes: &[u8], side: u32) -> Option<(DynamicImage, [u32; 2])> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    // jpeg-decoder asserts on a few malformed headers; a bad figure must not take the
    // decode worker down, so a panic counts as "use the full decoder".
    std::panic::catch_unwind(|| scaled(bytes, side))
        .ok()
        .flatten()
}

fn scaled(bytes: &[u8], side: u32) -> Option<(DynamicImage, [u32; 2])> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let full = [u32::from(info.width), u32::from(info.height)];
    // Ask for a box whose longer side is `side`, keeping the aspect ratio, so the
    // chosen scale never drops below the thumbnail's resolution.
    let long = full[0].max(full[1]).max(1);
    // Without a real reduction the DCT path gains nothing; the full decoder (whose
    // rounding the rest of the app is used to) takes those.
    if long < 2 * side {
        return None;
    }
    // Twice the thumbnail: the box filter then averages at least 2×2 decoded pixels per
    // output pixel, which keeps edges from aliasing (1/8 straight to size does).
    let want = |d: u32| ((u64::from(d) * u64::from(2 * side)).div_ceil(u64::from(long))) as u16;
    let (w, h) = decoder
        .scale(want(full[0]).max(1), want(full[1]).max(1))
        .ok()?;
    let pixels = decoder.decode().ok()?;
    let (w, h) = (u32::from(w), u32::from(h));
    let img = match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels)?)
        }
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels)?)
        }
        // Adobe CMYK conventions vary; the full decoder handles them.
        jpeg_decoder::PixelFormat::CMYK32 | jpeg_decoder::PixelFormat::L16 => return None,
    };
    let img = if w.max(h) > side {
        img.thumbnail(side, side)
    } else {
        img
    };
    Some((img, full))
}

/// The on-disk thumbnail cache.
#[derive(Clone, Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

const MAGIC: &[u8; 4] = b"LTH1";
const QUALITY: u8 = 90;

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl DiskCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$LOUPE_CACHE_DIR/thumbnails` or the user cache folder's `loupe/thumbnails`.
    pub fn default_dir() -> PathBuf {
        crate::datasets::biomedica::sidecar::default_dir()
            .parent()
            .map_or_else(std::env::temp_dir, Path::to_path_buf)
            .join("thumbnails")
    }

    /// The file for a source and size; `None` for sources not worth caching (embedded
    /// demo bytes) or whose container cannot be stat'ed.
    fn path(&self, source: &ImageSource, side: u32) -> Option<PathBuf> {
        let (file, offset, len) = match source {
            ImageSource::File(p) => (p.as_path(), 0, 0),
            ImageSource::Member { path, offset, len } => (&**path, *offset, *len),
            ImageSource::Embedded { .. } => return None,
        };
        let meta = std::fs::metadata(file).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let mut h = fnv1a(0xcbf2_9ce4_8422_2325, abs.as_os_str().as_encoded_bytes());
        for part in [offset, len, meta.len(), side.into()] {
            h = fnv1a(h, &part.to_le_bytes());
        }
        h = fnv1a(h, &mtime.to_le_bytes());
        // 256 folders keep directories small at millions of thumbnails.
        Some(
            self.dir
                .join(format!("{:02x}", h >> 56))
                .join(format!("{h:016x}-{side}.lth")),
        )
    }

    /// A cached thumbnail and the image's full size.
    pub fn get(&self, source: &ImageSource, side: u32) -> Option<(DynamicImage, [u32; 2])> {
        let bytes = std::fs::read(self.path(source, side)?).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let (size, jpeg) = rest.split_at_checked(8)?;
        let w = u32::from_le_bytes(size[..4].try_into().ok()?);
        let h = u32::from_le_bytes(size[4..].try_into().ok()?);
        let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).ok()?;
        Some((img, [w, h]))
    }

    /// Store a thumbnail (atomically; failures only cost a later re-decode).
    pub fn put(&self, source: &ImageSource, side: u32, img: &DynamicImage, full: [u32; 2]) {
        let Some(path) = self.path(source, side) else {
            return;
        };
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&full[0].to_le_bytes());
        out.extend_from_slice(&full[1].to_le_bytes());
        let rgb = img.to_rgb8();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY);
        if rgb.write_with_encoder(encoder).is_err() {
            return;
        }
        if let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_ok()
            && let Err(e) = crate::atomic::write_atomic(&path, &out)
        {
            tracing::debug!("thumbnail cache: {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
        let mse = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            / a.as_raw().len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
    }

    /// A 2400 × 1600 JPEG made from a shared photo, as large figures are.
    fn big_jpeg() -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/coffee.jpg");
        let img = image::open(dir).unwrap_or_else(|e| panic!("{e}"));
        let big = img.resize_exact(2400, 1600, image::imageops::FilterType::Triangle);
        let mut out = Vec::new();
        big.to_rgb8()
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out, 92,
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    #[test]
    fn dct_scaled_thumbnails_match_full_decodes() {
        let jpeg = big_jpeg();
        let (fast, full) = decode_jpeg_scaled(&jpeg, 256).unwrap_or_else(|| panic!("scaled"));
        assert_eq!(full, [2400, 1600]);
        // The reference: the image crate's full decode, then the same box filter.
        let reference = image::load_from_memory(&jpeg)
            .unwrap_or_else(|e| panic!("{e}"))
            .thumbnail(256, 256)
            .to_rgb8();
        let fast = fast.to_rgb8();
        assert_eq!(fast.dimensions(), reference.dimensions());
        let p = psnr(&fast, &reference);
        eprintln!("PSNR {p:.1} dB");
        assert!(p > 30.0, "PSNR {p:.1} dB");
        // Not a JPEG, or garbage after the SOI marker: no panic, the caller falls back.
        assert!(decode_jpeg_scaled(b"\x89PNG....", 64).is_none());
        assert!(decode_jpeg_scaled(&[0xFF, 0xD8, 0xFF, 0xC0, 0, 3, 1], 64).is_none());
        assert!(decode_jpeg_scaled(&jpeg[..jpeg.len() / 3], 64).is_none_or(|(i, _)| i.width() > 0));
    }

    #[test]
    fn the_disk_cache_round_trips_and_misses_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("figure.jpg");
        let jpeg = big_jpeg();
        crate::atomic::write_atomic(&file, &jpeg).unwrap_or_else(|e| panic!("{e}"));
        let cache = DiskCache::new(dir.path().join("thumbs"));
        let source = ImageSource::File(file.clone());
        assert!(cache.get(&source, 128).is_none());
        let (thumb, full) = decode_jpeg_scaled(&jpeg, 128).unwrap_or_else(|| panic!());
        cache.put(&source, 128, &thumb, full);
        let (back, size) = cache.get(&source, 128).unwrap_or_else(|| panic!("cached"));
        assert_eq!(size, [2400, 1600]);
        assert_eq!(
            (back.width(), back.height()),
            (thumb.width(), thumb.height())
        );
        assert!(psnr(&back.to_rgb8(), &thumb.to_rgb8()) > 30.0);
        // Another size is another entry; a rewritten file is a miss.
        assert!(cache.get(&source, 256).is_none());
        let mut changed = jpeg.clone();
        changed.extend_from_slice(b"more");
        crate::atomic::write_atomic(&file, &changed).unwrap_or_else(|e| panic!("{e}"));
        assert!(cache.get(&source, 128).is_none());
    }
}
