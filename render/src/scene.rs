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

/// The 12 edges of the axis-aligned box `lo`–`hi`.
pub fn box_segments(lo: [f64; 3], hi: [f64; 3], rgba: [u8; 4]) -> Vec<Segment> {
    let corner = |i: usize| {
        Point3::new(
            if i & 1 == 0 { lo[0] } else { hi[0] },
            if i & 2 == 0 { lo[1] } else { hi[1] },
            if i & 4 == 0 { lo[2] } else { hi[2] },
        )
    };
    // Corners whose indices differ in exactly one bit share an edge.
    let mut out = Vec::with_capacity(12);
    for i in 0..8usize {
        for bit in [1, 2, 4] {
            if i & bit == 0 {
                out.push(Segment {
                    a: corner(i),
                    b: corner(i | bit),
                    rgba,
                });
            }
        }
    }
    out
}

/// A ground grid in the plane `z = z` (the orbit's up is +z), centred on `centre`,
/// covering at least `extent` in x and y, with a round spacing (1, 2 or 5 × 10^k) of
/// about a tenth of the extent.
pub fn grid_segments(centre: [f64; 2], z: f64, extent: f64, rgba: [u8; 4]) -> Vec<Segment> {
    let step = nice_step(extent.max(1e-9) / 10.0);
    let half = ((extent / 2.0) / step).ceil() as i64 + 1;
    let snap = |c: f64| (c / step).round() * step;
    let (cx, cy) = (snap(centre[0]), snap(centre[1]));
    let span = half as f64 * step;
    let mut out = Vec::new();
    for i in -half..=half {
        let o = i as f64 * step;
        out.push(Segment {
            a: Point3::new(cx + o, cy - span, z),
            b: Point3::new(cx + o, cy + span, z),
            rgba,
        });
        out.push(Segment {
            a: Point3::new(cx - span, cy + o, z),
            b: Point3::new(cx + span, cy + o, z),
            rgba,
        });
    }
    out
}

/// The smallest 1, 2 or 5 × 10^k at least `x`.
pub fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&s| s >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// A segment's end points in camera space after clipping it to the camera's near
/// plane (a grid line passing beside and behind the camera is kept up to the plane, not
/// dropped); `None` when it lies wholly behind.
pub fn clip_camera(cam: &Camera, a: &Point3<f64>, b: &Point3<f64>) -> Option<[Point3<f64>; 2]> {
    let (mut pa, mut pb) = (cam.world_to_camera * a, cam.world_to_camera * b);
    let near = cam.near;
    if pa.z < near && pb.z < near {
        return None;
    }
    if pa.z < near || pb.z < near {
        let t = (near - pa.z) / (pb.z - pa.z);
        let cut = pa + (pb - pa) * t;
        if pa.z < near {
            pa = cut;
        } else {
            pb = cut;
        }
    }
    Some([pa, pb])
}

/// A segment's pixel end points after clipping it to the near plane ([`clip_camera`]).
pub fn clip_project(cam: &Camera, a: &Point3<f64>, b: &Point3<f64>) -> Option<[(f64, f64); 2]> {
    let [pa, pb] = clip_camera(cam, a, b)?;
    let k = &cam.intrinsics;
    let px = |p: Point3<f64>| (k.fx * p.x / p.z + k.cx, k.fy * p.y / p.z + k.cy);
    Some([px(pa), px(pb)])
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

    #[test]
    fn a_box_has_twelve_axis_aligned_edges() {
        let segs = box_segments([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [255; 4]);
        assert_eq!(segs.len(), 12);
        let mut lengths: Vec<f64> = segs.iter().map(|s| (s.b - s.a).norm()).collect();
        lengths.sort_by(f64::total_cmp);
        assert_eq!(
            lengths,
            [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
        );
    }

    #[test]
    fn grid_steps_are_round_and_cover_the_extent() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(0.001), 0.001);
        let g = grid_segments([0.3, -0.2], -1.0, 4.0, [255; 4]);
        // Step 0.5; lines from -2.5 to 2.5 around the snapped centre (0.5, 0.0).
        assert!(g.iter().all(|s| s.a.z == -1.0 && s.b.z == -1.0));
        let xs: Vec<f64> = g.iter().step_by(2).map(|s| s.a.x).collect();
        assert!((xs[1] - xs[0] - 0.5).abs() < 1e-12);
        assert!(xs[0] <= 0.3 - 2.0 && *xs.last().unwrap_or(&0.0) >= 0.3 + 2.0);
    }

    #[test]
    fn segments_are_clipped_at_the_near_plane() {
        let k = Intrinsics {
            fx: 100.0,
            fy: 100.0,
            cx: 50.0,
            cy: 50.0,
            width: 100,
            height: 100,
        };
        let mut cam = Camera::look_at(
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(0.0, 0.0, 1.0),
            Vector3::new(0.0, -1.0, 0.0),
            k,
        );
        cam.near = 0.5;
        // From (1, 0, -1) behind the camera to (1, 0, 2) in front: cut at z = 0.5,
        // where x = 1, so u = 50 + 100 · 1 / 0.5 = 250; the far end at u = 50 + 50 = 100.
        let [a, b] = clip_project(
            &cam,
            &Point3::new(1.0, 0.0, -1.0),
            &Point3::new(1.0, 0.0, 2.0),
        )
        .unwrap_or_else(|| panic!("visible"));
        assert!(
            (a.0 - 250.0).abs() < 1e-9 && (a.1 - 50.0).abs() < 1e-9,
            "{a:?}"
        );
        assert!((b.0 - 100.0).abs() < 1e-9, "{b:?}");
        assert!(
            clip_project(
                &cam,
                &Point3::new(0.0, 0.0, -1.0),
                &Point3::new(1.0, 0.0, 0.2)
            )
            .is_none()
        );
    }
}
