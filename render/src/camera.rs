//! Pinhole cameras in the OpenCV convention: +X right, +Y down, +Z forward, pixel
//! centres at integer + 0.5 coordinates measured from the image's top-left corner.

use nalgebra::{Isometry3, Matrix3, Point3, Translation3, UnitQuaternion, Vector3};

/// Pixel-space intrinsics of a pinhole camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intrinsics {
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    pub width: u32,
    pub height: u32,
}

impl Intrinsics {
    /// A centred camera with a vertical field of view in radians.
    pub fn from_fov_y(fov_y: f64, width: u32, height: u32) -> Self {
        let fy = 0.5 * f64::from(height) / (0.5 * fov_y).tan();
        Self {
            fx: fy,
            fy,
            cx: 0.5 * f64::from(width),
            cy: 0.5 * f64::from(height),
            width,
            height,
        }
    }

    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }
}

/// A camera: intrinsics plus the world→camera rigid transform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    pub intrinsics: Intrinsics,
    pub world_to_camera: Isometry3<f64>,
    pub near: f64,
    pub far: f64,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with `up` roughly up in the image.
    pub fn look_at(
        eye: Point3<f64>,
        target: Point3<f64>,
        up: Vector3<f64>,
        intrinsics: Intrinsics,
    ) -> Self {
        let forward = (target - eye).normalize();
        let right = forward.cross(&up).normalize();
        // OpenCV: image +Y points down, so camera Y = forward × right.
        let down = forward.cross(&right);
        let rotation =
            Matrix3::from_rows(&[right.transpose(), down.transpose(), forward.transpose()]);
        let rotation = UnitQuaternion::from_matrix(&rotation);
        let translation = -(rotation * eye.coords);
        Self {
            intrinsics,
            world_to_camera: Isometry3::from_parts(Translation3::from(translation), rotation),
            near: 0.01,
            far: 1000.0,
        }
    }

    pub fn centre(&self) -> Point3<f64> {
        self.world_to_camera.inverse() * Point3::origin()
    }

    /// Pixel position and depth of a world point; `None` behind the near plane.
    pub fn project(&self, world: &Point3<f64>) -> Option<(f64, f64, f64)> {
        let p = self.world_to_camera * world;
        if p.z < self.near {
            return None;
        }
        let k = &self.intrinsics;
        Some((k.fx * p.x / p.z + k.cx, k.fy * p.y / p.z + k.cy, p.z))
    }

    /// The world-space corners of the image plane at `depth`, in the order
    /// top-left, top-right, bottom-right, bottom-left.
    pub fn frustum_corners(&self, depth: f64) -> [Point3<f64>; 4] {
        let k = &self.intrinsics;
        let (w, h) = (f64::from(k.width), f64::from(k.height));
        let inv = self.world_to_camera.inverse();
        [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|(u, v)| {
            let ray = Point3::new((u - k.cx) / k.fx * depth, (v - k.cy) / k.fy * depth, depth);
            inv * ray
        })
    }

    /// The same camera with the image resized to `width × height` (same field of view).
    pub fn with_viewport(&self, width: u32, height: u32) -> Self {
        let k = &self.intrinsics;
        let sx = f64::from(width) / f64::from(k.width);
        let sy = f64::from(height) / f64::from(k.height);
        // Keep square pixels: scale both focal lengths by the vertical factor.
        let mut out = *self;
        out.intrinsics = Intrinsics {
            fx: k.fx * sy,
            fy: k.fy * sy,
            cx: k.cx * sx,
            cy: k.cy * sy,
            width,
            height,
        };
        out
    }
}

/// Turntable navigation around a target point: drag to orbit, scroll to zoom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrbitController {
    pub target: Point3<f64>,
    pub distance: f64,
    /// Radians around the world up axis (+Z).
    pub yaw: f64,
    /// Radians above the horizontal plane, kept away from the poles.
    pub pitch: f64,
    pub fov_y: f64,
}

impl Default for OrbitController {
    fn default() -> Self {
        Self {
            target: Point3::origin(),
            distance: 4.0,
            yaw: 0.6,
            pitch: 0.45,
            fov_y: 50f64.to_radians(),
        }
    }
}

impl OrbitController {
    const MAX_PITCH: f64 = 1.5;

    /// A view framing `positions`: centred on the middle 90 % of them per axis, so a
    /// few far floaters do not shrink the scene to a dot.
    pub fn framing(positions: &[[f32; 3]]) -> Self {
        let default = Self::default();
        if positions.is_empty() {
            return default;
        }
        let mut lo = [0.0f64; 3];
        let mut hi = [0.0f64; 3];
        for a in 0..3 {
            let mut v: Vec<f32> = positions
                .iter()
                .map(|p| p[a])
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                return default;
            }
            v.sort_unstable_by(f32::total_cmp);
            lo[a] = f64::from(v[v.len() * 5 / 100]);
            hi[a] = f64::from(v[(v.len() * 95 / 100).min(v.len() - 1)]);
        }
        let target = Point3::new(
            (lo[0] + hi[0]) / 2.0,
            (lo[1] + hi[1]) / 2.0,
            (lo[2] + hi[2]) / 2.0,
        );
        let radius = (Vector3::new(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])).norm() / 2.0;
        Self {
            target,
            distance: (radius / (default.fov_y / 2.0).tan() * 1.2).max(1e-3),
            ..default
        }
    }

    pub fn orbit(&mut self, dx: f64, dy: f64) {
        self.yaw -= dx;
        self.pitch = (self.pitch + dy).clamp(-Self::MAX_PITCH, Self::MAX_PITCH);
    }

    /// Multiply the distance by `factor` (< 1 zooms in).
    pub fn zoom(&mut self, factor: f64) {
        self.distance = (self.distance * factor).clamp(1e-3, 1e6);
    }

    /// Move the orbit (target and eye together) in the view's frame: `forward` along
    /// the viewing direction, `right` across it, `up` along world +Z.
    pub fn fly(&mut self, forward: f64, right: f64, up: f64) {
        let view_dir = (self.target - self.eye()).normalize();
        let side = view_dir.cross(&Vector3::z());
        let side = if side.norm() > 1e-9 {
            side.normalize()
        } else {
            Vector3::x()
        };
        self.target += view_dir * forward + side * right + Vector3::z() * up;
    }

    pub fn eye(&self) -> Point3<f64> {
        let dir = Vector3::new(
            self.pitch.cos() * self.yaw.cos(),
            self.pitch.cos() * self.yaw.sin(),
            self.pitch.sin(),
        );
        self.target + dir * self.distance
    }

    pub fn camera(&self, width: u32, height: u32) -> Camera {
        let intrinsics = Intrinsics::from_fov_y(self.fov_y, width.max(1), height.max(1));
        let mut cam = Camera::look_at(self.eye(), self.target, Vector3::z(), intrinsics);
        cam.near = self.distance * 1e-3;
        cam.far = self.distance * 1e3;
        cam
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn cam() -> Camera {
        let k = Intrinsics {
            fx: 100.0,
            fy: 120.0,
            cx: 64.0,
            cy: 48.0,
            width: 128,
            height: 96,
        };
        Camera::look_at(
            Point3::new(0.0, 0.0, -5.0),
            Point3::origin(),
            -Vector3::y(),
            k,
        )
    }

    #[test]
    fn projection_matches_the_pinhole_formula() {
        let c = cam();
        // Camera at z = −5 looking at +Z with image-up = world +Y, so world axes equal
        // camera axes shifted by 5 along Z: u = fx·x/z + cx, v = fy·y/z + cy.
        let (u, v, z) = c.project(&Point3::new(1.0, 0.5, 5.0)).unwrap();
        assert_relative_eq!(z, 10.0, epsilon = 1e-12);
        assert_relative_eq!(u, 100.0 * 0.1 + 64.0, epsilon = 1e-9);
        assert_relative_eq!(v, 120.0 * 0.05 + 48.0, epsilon = 1e-9);
        assert_relative_eq!(c.centre(), Point3::new(0.0, 0.0, -5.0), epsilon = 1e-12);
        assert!(c.project(&Point3::new(0.0, 0.0, -6.0)).is_none());
    }

    #[test]
    fn frustum_corners_project_to_the_image_corners() {
        let c = cam();
        let corners = c.frustum_corners(2.0);
        let expected = [(0.0, 0.0), (128.0, 0.0), (128.0, 96.0), (0.0, 96.0)];
        for (p, (eu, ev)) in corners.iter().zip(expected) {
            let (u, v, z) = c.project(p).unwrap();
            assert_relative_eq!(u, eu, epsilon = 1e-9);
            assert_relative_eq!(v, ev, epsilon = 1e-9);
            assert_relative_eq!(z, 2.0, epsilon = 1e-9);
        }
    }

    #[test]
    fn framing_centres_on_the_bulk_and_ignores_floaters() {
        let mut pts: Vec<[f32; 3]> = (0..100)
            .map(|i| [i as f32 / 99.0 * 2.0 - 1.0, 0.0, 0.0])
            .collect();
        pts.push([1e6, 1e6, 1e6]);
        let o = OrbitController::framing(&pts);
        assert!(o.target.coords.norm() < 0.1, "{:?}", o.target);
        assert!(o.distance > 1.0 && o.distance < 10.0, "{}", o.distance);
    }

    #[test]
    fn flying_forward_moves_the_eye_towards_the_target() {
        let mut o = OrbitController::default();
        let (eye, target) = (o.eye(), o.target);
        o.fly(1.0, 0.0, 0.0);
        assert_relative_eq!((o.eye() - eye).norm(), 1.0, epsilon = 1e-9);
        assert_relative_eq!(
            (o.target - target).dot(&(target - eye).normalize()),
            1.0,
            epsilon = 1e-9
        );
        let before_up = o.target;
        o.fly(0.0, 0.0, 2.0);
        assert_relative_eq!(
            o.target - before_up,
            Vector3::new(0.0, 0.0, 2.0),
            epsilon = 1e-9
        );
    }

    #[test]
    fn orbit_camera_looks_at_its_target() {
        let mut orbit = OrbitController::default();
        orbit.orbit(0.3, -0.2);
        orbit.zoom(0.5);
        let c = orbit.camera(640, 480);
        let (u, v, z) = c.project(&orbit.target).unwrap();
        assert_relative_eq!(u, 320.0, epsilon = 1e-9);
        assert_relative_eq!(v, 240.0, epsilon = 1e-9);
        assert_relative_eq!(z, orbit.distance, epsilon = 1e-9);
        // World +Z (up) appears above the target: smaller v.
        let (_, v_up, _) = c.project(&(orbit.target + Vector3::z() * 0.1)).unwrap();
        assert!(v_up < v);
    }
}
