//! The GUI tests' shared harness: the whole app in egui_kittest with the wgpu renderer
//! (lavapipe in CI), stepped until every background job and decode has landed.
// Each test binary uses a different part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use egui_kittest::{Harness, SnapshotOptions};
use loupe::state::Settings;
use loupe::{LoupeApp, StartOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How to start the app.
pub struct Start {
    pub size: egui::Vec2,
    pub settings: Settings,
    pub open: Vec<PathBuf>,
}

impl Default for Start {
    fn default() -> Self {
        Self {
            size: egui::vec2(1280.0, 800.0),
            settings: Settings::default(),
            open: Vec::new(),
        }
    }
}

/// The app, started but not yet settled.
pub fn build(start: Start) -> Harness<'static, LoupeApp> {
    let Start {
        size,
        settings,
        open,
    } = start;
    Harness::builder()
        .with_size(size)
        // Captions and random-weight model answers are in any script (CJK, mathematical
        // letters, U+FFFD); the bundled fonts draw tofu for some, as the app does.
        .allow_missing_glyphs()
        .wgpu()
        .build_eframe(move |cc| {
            LoupeApp::with_settings(cc, settings, StartOptions { open }).unwrap()
        })
}

/// The app, started and settled.
pub fn harness(start: Start) -> Harness<'static, LoupeApp> {
    let mut h = build(start);
    settle(&mut h);
    h
}

/// Step until nothing is loading or running (results arrive over channels), then a few
/// more frames so what landed is laid out and drawn, and idle again.
pub fn settle(h: &mut Harness<'_, LoupeApp>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        h.step();
        if h.state().is_idle() {
            h.run_steps(3);
            if h.state().is_idle() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the app did not become idle");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lavapipe is deterministic, but font hinting can differ by a few edge pixels.
pub fn snapshot(h: &mut Harness<'_, LoupeApp>, name: &str) {
    h.snapshot_options(
        name,
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(40),
    );
}

/// What the windowing integration hands egui for a file dropped on the window.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
