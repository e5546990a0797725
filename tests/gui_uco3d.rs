//! The uCO3D sequence view driven like a user would: open the dataset root from the
//! command line, step frames with the keyboard, look through the dataset camera, switch
//! sequences, and open a broken one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{Start, settle};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use loupe::LoupeApp;
use loupe::routing::WorkspaceKind;
use std::path::PathBuf;

fn harness(open: Vec<PathBuf>) -> Harness<'static, LoupeApp> {
    common::harness(Start {
        size: egui::vec2(1400.0, 820.0),
        open,
        ..Default::default()
    })
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo/uco3d")
}

#[test]
fn a_sequence_plays_in_sync_and_looks_through_its_cameras() {
    let mut h = harness(vec![root()]);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Scene3d);
    let s = h.state().scene3d().uco3d().expect("a uCO3D session");
    assert_eq!(s.seq.as_ref().unwrap().annot.name, "1-10001-20001");
    assert_eq!(s.frame_count(), 12);
    assert_eq!(s.shown_frame(), Some(0));
    assert_eq!(h.state().scene3d().splat_count(), 56 * 56);
    // The browser lists every sequence, the category tree its counts.
    h.get_by_label("stationery (2)");
    h.get_by_label("home_décor (1)");

    // → steps the annotated frames; the video frame follows.
    h.key_press(egui::Key::ArrowRight);
    h.key_press(egui::Key::ArrowRight);
    settle(&mut h);
    let s = h.state().scene3d().uco3d().unwrap();
    assert_eq!(s.frame, 2);
    assert_eq!(s.shown_frame(), Some(2));
    h.key_press(egui::Key::ArrowLeft);
    settle(&mut h);
    assert_eq!(h.state().scene3d().uco3d().unwrap().shown_frame(), Some(1));

    // Orbiting: frusta, trajectory and the shown frame inside its own frustum (zoomed
    // out with the wheel so every camera is in view; frame 4 faces this view).
    for _ in 0..3 {
        h.key_press(egui::Key::ArrowRight);
    }
    settle(&mut h);
    h.event(egui::Event::PointerMoved(egui::pos2(530.0, 400.0)));
    for _ in 0..5 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, -60.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(2);
    }
    settle(&mut h);
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 52.0),
        egui::pos2(295.0, 74.0),
    ));
    h.snapshot_options(
        "uco3d_orbit_frusta",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(200),
    );
    for _ in 0..3 {
        h.key_press(egui::Key::ArrowLeft);
    }
    settle(&mut h);

    // C looks through the frame's camera; the render is compared with the frame.
    h.key_press(egui::Key::C);
    settle(&mut h);
    let psnr = h
        .state()
        .scene3d()
        .uco3d()
        .unwrap()
        .psnr()
        .expect("PSNR measured");
    assert!(psnr >= 30.0, "look-through PSNR {psnr}");
    // The dataset's absolute path differs per checkout.
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 52.0),
        egui::pos2(295.0, 74.0),
    ));
    h.snapshot_options(
        "uco3d_look_through",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(200),
    );

    // The sparse SfM points instead of the splats: the same view, new content.
    h.get_by_label("3D layer").click();
    h.run_steps(2);
    h.get_by_label("sparse SfM points").click();
    settle(&mut h);
    assert_eq!(h.state().scene3d().splat_count(), 300);
    h.get_by_label("3D layer").click();
    h.run_steps(2);
    h.get_by_label("this frame's depth").click();
    settle(&mut h);
    let depth_points = h.state().scene3d().splat_count();
    assert!(
        depth_points > 1000 && depth_points < 96 * 72,
        "{depth_points}"
    );

    // Another sequence from the list: HEVC, portrait, no distortion.
    h.get_by_label_contains("2-30002-40002").click();
    settle(&mut h);
    let s = h.state().scene3d().uco3d().unwrap();
    assert_eq!(s.seq.as_ref().unwrap().annot.name, "2-30002-40002");
    assert_eq!(s.shown_frame(), Some(0));

    // The broken one: its problems are listed, the app keeps working.
    h.get_by_label_contains("3-50003-60003").click();
    settle(&mut h);
    let s = h.state().scene3d().uco3d().unwrap();
    let seq = s.seq.as_ref().unwrap();
    assert_eq!(seq.annot.name, "3-50003-60003");
    assert!(
        seq.problems
            .iter()
            .any(|p| p.contains("no Gaussian splats"))
    );
    assert!(
        s.fetch_error().unwrap().contains("does not exist"),
        "{:?}",
        s.fetch_error()
    );
    h.get_by_label("Problems");
}
