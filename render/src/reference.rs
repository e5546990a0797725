//! The CPU reference splat renderer: f64, written straight from the 3D Gaussian
//! Splatting paper's equations (EWA projection with the 0.3 px low-pass, SH colour,
//! global depth sort, front-to-back alpha compositing with early stop). It shares no
//! code with the GPU path and exists to check it.

use crate::camera::Camera;
use crate::splats::Splats;
use nalgebra::{Matrix3, Point3, Quaternion, UnitQuaternion, Vector3};
use rayon::prelude::*;

/// Options shared by both renderers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderSettings {
    /// Highest SH degree to evaluate (capped by the data's degree).
    pub sh_degree: u32,
    /// Multiplies every splat's scale (the viewers' "splat scale" slider).
    pub scale_modifier: f32,
    /// Splats below this opacity are not drawn.
    pub min_opacity: f32,
    pub background: [f32; 3],
    /// Draw only splats flagged as foreground (when the data has a mask).
    pub foreground_only: bool,
    /// Offscreen images: no background, alpha = coverage (for compositing elsewhere).
    pub transparent: bool,
    /// Point display: when > 0, every splat is drawn as an opaque round dot with this
    /// standard deviation in pixels (its centre and colour only), instead of its
    /// ellipsoid; the viewers' "centers" mode for seeing structure inside dense scenes.
    pub point_size: f32,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            sh_degree: 3,
            scale_modifier: 1.0,
            min_opacity: 0.0,
            background: [0.0; 3],
            foreground_only: false,
            transparent: false,
            point_size: 0.0,
        }
    }
}

impl RenderSettings {
    pub fn keeps(&self, splats: &Splats, i: usize) -> bool {
        splats.opacities[i] >= self.min_opacity
            && !(self.foreground_only && splats.foreground.as_ref().is_some_and(|fg| !fg[i]))
    }
}

const SH_C0: f64 = 0.282_094_791_773_878_14;
const SH_C1: f64 = 0.488_602_511_902_919_9;
const SH_C2: [f64; 5] = [
    1.092_548_430_592_079_2,
    -1.092_548_430_592_079_2,
    0.315_391_565_252_520_05,
    -1.092_548_430_592_079_2,
    0.546_274_215_296_039_6,
];
const SH_C3: [f64; 7] = [
    -0.590_043_589_926_643_5,
    2.890_611_442_640_554,
    -0.457_045_799_464_465_8,
    0.373_176_332_590_115_4,
    -0.457_045_799_464_465_8,
    1.445_305_721_320_277,
    -0.590_043_589_926_643_5,
];

/// View-dependent colour from SH coefficients (RGB triplets) for a unit direction.
pub fn sh_to_color(sh: &[f32], degree: u32, dir: Vector3<f64>) -> [f64; 3] {
    let c = |k: usize| {
        Vector3::new(
            f64::from(sh[k * 3]),
            f64::from(sh[k * 3 + 1]),
            f64::from(sh[k * 3 + 2]),
        )
    };
    let mut rgb = c(0) * SH_C0;
    let (x, y, z) = (dir.x, dir.y, dir.z);
    if degree > 0 {
        rgb += c(1) * (-SH_C1 * y) + c(2) * (SH_C1 * z) + c(3) * (-SH_C1 * x);
    }
    if degree > 1 {
        let (xx, yy, zz, xy, yz, xz) = (x * x, y * y, z * z, x * y, y * z, x * z);
        rgb += c(4) * (SH_C2[0] * xy)
            + c(5) * (SH_C2[1] * yz)
            + c(6) * (SH_C2[2] * (2.0 * zz - xx - yy))
            + c(7) * (SH_C2[3] * xz)
            + c(8) * (SH_C2[4] * (xx - yy));
        if degree > 2 {
            rgb += c(9) * (SH_C3[0] * y * (3.0 * xx - yy))
                + c(10) * (SH_C3[1] * xy * z)
                + c(11) * (SH_C3[2] * y * (4.0 * zz - xx - yy))
                + c(12) * (SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy))
                + c(13) * (SH_C3[4] * x * (4.0 * zz - xx - yy))
                + c(14) * (SH_C3[5] * z * (xx - yy))
                + c(15) * (SH_C3[6] * x * (xx - 3.0 * yy));
        }
    }
    [0, 1, 2].map(|i| (rgb[i] + 0.5).max(0.0))
}

/// One splat after projection to the image.
#[derive(Clone, Copy, Debug)]
struct Projected {
    mean: [f64; 2],
    conic: [f64; 3],
    radius: f64,
    depth: f64,
    opacity: f64,
    color: [f64; 3],
}

fn project(
    splats: &Splats,
    i: usize,
    cam: &Camera,
    settings: &RenderSettings,
) -> Option<Projected> {
    let m = splats.means[i];
    let world = Point3::new(f64::from(m[0]), f64::from(m[1]), f64::from(m[2]));
    let t = cam.world_to_camera * world;
    if t.z <= cam.near {
        return None;
    }
    let k = &cam.intrinsics;
    // Σ = R S Sᵀ Rᵀ
    let q = splats.rotations[i].map(f64::from);
    let r = UnitQuaternion::from_quaternion(Quaternion::new(q[0], q[1], q[2], q[3]))
        .to_rotation_matrix()
        .into_inner();
    let s = Matrix3::from_diagonal(&Vector3::from(
        splats.scales[i].map(|v| f64::from(v) * f64::from(settings.scale_modifier)),
    ));
    let l = r * s;
    let sigma = l * l.transpose();
    // EWA: clamp the Jacobian's point to 1.3× the field of view, as the reference does.
    let lim_x = 1.3 * 0.5 * f64::from(k.width) / k.fx;
    let lim_y = 1.3 * 0.5 * f64::from(k.height) / k.fy;
    let tx = (t.x / t.z).clamp(-lim_x, lim_x) * t.z;
    let ty = (t.y / t.z).clamp(-lim_y, lim_y) * t.z;
    let j = nalgebra::Matrix2x3::new(
        k.fx / t.z,
        0.0,
        -k.fx * tx / (t.z * t.z),
        0.0,
        k.fy / t.z,
        -k.fy * ty / (t.z * t.z),
    );
    let w = cam
        .world_to_camera
        .rotation
        .to_rotation_matrix()
        .into_inner();
    let jw = j * w;
    let mut cov = jw * sigma * jw.transpose();
    cov[(0, 0)] += 0.3;
    cov[(1, 1)] += 0.3;
    let mut opacity = f64::from(splats.opacities[i]);
    if settings.point_size > 0.0 {
        let v = f64::from(settings.point_size).powi(2);
        cov = nalgebra::Matrix2::new(v, 0.0, 0.0, v);
        opacity = 1.0;
    }
    let (a, b, c) = (cov[(0, 0)], cov[(0, 1)], cov[(1, 1)]);
    let det = a * c - b * b;
    if det <= 0.0 {
        return None;
    }
    let mid = 0.5 * (a + c);
    let lambda = mid + (mid * mid - det).max(0.1).sqrt();
    let radius = (3.0 * lambda.sqrt()).ceil();
    let dir = (world - cam.centre()).normalize();
    let degree = settings.sh_degree.min(splats.sh_degree);
    Some(Projected {
        mean: [k.fx * t.x / t.z + k.cx, k.fy * t.y / t.z + k.cy],
        conic: [c / det, -b / det, a / det],
        radius,
        depth: t.z,
        opacity,
        color: sh_to_color(splats.sh_of(i), degree, dir),
    })
}

/// Render `splats` seen by `cam` into linear RGB values in [0, ∞) over the settings'
/// background, row-major.
pub fn render(splats: &Splats, cam: &Camera, settings: &RenderSettings) -> Vec<[f64; 3]> {
    let bg = settings.background.map(f64::from);
    render_rgba(splats, cam, settings)
        .into_iter()
        .map(|[r, g, b, a]| {
            [
                r + (1.0 - a) * bg[0],
                g + (1.0 - a) * bg[1],
                b + (1.0 - a) * bg[2],
            ]
        })
        .collect()
}

/// Render without a background: premultiplied RGB and coverage alpha (1 − transmittance).
pub fn render_rgba(splats: &Splats, cam: &Camera, settings: &RenderSettings) -> Vec<[f64; 4]> {
    let (w, h) = (
        cam.intrinsics.width as usize,
        cam.intrinsics.height as usize,
    );
    let mut projected: Vec<Projected> = (0..splats.len())
        .into_par_iter()
        .filter(|&i| settings.keeps(splats, i))
        .filter_map(|i| project(splats, i, cam, settings))
        .collect();
    // Front to back.
    projected.sort_by(|a, b| a.depth.total_cmp(&b.depth));
    // Bin by 16-pixel row bands so each row looks only at splats that can reach it.
    const BAND: usize = 16;
    let bands = h.div_ceil(BAND);
    let mut by_band: Vec<Vec<u32>> = vec![Vec::new(); bands];
    for (idx, p) in projected.iter().enumerate() {
        let y0 = (p.mean[1] - p.radius).floor().max(0.0) as usize / BAND;
        let y1 =
            ((p.mean[1] + p.radius).ceil().max(0.0) as usize / BAND).min(bands.saturating_sub(1));
        if p.mean[1] + p.radius < 0.0
            || p.mean[0] + p.radius < 0.0
            || p.mean[0] - p.radius > w as f64
        {
            continue;
        }
        for band in by_band.iter_mut().take(y1 + 1).skip(y0) {
            band.push(idx as u32);
        }
    }
    (0..h)
        .into_par_iter()
        .flat_map_iter(|y| {
            let list = &by_band[y / BAND];
            let projected = &projected;
            (0..w).map(move |x| {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let mut t = 1.0;
                let mut out = [0.0; 3];
                for &i in list {
                    let p = &projected[i as usize];
                    let (dx, dy) = (px - p.mean[0], py - p.mean[1]);
                    if dx.abs() > p.radius || dy.abs() > p.radius {
                        continue;
                    }
                    let power =
                        -0.5 * (p.conic[0] * dx * dx + p.conic[2] * dy * dy) - p.conic[1] * dx * dy;
                    if power > 0.0 {
                        continue;
                    }
                    let alpha = (p.opacity * power.exp()).min(0.99);
                    if alpha < 1.0 / 255.0 {
                        continue;
                    }
                    let next = t * (1.0 - alpha);
                    if next < 1e-4 {
                        break;
                    }
                    for (o, c) in out.iter_mut().zip(p.color) {
                        *o += c * alpha * t;
                    }
                    t = next;
                }
                [out[0], out[1], out[2], 1.0 - t]
            })
        })
        .collect()
}

/// Quantise linear values to 8-bit RGBA the way the GPU target stores them.
pub fn to_rgba8(pixels: &[[f64; 3]], width: u32, height: u32) -> image::RgbaImage {
    let mut img = image::RgbaImage::new(width, height);
    for (dst, src) in img.pixels_mut().zip(pixels) {
        let q = src.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        *dst = image::Rgba([q[0], q[1], q[2], 255]);
    }
    img
}

/// Quantise premultiplied RGBA to 8-bit straight alpha, as a PNG with transparency holds.
pub fn to_rgba8_straight(pixels: &[[f64; 4]], width: u32, height: u32) -> image::RgbaImage {
    let mut img = image::RgbaImage::new(width, height);
    for (dst, [r, g, b, a]) in img.pixels_mut().zip(pixels) {
        let q = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let un = |v: f64| if *a > 0.0 { v / a } else { 0.0 };
        *dst = image::Rgba([q(un(*r)), q(un(*g)), q(un(*b)), q(*a)]);
    }
    img
}

/// Peak signal-to-noise ratio of two images' RGB channels, in dB (∞ when identical).
pub fn psnr(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "images differ in size");
    let mut se = 0.0;
    for (pa, pb) in a.pixels().zip(b.pixels()) {
        for c in 0..3 {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            se += d * d;
        }
    }
    let mse = se / (f64::from(a.width()) * f64::from(a.height()) * 3.0);
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::Intrinsics;

    fn cam(w: u32, h: u32) -> Camera {
        let k = Intrinsics {
            fx: 100.0,
            fy: 100.0,
            cx: f64::from(w) / 2.0,
            cy: f64::from(h) / 2.0,
            width: w,
            height: h,
        };
        let mut c = Camera::look_at(
            Point3::new(0.0, 0.0, -4.0),
            Point3::origin(),
            -Vector3::y(),
            k,
        );
        c.near = 0.2;
        c
    }

    fn one(mean: [f32; 3], scale: f32, opacity: f32, dc: [f32; 3]) -> Splats {
        Splats {
            means: vec![mean],
            scales: vec![[scale; 3]],
            rotations: vec![[1.0, 0.0, 0.0, 0.0]],
            opacities: vec![opacity],
            sh_degree: 0,
            sh: dc.to_vec(),
            foreground: None,
        }
    }

    #[test]
    fn an_isotropic_splat_matches_the_closed_form() {
        // σ = 0.1 at depth 4 with f = 100 gives σ_px = 2.5, so Σ2D = (6.25 + 0.3)·I.
        let s = one([0.0, 0.0, 0.0], 0.1, 0.8, [0.0; 3]);
        let img = render(&s, &cam(32, 32), &RenderSettings::default());
        let var = 6.25 + 0.3;
        for (x, y) in [(16usize, 16usize), (18, 16), (20, 19)] {
            let (dx, dy) = (x as f64 + 0.5 - 16.0, y as f64 + 0.5 - 16.0);
            let alpha = (0.8 * (-0.5 * (dx * dx + dy * dy) / var).exp()).min(0.99);
            // DC 0 gives colour 0.5 on black.
            // Only f32 storage of σ = 0.1 separates the two.
            approx::assert_relative_eq!(img[y * 32 + x][0], 0.5 * alpha, max_relative = 1e-7);
        }
        // Outside the 3σ radius nothing is drawn.
        assert_eq!(img[0], [0.0; 3]);
    }

    #[test]
    fn nearer_splats_cover_farther_ones_and_background_shows_through() {
        let mut s = one([0.0, 0.0, 1.0], 0.3, 0.99, [-(0.5 / SH_C0 as f32); 3]);
        let red = one(
            [0.0, 0.0, -1.0],
            0.3,
            0.99,
            [
                (0.5 / SH_C0 as f32),
                -(0.5 / SH_C0 as f32),
                -(0.5 / SH_C0 as f32),
            ],
        );
        s.means.extend(red.means);
        s.scales.extend(red.scales);
        s.rotations.extend(red.rotations);
        s.opacities.extend(red.opacities);
        s.sh.extend(red.sh);
        let settings = RenderSettings {
            background: [0.0, 0.0, 1.0],
            ..Default::default()
        };
        // σ = 30 px at depth 3: the 3σ radius (≈ 27 px) stays inside 96 × 96.
        let img = render(&s, &cam(96, 96), &settings);
        let centre = img[48 * 96 + 48];
        // Red (the near splat) at 0.99 opacity, then black, then 1 % of the blue background.
        approx::assert_relative_eq!(centre[0], 0.99 * (1.0 - 0.0), epsilon = 0.02);
        assert!(centre[2] < 0.001, "{centre:?}");
        assert_eq!(img[0], [0.0, 0.0, 1.0]);
    }

    #[test]
    fn sh_degree_one_follows_the_sign_pattern() {
        // Only the third degree-1 coefficient (−C1·x) set: colour varies with −x.
        let mut sh = vec![0.0f32; 12];
        sh[9] = 1.0;
        let plus_x = sh_to_color(&sh, 1, Vector3::x());
        let minus_x = sh_to_color(&sh, 1, -Vector3::x());
        approx::assert_relative_eq!(plus_x[0], (0.5 - SH_C1).max(0.0), epsilon = 1e-12);
        approx::assert_relative_eq!(minus_x[0], 0.5 + SH_C1, epsilon = 1e-12);
    }

    #[test]
    fn psnr_of_identical_and_different_images() {
        let a = image::RgbaImage::from_pixel(4, 4, image::Rgba([10, 20, 30, 255]));
        let mut b = a.clone();
        assert!(psnr(&a, &b).is_infinite());
        b.put_pixel(0, 0, image::Rgba([11, 20, 30, 255]));
        // One channel of one pixel off by one: MSE = 1/48.
        approx::assert_relative_eq!(
            psnr(&a, &b),
            10.0 * (255.0f64 * 255.0 * 48.0).log10(),
            epsilon = 1e-9
        );
    }
}
