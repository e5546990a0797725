//! Overlay lines depth-composited with the splats (wgpu, lavapipe in CI). Expected
//! pixels come from the f64 CPU reference renderer, which knows nothing of lines: a
//! line behind every splat must look like a background of the line's colour seen
//! through the splats (the reference rendered with that background), a line in front
//! of every splat must show its own colour, and everywhere else the image is the
//! splats alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use loupe_render::camera::{Camera, Intrinsics};
use loupe_render::gpu::{GpuContext, offscreen, project_lines};
use loupe_render::reference::{self, RenderSettings, psnr};
use loupe_render::scene::Segment;
use loupe_render::splats::Splats;
use nalgebra::{Point3, Vector3};

const SIZE: u32 = 256;
const FRONT_ROW: u32 = 70;
const BACK_ROW: u32 = 180;
const COLUMNS: std::ops::Range<u32> = 72..184;

fn camera() -> Camera {
    let k = Intrinsics::from_fov_y(50f64.to_radians(), SIZE, SIZE);
    let mut c = Camera::look_at(
        Point3::new(0.0, 0.0, -4.0),
        Point3::origin(),
        -Vector3::y(),
        k,
    );
    c.near = 0.2;
    c
}

/// A horizontal segment through the centre of pixel row `row`, at camera depth `z`,
/// spanning columns 60–196 (so `COLUMNS` lie well inside it, away from its caps).
fn line_at(cam: &Camera, row: u32, z: f64, rgba: [u8; 4]) -> Segment {
    let k = &cam.intrinsics;
    let to_world = cam.world_to_camera.inverse();
    let at = |u: f64| {
        let v = f64::from(row) + 0.5;
        to_world * Point3::new((u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z)
    };
    Segment {
        a: at(60.0),
        b: at(196.0),
        rgba,
    }
}

/// Splats within ±1 of the origin, 4 in front of the camera: depths 3–5 (plus their
/// extent), between the overlays placed at depths 1.5 and 15; sparse enough that what
/// is behind shows through in places.
fn scene() -> (GpuContext, Splats, Camera, RenderSettings) {
    let ctx = GpuContext::headless()
        .expect("a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)");
    let settings = RenderSettings {
        background: [0.1, 0.1, 0.12],
        ..RenderSettings::default()
    };
    (
        ctx,
        Splats::random(7, 300, 1, 1.0, 0.06),
        camera(),
        settings,
    )
}

/// PSNR over the pixels of `rows` × `COLUMNS` only.
fn psnr_on(a: &image::RgbaImage, b: &image::RgbaImage, rows: &[u32]) -> f64 {
    let crop = |img: &image::RgbaImage| {
        let mut out = image::RgbaImage::new(COLUMNS.len() as u32, rows.len() as u32);
        for (j, &r) in rows.iter().enumerate() {
            for (i, c) in COLUMNS.enumerate() {
                out.put_pixel(i as u32, j as u32, *img.get_pixel(c, r));
            }
        }
        out
    };
    psnr(&crop(a), &crop(b))
}

#[test]
fn lines_in_front_show_and_lines_behind_are_seen_through_the_splats() {
    let (ctx, splats, cam, settings) = scene();
    let red = [230, 40, 40, 255];
    let green = [40, 220, 90, 255];
    let segments = [
        line_at(&cam, FRONT_ROW, 1.5, red),
        line_at(&cam, BACK_ROW, 15.0, green),
    ];
    let lines = project_lines(&cam, &segments, 3.0, settings.background);
    let gpu = offscreen::render_scene(&ctx, &splats, &lines, &cam, &settings).unwrap();
    let plain = reference::to_rgba8(&reference::render(&splats, &cam, &settings), SIZE, SIZE);
    let over_green = reference::to_rgba8(
        &reference::render(
            &splats,
            &cam,
            &RenderSettings {
                background: green.map(|c| f32::from(c) / 255.0)[..3].try_into().unwrap(),
                ..settings
            },
        ),
        SIZE,
        SIZE,
    );
    if std::env::var_os("LOUPE_SAVE_RENDERS").is_some() {
        gpu.save("/tmp/overlay_gpu.png").unwrap();
        plain.save("/tmp/overlay_cpu.png").unwrap();
    }

    // In front: the line's own colour on every pixel of its row.
    for c in COLUMNS {
        let p = gpu.get_pixel(c, FRONT_ROW).0;
        assert_eq!(&p[..3], &red[..3], "front line at column {c}");
    }
    // Behind: the splats blended over the line, as over a green background. The cloud
    // is partly transparent there, so this differs from the plain render (the test can
    // fail by drawing the line on top, or by not drawing it).
    let behind = psnr_on(&gpu, &over_green, &[BACK_ROW]);
    let unlike_plain = psnr_on(&plain, &over_green, &[BACK_ROW]);
    println!("behind the splats: {behind:.2} dB (plain vs green background: {unlike_plain:.2} dB)");
    assert!(behind >= 35.0, "line behind the splats: {behind:.2} dB");
    assert!(
        unlike_plain < 30.0,
        "the cloud hides the back line entirely"
    );
    // Elsewhere the lines change nothing (rows clear of both lines' 3-px width).
    let rows: Vec<u32> = (0..SIZE)
        .filter(|r| r.abs_diff(FRONT_ROW) > 2 && r.abs_diff(BACK_ROW) > 2)
        .collect();
    let rest = psnr_on(&gpu, &plain, &rows);
    assert!(rest >= 35.0, "splats away from the lines: {rest:.2} dB");
}

#[test]
fn translucent_lines_are_mixed_over_the_background_and_clipped_at_the_near_plane() {
    let cam = camera();
    let bg = [0.0, 0.5, 1.0];
    // Half-transparent white over (0, 0.5, 1): (0.5, 0.75, 1.0) after mixing, opaque.
    let seg = line_at(&cam, 100, 2.0, [255, 255, 255, 128]);
    let l = project_lines(&cam, &[seg], 4.0, bg);
    let a = 128.0 / 255.0;
    let want = [a, a + 0.5 * (1.0 - a), 1.0, 1.0];
    for (got, want) in l[0].color.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{:?}", l[0].color);
    }
    // Depth 1 - near/z at z = 2; ends at columns 60 and 196, half width 2.
    assert!((l[0].a[2] - (1.0 - 0.2 / 2.0)).abs() < 1e-6);
    assert!((l[0].a[0] - 60.0).abs() < 1e-3 && (l[0].b[0] - 196.0).abs() < 1e-3);
    assert_eq!(l[0].a[3], 2.0);
    // A segment from behind the camera to depth 2 is cut at the near plane (depth 0).
    let to_world = cam.world_to_camera.inverse();
    let cut = Segment {
        a: to_world * Point3::new(0.1, 0.0, -1.0),
        b: to_world * Point3::new(0.1, 0.0, 2.0),
        rgba: [255; 4],
    };
    let l = project_lines(&cam, &[cut], 2.0, bg);
    assert!(l[0].a[2].abs() < 1e-6, "{:?}", l[0].a);
    // Wholly behind: no line at all.
    let behind = Segment {
        a: to_world * Point3::new(0.1, 0.0, -1.0),
        b: to_world * Point3::new(0.3, 0.0, 0.1),
        rgba: [255; 4],
    };
    assert!(project_lines(&cam, &[behind], 2.0, bg).is_empty());
}

/// The frame picture in its frustum is composited like the lines: behind the cloud it
/// shows through the splats as a background would; in front it covers them.
#[test]
fn a_picture_quad_is_depth_composited_like_a_background_or_a_cover() {
    let (ctx, splats, cam, settings) = scene();
    let blue = image::Rgba([40u8, 90, 230, 255]);
    let picture = image::RgbaImage::from_pixel(16, 16, blue);
    let to_world = cam.world_to_camera.inverse();
    // A quad covering pixels 40..216 in both directions at camera depth z.
    let quad = |z: f64| {
        let k = &cam.intrinsics;
        let at = |u: f64, v: f64| {
            to_world * Point3::new((u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z)
        };
        [
            at(40.0, 40.0),
            at(216.0, 40.0),
            at(216.0, 216.0),
            at(40.0, 216.0),
        ]
    };
    let inside: Vec<u32> = (48..208).collect();
    let crop_rows = |img: &image::RgbaImage| {
        let mut out = image::RgbaImage::new(160, 160);
        for (j, &r) in inside.iter().enumerate() {
            for (i, &c) in inside.iter().enumerate() {
                out.put_pixel(i as u32, j as u32, *img.get_pixel(c, r));
            }
        }
        out
    };
    // Behind every splat: the reference over a blue background.
    let behind = offscreen::render_scene_with(
        &ctx,
        &splats,
        &offscreen::Overlays {
            lines: &[],
            picture: Some((&picture, quad(15.0), 1.0)),
        },
        &cam,
        &settings,
    )
    .unwrap();
    let over_blue = reference::to_rgba8(
        &reference::render(
            &splats,
            &cam,
            &RenderSettings {
                background: [40.0 / 255.0, 90.0 / 255.0, 230.0 / 255.0],
                ..settings
            },
        ),
        SIZE,
        SIZE,
    );
    let db = psnr(&crop_rows(&behind), &crop_rows(&over_blue));
    assert!(db >= 35.0, "picture behind the splats: {db:.2} dB");
    // In front of every splat: the picture itself, everywhere inside the quad.
    let front = offscreen::render_scene_with(
        &ctx,
        &splats,
        &offscreen::Overlays {
            lines: &[],
            picture: Some((&picture, quad(1.5), 1.0)),
        },
        &cam,
        &settings,
    )
    .unwrap();
    for &r in &inside {
        for &c in &inside {
            assert_eq!(&front.get_pixel(c, r).0[..3], &blue.0[..3], "({c}, {r})");
        }
    }
}
