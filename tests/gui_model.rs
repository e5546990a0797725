//! GUI tests of running the grounding model from the Grounding workspace, on the tiny
//! random-weight Qwen2-VL fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use loupe::LoupeApp;
use loupe::grounding_model::{ModelSettings, ground};
use loupe::state::Settings;
use loupe::workspace::grounding_run::LiveAnswer;
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/tests/fixtures/qwen2vl-tiny"
);

fn model_settings() -> ModelSettings {
    ModelSettings {
        source: FIXTURE.into(),
        max_new_tokens: 12,
        ..Default::default()
    }
}

fn harness() -> Harness<'static, LoupeApp> {
    let settings = Settings {
        model: model_settings(),
        ..Default::default()
    };
    let mut h = common::build(common::Start {
        settings,
        ..Default::default()
    });
    h.run_steps(3);
    h
}

#[test]
fn run_streams_the_answer_into_the_inspector() {
    let mut h = harness();
    let item = h.state().grounding().items()[0].clone();
    h.get_by_label("▶ Run").click();
    // Record the live text every frame: it must grow in several steps, not arrive whole.
    let mut seen = Vec::<String>::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        h.step();
        let g = h.state().grounding();
        if let Some(a) = g.runner.answers.get(&0)
            && seen.last() != Some(&a.text)
        {
            seen.push(a.text.clone());
        }
        if !g.runner.is_running() && g.runner.answers.get(&0).is_some_and(|a| a.done) {
            break;
        }
        assert!(Instant::now() < deadline, "the model did not answer");
        std::thread::sleep(Duration::from_millis(2));
    }
    let answer = h.state().grounding().runner.answers[&0].clone();
    assert!(
        answer.stats.as_deref().unwrap_or("").contains("generated"),
        "{:?}",
        answer.stats
    );
    let distinct_partials = seen.iter().filter(|t| !t.is_empty()).count();
    assert!(
        distinct_partials >= 3,
        "only {distinct_partials} updates: {seen:?}"
    );
    for pair in seen.windows(2) {
        assert!(
            pair[1].starts_with(&pair[0]),
            "the stream rewrote text: {pair:?}"
        );
    }
    // The same request headless (the `loupe ground` path) gives the same answer.
    let settings = model_settings();
    let fetch = loupe_models::qwen2vl::loader::Fetch::quiet();
    let mut model = settings.load(&fetch, &|_, _| {}).unwrap();
    let images: Vec<_> = item.images.iter().map(|s| s.decode().unwrap()).collect();
    // The inspector's instruction is the official prompt (question + format suffix).
    let prompt = loupe_models::reference::official_prompt(&item.task, &item.question);
    let direct = ground(
        &mut model,
        &settings,
        &images,
        &prompt,
        &|| false,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(answer.text, direct.answer);
    assert_eq!(direct.generated_tokens, 12);
    h.get_by_label("Live answer");
}

#[test]
fn cancel_stops_a_running_answer() {
    let mut h = harness();
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
    h.get_by_label("■ Stop").click();
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.state().grounding().runner.is_running() {
        h.step();
        assert!(Instant::now() < deadline, "cancel did not stop the run");
        std::thread::sleep(Duration::from_millis(2));
    }
    let a = &h.state().grounding().runner.answers[&0];
    assert!(a.done);
    assert_eq!(a.stats.as_deref(), Some("cancelled"), "{a:?}");
}

#[test]
fn live_boxes_are_drawn_on_the_image_the_answer_names() {
    let mut h = harness();
    // An answer as Migician writes it, naming the second image.
    let text = "Image-2: <|object_ref_start|>the cat<|object_ref_end|><|box_start|>(120,80),(620,900)<|box_end|>";
    let question = h.state().grounding().items()[0].question.clone();
    let parsed = loupe::grounding_model::parse_answer(text, &question, 3);
    assert_eq!(parsed.boxes.len(), 1);
    assert_eq!(parsed.boxes[0].image, 1);
    h.state_mut().grounding_mut().runner.answers.insert(
        0,
        LiveAnswer {
            question,
            text: text.into(),
            parsed,
            done: true,
            stats: None,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !h.state().is_idle() {
        h.step();
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(3);
    h.get_by_label("image 2: 0.120 0.080 0.620 0.900  «the cat»");
    // The image paths in the inspector depend on where the repository is checked out.
    h.mask(egui::Rect::from_min_max(
        egui::pos2(990.0, 500.0),
        egui::pos2(1280.0, 800.0),
    ));
    h.snapshot_options(
        "grounding_live_answer",
        &SnapshotOptions::new().threshold(1.0).max_failed_pixels(40),
    );
}

/// "Run on shown items" answers every listed item in turn; each answer is scored as it
/// lands (the metrics count it), and the answers match single runs of the same model.
#[test]
fn a_batch_run_answers_every_shown_item_and_scores_them_live() {
    let mut h = harness();
    let n = h.state().grounding().visible().len();
    assert_eq!(n, 3);
    h.get_by_label("▶▶ Run on shown items").click();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut counts = Vec::new();
    loop {
        h.step();
        let g = h.state().grounding();
        let done = g.runner.answers.values().filter(|a| a.done).count();
        if counts.last() != Some(&done) {
            counts.push(done);
        }
        if done == n && !g.runner.is_busy() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the batch did not finish: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // The answers arrived one by one, not all at the end.
    assert_eq!(counts.last(), Some(&n));
    assert!(counts.len() >= n, "{counts:?}");
    h.run_steps(2);
    let g = h.state().grounding();
    assert_eq!(g.model_names()[0], loupe::workspace::grounding::LIVE_MODEL);
    // Every item has this session's answer (the tiny random model writes no boxes, so
    // each counts as a parse failure: the metrics really scored them).
    let (_, all) = g.metrics();
    assert_eq!((all.count, all.parse_failures), (3, 3));
    for i in 0..n {
        assert!(g.runner.answers[&i].done);
    }
}
