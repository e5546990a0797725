//! `loupe ground --bench` on the tiny random-weight Qwen2-VL: a run killed mid-way and
//! resumed answers every item exactly once; shard files cover the benchmark once and
//! `loupe eval` takes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/tests/fixtures/qwen2vl-tiny"
);
const ITEMS: usize = 10;

fn bench(dir: &Path) -> PathBuf {
    let img = |n: &str| Path::new(MODEL).join(n).display().to_string();
    let items: Vec<serde_json::Value> = (0..ITEMS)
        .map(|i| {
            serde_json::json!({
                "task": if i % 2 == 0 { "diff" } else { "refer_grounding" },
                "images": [img("cat.png"), img(if i % 3 == 0 { "rocket.png" } else { "coffee_small.png" })],
                "question": format!("Find thing {i} and locate it in the second image."),
                "answer": [0.1, 0.1, 0.5, 0.5],
                "additional_info": "",
                "need_format": true,
            })
        })
        .collect();
    let path = dir.join("bench.json");
    std::fs::write(&path, serde_json::to_string(&items).unwrap()).unwrap();
    path
}

fn ground(bench: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loupe"));
    c.args([
        "ground",
        "--model-dir",
        MODEL,
        "--max-new-tokens",
        "6",
        "--bench",
    ])
    .arg(bench)
    .arg("--out")
    .arg(out)
    .args(extra);
    c
}

/// Ids per line of an answers file, in order.
fn ids(out: &Path) -> Vec<usize> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["answer"].is_string(), "{l}");
            v["id"].as_u64().unwrap() as usize
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_and_answers_every_item_once() {
    let dir = tempfile::tempdir().unwrap();
    let bench = bench(dir.path());
    let out = dir.path().join("answers.jsonl");
    let mut child = ground(&bench, &out, &["--delay-ms", "400"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ids(&out).len() < 2 {
        assert!(Instant::now() < deadline, "no answers were written");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = ids(&out);
    assert!(before.len() < ITEMS, "killed too late: {before:?}");

    // Without --resume the file is not touched.
    let refused = ground(&bench, &out, &[]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give --resume"));

    let resumed = ground(&bench, &out, &["--resume"]).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = ids(&out);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "resuming rewrote earlier lines"
    );
    let mut counts = BTreeMap::new();
    for id in &after {
        *counts.entry(*id).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), ITEMS, "{after:?}");
    assert!(counts.values().all(|&n| n == 1), "{after:?}");

    // A resumed run that is complete has nothing left to do.
    let again = ground(&bench, &out, &["--resume"]).output().unwrap();
    assert!(again.status.success());
    assert_eq!(ids(&out), after);
}

#[test]
fn shard_files_cover_the_benchmark_and_eval_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let bench = bench(dir.path());
    let shards: Vec<PathBuf> = (0..3)
        .map(|k| dir.path().join(format!("s{k}.jsonl")))
        .collect();
    for (k, s) in shards.iter().enumerate() {
        let o = ground(&bench, s, &["--shard", &format!("{k}/3")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = ids(s);
        assert_eq!(got, (0..ITEMS).filter(|i| i % 3 == k).collect::<Vec<_>>());
    }
    let mut eval = Command::new(env!("CARGO_BIN_EXE_loupe"));
    eval.arg("eval")
        .arg(&bench)
        .arg("--predictions")
        .args(&shards)
        .arg("--out")
        .arg(dir.path());
    let o = eval.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(
        table.contains("| overall | ") && table.trim_end().ends_with(&format!("| {ITEMS} |")),
        "{table}"
    );
    // Two of three shards leave a gap.
    let mut eval = Command::new(env!("CARGO_BIN_EXE_loupe"));
    eval.arg("eval")
        .arg(&bench)
        .arg("--predictions")
        .args(&shards[..2])
        .arg("--out")
        .arg(dir.path());
    let o = eval.output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("leave a gap: items 2, 5, 8"));
}
