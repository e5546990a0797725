//! `loupe embed` / `loupe search` with the tiny random-weight OpenCLIP fixture over the
//! demo BIOMEDICA shards: shares merge to the whole, search ranks exactly as a brute-force
//! cosine over the stored vectors, and indexes of different models never mix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::datasets::embeddings::EmbeddingIndex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> PathBuf {
    repo().join("models/tests/fixtures/clip_tiny")
}

fn loupe(cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loupe"))
        .env("LOUPE_CACHE_DIR", cache)
        .args(args)
        .output()
        .unwrap()
}

fn embed(cache: &Path, out: &Path, share: Option<&str>) {
    let shards = repo().join("assets/demo/biomedica");
    let model = model();
    let mut args = vec![
        "embed",
        shards.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch",
        "8",
    ];
    if let Some(s) = share {
        args.extend(["--shard", s]);
    }
    let o = loupe(cache, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn shares_merge_and_search_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let all = dir.path().join("all.loupe-emb");
    embed(&cache, &all, None);
    let idx = EmbeddingIndex::open(&all).unwrap();
    assert!(idx.len() >= 20, "{}", idx.len());
    // Two shares cover the whole, without overlap.
    let (a, b) = (
        dir.path().join("a.loupe-emb"),
        dir.path().join("b.loupe-emb"),
    );
    embed(&cache, &a, Some("0/2"));
    embed(&cache, &b, Some("1/2"));
    let (ia, ib) = (
        EmbeddingIndex::open(&a).unwrap(),
        EmbeddingIndex::open(&b).unwrap(),
    );
    let ka: BTreeSet<_> = ia.keys.iter().cloned().collect();
    let kb: BTreeSet<_> = ib.keys.iter().cloned().collect();
    assert!(ka.is_disjoint(&kb));
    let whole: BTreeSet<_> = idx.keys.iter().cloned().collect();
    assert_eq!(ka.union(&kb).cloned().collect::<BTreeSet<_>>(), whole);
    // The same image gives the same vector in a share and in the whole.
    let key = &ia.keys[0];
    let j = idx.keys.iter().position(|k| k == key).unwrap();
    assert_eq!(ia.vector(0), idx.vector(j));

    // Text search over both shares = brute force over the whole index.
    let query = "H&E stained lymph node metastasis";
    let o = loupe(
        &cache,
        &[
            "search",
            a.to_str().unwrap(),
            query,
            "--also",
            b.to_str().unwrap(),
            "--model",
            model().to_str().unwrap(),
            "-k",
            "5",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<(f32, String)> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (s, k) = l.split_once('\t').unwrap();
            (s.parse().unwrap(), k.to_owned())
        })
        .collect();
    assert_eq!(lines.len(), 5);
    let clip = loupe_models::clip::Clip::load(
        &loupe_models::clip::ModelSource::parse(model().to_str().unwrap()),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let q = clip.encode_texts(&[query]).unwrap().remove(0);
    let mut brute: Vec<(f64, String)> = (0..idx.len())
        .map(|i| {
            let v = idx.vector(i);
            (
                v.iter()
                    .zip(&q)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum(),
                idx.keys[i].clone(),
            )
        })
        .collect();
    brute.sort_by(|a, b| b.0.total_cmp(&a.0));
    for ((s, k), (bs, bk)) in lines.iter().zip(&brute) {
        assert!((f64::from(*s) - bs).abs() < 1e-3, "{s} vs {bs}");
        // Equal scores may swap keys; otherwise the same order.
        assert!(
            k == bk || (f64::from(*s) - bs).abs() < 1e-6 || lines.iter().any(|(_, x)| x == bk),
            "{k} vs {bk}"
        );
    }
    // More like this: an image's own vector finds itself first.
    for i in [0, idx.len() / 2, idx.len() - 1] {
        let hit = idx.search(&idx.vector(i), 1)[0];
        assert_eq!(idx.vector(hit.0), idx.vector(i));
        assert!((hit.1 - 1.0).abs() < 2e-3);
    }
}

#[test]
fn indexes_of_another_model_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.loupe-emb");
    let bytes = loupe::datasets::embeddings::encode(
        "someone/else",
        4,
        &[("k".into(), vec![1.0, 0.0, 0.0, 0.0])],
    )
    .unwrap();
    std::fs::write(&other, bytes).unwrap();
    let o = loupe(
        dir.path(),
        &[
            "search",
            other.to_str().unwrap(),
            "x",
            "--model",
            model().to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("someone/else"), "{err}");
}

#[path = "../models/tests/common/hub_server.rs"]
mod hub_server;

/// A Hub id is fetched from `HF_ENDPOINT` (a mirror; here a local stand-in) into
/// `HF_HUB_CACHE`, gives the same vectors as the model folder, and is then used offline.
#[test]
fn a_hub_model_is_downloaded_from_hf_endpoint_then_used_offline() {
    let server = hub_server::HubServer::serve("loupe-test/clip-tiny", &model());
    let dir = tempfile::tempdir().unwrap();
    let hub_cache = dir.path().join("hub");
    let shards = repo().join("assets/demo/biomedica");
    let run = |out: &Path, offline: bool| {
        Command::new(env!("CARGO_BIN_EXE_loupe"))
            .env("LOUPE_CACHE_DIR", dir.path().join("cache"))
            .env("HF_ENDPOINT", &server.url)
            .env("HF_HUB_CACHE", &hub_cache)
            .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
            .args([
                "embed",
                shards.to_str().unwrap(),
                "--model",
                "loupe-test/clip-tiny",
            ])
            .args(["--out", out.to_str().unwrap(), "--batch", "8"])
            .output()
            .unwrap()
    };
    let from_hub = dir.path().join("hub.loupe-emb");
    let o = run(&from_hub, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(server.requests() >= 2, "config and weights were fetched");
    let local = dir.path().join("local.loupe-emb");
    embed(&dir.path().join("cache"), &local, None);
    let (a, b) = (
        EmbeddingIndex::open(&from_hub).unwrap(),
        EmbeddingIndex::open(&local).unwrap(),
    );
    assert_eq!(a.model_id, "loupe-test/clip-tiny");
    assert_eq!(a.keys, b.keys);
    for i in 0..a.len() {
        assert_eq!(a.vector(i), b.vector(i), "item {i}");
    }
    // Offline: from the cache, without a request.
    let before = server.requests();
    let again = dir.path().join("again.loupe-emb");
    let o = run(&again, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(server.requests(), before);
}
