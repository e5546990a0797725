//! GUI test of a grounding review session driven from the keyboard (and one mouse drag):
//! accept, edit a box by dragging its handle, undo / redo, nudge, export; then the
//! exported files are checked number by number, and reopening restores the review.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{Start, settle};
use egui::{Key, Modifiers, Pos2, pos2};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use loupe::LoupeApp;
use loupe::datasets::export::{read_coco, read_qwen_jsonl};
use loupe::datasets::review::{Decision, ReviewBox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn harness(open: Vec<PathBuf>) -> Harness<'static, LoupeApp> {
    common::harness(Start {
        open,
        ..Default::default()
    })
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The demo benchmark as files on disk: annotation, images, predictions.
fn demo_on_disk(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    for name in ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        std::fs::copy(
            Path::new(ROOT).join("assets/images").join(name),
            dir.join("images").join(name),
        )
        .unwrap();
    }
    let bench = dir.join("bench.json");
    std::fs::copy(
        Path::new(ROOT).join("assets/demo/mig_bench_demo.json"),
        &bench,
    )
    .unwrap();
    let preds = dir.join("preds.jsonl");
    std::fs::copy(
        Path::new(ROOT).join("assets/demo/predictions_demo.jsonl"),
        &preds,
    )
    .unwrap();
    (bench, preds)
}

fn open_and_settle(h: &mut Harness<'_, LoupeApp>, path: PathBuf) {
    h.state_mut().open_paths(vec![path]);
    settle(h);
}

fn key(h: &mut Harness<'_, LoupeApp>, k: Key) {
    h.key_press(k);
    h.run_steps(2);
}

fn key_mod(h: &mut Harness<'_, LoupeApp>, m: Modifiers, k: Key) {
    h.key_press_modifiers(m, k);
    h.run_steps(2);
}

/// Press, move in steps, release: a mouse drag as egui sees it.
fn drag(h: &mut Harness<'_, LoupeApp>, from: Pos2, to: Pos2) {
    h.hover_at(from);
    h.drag_at(from);
    h.step();
    for k in 1..=8 {
        h.hover_at(from + (to - from) * (k as f32 / 8.0));
        h.step();
    }
    h.drop_at(to);
    h.run_steps(3);
}

/// Dismiss the toasts (they name the temporary folder, and expire by wall clock) and
/// park the pointer on the status bar, so snapshots do not depend on timing.
fn clear_toasts(h: &mut Harness<'_, LoupeApp>) {
    loop {
        let Some(dismiss) = h.query_all_by_label("✖").next() else {
            break;
        };
        dismiss.click();
        h.run_steps(2);
    }
    h.hover_at(pos2(640.0, 792.0));
    h.run_steps(3);
}

fn wait_saved(h: &mut Harness<'_, LoupeApp>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h.state().grounding().is_saved() {
        assert!(Instant::now() < deadline, "the autosave did not catch up");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn image_size(path: &Path) -> [f32; 2] {
    let (w, h) = image::image_dimensions(path).unwrap();
    [w as f32, h as f32]
}

#[test]
fn a_keyboard_review_session_exports_what_was_decided() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, preds) = demo_on_disk(dir.path());
    let mut h = harness(vec![bench.clone()]);
    open_and_settle(&mut h, preds);
    let g = h.state().grounding();
    assert_eq!(g.items().len(), 3);
    assert_eq!(
        g.sidecar_path(),
        Some(dir.path().join("bench.json.loupe-review.json").as_path())
    );

    // Accept item 1 with Enter: the model's box becomes the reviewed box; on to item 2.
    key(&mut h, Key::Enter);
    let g = h.state().grounding();
    assert_eq!(g.review().decision(0), Decision::Accepted);
    assert_eq!(g.selected(), 1);
    let proposal0 = g.working_boxes(0);
    assert_eq!(proposal0.len(), 1);
    assert_eq!(proposal0[0].image, 2, "the model named the third image");

    // Item 2: select image 2 (its box, the model's proposal) and drag the box's
    // bottom-right handle 15 px left and 30 px up.
    key(&mut h, Key::Num2);
    assert_eq!(h.state().grounding().selected_box(), Some(0));
    let g = h.state().grounding();
    let proposal = g.working_boxes(1)[0];
    assert_eq!(proposal.image, 1);
    let shown = g
        .image_rects()
        .iter()
        .find(|(i, _)| *i == 1)
        .map(|(_, r)| *r)
        .unwrap();
    let handle = pos2(
        shown.min.x + proposal.bbox.x2 * shown.width(),
        shown.min.y + proposal.bbox.y2 * shown.height(),
    );
    drag(&mut h, handle, handle - egui::vec2(15.0, 30.0));
    let edited = h.state().grounding().working_boxes(1)[0];
    let want_x2 = proposal.bbox.x2 - 15.0 / shown.width();
    let want_y2 = proposal.bbox.y2 - 30.0 / shown.height();
    assert!(
        (edited.bbox.x2 - want_x2).abs() < 0.004 && (edited.bbox.y2 - want_y2).abs() < 0.004,
        "{edited:?}, wanted x2 {want_x2} y2 {want_y2}"
    );
    assert_eq!(
        (edited.bbox.x1, edited.bbox.y1),
        (proposal.bbox.x1, proposal.bbox.y1)
    );
    let revision = h.state().grounding().review().revision();
    assert_eq!(revision, 2, "the whole drag is one edit");

    // Undo brings the proposal back; redo the edit again.
    key_mod(&mut h, Modifiers::COMMAND, Key::Z);
    assert_eq!(h.state().grounding().working_boxes(1)[0], proposal);
    assert_eq!(h.state().grounding().review().get(1).boxes, None);
    key_mod(&mut h, Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    assert_eq!(h.state().grounding().working_boxes(1)[0], edited);

    // Nudge: Shift+← moves the box 0.02 left; Alt+↑ pushes its top edge up 0.002.
    key_mod(&mut h, Modifiers::SHIFT, Key::ArrowLeft);
    key_mod(&mut h, Modifiers::ALT, Key::ArrowUp);
    let nudged = h.state().grounding().working_boxes(1)[0].bbox;
    assert!(
        (nudged.x1 - (edited.bbox.x1 - 0.02)).abs() < 1e-5,
        "{nudged:?}"
    );
    assert!(
        (nudged.x2 - (edited.bbox.x2 - 0.02)).abs() < 1e-5,
        "{nudged:?}"
    );
    assert!(
        (nudged.y1 - (edited.bbox.y1 - 0.002)).abs() < 1e-5,
        "{nudged:?}"
    );
    assert!((nudged.y2 - edited.bbox.y2).abs() < 1e-6, "{nudged:?}");
    assert_eq!(
        h.state().grounding().selected(),
        1,
        "arrows moved the box, not the item"
    );

    // Accept item 2 (moves on to 3), reject item 3 with R, then export with Ctrl+E.
    key(&mut h, Key::Enter);
    assert_eq!(h.state().grounding().selected(), 2);
    key(&mut h, Key::R);
    assert_eq!(
        h.state().grounding().review().decision(2),
        Decision::Rejected
    );
    key_mod(&mut h, Modifiers::COMMAND, Key::E);
    settle(&mut h);
    wait_saved(&mut h);
    let files = h.state().grounding().last_export.clone();
    assert_eq!(files.len(), 3, "{files:?}");

    // COCO: two accepted items, boxes in pixels of their images.
    let coco_text = std::fs::read_to_string(dir.path().join("bench.review.coco.json")).unwrap();
    let coco: serde_json::Value = serde_json::from_str(&coco_text).unwrap();
    let anns = coco["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 2);
    let rocket = image_size(&dir.path().join("images/rocket.jpg"));
    let coffee = image_size(&dir.path().join("images/coffee.jpg"));
    let bbox = |a: &serde_json::Value| -> Vec<f32> {
        a["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    // Item 1, accepted unchanged: the model's (262,70),(705,745) on coffee.jpg.
    let b0 = bbox(&anns[0]);
    let want0 = [
        0.262 * coffee[0],
        0.07 * coffee[1],
        (0.705 - 0.262) * coffee[0],
        (0.745 - 0.07) * coffee[1],
    ];
    for (g, w) in b0.iter().zip(want0) {
        assert!((g - w).abs() < 0.01, "{b0:?} vs {want0:?}");
    }
    assert_eq!(anns[0]["loupe_item"], 0);
    // Item 2, corrected: the nudged box on rocket.jpg.
    let b1 = bbox(&anns[1]);
    let want1 = [
        nudged.x1 * rocket[0],
        nudged.y1 * rocket[1],
        (nudged.x2 - nudged.x1) * rocket[0],
        (nudged.y2 - nudged.y1) * rocket[1],
    ];
    for (g, w) in b1.iter().zip(want1) {
        assert!((g - w).abs() < 0.01, "{b1:?} vs {want1:?}");
    }
    let image_of = |id: &serde_json::Value| {
        coco["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == *id)
            .unwrap()["file_name"]
            .clone()
    };
    assert_eq!(image_of(&anns[1]["image_id"]), "./images/rocket.jpg");
    let back = read_coco(&coco_text).unwrap();
    assert_eq!(back[&1][0].image, 1);

    // JSONL: the same two items on the 0–1000 grid, images named.
    let jsonl = std::fs::read_to_string(dir.path().join("bench.review.qwen.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let q = |v: f32| (v * 1000.0).round() as u32;
    assert_eq!(
        lines[1]["messages"][1]["content"],
        format!(
            "It is in the second image. <|box_start|>({},{}),({},{})<|box_end|>",
            q(nudged.x1),
            q(nudged.y1),
            q(nudged.x2),
            q(nudged.y2)
        )
    );
    assert_eq!(
        lines[0]["messages"][1]["content"],
        "It is in the third image. <|box_start|>(262,70),(705,745)<|box_end|>"
    );
    let back = read_qwen_jsonl(&jsonl).unwrap();
    let got: &ReviewBox = &back[&1][0];
    assert!((got.bbox.x2 - nudged.x2).abs() <= 0.0005 + 1e-6);

    // CSV: every item with its decision and the model's IoU.
    let csv = std::fs::read_to_string(dir.path().join("bench.review.metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][4], "decision");
    assert_eq!(
        rows[1..].iter().map(|r| r[4]).collect::<Vec<_>>(),
        ["accepted", "accepted", "rejected"]
    );
    assert_eq!(rows[2][5], "1", "item 2 was edited");
    let iou0: f64 = rows[1][7].parse().unwrap();
    let want_iou = h.state().grounding().score(0).unwrap().iou;
    assert!((iou0 - want_iou).abs() < 1e-4);

    // The review view, for the README: back on item 2 with its box selected.
    key(&mut h, Key::K);
    key(&mut h, Key::Num2);
    settle(&mut h);
    clear_toasts(&mut h);
    h.snapshot_options(
        "review_session",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(60),
    );
    key(&mut h, Key::M);
    settle(&mut h);
    h.snapshot_options(
        "review_metrics",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(60),
    );
    let final_review: Vec<_> = h
        .state()
        .grounding()
        .review()
        .reviewed()
        .map(|(i, r)| (i, r.clone()))
        .collect();
    drop(h);

    // Reopening restores the review exactly.
    let mut h = harness(vec![bench]);
    let restored: Vec<_> = h
        .state()
        .grounding()
        .review()
        .reviewed()
        .map(|(i, r)| (i, r.clone()))
        .collect();
    assert_eq!(restored, final_review);
    assert!(
        h.state()
            .toasts()
            .iter()
            .any(|t| t.text.contains("Review restored")),
    );
    h.run_steps(1);
}

#[test]
fn filters_and_sorting_follow_the_review() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, preds) = demo_on_disk(dir.path());
    let mut h = harness(vec![bench]);
    open_and_settle(&mut h, preds);
    // Sort by IoU, worst first: item 3 (wrong image, IoU 0) leads.
    h.state_mut()
        .grounding_mut()
        .set_sort(loupe::workspace::grounding::Sort::IouAscending);
    h.run_steps(2);
    assert_eq!(h.state().grounding().visible()[0], 2);
    h.state_mut().grounding_mut().filter_mut().wrong_image = true;
    h.run_steps(2);
    assert_eq!(h.state().grounding().visible(), &[2]);
    h.state_mut().grounding_mut().filter_mut().wrong_image = false;
    h.state_mut().grounding_mut().filter_mut().status = Some(Decision::Unreviewed);
    h.run_steps(2);
    // Skipping the first listed item drops it from the "unreviewed" list; U finds the
    // next unreviewed one.
    h.state_mut().grounding_mut().set_selected(2);
    key(&mut h, Key::S);
    assert_eq!(h.state().grounding().visible().len(), 2);
    assert!(!h.state().grounding().visible().contains(&2));
    key(&mut h, Key::U);
    assert_ne!(h.state().grounding().selected(), 2);
    // Ctrl+Y redoes after undo.
    key_mod(&mut h, Modifiers::COMMAND, Key::Z);
    assert_eq!(
        h.state().grounding().review().decision(2),
        Decision::Unreviewed
    );
    key_mod(&mut h, Modifiers::COMMAND, Key::Y);
    assert_eq!(
        h.state().grounding().review().decision(2),
        Decision::Skipped
    );
}

#[test]
fn draw_delete_zoom_and_fit_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, preds) = demo_on_disk(dir.path());
    let mut h = harness(vec![bench]);
    open_and_settle(&mut h, preds);
    let rect = |h: &Harness<'_, LoupeApp>, i: usize| {
        h.state()
            .grounding()
            .image_rects()
            .iter()
            .find(|(k, _)| *k == i)
            .unwrap()
            .1
    };
    // N, then drag on image 1: a new box after the model's, selected.
    let r0 = rect(&h, 0);
    key(&mut h, Key::N);
    let from = r0.min + r0.size() * 0.2;
    let to = r0.min + r0.size() * 0.5;
    drag(&mut h, from, to);
    let boxes = h.state().grounding().working_boxes(0);
    assert_eq!(boxes.len(), 2, "{boxes:?}");
    let drawn = boxes[1];
    assert_eq!(drawn.image, 0);
    for (got, want) in [
        (drawn.bbox.x1, 0.2),
        (drawn.bbox.y1, 0.2),
        (drawn.bbox.x2, 0.5),
        (drawn.bbox.y2, 0.5),
    ] {
        assert!((got - want).abs() < 0.01, "{drawn:?}");
    }
    assert_eq!(h.state().grounding().selected_box(), Some(1));
    // Ctrl+→ pulls the left edge in.
    key_mod(&mut h, Modifiers::COMMAND, Key::ArrowRight);
    let pulled = h.state().grounding().working_boxes(0)[1].bbox;
    assert!((pulled.x1 - (drawn.bbox.x1 + 0.002)).abs() < 1e-5 && pulled.x2 == drawn.bbox.x2);
    // Delete removes it; undo brings it back; Esc deselects.
    key(&mut h, Key::Delete);
    assert_eq!(h.state().grounding().working_boxes(0).len(), 1);
    key_mod(&mut h, Modifiers::COMMAND, Key::Z);
    assert_eq!(h.state().grounding().working_boxes(0).len(), 2);
    key(&mut h, Key::Escape);
    assert_eq!(h.state().grounding().selected_box(), None);
    // The wheel zooms image 2 around the pointer; F fits it again.
    let r1 = rect(&h, 1);
    h.hover_at(r1.center());
    h.step();
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, 200.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(20);
    let zoomed = rect(&h, 1);
    assert!(zoomed.width() > r1.width() * 1.3, "{zoomed:?} vs {r1:?}");
    assert!(
        (zoomed.center() - r1.center()).length() < 2.0,
        "zoom keeps the pointer"
    );
    assert_eq!(rect(&h, 0), r0, "other images keep their view");
    key(&mut h, Key::F);
    assert_eq!(rect(&h, 1), r1);
}

#[test]
fn a_corrupt_sidecar_is_kept_aside_and_notes_autosave() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, _) = demo_on_disk(dir.path());
    let sidecar = dir.path().join("bench.json.loupe-review.json");
    std::fs::write(
        &sidecar,
        b"{\"format\": \"loupe-review\", \"items\": {\"0\": {\"dec",
    )
    .unwrap();
    let mut h = harness(vec![bench]);
    assert!(
        h.state()
            .toasts()
            .iter()
            .any(|t| t.text.contains("not a review file") && t.text.contains(".corrupt-")),
        "{:?}",
        h.state()
            .toasts()
            .iter()
            .map(|t| t.text.clone())
            .collect::<Vec<_>>()
    );
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(!sidecar.exists(), "nothing written before the first edit");

    // A note, typed in the inspector, is saved; the corrupt file stays as it was.
    h.get_by_role_and_label(egui::accesskit::Role::MultilineTextInput, "Note")
        .click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::MultilineTextInput, "Note")
        .type_text("cup, not saucer");
    h.run_steps(2);
    key(&mut h, Key::Escape);
    assert_eq!(
        h.state().grounding().review().get(0).note,
        "cup, not saucer"
    );
    wait_saved(&mut h);
    let saved = std::fs::read_to_string(&sidecar).unwrap();
    assert!(saved.contains("cup, not saucer"), "{saved}");
    assert_eq!(
        std::fs::read(&aside[0]).unwrap(),
        b"{\"format\": \"loupe-review\", \"items\": {\"0\": {\"dec"
    );
    // The whole note is one undo step.
    key_mod(&mut h, Modifiers::COMMAND, Key::Z);
    assert_eq!(h.state().grounding().review().get(0).note, "");
}

#[test]
fn two_models_are_compared_and_their_disagreements_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, preds) = demo_on_disk(dir.path());
    // A second model: agrees on item 1, puts item 2's box elsewhere, says nothing on 3.
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        "{\"id\": 0, \"model\": \"model-b\", \"answer\": \"It is in the third image. (270,60),(700,750)\"}\n\
         {\"id\": 1, \"model\": \"model-b\", \"answer\": \"In the second image (100,100),(300,400)\"}\n",
    )
    .unwrap();
    let mut h = harness(vec![bench]);
    open_and_settle(&mut h, preds);
    open_and_settle(&mut h, other);
    let g = h.state().grounding();
    assert_eq!(g.model_names(), ["model-b", "demo-model"]);
    assert!(!g.models_disagree(0));
    assert!(g.models_disagree(1), "IoU between the two boxes is 0");
    assert!(g.models_disagree(2), "one model has no box");
    h.state_mut().grounding_mut().filter_mut().disagree = true;
    h.run_steps(2);
    assert_eq!(h.state().grounding().visible(), &[1, 2]);
    // Scoring the other model again swaps them back.
    h.state_mut().grounding_mut().promote_model(0);
    h.run_steps(2);
    assert_eq!(
        h.state().grounding().model_names(),
        ["demo-model", "model-b"]
    );
    h.state_mut().grounding_mut().filter_mut().disagree = false;
    h.state_mut().grounding_mut().set_selected(1);
    h.run_steps(2);
    settle(&mut h);
    clear_toasts(&mut h);
    h.snapshot_options(
        "review_compare",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(60),
    );
}

#[test]
fn a_hundred_thousand_items_filter_fast() {
    use loupe::datasets::metrics::Prediction;
    use loupe::datasets::mig_bench::GroundingItem;
    use loupe::datasets::predictions::ModelAnswer;
    use loupe_models::answer::NormBox;
    let mut h = harness(Vec::new());
    let n = 100_000;
    // 100k answers parsed once here, not per frame.
    let items: Vec<GroundingItem> = (0..n)
        .map(|i| GroundingItem {
            task: ["region", "diff", "group_grounding"][i % 3].into(),
            images: vec![loupe::image_cache::ImageSource::File(
                "/nonexistent.jpg".into(),
            )],
            image_names: vec!["x.jpg".into()],
            gt: Some(NormBox::new(0.0, 0.0, 0.5, 0.5)),
            gt_exact: Some([0.0, 0.0, 0.5, 0.5]),
            target: Some(0),
            ..Default::default()
        })
        .collect();
    let answers = (0..n)
        .map(|i| {
            // A box of width w = 0.5·k/100 on Qwen's grid: IoU k/100.
            let answer = format!("(0,0),({},500)", 5 * (i % 100));
            (
                i,
                ModelAnswer {
                    prediction: Prediction::from_answer(&answer),
                    answer,
                },
            )
        })
        .collect();
    h.state_mut().grounding_mut().set_items(items, answers);
    h.run_steps(2);
    assert_eq!(h.state().grounding().visible().len(), n);
    let t = Instant::now();
    h.state_mut().grounding_mut().filter_mut().iou_max = 0.1;
    h.step();
    let filtered = h.state().grounding().visible().len();
    // IoU = w / 0.5 = (i % 100) / 100 ≤ 0.1 → 11 of every 100.
    assert_eq!(filtered, n / 100 * 11);
    // A whole frame with the refilter, the virtualised list and the images (4 ms here,
    // 1 ms for a frame without changes); the bounds
    // leaves room for a loaded CI machine.
    eprintln!("refilter frame over {n} items: {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    // A frame with nothing changed does no per-item work.
    let t = Instant::now();
    h.step();
    eprintln!("idle frame over {n} items: {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
}
