//! `loupe export`: the review exports from the sidecar, headless.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::datasets::review::{Decision, Fingerprint, ReviewBox, ReviewState, sidecar_path};
use loupe_models::answer::NormBox;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn export_writes_the_three_files_from_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    for name in ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        std::fs::copy(
            Path::new(ROOT).join("assets/images").join(name),
            dir.path().join("images").join(name),
        )
        .unwrap();
    }
    let bench = dir.path().join("bench.json");
    std::fs::copy(
        Path::new(ROOT).join("assets/demo/mig_bench_demo.json"),
        &bench,
    )
    .unwrap();
    let preds = dir.path().join("preds.jsonl");
    std::fs::copy(
        Path::new(ROOT).join("assets/demo/predictions_demo.jsonl"),
        &preds,
    )
    .unwrap();

    // A review: item 2 accepted with a corrected box, item 3 rejected.
    let mut review = ReviewState::default();
    let corrected = NormBox::new(0.25, 0.5, 0.75, 1.0);
    review.edit(1, |r| {
        r.decision = Decision::Accepted;
        r.boxes = Some(vec![ReviewBox {
            image: 1,
            bbox: corrected,
        }]);
    });
    review.edit(2, |r| r.decision = Decision::Rejected);
    let bytes = std::fs::read(&bench).unwrap();
    let fp = Fingerprint::of_bytes("bench.json", &bytes, 3);
    std::fs::write(sidecar_path(&bench), review.to_sidecar(&fp)).unwrap();

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("export")
        .arg(&bench)
        .arg("--predictions")
        .arg(&preds)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let listed = String::from_utf8(run.stdout).unwrap();
    assert_eq!(listed.lines().count(), 3, "{listed}");

    let coco: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.review.coco.json")).unwrap())
            .unwrap();
    let (w, h) = image::image_dimensions(dir.path().join("images/rocket.jpg")).unwrap();
    let bbox: Vec<f64> = coco["annotations"][0]["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want = [
        0.25 * w as f64,
        0.5 * h as f64,
        0.5 * w as f64,
        0.5 * h as f64,
    ];
    for (g, e) in bbox.iter().zip(want) {
        assert!((g - e).abs() < 1e-3, "{bbox:?} vs {want:?}");
    }
    assert_eq!(coco["annotations"].as_array().unwrap().len(), 1);
    let jsonl = std::fs::read_to_string(out.join("bench.review.qwen.jsonl")).unwrap();
    assert!(
        jsonl.contains("It is in the second image. <|box_start|>(250,500),(750,1000)<|box_end|>"),
        "{jsonl}"
    );
    let csv = std::fs::read_to_string(out.join("bench.review.metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[2].starts_with("1,reasoning,2,2,accepted,1,1,0.6"),
        "{csv}"
    );
    assert!(
        rows[3].starts_with("2,refer_grounding,2,2,rejected,0,1,"),
        "{csv}"
    );

    // The sidecar of other data is an error, and stays where it is.
    std::fs::write(&bench, b"[]").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("export")
        .arg(&bench)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("different data"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(sidecar_path(&bench).exists());
}
