//! GUI tests: the whole app in egui_kittest with the wgpu renderer (lavapipe in CI),
//! driven by clicks and keys, with a snapshot per view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{DroppedPath, Start, settle, snapshot};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use loupe::LoupeApp;
use loupe::routing::WorkspaceKind;
use loupe::state::Settings;
use std::time::{Duration, Instant};

fn harness_with(settings: Settings, open: Vec<std::path::PathBuf>) -> Harness<'static, LoupeApp> {
    common::harness(Start {
        settings,
        open,
        ..Default::default()
    })
}

fn harness() -> Harness<'static, LoupeApp> {
    harness_with(Settings::default(), Vec::new())
}

#[test]
fn starts_on_the_grounding_demo_with_all_tabs() {
    let mut h = harness();
    for tab in ["Grounding", "3D", "BioMed"] {
        assert!(h.query_by_label(tab).is_some(), "tab {tab} missing");
    }
    assert_eq!(h.state().settings.tab, WorkspaceKind::Grounding);
    assert_eq!(h.state().grounding().items().len(), 3);
    // The target image of the first demo item is the third one, shown in the inspector.
    assert_eq!(h.state().grounding().items()[0].target, Some(2));
    h.get_by_label("Target image");
    // The demo model's first answer, IoU by hand: intersection 0.41 × 0.675, areas
    // 0.443 × 0.675 and 0.41 × 0.73.
    let (inter, a, b) = (0.41 * 0.675, 0.443 * 0.675, 0.41 * 0.73);
    let iou = h.state().grounding().score(0).unwrap().iou;
    assert!((iou - inter / (a + b - inter)).abs() < 1e-5, "{iou}");
    // Two of three demo answers reach IoU 0.5; the third puts its box on the wrong image.
    h.get_by_label_contains("Acc@0.5 66.7 %");
    assert!(h.state().grounding().score(2).unwrap().wrong_image);
    snapshot(&mut h, "grounding_demo");
}

#[test]
fn tabs_switch_by_click_and_by_keyboard() {
    let mut h = harness();
    h.get_by_label("3D").click();
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Scene3d);
    // The uCO3D sample's cache path differs per machine.
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 52.0),
        egui::pos2(260.0, 74.0),
    ));
    snapshot(&mut h, "scene3d_demo");

    h.get_by_label("BioMed").click();
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::BioMed);
    h.get_by_label_contains("31 of 31 items");
    snapshot(&mut h, "biomed_demo");

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num1);
    h.run_steps(2);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Grounding);
}

#[test]
fn the_light_theme_at_projector_scale_renders() {
    let settings = Settings {
        theme: loupe::ui::theme::Theme::Light,
        ui_scale: 1.21,
        ..Default::default()
    };
    let mut h = harness_with(settings, Vec::new());
    settle(&mut h);
    assert_eq!(h.state().settings.theme, loupe::ui::theme::Theme::Light);
    snapshot(&mut h, "grounding_light_projector");
}

#[test]
fn arrow_keys_move_through_grounding_items() {
    let mut h = harness();
    assert_eq!(h.state().grounding().selected(), 0);
    h.key_press(egui::Key::ArrowDown);
    h.key_press(egui::Key::J);
    h.run_steps(2);
    assert_eq!(h.state().grounding().selected(), 2);
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(
        h.state().grounding().selected(),
        2,
        "stays on the last item"
    );
    h.key_press(egui::Key::K);
    h.run_steps(2);
    assert_eq!(h.state().grounding().selected(), 1);
}

#[test]
fn f1_opens_the_shortcut_overlay_listing_bindings() {
    let mut h = harness();
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    h.key_press(egui::Key::F1);
    h.run_steps(3);
    assert!(h.state().help_visible());
    h.get_by_label("Keyboard shortcuts");
    // Every global binding is listed.
    for b in loupe::ui::shortcuts::GLOBAL {
        h.get_all_by_label(b.action)
            .next()
            .unwrap_or_else(|| panic!("{} not listed", b.action));
    }
    snapshot(&mut h, "shortcut_overlay");
    h.key_press(egui::Key::F1);
    h.run_steps(3);
    assert!(!h.state().help_visible());
}

#[test]
fn a_dropped_unsupported_file_shows_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "just text").unwrap();
    let mut h = harness();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(bad.clone())));
    settle(&mut h);
    let errors: Vec<String> = h
        .state()
        .toasts()
        .iter()
        .filter(|t| t.level == loupe::ui::toasts::Level::Error)
        .map(|t| t.text.clone())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("notes.txt") && errors[0].contains("not a supported file"),
        "{errors:?}"
    );
    h.get_by_label_contains("notes.txt");
    assert_eq!(
        h.state().settings.tab,
        WorkspaceKind::Grounding,
        "a failed drop changes nothing"
    );
}

#[test]
fn a_generic_grounding_jsonl_opens_as_items_with_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images");
    for name in ["cell.jpg", "coffee.jpg"] {
        std::fs::copy(assets.join(name), dir.path().join(name)).unwrap();
    }
    let path = dir.path().join("items.jsonl");
    std::fs::write(
        &path,
        concat!(
            "{\"images\": [\"cell.jpg\", \"coffee.jpg\"], \"prompt\": \"Where is the cup?\", ",
            "\"gt\": [{\"image\": \"coffee.jpg\", \"box\": [0.2, 0.1, 0.8, 0.9], \"label\": \"cup\"}]}\n",
            "{\"images\": [\"missing.jpg\"], \"prompt\": \"Nothing here\", \"gt\": [{\"image\": 0, \"box\": [100, 100, 500, 500]}]}\n",
            "{\"images\": \"oops\", \"prompt\": \"bad line\"}\n",
        ),
    )
    .unwrap();
    let mut h = harness_with(Settings::default(), vec![path]);
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Grounding);
    let items = h.state().grounding().items();
    assert_eq!(items.len(), 2, "the bad line is reported, the others load");
    assert_eq!(items[0].target, Some(1));
    assert_eq!(items[0].question, "Where is the cup?");
    let gt = items[1].gt.unwrap();
    assert!(
        (gt.x1 - 0.1).abs() < 1e-6 && (gt.x2 - 0.5).abs() < 1e-6,
        "{gt:?}"
    );
}

#[test]
fn a_dropped_predictions_file_replaces_the_model_answers() {
    let dir = tempfile::tempdir().unwrap();
    let preds = dir.path().join("my-model.jsonl");
    // Item 0's GT is (0.28, 0.04, 0.69, 0.77) on the third image: answer it exactly.
    std::fs::write(
        &preds,
        "{\"id\": 0, \"answer\": \"the third image (280,40),(690,770)\"}\n",
    )
    .unwrap();
    let mut h = harness();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(preds)));
    settle(&mut h);
    let g = h.state().grounding();
    let s = g.score(0).unwrap();
    assert!((s.iou - 1.0).abs() < 1e-6 && !s.wrong_image, "{s:?}");
    // Items without an answer score IoU 0 and count as missing (the official rule):
    // 1 of 3 reaches 0.5.
    let (_, all) = g.metrics();
    assert_eq!((all.count, all.parse_failures, all.missing), (3, 0, 2));
    h.get_by_label_contains("my-model: Acc@0.5 33.3 %");
}

#[test]
fn dropped_images_route_to_grounding_and_decode_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("photo.bin");
    let pixels =
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    pixels
        .save_with_format(&img, image::ImageFormat::Png)
        .unwrap();
    let settings = Settings {
        tab: WorkspaceKind::BioMed,
        ..Default::default()
    };
    let mut h = harness_with(settings, vec![img.clone()]);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Grounding);
    let items = h.state().grounding().items();
    assert_eq!(items.len(), 4);
    assert_eq!(items[3].image_names, vec![img.display().to_string()]);
    assert_eq!(h.state().grounding().selected(), 3);
    assert_eq!(h.state().settings.recent.first(), Some(&img));
    settle(&mut h);
}

#[test]
fn a_splat_ply_opened_from_the_command_line_shows_in_the_3d_view() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scene.ply");
    let splats = loupe_render::Splats::random(12, 3000, 3, 1.0, 0.05);
    let mut f = std::fs::File::create(&path).unwrap();
    loupe_render::io::ply::write_ply(&mut f, &splats).unwrap();
    drop(f);
    let mut h = harness_with(Settings::default(), vec![path.clone()]);
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Scene3d);
    assert_eq!(h.state().scene3d().splat_count(), 3000);
    assert_eq!(h.state().scene3d().name(), path.display().to_string());
    h.get_by_label("3000");
    // The name is a temporary path; mask the item panel so the snapshot is stable.
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 30.0),
        egui::pos2(260.0, 120.0),
    ));
    snapshot(&mut h, "scene3d_ply");
    // Centres display, ground grid and bounding box (the grid and box lines are clipped
    // at the near plane; the centres come from the same GPU path, checked against the
    // CPU reference in render/tests/psnr.rs).
    for toggle in ["centres", "grid", "bounding box"] {
        h.get_by_label(toggle).click();
        settle(&mut h);
    }
    assert!(h.query_all_by_label("centre size (px)").count() > 0);
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 30.0),
        egui::pos2(260.0, 120.0),
    ));
    snapshot(&mut h, "scene3d_ply_centres_grid_box");
    // A transparent background: a checkerboard behind the splats in the view.
    h.get_by_label("transparent").click();
    settle(&mut h);
    assert!(h.state().scene3d().render_settings().transparent);
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 30.0),
        egui::pos2(260.0, 120.0),
    ));
    snapshot(&mut h, "scene3d_ply_transparent");
}

#[test]
fn a_point_cloud_ply_is_drawn_through_the_splat_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.ply");
    let cloud = loupe_render::io::PointCloud {
        positions: (0..500)
            .map(|i| [(i % 10) as f32, (i / 10 % 10) as f32, (i / 100) as f32])
            .collect(),
        colors: (0..500).map(|i| [(i % 256) as u8, 100, 200]).collect(),
    };
    let mut f = std::fs::File::create(&path).unwrap();
    loupe_render::io::ply::write_points(&mut f, &cloud).unwrap();
    drop(f);
    let mut h = harness_with(Settings::default(), vec![path]);
    settle(&mut h);
    assert_eq!(h.state().settings.tab, WorkspaceKind::Scene3d);
    assert_eq!(h.state().scene3d().splat_count(), 500);
    h.get_by_label("points");
}

#[test]
fn the_3d_view_looks_through_a_dataset_camera_and_flies() {
    let mut h = harness();
    h.get_by_label("3D").click();
    settle(&mut h);
    // The bundled uCO3D sample is the 3D workspace's demo.
    let s = h.state().scene3d().uco3d().expect("the uCO3D sample");
    assert_eq!(s.seq.as_ref().unwrap().annot.name, "1-10001-20001");
    h.key_press(egui::Key::ArrowRight);
    h.key_press(egui::Key::C);
    settle(&mut h);
    assert!(h.state().scene3d().uco3d().unwrap().psnr().unwrap() > 30.0);
    // The sample's cache path differs per machine.
    h.mask(egui::Rect::from_min_max(
        egui::pos2(0.0, 52.0),
        egui::pos2(260.0, 74.0),
    ));
    snapshot(&mut h, "scene3d_look_through");
    // Holding W flies towards the target; the view leaves the dataset camera.
    let before = h.state().scene3d().orbit().target;
    h.key_down(egui::Key::W);
    h.run_steps(5);
    h.key_up(egui::Key::W);
    h.run_steps(1);
    let after = h.state().scene3d().orbit().target;
    assert!((after - before).norm() > 0.0, "W should move the view");
}

#[test]
fn the_ui_keeps_stepping_while_a_long_job_runs_and_cancel_stops_it() {
    let mut h = harness();
    let (_keep_open, never) = crossbeam_channel::bounded::<()>(0);
    let mut job = h.state().worker().spawn("Slow test job", move |ctx| {
        for i in 0..1000 {
            ctx.check_cancelled()?;
            ctx.progress(i as f32 / 1000.0, format!("step {i}"));
            // Wait as a real job waits on I/O: on a channel, so the thread stays cancellable.
            let _ = never.recv_timeout(Duration::from_millis(10));
        }
        Ok(42)
    });
    // Many frames while the job (about 10 s long) is still running.
    let start = Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_millis(600) {
        h.step();
        frames += 1;
    }
    assert!(job.try_take().is_none(), "the job should still be running");
    assert!(frames >= 10, "only {frames} frames in 600 ms");
    h.get_by_label("Slow test job");
    let running = h.state().worker().board().running();
    assert!(running[0].fraction.unwrap() > 0.0, "progress was reported");

    h.get_by_label("Cancel").click();
    h.step();
    let result = job
        .wait_timeout(Duration::from_secs(5))
        .expect("cancel must stop the job promptly");
    assert_eq!(result, Err(loupe::worker::JobError::Cancelled));
    settle(&mut h);
    assert!(h.query_by_label("Slow test job").is_none());
}

#[test]
fn projector_scale_steps_with_keyboard_and_persists_in_settings() {
    let mut h = harness();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Plus);
    h.run_steps(2);
    assert_eq!(h.state().settings.ui_scale, 1.1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num0);
    h.run_steps(2);
    assert_eq!(h.state().settings.ui_scale, 1.0);
    h.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::L,
    );
    h.run_steps(2);
    assert_eq!(h.state().settings.theme, loupe::ui::theme::Theme::Light);
    let saved = serde_json::to_string(&h.state().settings).unwrap();
    let restored: Settings = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, h.state().settings);
}
