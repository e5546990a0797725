//! uCO3D cameras: PyTorch3D row-vector extrinsics with NDC intrinsics, converted to the
//! OpenCV pixel cameras the renderer uses; OpenCV's 12-term distortion, the official
//! loader's undistortion (`getOptimalNewCameraMatrix(alpha = 0)` + bilinear remap), and
//! the per-sequence canonical alignment.
//!
//! Written by hand because the only implementations are OpenCV's (C++, a heavy system
//! dependency for four formulas) and uCO3D's Python; the formulas follow
//! `uco3d/dataset_utils/utils.py` and OpenCV's `undistort.dispatch.cpp` and are checked
//! against `cv2` outputs stored in the fixture (`tools/uco3d_expected.py`).

use loupe_render::camera::{Camera, Intrinsics};
use nalgebra::{Isometry3, Matrix3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};

/// A frame's camera exactly as `frame_annots` stores it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NdcCamera {
    /// `_viewpoint_R`, row-major; `X_cam = X_world · R + T` with row vectors.
    pub r: [f32; 9],
    pub t: [f32; 3],
    pub focal: [f32; 2],
    pub principal: [f32; 2],
    /// `_image_size`: height, then width.
    pub image_hw: [u32; 2],
    pub distortion: [f32; 12],
}

/// OpenCV's 12 distortion terms: k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Distortion(pub [f64; 12]);

/// An OpenCV camera: `x_cam = R·X + t`, pixel `K·x_cam/z`, plus distortion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpenCvCamera {
    pub rotation: Matrix3<f64>,
    pub translation: Vector3<f64>,
    pub k: Intrinsics,
    pub distortion: Distortion,
}

impl NdcCamera {
    pub fn width(&self) -> u32 {
        self.image_hw[1]
    }

    pub fn height(&self) -> u32 {
        self.image_hw[0]
    }

    /// `opencv_cameras_projection_from_uco3d`: negate T.x, T.y and R's first two
    /// columns, transpose R; `s = min(H, W)/2`, `f_px = f·s`, `c = size/2 − p·s`.
    pub fn to_opencv(&self) -> OpenCvCamera {
        let mut r = Matrix3::from_row_slice(&self.r.map(f64::from));
        for row in 0..3 {
            r[(row, 0)] = -r[(row, 0)];
            r[(row, 1)] = -r[(row, 1)];
        }
        let t = Vector3::new(
            -f64::from(self.t[0]),
            -f64::from(self.t[1]),
            f64::from(self.t[2]),
        );
        let (h, w) = (f64::from(self.height()), f64::from(self.width()));
        let s = h.min(w) / 2.0;
        OpenCvCamera {
            rotation: r.transpose(),
            translation: t,
            k: Intrinsics {
                fx: f64::from(self.focal[0]) * s,
                fy: f64::from(self.focal[1]) * s,
                cx: w / 2.0 - f64::from(self.principal[0]) * s,
                cy: h / 2.0 - f64::from(self.principal[1]) * s,
                width: self.width(),
                height: self.height(),
            },
            distortion: Distortion(self.distortion.map(f64::from)),
        }
    }

    /// The inverse of [`Self::to_opencv`] (`uco3d_cameras_from_opencv_projection`), used
    /// by the fixture maker to store cameras it built in OpenCV form.
    pub fn from_opencv(cam: &OpenCvCamera) -> Self {
        let k = &cam.k;
        let (h, w) = (f64::from(k.height), f64::from(k.width));
        let s = h.min(w) / 2.0;
        let mut r = cam.rotation.transpose();
        for row in 0..3 {
            r[(row, 0)] = -r[(row, 0)];
            r[(row, 1)] = -r[(row, 1)];
        }
        let mut rows = [0f32; 9];
        for (i, v) in rows.iter_mut().enumerate() {
            *v = r[(i / 3, i % 3)] as f32;
        }
        let t = &cam.translation;
        Self {
            r: rows,
            t: [-t.x as f32, -t.y as f32, t.z as f32],
            focal: [(k.fx / s) as f32, (k.fy / s) as f32],
            principal: [((w / 2.0 - k.cx) / s) as f32, ((h / 2.0 - k.cy) / s) as f32],
            image_hw: [k.height, k.width],
            distortion: cam.distortion.0.map(|v| v as f32),
        }
    }
}

impl OpenCvCamera {
    /// The renderer's camera (distortion is not part of it: render into the
    /// undistorted image, see [`Undistorter`]).
    pub fn pinhole(&self) -> Camera {
        let rotation =
            UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix(&self.rotation));
        Camera {
            intrinsics: self.k,
            world_to_camera: Isometry3::from_parts(Translation3::from(self.translation), rotation),
            near: 0.01,
            far: 1000.0,
        }
    }

    /// Pixel of a world point in the raw (distorted) frame, as `cv2.projectPoints`
    /// computes it; `None` behind the camera.
    pub fn project(&self, world: &Point3<f64>) -> Option<[f64; 2]> {
        let p = self.rotation * world.coords + self.translation;
        if p.z <= 0.0 {
            return None;
        }
        let (x, y) = self.distortion.distort(p.x / p.z, p.y / p.z);
        Some([self.k.fx * x + self.k.cx, self.k.fy * y + self.k.cy])
    }
}

impl Distortion {
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&v| v == 0.0)
    }

    /// Normalised undistorted → distorted coordinates (OpenCV's forward model).
    pub fn distort(&self, x: f64, y: f64) -> (f64, f64) {
        let [k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4] = self.0;
        let (x2, y2) = (x * x, y * y);
        let r2 = x2 + y2;
        let xy2 = 2.0 * x * y;
        let radial =
            (1.0 + ((k3 * r2 + k2) * r2 + k1) * r2) / (1.0 + ((k6 * r2 + k5) * r2 + k4) * r2);
        (
            x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x2) + s1 * r2 + s2 * r2 * r2,
            y * radial + p1 * (r2 + 2.0 * y2) + p2 * xy2 + s3 * r2 + s4 * r2 * r2,
        )
    }

    /// Distorted → undistorted normalised coordinates by OpenCV's fixed-point iteration
    /// (`cvUndistortPoints`, which runs a fixed number of rounds).
    pub fn undistort(&self, xd: f64, yd: f64, iterations: usize) -> (f64, f64) {
        let [k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4] = self.0;
        let (mut x, mut y) = (xd, yd);
        for _ in 0..iterations {
            let r2 = x * x + y * y;
            let icdist =
                (1.0 + ((k6 * r2 + k5) * r2 + k4) * r2) / (1.0 + ((k3 * r2 + k2) * r2 + k1) * r2);
            if icdist < 0.0 {
                return (xd, yd);
            }
            let dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) + s1 * r2 + s2 * r2 * r2;
            let dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y + s3 * r2 + s4 * r2 * r2;
            x = (xd - dx) * icdist;
            y = (yd - dy) * icdist;
        }
        (x, y)
    }
}

/// OpenCV's iteration count for `undistortPoints` without explicit criteria.
pub const UNDISTORT_ITERATIONS: usize = 5;

/// `cv2.getOptimalNewCameraMatrix(K, dist, (W, H), alpha = 0, (W, H))`: the camera whose
/// image holds only valid undistorted pixels (the largest inscribed rectangle of the
/// undistorted border samples, stretched to the full size).
pub fn optimal_new_intrinsics(k: &Intrinsics, dist: &Distortion) -> Intrinsics {
    const N: usize = 9;
    let (w, h) = (f64::from(k.width), f64::from(k.height));
    let (mut ix0, mut ix1, mut iy0, mut iy1) = (f64::MIN, f64::MAX, f64::MIN, f64::MAX);
    for yi in 0..N {
        for xi in 0..N {
            // OpenCV samples a 9×9 grid over [0, W−1] × [0, H−1] in float32.
            let u = f64::from(xi as f32 * (w as f32 - 1.0) / (N as f32 - 1.0));
            let v = f64::from(yi as f32 * (h as f32 - 1.0) / (N as f32 - 1.0));
            let (x, y) = dist.undistort((u - k.cx) / k.fx, (v - k.cy) / k.fy, UNDISTORT_ITERATIONS);
            if xi == 0 {
                ix0 = ix0.max(x);
            }
            if xi == N - 1 {
                ix1 = ix1.min(x);
            }
            if yi == 0 {
                iy0 = iy0.max(y);
            }
            if yi == N - 1 {
                iy1 = iy1.min(y);
            }
        }
    }
    let fx = (w - 1.0) / (ix1 - ix0);
    let fy = (h - 1.0) / (iy1 - iy0);
    Intrinsics {
        fx,
        fy,
        cx: -fx * ix0,
        cy: -fy * iy0,
        width: k.width,
        height: k.height,
    }
}

/// The loader's undistortion of one camera's frames: a per-pixel source map computed
/// once (`initUndistortRectifyMap`), applied with bilinear sampling and a black border.
pub struct Undistorter {
    pub new_k: Intrinsics,
    /// Source pixel (OpenCV coordinates: pixel centres at integers) per output pixel.
    map: Vec<[f32; 2]>,
}

impl Undistorter {
    pub fn new(k: &Intrinsics, dist: &Distortion) -> Self {
        let new_k = optimal_new_intrinsics(k, dist);
        let (w, h) = (k.width as usize, k.height as usize);
        let mut map = Vec::with_capacity(w * h);
        for v in 0..h {
            for u in 0..w {
                let x = (u as f64 - new_k.cx) / new_k.fx;
                let y = (v as f64 - new_k.cy) / new_k.fy;
                let (xd, yd) = dist.distort(x, y);
                map.push([(k.fx * xd + k.cx) as f32, (k.fy * yd + k.cy) as f32]);
            }
        }
        Self { new_k, map }
    }

    /// Where the output pixel `(u, v)` samples the raw frame.
    pub fn source(&self, u: u32, v: u32) -> [f32; 2] {
        self.map[v as usize * self.new_k.width as usize + u as usize]
    }

    /// The undistorted frame (same size as the raw one).
    pub fn apply(&self, raw: &image::RgbaImage) -> image::RgbaImage {
        let (w, h) = (self.new_k.width, self.new_k.height);
        let mut out = image::RgbaImage::new(w, h);
        if raw.dimensions() != (w, h) {
            return out;
        }
        for (i, px) in out.pixels_mut().enumerate() {
            let [sx, sy] = self.map[i];
            *px = bilinear(raw, sx, sy);
        }
        out
    }
}

/// Bilinear sample with zero outside the image (OpenCV's `BORDER_CONSTANT`).
fn bilinear(img: &image::RgbaImage, x: f32, y: f32) -> image::Rgba<u8> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut acc = [0f32; 4];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (sx, sy) = (x0 + dx, y0 + dy);
            if sx < 0 || sy < 0 || sx >= w || sy >= h {
                continue;
            }
            let p = img.get_pixel(sx as u32, sy as u32).0;
            for c in 0..4 {
                acc[c] += wx * wy * f32::from(p[c]);
            }
        }
    }
    image::Rgba(acc.map(|v| v.round().clamp(0.0, 255.0) as u8))
}

/// A sequence's canonical alignment, `X_aligned = s·(X·R_a + T_a)` with row vectors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alignment {
    /// Row-major, as `_alignment_R` stores it.
    pub r: Matrix3<f64>,
    pub t: Vector3<f64>,
    pub scale: f64,
}

impl Default for Alignment {
    fn default() -> Self {
        Self {
            r: Matrix3::identity(),
            t: Vector3::zeros(),
            scale: 1.0,
        }
    }
}

impl Alignment {
    pub fn from_blobs(r: [f32; 9], t: [f32; 3], scale: f64) -> Self {
        Self {
            r: Matrix3::from_row_slice(&r.map(f64::from)),
            t: Vector3::from(t.map(f64::from)),
            scale,
        }
    }

    /// Raw (VGGSfM) world point → canonical.
    pub fn point(&self, x: &Point3<f64>) -> Point3<f64> {
        // Row vector x·R_a is R_aᵀ·x in column form.
        Point3::from((self.r.transpose() * x.coords + self.t) * self.scale)
    }

    /// Canonical point → raw world.
    pub fn inverse_point(&self, x: &Point3<f64>) -> Point3<f64> {
        Point3::from(self.r * (x.coords / self.scale - self.t))
    }

    /// The loader's camera update: `R' = R_aᵀ·R`, `T' = s·(T − T_a·R')` (row vectors).
    pub fn ndc_camera(&self, cam: &NdcCamera) -> NdcCamera {
        let r = Matrix3::from_row_slice(&cam.r.map(f64::from));
        let r2 = self.r.transpose() * r;
        let t = Vector3::from(cam.t.map(f64::from));
        // T_a·R' as a row vector is R'ᵀ·T_a in column form.
        let t2 = (t - r2.transpose() * self.t) * self.scale;
        let mut out = *cam;
        for (i, v) in out.r.iter_mut().enumerate() {
            *v = r2[(i / 3, i % 3)] as f32;
        }
        out.t = [t2.x as f32, t2.y as f32, t2.z as f32];
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn ndc() -> NdcCamera {
        let rot = Rotation3::from_euler_angles(0.3, -0.7, 0.2);
        let mut r = [0f32; 9];
        for (i, v) in r.iter_mut().enumerate() {
            *v = rot[(i / 3, i % 3)] as f32;
        }
        NdcCamera {
            r,
            t: [0.25, -0.5, 3.0],
            focal: [1.8, 1.7],
            principal: [0.05, -0.1],
            image_hw: [120, 160],
            distortion: [
                -0.08, 0.02, 0.001, -0.002, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ],
        }
    }

    /// PyTorch3D's own projection (row vectors, NDC, `screen = −ndc·s + size/2`) must
    /// land where the converted OpenCV camera puts the point.
    #[test]
    fn conversion_agrees_with_the_pytorch3d_projection() {
        let mut c = ndc();
        c.distortion = [0.0; 12];
        let x = [0.3, -0.2, 0.5];
        let r = Matrix3::from_row_slice(&c.r.map(f64::from));
        let t = c.t.map(f64::from);
        let xr = nalgebra::RowVector3::new(x[0], x[1], x[2]) * r
            + nalgebra::RowVector3::new(t[0], t[1], t[2]);
        let ndc_x = xr[0] / xr[2] * f64::from(c.focal[0]) + f64::from(c.principal[0]);
        let ndc_y = xr[1] / xr[2] * f64::from(c.focal[1]) + f64::from(c.principal[1]);
        let s = 60.0;
        let expected = [-ndc_x * s + 80.0, -ndc_y * s + 60.0];
        let got = c.to_opencv().project(&Point3::from(x)).unwrap();
        assert_relative_eq!(got[0], expected[0], epsilon = 1e-4);
        assert_relative_eq!(got[1], expected[1], epsilon = 1e-4);
        // And the renderer's pinhole camera agrees.
        let (u, v, _) = c.to_opencv().pinhole().project(&Point3::from(x)).unwrap();
        assert_relative_eq!(u, expected[0], epsilon = 1e-4);
        assert_relative_eq!(v, expected[1], epsilon = 1e-4);
    }

    #[test]
    fn opencv_round_trip() {
        let c = ndc();
        let back = NdcCamera::from_opencv(&c.to_opencv());
        for (a, b) in c.r.iter().zip(back.r) {
            assert_relative_eq!(*a, b, epsilon = 1e-6);
        }
        for (a, b) in
            c.t.iter()
                .chain(&c.focal)
                .chain(&c.principal)
                .zip(back.t.iter().chain(&back.focal).chain(&back.principal))
        {
            assert_relative_eq!(*a, *b, epsilon = 1e-6);
        }
    }

    #[test]
    fn undistortion_inverts_distortion() {
        let d = Distortion(ndc().distortion.map(f64::from));
        for (x, y) in [(0.1, 0.2), (-0.4, 0.3), (0.5, -0.5)] {
            let (xd, yd) = d.distort(x, y);
            let (xu, yu) = d.undistort(xd, yd, 50);
            assert_relative_eq!(xu, x, epsilon = 1e-9);
            assert_relative_eq!(yu, y, epsilon = 1e-9);
        }
    }

    #[test]
    fn zero_distortion_keeps_the_camera() {
        let mut c = ndc().to_opencv();
        c.distortion = Distortion::default();
        let k = optimal_new_intrinsics(&c.k, &c.distortion);
        // alpha = 0 with no distortion maps [0, W−1] onto itself: K is unchanged.
        assert_relative_eq!(k.fx, c.k.fx, epsilon = 1e-3);
        assert_relative_eq!(k.cx, c.k.cx, epsilon = 1e-3);
        let u = Undistorter::new(&c.k, &c.distortion);
        let [sx, sy] = u.source(17, 33);
        assert_relative_eq!(sx, 17.0, epsilon = 1e-3);
        assert_relative_eq!(sy, 33.0, epsilon = 1e-3);
    }

    /// Points and cameras moved by the alignment project to the same pixels, and the
    /// camera space is scaled by s.
    #[test]
    fn alignment_keeps_projections() {
        let a = Alignment {
            r: *Rotation3::from_euler_angles(0.4, 0.1, -1.2).matrix(),
            t: Vector3::new(0.5, -1.0, 2.0),
            scale: 2.5,
        };
        let mut c = ndc();
        c.distortion = [0.0; 12];
        let x = Point3::new(0.2, 0.1, -0.3);
        let before = c.to_opencv().project(&x).unwrap();
        let aligned = a.ndc_camera(&c).to_opencv();
        let after = aligned.project(&a.point(&x)).unwrap();
        assert_relative_eq!(before[0], after[0], epsilon = 1e-3);
        assert_relative_eq!(before[1], after[1], epsilon = 1e-3);
        assert_relative_eq!(a.inverse_point(&a.point(&x)), x, epsilon = 1e-12);
    }
}
