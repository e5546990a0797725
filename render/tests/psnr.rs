//! The wgpu splat renderer against the f64 CPU reference, on lavapipe in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use loupe_render::camera::{Camera, Intrinsics};
use loupe_render::gpu::{GpuContext, offscreen};
use loupe_render::reference::{self, RenderSettings, psnr};
use loupe_render::splats::Splats;
use nalgebra::{Point3, Vector3};

const SIZE: u32 = 256;

fn camera(eye: Point3<f64>, fov_deg: f64) -> Camera {
    let k = Intrinsics::from_fov_y(fov_deg.to_radians(), SIZE, SIZE);
    let mut c = Camera::look_at(eye, Point3::origin(), Vector3::z(), k);
    // The reference rasterizer's near plane.
    c.near = 0.2;
    c
}

fn compare(name: &str, splats: &Splats, cam: &Camera, settings: &RenderSettings) -> f64 {
    let ctx = GpuContext::headless()
        .expect("a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)");
    let gpu = offscreen::render_splats(&ctx, splats, cam, settings).unwrap();
    let cpu = reference::to_rgba8(&reference::render(splats, cam, settings), SIZE, SIZE);
    let db = psnr(&gpu, &cpu);
    if std::env::var_os("LOUPE_SAVE_RENDERS").is_some() {
        gpu.save(format!("/tmp/{name}_gpu.png")).unwrap();
        cpu.save(format!("/tmp/{name}_cpu.png")).unwrap();
    }
    // Guard against comparing two empty images.
    let lit = cpu
        .pixels()
        .filter(|p| p[0] > 20 || p[1] > 20 || p[2] > 20)
        .count();
    assert!(
        lit > (SIZE * SIZE / 20) as usize,
        "{name}: the scene is almost empty ({lit} lit pixels)"
    );
    println!("{name}: PSNR {db:.2} dB");
    db
}

#[test]
fn random_anisotropic_sh3_scene_matches_the_reference() {
    let splats = Splats::random(1, 400, 3, 1.0, 0.06);
    let cam = camera(Point3::new(3.0, 1.0, 1.5), 50.0);
    let settings = RenderSettings::default();
    let db = compare("sh3", &splats, &cam, &settings);
    assert!(db >= 35.0, "PSNR {db:.2} dB < 35 dB");
    // The test can fail: ignoring the view-dependent bands is visibly wrong.
    let ctx = GpuContext::headless().unwrap();
    let dc_only = offscreen::render_splats(
        &ctx,
        &splats,
        &cam,
        &RenderSettings {
            sh_degree: 0,
            ..settings
        },
    )
    .unwrap();
    let cpu = reference::to_rgba8(&reference::render(&splats, &cam, &settings), SIZE, SIZE);
    assert!(
        psnr(&dc_only, &cpu) < 30.0,
        "SH bands should matter in this scene"
    );
}

#[test]
fn splats_crossing_the_near_plane_and_off_screen_match() {
    // Camera at x = 1.2 looking at the origin: splats spread over ±2 surround it, so
    // some sit behind it, some straddle the near plane and many project off-screen.
    let splats = Splats::random(2, 1500, 1, 2.0, 0.08);
    let cam = camera(Point3::new(1.2, 0.1, 0.2), 70.0);
    let near_crossing = splats
        .means
        .iter()
        .filter(|m| {
            let z = (cam.world_to_camera
                * Point3::new(f64::from(m[0]), f64::from(m[1]), f64::from(m[2])))
            .z;
            (z - cam.near).abs() < 0.3
        })
        .count();
    assert!(
        near_crossing > 5,
        "the scene must hold splats at the near plane"
    );
    let settings = RenderSettings {
        background: [0.1, 0.2, 0.3],
        ..Default::default()
    };
    let db = compare("near", &splats, &cam, &settings);
    assert!(db >= 35.0, "PSNR {db:.2} dB < 35 dB");
}

#[test]
fn dense_scene_of_ten_thousand_overlapping_splats_matches() {
    let splats = Splats::random(3, 10_000, 0, 0.6, 0.05);
    let cam = camera(Point3::new(2.0, -1.5, 1.0), 45.0);
    let settings = RenderSettings {
        background: [1.0, 1.0, 1.0],
        ..Default::default()
    };
    let db = compare("dense", &splats, &cam, &settings);
    assert!(db >= 35.0, "PSNR {db:.2} dB < 35 dB");
}

#[test]
fn opacity_threshold_and_foreground_mask_cull_the_same_splats_in_both() {
    let mut splats = Splats::random(4, 800, 0, 1.0, 0.07);
    splats.foreground = Some((0..splats.len()).map(|i| i % 3 != 0).collect());
    let cam = camera(Point3::new(0.0, 3.0, 1.0), 50.0);
    let settings = RenderSettings {
        min_opacity: 0.6,
        foreground_only: true,
        ..Default::default()
    };
    let db = compare("culling", &splats, &cam, &settings);
    assert!(db >= 35.0, "PSNR {db:.2} dB < 35 dB");
    let ctx = GpuContext::headless().unwrap();
    let all = offscreen::render_splats(&ctx, &splats, &cam, &RenderSettings::default()).unwrap();
    let culled = offscreen::render_splats(&ctx, &splats, &cam, &settings).unwrap();
    assert!(psnr(&all, &culled) < 25.0, "culling must change the image");
}

#[test]
fn transparent_renders_carry_coverage_alpha() {
    let splats = Splats::random(6, 500, 1, 1.0, 0.06);
    let cam = camera(Point3::new(2.5, -1.0, 1.2), 50.0);
    let settings = RenderSettings {
        transparent: true,
        ..Default::default()
    };
    let ctx = GpuContext::headless().unwrap();
    let gpu = offscreen::render_splats(&ctx, &splats, &cam, &settings).unwrap();
    let cpu = reference::to_rgba8_straight(
        &reference::render_rgba(&splats, &cam, &settings),
        SIZE,
        SIZE,
    );
    // Compare coverage, and colour premultiplied by it (straight colour is noisy where
    // alpha is tiny).
    let channel = |img: &image::RgbaImage, f: &dyn Fn(&image::Rgba<u8>) -> [u8; 3]| {
        image::RgbaImage::from_fn(SIZE, SIZE, |x, y| {
            let [r, g, b] = f(img.get_pixel(x, y));
            image::Rgba([r, g, b, 255])
        })
    };
    let alpha = |p: &image::Rgba<u8>| [p[3]; 3];
    let premul = |p: &image::Rgba<u8>| {
        [0, 1, 2].map(|c| ((u32::from(p[c]) * u32::from(p[3]) + 127) / 255) as u8)
    };
    let db_alpha = psnr(&channel(&gpu, &alpha), &channel(&cpu, &alpha));
    let db_colour = psnr(&channel(&gpu, &premul), &channel(&cpu, &premul));
    assert!(
        db_alpha >= 35.0 && db_colour >= 35.0,
        "alpha {db_alpha:.1} dB, colour {db_colour:.1} dB"
    );
    // Wherever the reference has no coverage the GPU image is transparent too (up to
    // one quantisation step from the faint tails).
    let empty: Vec<(u32, u32)> = (0..SIZE)
        .flat_map(|y| (0..SIZE).map(move |x| (x, y)))
        .filter(|&(x, y)| cpu.get_pixel(x, y)[3] == 0)
        .collect();
    assert!(
        empty.len() > 1000,
        "the scene should leave background visible"
    );
    assert!(
        empty.iter().all(|&(x, y)| gpu.get_pixel(x, y)[3] <= 1),
        "empty pixels are transparent"
    );
}

#[test]
fn point_display_matches_the_reference_and_differs_from_ellipsoids() {
    let splats = Splats::random(5, 600, 1, 1.0, 0.05);
    let cam = camera(Point3::new(2.5, -1.5, 1.2), 55.0);
    let points = RenderSettings {
        point_size: 1.5,
        ..Default::default()
    };
    let db = compare("points", &splats, &cam, &points);
    assert!(db >= 35.0, "PSNR {db:.2} dB < 35 dB");
    // The mode changes the picture (the test can fail).
    let cpu_points = reference::to_rgba8(&reference::render(&splats, &cam, &points), SIZE, SIZE);
    let cpu_ellipsoids = reference::to_rgba8(
        &reference::render(&splats, &cam, &RenderSettings::default()),
        SIZE,
        SIZE,
    );
    assert!(psnr(&cpu_points, &cpu_ellipsoids) < 25.0);
}
