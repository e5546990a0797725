//! open_clip's eval transform, pixel for pixel: torchvision `Resize(size)` on a PIL image
//! (shortest side to `size`, the other side truncated as torchvision computes it, PIL
//! bicubic), `CenterCrop` (offsets rounded half to even, as Python's `round`), `ToTensor`
//! (`u8 / 255` in f32) and `Normalize` (`(x − mean) / std` in f32).
//!
//! open_clip converts to RGB after the crop; for RGB and grayscale input that equals
//! converting first, which is what taking an [`RgbImage`] does. (RGBA input differs: PIL
//! resizes it premultiplied, then drops alpha.)

use image::RgbImage;

use super::config::{ClipConfig, ResizeMode};
use crate::qwen2vl::image_processor::resize_bicubic_pil;

#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Model input `(height, width)`.
    pub size: (usize, usize),
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub mode: ResizeMode,
}

/// Python's `round` on a `.5`-or-integer value `n / 2`: half to even.
fn half_to_even_div2(n: usize) -> usize {
    let q = n / 2;
    if n % 2 == 1 && q % 2 == 1 { q + 1 } else { q }
}

impl Preprocess {
    pub fn from_config(cfg: &ClipConfig) -> Self {
        Self {
            size: cfg.input_hw(),
            mean: cfg.mean(),
            std: cfg.std(),
            mode: cfg.resize_mode(),
        }
    }

    /// torchvision's `_compute_resized_output_size` for `Resize(int)`, as `(w, h)`.
    pub fn resized_size(&self, w: usize, h: usize) -> (usize, usize) {
        let (th, tw) = self.size;
        match self.mode {
            ResizeMode::Squash => (tw, th),
            ResizeMode::Shortest => {
                // open_clip uses `Resize(size)` for a square target, which is all this
                // port accepts for "shortest" (see `ClipConfig::validate`).
                let size = th.min(tw);
                let (short, long) = if w <= h { (w, h) } else { (h, w) };
                if short == 0 {
                    return (0, 0);
                }
                // Python: `int(size * long / short)`, an exact product then one rounding.
                let new_long = ((size * long) as f64 / short as f64) as usize;
                if w <= h {
                    (size, new_long)
                } else {
                    (new_long, size)
                }
            }
        }
    }

    /// Resize and centre crop to the model size, as 8-bit RGB.
    pub fn resize_crop(&self, image: &RgbImage) -> RgbImage {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (rw, rh) = self.resized_size(w, h);
        let resized = if (rw, rh) == (w, h) {
            image.clone()
        } else {
            resize_bicubic_pil(image, rw.max(1), rh.max(1))
        };
        let (th, tw) = self.size;
        if (rw, rh) == (tw, th) {
            return resized;
        }
        // torchvision CenterCrop: `int(round((h - th) / 2.0))`; the resize above never
        // leaves a side shorter than the crop, so no padding is needed.
        let top = half_to_even_div2(rh.saturating_sub(th));
        let left = half_to_even_div2(rw.saturating_sub(tw));
        image::imageops::crop_imm(&resized, left as u32, top as u32, tw as u32, th as u32)
            .to_image()
    }

    /// Normalised CHW floats of an already resized and cropped image.
    pub fn normalize(&self, rgb: &RgbImage) -> Vec<f32> {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut out = vec![0f32; 3 * h * w];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = (f32::from(p[c]) / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        out
    }

    /// The model input of one image: CHW, `3 × height × width`.
    pub fn pixels(&self, image: &RgbImage) -> Vec<f32> {
        self.normalize(&self.resize_crop(image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(half_to_even_div2(45), 22); // 22.5 → 22
        assert_eq!(half_to_even_div2(47), 24); // 23.5 → 24
        assert_eq!(half_to_even_div2(44), 22);
        let p = Preprocess {
            size: (224, 224),
            mean: [0.0; 3],
            std: [1.0; 3],
            mode: ResizeMode::Shortest,
        };
        assert_eq!(p.resized_size(301, 250), (269, 224));
        assert_eq!(p.resized_size(250, 300), (224, 268));
        assert_eq!(p.resized_size(160, 106), (338, 224));
    }
}
