//! Scene primitives and the built-in demo scene.

use crate::camera::{Camera, Intrinsics};
use nalgebra::{Point3, Vector3};

/// A coloured 3-D line segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub a: Point3<f64>,
    pub b: Point3<f64>,
    pub rgba: [u8; 4],
}

/// The demo shown before anything is opened: a coloured point cloud of a torus knot
/// and a ring of cameras looking at it, the shape of a turntable capture.
pub struct DemoScene {
    pub points: Vec<(Point3<f64>, [u8; 3])>,
    pub cameras: Vec<Camera>,
}

impl DemoScene {
    pub fn new(point_count: usize, camera_count: usize) -> Self {
        let points = (0..point_count)
            .map(|i| {
                // A (2,3) torus knot, thickened by a deterministic spiral offset.
                let t = i as f64 / point_count as f64 * std::f64::consts::TAU;
                let s = (i as f64 * 0.618_033_988_75).fract() * std::f64::consts::TAU;
                let r = 0.6 + 0.25 * (3.0 * t).cos();
                let centre = Vector3::new(
                    r * (2.0 * t).cos(),
                    r * (2.0 * t).sin(),
                    0.25 * (3.0 * t).sin(),
                );
                let offset = Vector3::new(s.cos(), s.sin(), (2.0 * s).cos()) * 0.06;
                let p = Point3::from(centre + offset);
                let hue = t / std::f64::consts::TAU;
                (p, hue_to_rgb(hue))
            })
            .collect();
        let intrinsics = Intrinsics::from_fov_y(45f64.to_radians(), 160, 120);
        let cameras = (0..camera_count)
            .map(|i| {
                let a = i as f64 / camera_count as f64 * std::f64::consts::TAU;
                let eye = Point3::new(2.2 * a.cos(), 2.2 * a.sin(), 0.6 + 0.2 * (3.0 * a).sin());
                Camera::look_at(eye, Point3::origin(), Vector3::z(), intrinsics)
            })
            .collect();
        Self { points, cameras }
    }

    /// The point cloud as small Gaussians with a touch of view-dependent colour, so the
    /// demo exercises the splat renderer.
    pub fn splats(&self) -> crate::splats::Splats {
        let mut s = crate::splats::Splats {
            sh_degree: 1,
            ..Default::default()
        };
        for (i, (p, rgb)) in self.points.iter().enumerate() {
            s.means.push([p.x as f32, p.y as f32, p.z as f32]);
            let stretch = 1.0 + (i % 3) as f32;
            s.scales.push([0.012 * stretch, 0.012, 0.008]);
            let a = (i as f32 * 0.37).sin();
            let norm = (1.0 + a * a).sqrt();
            s.rotations.push([1.0 / norm, 0.0, 0.0, a / norm]);
            s.opacities.push(0.85);
            for c in rgb {
                s.sh.push(((f64::from(*c) / 255.0 - 0.5) / crate::splats::SH_C0) as f32);
            }
            s.sh.extend([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.1, -0.2]);
        }
        s
    }

    /// Frusta as line segments (apex to corners, then the image rectangle).
    pub fn frustum_segments(camera: &Camera, depth: f64, rgba: [u8; 4]) -> Vec<Segment> {
        let apex = camera.centre();
        let c = camera.frustum_corners(depth);
        let mut out: Vec<Segment> = c.iter().map(|&b| Segment { a: apex, b, rgba }).collect();
        out.extend((0..4).map(|i| Segment {
            a: c[i],
            b: c[(i + 1) % 4],
            rgba,
        }));
        out
    }

    /// World axes (X red, Y green, Z blue) of the given length.
    pub fn axes(length: f64) -> [Segment; 3] {
        let o = Point3::origin();
        [
            Segment {
                a: o,
                b: Point3::new(length, 0.0, 0.0),
                rgba: [230, 60, 60, 255],
            },
            Segment {
                a: o,
                b: Point3::new(0.0, length, 0.0),
                rgba: [60, 200, 90, 255],
            },
            Segment {
                a: o,
                b: Point3::new(0.0, 0.0, length),
                rgba: [70, 120, 240, 255],
            },
        ]
    }
}

fn hue_to_rgb(h: f64) -> [u8; 3] {
    let k = |n: f64| {
        let k = (n + h * 6.0) % 6.0;
        let v = 1.0 - (k.min(4.0 - k).clamp(0.0, 1.0)) * 0.75;
        (v * 255.0).round() as u8
    };
    [k(5.0), k(3.0), k(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_cameras_see_the_origin_at_their_principal_point() {
        let scene = DemoScene::new(100, 6);
        assert_eq!(scene.points.len(), 100);
        for cam in &scene.cameras {
            let (u, v, _) = cam.project(&Point3::origin()).unwrap();
            assert!(
                (u - 80.0).abs() < 1e-9 && (v - 60.0).abs() < 1e-9,
                "{u} {v}"
            );
        }
    }

    #[test]
    fn a_frustum_has_eight_edges_meeting_at_the_camera() {
        let scene = DemoScene::new(1, 1);
        let segs = DemoScene::frustum_segments(&scene.cameras[0], 0.3, [255; 4]);
        assert_eq!(segs.len(), 8);
        let centre = scene.cameras[0].centre();
        assert!(segs[..4].iter().all(|s| (s.a - centre).norm() < 1e-12));
    }
}
