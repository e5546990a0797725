//! Loupe's MIG-Bench scoring against Migician's own functions: the fixture under
//! `tests/fixtures/migbench_eval/` was made by `scripts/fixtures/make_migbench_eval_fixture.py`
//! running the official `extract_bbox` / `calculate_iou` / `compute_iou` /
//! `migician_eval` on 327 real MIG-Bench items and 317 synthetic answers. Every figure
//! here is compared with the fixture's, never with Loupe's own earlier output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::datasets::evaluation::evaluate;
use loupe::datasets::export::{
    ExportImage, ExportItem, coco, proposal, qwen_jsonl, read_coco, read_qwen_jsonl,
};
use loupe::datasets::metrics::KEYS;
use loupe::datasets::review::{Decision, ItemReview};
use loupe::datasets::{mig_bench, predictions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/migbench_eval");

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURE).join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// Python's `float.hex()` back to the exact f64 (no decimal parsing involved).
fn from_hex(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let s = s.strip_prefix("0x").unwrap();
    let (mant, exp) = s.split_once('p').unwrap();
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut m = u64::from_str_radix(int, 16).unwrap();
    for c in frac.chars() {
        m = m * 16 + c.to_digit(16).unwrap() as u64;
    }
    let e: i32 = exp.parse::<i32>().unwrap() - 4 * frac.len() as i32;
    let v = m as f64 * 2f64.powi(e);
    if neg { -v } else { v }
}

struct Loaded {
    items: Vec<mig_bench::GroundingItem>,
    answers: std::collections::BTreeMap<usize, predictions::ModelAnswer>,
    expected: Vec<Value>,
}

fn load() -> Loaded {
    let (items, errors) = mig_bench::parse("bench.json", &read("bench.json"), &|p| {
        loupe::image_cache::ImageSource::File(p.into())
    })
    .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let raw = predictions::read("predictions.jsonl", &read("predictions.jsonl"));
    let (answers, report) = predictions::attach(&[raw], &items);
    assert_eq!((report.matched, report.missing.len()), (317, 10));
    let expected: Value = serde_json::from_str(&read("expected_items.json")).unwrap();
    let expected = expected["items"].as_array().unwrap().clone();
    assert_eq!(expected.len(), items.len());
    Loaded {
        items,
        answers,
        expected,
    }
}

#[test]
fn per_item_iou_is_the_official_f64_and_flags_agree() {
    let l = load();
    for (y, key) in [(false, "iou_hex"), (true, "iou_migician_hex")] {
        let eval = evaluate(&l.items, &l.answers, y);
        for (i, e) in l.expected.iter().enumerate() {
            let s = eval.scores[i].expect("every fixture item has ground truth");
            let want = from_hex(e[key].as_str().unwrap());
            assert_eq!(
                s.iou.to_bits(),
                want.to_bits(),
                "item {i} ({}), y-correction {y}: {} vs official {want}",
                e["kind"],
                s.iou
            );
            let flag = |k: &str| e[k].as_bool().unwrap();
            assert_eq!(s.missing, flag("missing"), "item {i} missing");
            assert_eq!(
                s.parse_failure,
                flag("parse_failure"),
                "item {i} ({}) parse failure",
                e["kind"]
            );
            assert_eq!(
                s.wrong_image,
                flag("wrong_image"),
                "item {i} ({}) wrong image",
                e["kind"]
            );
            assert_eq!(
                l.items[i].gt_suspect.is_some(),
                flag("gt_suspect"),
                "item {i} gt"
            );
            assert_eq!(
                l.items[i].target,
                e["target"].as_u64().map(|t| t as usize),
                "item {i} target"
            );
        }
    }
    // The fixture really holds the cases this is about.
    let kinds = |k: &str| l.expected.iter().filter(|e| e["kind"] == k).count();
    assert!(kinds("tie05") >= 10 && kinds("fullwidth_decoy") >= 5 && kinds("y_multi") >= 5);
    let suspect: Vec<u64> = l
        .expected
        .iter()
        .filter(|e| e["gt_suspect"] == true)
        .map(|e| e["source_id"].as_u64().unwrap())
        .collect();
    assert_eq!(suspect, vec![7, 34, 105, 126, 163, 512, 703]);
}

#[test]
fn per_task_tables_equal_compute_iou() {
    let l = load();
    let tasks: Value = serde_json::from_str(&read("expected_tasks.json")).unwrap();
    for (y, mode) in [(false, "plain"), (true, "migician")] {
        let eval = evaluate(&l.items, &l.answers, y);
        let want = &tasks[mode]["acc"];
        let rows = eval.rows();
        assert_eq!(rows.len(), want.as_object().unwrap().len());
        for (task, m) in rows {
            let w = &want[task];
            assert_eq!(
                m.count as u64,
                w["TOTAL"].as_u64().unwrap(),
                "{mode} {task}"
            );
            for k in 0..3 {
                assert_eq!(
                    m.hits[k] as u64,
                    w[KEYS[k]].as_u64().unwrap(),
                    "{mode} {task} {}",
                    KEYS[k]
                );
            }
            let sum = w["AVE_IOU"].as_f64().unwrap();
            assert_eq!(
                m.iou_sum.to_bits(),
                sum.to_bits(),
                "{mode} {task} AVE_IOU sum"
            );
            for k in 0..4 {
                let p = tasks[mode]["percent"][task][KEYS[k]].as_f64().unwrap();
                assert_eq!(
                    m.percent(k).to_bits(),
                    p.to_bits(),
                    "{mode} {task} {}",
                    KEYS[k]
                );
            }
        }
    }
}

fn loupe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn loupe_eval_prints_the_official_table_and_writes_exact_rows() {
    let dir = tempfile::tempdir().unwrap();
    let bench = fixture("bench.json");
    let preds = fixture("predictions.jsonl");
    let out = loupe(&[
        "eval",
        s(&bench),
        "--predictions",
        s(&preds),
        "--out",
        s(dir.path()),
    ]);
    assert_eq!(stdout(&out), read("expected_table_plain.md"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("317 matched") && err.contains("10 missing"),
        "{err}"
    );
    assert!(err.contains("7 items with suspect ground truth"), "{err}");
    // The CSV: one row per item, the exact IoU, the official flags.
    let l = load();
    let mut rows = csv::Reader::from_path(dir.path().join("predictions.eval.csv")).unwrap();
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (i, r) in rows.records().enumerate() {
        let r = r.unwrap();
        assert_eq!(r[col("item")].parse::<usize>().unwrap(), i);
        let want = from_hex(l.expected[i]["iou_hex"].as_str().unwrap());
        assert_eq!(
            r[col("iou")].parse::<f64>().unwrap().to_bits(),
            want.to_bits(),
            "row {i}"
        );
        assert_eq!(&r[col("acc_0.5")], if want >= 0.5 { "1" } else { "0" });
        assert_eq!(
            &r[col("missing")],
            if l.expected[i]["missing"] == true {
                "1"
            } else {
                "0"
            }
        );
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("predictions.eval.json")).unwrap())
            .unwrap();
    let tasks: Value = serde_json::from_str(&read("expected_tasks.json")).unwrap();
    assert_eq!(
        summary["acc"]["overall"]["TOTAL"],
        tasks["plain"]["acc"]["overall"]["TOTAL"]
    );
    assert_eq!(
        summary["tasks"]["diff"]["IOU@0.5"],
        tasks["plain"]["percent"]["diff"]["IOU@0.5"]
    );

    let out = loupe(&[
        "eval",
        s(&bench),
        "--predictions",
        s(&preds),
        "--out",
        s(dir.path()),
        "--y-correction",
        "migician",
    ]);
    assert_eq!(stdout(&out), read("expected_table_migician.md"));
}

#[test]
fn the_official_output_files_are_read_as_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("official_output"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 10);
    let mut args = vec![
        "eval".to_string(),
        fixture("bench.json").display().to_string(),
        "--predictions".into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "--y-correction".into(),
        "migician".into(),
        "--out".into(),
        dir.path().display().to_string(),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), read("expected_table_migician.md"));
}

/// The fixture's answers as shard files by id modulo 2 (missing answers as empty text,
/// scored alike); `extra` moves ids between them.
fn shards(dir: &Path, also_in_b: &[usize], drop_from_b: &[usize]) -> (PathBuf, PathBuf) {
    let l = load();
    let (mut a, mut b) = (String::new(), String::new());
    for i in 0..l.items.len() {
        let answer = l.answers.get(&i).map_or("", |x| x.answer.as_str());
        let line = serde_json::json!({"id": i, "answer": answer}).to_string() + "\n";
        if i % 2 == 0 {
            a.push_str(&line);
        }
        if (i % 2 == 1 && !drop_from_b.contains(&i)) || also_in_b.contains(&i) {
            b.push_str(&line);
        }
    }
    let (pa, pb) = (dir.join("shard0.jsonl"), dir.join("shard1.jsonl"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    (pa, pb)
}

#[test]
fn shards_must_cover_the_benchmark_once() {
    let dir = tempfile::tempdir().unwrap();
    let bench = fixture("bench.json");
    let (a, b) = shards(dir.path(), &[], &[]);
    let out = loupe(&[
        "eval",
        s(&bench),
        "--predictions",
        s(&a),
        s(&b),
        "--out",
        s(dir.path()),
    ]);
    assert_eq!(stdout(&out), read("expected_table_plain.md"));

    let (a, b) = shards(dir.path(), &[4], &[]);
    let out = loupe(&[
        "eval",
        s(&bench),
        "--predictions",
        s(&a),
        s(&b),
        "--out",
        s(dir.path()),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("overlap: items 4 "), "{err}");

    let (a, b) = shards(dir.path(), &[], &[7, 9]);
    let out = loupe(&[
        "eval",
        s(&bench),
        "--predictions",
        s(&a),
        s(&b),
        "--out",
        s(dir.path()),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("leave a gap: items 7, 9 "), "{err}");
}

#[test]
fn a_skipped_record_does_not_shift_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut bench: Value = serde_json::from_str(&read("bench.json")).unwrap();
    bench[5]["images"] = serde_json::json!([]);
    let path = dir.path().join("bench.json");
    std::fs::write(&path, bench.to_string()).unwrap();
    let out = loupe(&[
        "eval",
        s(&path),
        "--predictions",
        s(&fixture("predictions.jsonl")),
        "--out",
        s(dir.path()),
    ]);
    let _ = stdout(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("item 5: field 'images' is empty"));
    let l = load();
    let mut rows = csv::Reader::from_path(dir.path().join("predictions.eval.csv")).unwrap();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), l.items.len());
    assert_eq!(&records[5][3], "", "the unreadable record is not scored");
    assert_eq!(&records[5][11], "field 'images' is empty");
    for (i, r) in records.iter().enumerate().skip(6) {
        assert_eq!(r[0].parse::<usize>().unwrap(), i);
        let want = from_hex(l.expected[i]["iou_hex"].as_str().unwrap());
        assert_eq!(
            r[3].parse::<f64>().unwrap().to_bits(),
            want.to_bits(),
            "row {i}"
        );
    }
}

#[test]
fn a_foreign_predictions_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(
        &foreign,
        [
            r#"{"id": 0, "task": "diff", "question": "Compare these two images.", "answer": "(1,2),(3,4)"}"#,
            r#"{"id": 1, "task": "common_object", "question": "Something else entirely.", "answer": "(1,2),(3,4)"}"#,
            r#"{"id": 1, "answer": "(5,6),(7,8)"}"#,
            r#"{"id": 5000, "answer": "(1,2),(3,4)"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = loupe(&[
        "eval",
        s(&fixture("bench.json")),
        "--predictions",
        s(&foreign),
        "--out",
        s(dir.path()),
    ]);
    let _ = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 matched, 1 unmatched, 1 duplicate, 0 overlapping, 2 task/question mismatch, 325 missing"),
        "{err}"
    );
    assert!(err.contains("line 4 (id 5000): matches no item"), "{err}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("foreign.eval.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["predictions"]["mismatched"],
        serde_json::json!([0, 1])
    );
    assert_eq!(summary["predictions"]["duplicates"], serde_json::json!([1]));
}

#[test]
fn content_matched_answers_score_alike() {
    let dir = tempfile::tempdir().unwrap();
    let l = load();
    let mut text = String::new();
    for (i, a) in &l.answers {
        let it = &l.items[*i];
        let prompt = loupe_models::reference::official_prompt(&it.task, &it.question);
        text.push_str(
            &(serde_json::json!({"images": it.image_names, "prompt": prompt, "answer": a.answer})
                .to_string()
                + "\n"),
        );
    }
    let p = dir.path().join("other_model.jsonl");
    std::fs::write(&p, text).unwrap();
    let out = loupe(&[
        "eval",
        s(&fixture("bench.json")),
        "--predictions",
        s(&p),
        "--out",
        s(dir.path()),
    ]);
    assert_eq!(stdout(&out), read("expected_table_plain.md"));
}

#[test]
fn accepted_multi_image_answers_export_each_box_on_its_own_image() {
    let l = load();
    let ordinal = ["first", "second", "third", "fourth", "fifth", "sixth"];
    let mut n = 0;
    for (i, e) in l.expected.iter().enumerate() {
        if e["kind"] != "multi_image" && e["kind"] != "decoy_mention_after" {
            continue;
        }
        let item = &l.items[i];
        let answer = &l.answers[&i];
        // Where the answer text puts each box: the image named just before it.
        let text = &answer.answer;
        let named: Vec<usize> = text
            .match_indices(" image.")
            .chain(text.match_indices(" image "))
            .filter_map(|(at, _)| {
                let word = text[..at].rsplit(' ').next()?;
                ordinal.iter().position(|o| *o == word).map(|img| (at, img))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        let boxes = proposal(item, Some(answer), true, false);
        let want: Vec<usize> = if e["kind"] == "multi_image" {
            named.clone()
        } else {
            vec![named[0]]
        };
        assert_eq!(
            boxes.iter().map(|b| b.image).collect::<Vec<_>>(),
            want,
            "item {i}: {text}"
        );
        let review = ItemReview {
            decision: Decision::Accepted,
            ..Default::default()
        };
        let mut x = ExportItem::new(i, item, review, boxes.clone(), None);
        x.images = (0..item.images.len())
            .map(|k| ExportImage {
                name: format!("item{i}_img{k}.jpg"),
                size: [640, 480],
            })
            .collect();
        let back = read_coco(&coco(std::slice::from_ref(&x)).to_string()).unwrap();
        assert_eq!(back[&i].iter().map(|b| b.image).collect::<Vec<_>>(), want);
        let back = read_qwen_jsonl(&qwen_jsonl(std::slice::from_ref(&x))).unwrap();
        let mut sorted = want.clone();
        sorted.sort();
        assert_eq!(back[&i].iter().map(|b| b.image).collect::<Vec<_>>(), sorted);
        n += 1;
    }
    assert!(n >= 15, "{n}");
}
