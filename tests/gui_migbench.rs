//! GUI test of a benchmark opened together with its predictions (the small predictions
//! file lands first and must attach once the benchmark loads), the report banner's
//! counts and the "ground truth suspect" filter, on the MIG-Bench scoring fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{Start, settle};
use egui_kittest::kittest::Queryable;
use std::path::Path;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/migbench_eval");

#[test]
fn predictions_opened_with_their_benchmark_attach_and_the_banner_filters() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["bench.json", "predictions.jsonl"] {
        std::fs::copy(Path::new(FIXTURE).join(f), dir.path().join(f)).unwrap();
    }
    let mut h = common::harness(Start {
        open: vec![
            dir.path().join("bench.json"),
            dir.path().join("predictions.jsonl"),
        ],
        ..Default::default()
    });
    settle(&mut h);
    let g = h.state().grounding();
    assert_eq!(g.items().len(), 327);
    let report = g
        .report()
        .expect("the predictions attached to the benchmark");
    assert_eq!((report.matched, report.missing.len()), (317, 10));
    // The figures of the official evaluation (expected_tasks.json, plain).
    let tasks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURE).join("expected_tasks.json")).unwrap(),
    )
    .unwrap();
    let (_, all) = g.metrics();
    assert_eq!(
        all.hits[1] as u64,
        tasks["plain"]["acc"]["overall"]["IOU@0.5"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(all.missing, 10);

    // The banner's counts.
    h.get_by_label("317 matched");
    h.get_by_label("0 unmatched ids");
    h.get_by_label("7 ground truth suspect");
    // "10 missing" lists the items without an answer.
    h.get_by_label("10 missing").click();
    settle(&mut h);
    let g = h.state().grounding();
    assert_eq!(g.visible().len(), 10);
    assert!(g.visible().iter().all(|&i| g.score(i).unwrap().missing));
    h.get_by_label("10 missing").click();
    settle(&mut h);
    assert_eq!(h.state().grounding().visible().len(), 327);

    // "ground truth suspect": the seven swapped / out-of-image items of MIG-Bench.
    h.get_by_label("7 ground truth suspect").click();
    settle(&mut h);
    let g = h.state().grounding();
    let shown: Vec<usize> = g.visible().to_vec();
    assert_eq!(shown.len(), 7);
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURE).join("expected_items.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<usize> = expected["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["gt_suspect"] == true)
        .map(|e| e["id"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(shown, want);
    assert!(g.filter().gt_suspect);
}
