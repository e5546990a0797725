//! `loupe render` end to end: the PNG it writes matches the CPU reference renderer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe_render::camera::{Camera, Intrinsics};
use loupe_render::reference::{self, RenderSettings};
use loupe_render::splats::Splats;
use nalgebra::{Point3, Vector3};
use std::process::Command;

#[test]
fn render_writes_the_reference_image() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scene.ply");
    let out = dir.path().join("frame.png");
    let splats = Splats::random(9, 600, 2, 1.0, 0.07);
    let mut f = std::fs::File::create(&input).unwrap();
    loupe_render::io::ply::write_ply(&mut f, &splats).unwrap();
    drop(f);
    let status = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args([
            "render",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--width", "160", "--height", "120", "--eye", "2.5,1,1", "--target", "0,0,0", "--fov",
            "55",
        ])
        .args(["--background", "0.2,0.2,0.2"])
        .status()
        .unwrap();
    assert!(status.success());
    let gpu = image::open(&out).unwrap().to_rgba8();
    let k = Intrinsics::from_fov_y(55f64.to_radians(), 160, 120);
    let mut cam = Camera::look_at(
        Point3::new(2.5, 1.0, 1.0),
        Point3::origin(),
        Vector3::z(),
        k,
    );
    cam.near = 0.01 * Point3::new(2.5, 1.0, 1.0).coords.norm();
    let settings = RenderSettings {
        background: [0.2; 3],
        ..Default::default()
    };
    let cpu = reference::to_rgba8(&reference::render(&splats, &cam, &settings), 160, 120);
    let db = reference::psnr(&gpu, &cpu);
    assert!(db >= 35.0, "PSNR {db:.2} dB");
}

#[test]
fn render_reports_a_bad_input_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("broken.ply");
    std::fs::write(
        &input,
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args([
            "render",
            input.to_str().unwrap(),
            "--out",
            dir.path().join("x.png").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.ply") && stderr.contains("no x, y, z"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.png").exists(), "no output on failure");
}
