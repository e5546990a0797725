//! `Qwen2VLImageProcessor`, reproduced exactly: `smart_resize`, PIL's bicubic resample,
//! rescale, CLIP normalisation and the 2×2-window patch layout.
//!
//! The resampler is written by hand because the reference runs PIL's 8-bit
//! fixed-point convolution (`libImaging/Resample.c`), and no Rust crate reproduces its
//! rounding: `image`/`fast_image_resize` differ by a grey level on many pixels, which
//! moves the vision tower's input by ~0.015 after normalisation.

use image::{DynamicImage, RgbImage};
use serde::Deserialize;

use super::Error;

#[derive(Clone, Debug, Deserialize)]
pub struct ImageProcessorConfig {
    #[serde(default = "default_min_pixels")]
    pub min_pixels: usize,
    #[serde(default = "default_max_pixels")]
    pub max_pixels: usize,
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    #[serde(default = "default_temporal")]
    pub temporal_patch_size: usize,
    #[serde(default = "default_merge")]
    pub merge_size: usize,
    #[serde(default = "default_mean")]
    pub image_mean: [f32; 3],
    #[serde(default = "default_std")]
    pub image_std: [f32; 3],
}

fn default_min_pixels() -> usize {
    56 * 56
}
fn default_max_pixels() -> usize {
    28 * 28 * 1280
}
fn default_patch() -> usize {
    14
}
fn default_temporal() -> usize {
    2
}
fn default_merge() -> usize {
    2
}
#[allow(clippy::excessive_precision)]
fn default_mean() -> [f32; 3] {
    [0.48145466, 0.4578275, 0.40821073]
}
// The released constants, digit for digit (f32 rounds them as the reference does).
#[allow(clippy::excessive_precision)]
fn default_std() -> [f32; 3] {
    [0.26862954, 0.26130258, 0.27577711]
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        Self {
            min_pixels: default_min_pixels(),
            max_pixels: default_max_pixels(),
            patch_size: default_patch(),
            temporal_patch_size: default_temporal(),
            merge_size: default_merge(),
            image_mean: default_mean(),
            image_std: default_std(),
        }
    }
}

impl ImageProcessorConfig {
    /// Parses `preprocessor_config.json`. Newer files nest the pixel limits in `size`.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        super::config::parse_json(text, origin, |obj| {
            if let Some(serde_json::Value::Object(size)) = obj.get("size").cloned() {
                for key in ["min_pixels", "max_pixels"] {
                    if let Some(v) = size.get(key)
                        && !obj.contains_key(key)
                    {
                        obj.insert(key.to_string(), v.clone());
                    }
                }
            }
        })
    }

    /// Side length that resized images are multiples of (patch × merge = 28).
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }
}

/// One image ready for the vision tower.
#[derive(Clone, Debug)]
pub struct ProcessedImage {
    /// Rows of `channels × temporal × patch²` values, `grid_t·grid_h·grid_w` rows.
    pub pixel_values: Vec<f32>,
    /// `(t, h, w)` in patches.
    pub grid_thw: [usize; 3],
    /// Size fed to the model, `(height, width)`.
    pub resized_hw: (usize, usize),
    /// Size of the image as given, `(width, height)`: boxes map back to it.
    pub original_wh: (u32, u32),
}

impl ProcessedImage {
    /// `<|image_pad|>` tokens this image expands to.
    pub fn llm_tokens(&self, merge: usize) -> usize {
        self.grid_thw.iter().product::<usize>() / (merge * merge)
    }
}

/// The target `(height, width)` of `smart_resize`: multiples of `factor`, as close to the
/// input as possible, with the pixel count inside `[min_pixels, max_pixels]`.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize), Error> {
    if height < factor || width < factor {
        return Err(Error::Image(format!(
            "image of {width}×{height} px is smaller than {factor} px on one side"
        )));
    }
    let (h, w) = (height as f64, width as f64);
    if h.max(w) / h.min(w) > 200.0 {
        return Err(Error::Image(format!(
            "image of {width}×{height} px has an aspect ratio above 200"
        )));
    }
    let f = factor as f64;
    // Python's round() is half-to-even; 126/28 = 4.5 must give 4.
    let mut h_bar = (h / f).round_ties_even() * f;
    let mut w_bar = (w / f).round_ties_even() * f;
    if h_bar * w_bar > max_pixels as f64 {
        let beta = (h * w / max_pixels as f64).sqrt();
        h_bar = (h / beta / f).floor() * f;
        w_bar = (w / beta / f).floor() * f;
    } else if h_bar * w_bar < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() * f;
        w_bar = (w * beta / f).ceil() * f;
    }
    if h_bar < f || w_bar < f {
        return Err(Error::Image(format!(
            "image of {width}×{height} px cannot fit max_pixels {max_pixels}"
        )));
    }
    Ok((h_bar as usize, w_bar as usize))
}

/// Converts to 8-bit RGB the way transformers' `convert_to_rgb` does: transparent
/// pixels are composited over white, not just stripped of alpha.
pub fn to_rgb8(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let a = src[3] as u32;
        for c in 0..3 {
            // PIL's alpha_composite over an opaque background: round(src·a + 255·(255−a)) / 255.
            let v = (src[c] as u32 * a + 255 * (255 - a) + 127) / 255;
            dst[c] = v.min(255) as u8;
        }
    }
    out
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point filter taps for one axis, as PIL's `precompute_coeffs` +
/// `normalize_coeffs_8bpc` compute them.
struct Taps {
    ksize: usize,
    /// `(first input index, tap count)` per output index.
    bounds: Vec<(usize, usize)>,
    coeffs: Vec<i32>,
}

fn precompute_taps(in_size: usize, out_size: usize) -> Taps {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut coeffs = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C truncation toward zero of `center ± support + 0.5`, then clamped.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, &kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { kx };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            coeffs[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Taps {
        ksize,
        bounds,
        coeffs,
    }
}

fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// PIL `Image.resize((w, h), BICUBIC)` on an RGB image, bit for bit: a horizontal pass
/// into an 8-bit buffer holding only the rows the vertical pass reads, then the vertical
/// pass.
pub fn resize_bicubic_pil(src: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let horiz = precompute_taps(in_w, out_w);
    let vert = precompute_taps(in_h, out_h);
    let data = src.as_raw();
    let half = 1i32 << (PRECISION_BITS - 1);

    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let (first_row, last_row) = if need_h {
        let (first, _) = vert.bounds[0];
        let (lmin, ln) = vert.bounds[out_h - 1];
        (first, lmin + ln)
    } else {
        (0, in_h)
    };

    // Horizontal pass over the rows the vertical pass needs.
    let (tmp, tmp_w, row_offset) = if need_h {
        let rows = last_row - first_row;
        let mut tmp = vec![0u8; rows * out_w * 3];
        for y in 0..rows {
            let src_row = &data[(y + first_row) * in_w * 3..(y + first_row + 1) * in_w * 3];
            for xx in 0..out_w {
                let (xmin, n) = horiz.bounds[xx];
                let k = &horiz.coeffs[xx * horiz.ksize..xx * horiz.ksize + n];
                let mut ss = [half; 3];
                for (x, &kx) in k.iter().enumerate() {
                    let p = &src_row[(xmin + x) * 3..(xmin + x) * 3 + 3];
                    for c in 0..3 {
                        ss[c] += p[c] as i32 * kx;
                    }
                }
                let o = (y * out_w + xx) * 3;
                for c in 0..3 {
                    tmp[o + c] = clip8(ss[c]);
                }
            }
        }
        (tmp, out_w, first_row)
    } else {
        (data.clone(), in_w, 0)
    };

    if !need_v {
        return RgbImage::from_raw(out_w as u32, out_h as u32, tmp).unwrap_or_default();
    }
    let mut out = vec![0u8; out_w * out_h * 3];
    for yy in 0..out_h {
        let (ymin, n) = vert.bounds[yy];
        let ymin = ymin - row_offset;
        let k = &vert.coeffs[yy * vert.ksize..yy * vert.ksize + n];
        for xx in 0..tmp_w {
            let mut ss = [half; 3];
            for (y, &ky) in k.iter().enumerate() {
                let o = ((ymin + y) * tmp_w + xx) * 3;
                for c in 0..3 {
                    ss[c] += tmp[o + c] as i32 * ky;
                }
            }
            let o = (yy * out_w + xx) * 3;
            for c in 0..3 {
                out[o + c] = clip8(ss[c]);
            }
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).unwrap_or_default()
}

/// Resizes, normalises and patchifies one image.
pub fn process_image(
    image: &DynamicImage,
    cfg: &ImageProcessorConfig,
) -> Result<ProcessedImage, Error> {
    let rgb = to_rgb8(image);
    let original_wh = (rgb.width(), rgb.height());
    let (h, w) = smart_resize(
        rgb.height() as usize,
        rgb.width() as usize,
        cfg.factor(),
        cfg.min_pixels,
        cfg.max_pixels,
    )?;
    let resized = resize_bicubic_pil(&rgb, w, h);
    let pixel_values = patchify(&resized, cfg);
    let p = cfg.patch_size;
    Ok(ProcessedImage {
        pixel_values,
        grid_thw: [1, h / p, w / p],
        resized_hw: (h, w),
        original_wh,
    })
}

/// Rescales by 1/255 and normalises (as the reference: f64 product, then f32), then
/// lays out rows in 2×2 merge windows: window-major, row-major inside a window; each
/// row channel-major, then the (duplicated) temporal frames, then the patch pixels.
pub fn patchify(resized: &RgbImage, cfg: &ImageProcessorConfig) -> Vec<f32> {
    let (w, h) = (resized.width() as usize, resized.height() as usize);
    let p = cfg.patch_size;
    let m = cfg.merge_size;
    let t = cfg.temporal_patch_size;
    let (gh, gw) = (h / p, w / p);
    let row_len = 3 * t * p * p;
    let raw = resized.as_raw();
    // Normalised value per byte and channel: a 256×3 table instead of per-pixel math.
    let mut table = [[0f32; 256]; 3];
    for (c, lut) in table.iter_mut().enumerate() {
        for (v, out) in lut.iter_mut().enumerate() {
            let scaled = (v as f64 * (1.0 / 255.0)) as f32;
            *out = (scaled - cfg.image_mean[c]) / cfg.image_std[c];
        }
    }
    let mut out = Vec::with_capacity(gh * gw * row_len);
    for bh in 0..gh / m {
        for bw in 0..gw / m {
            for ih in 0..m {
                for iw in 0..m {
                    let y0 = (bh * m + ih) * p;
                    let x0 = (bw * m + iw) * p;
                    for (c, lut) in table.iter().enumerate() {
                        for _frame in 0..t {
                            for py in 0..p {
                                let row = (y0 + py) * w;
                                for px in 0..p {
                                    out.push(lut[raw[(row + x0 + px) * 3 + c] as usize]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
