//! BIOMEDICA reading checked against the committed fixture's manifest
//! (`tests/fixtures/biomedica/manifest.json`, written by
//! `scripts/fixtures/make_biomedica_fixture.py` with Python's tarfile and webdataset).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::datasets::biomedica::tar_index::{Ext, ProblemKind, ShardIndex, flags, index_shard};
use loupe::datasets::biomedica::{Catalog, Filter, SampleMeta, catalog, sidecar};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/biomedica")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("manifest.json")).unwrap()).unwrap()
}

fn index(rel: &str) -> ShardIndex {
    index_shard(&root().join(rel), &|| false).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

const GOOD: [&str; 4] = [
    "commercial/000000.tar",
    "commercial/000001.tar",
    "noncommercial/000000.tar",
    "other/000000.tar",
];

#[test]
fn every_sample_member_and_field_matches_the_manifest() {
    let m = manifest();
    for shard in m["shards"].as_array().unwrap() {
        let rel = shard["path"].as_str().unwrap();
        let idx = index(rel);
        assert!(idx.is_clean(), "{rel}: {:?}", idx.report());
        assert_eq!(
            idx.end_of_archive,
            shard["end_of_archive_offset"].as_u64(),
            "{rel}"
        );
        let samples = shard["samples"].as_array().unwrap();
        assert_eq!(idx.samples.len(), samples.len(), "{rel}");
        assert_eq!(idx.len, shard["bytes"].as_u64().unwrap());
        for (got, want) in idx.samples.iter().zip(samples) {
            let key = want["key"].as_str().unwrap();
            assert_eq!(got.key, key, "{rel}");
            // Members: offsets, sizes, header offsets (PAX / LongLink blocks included).
            for ext in Ext::ALL {
                let w = &want["members"][ext.as_str()];
                match got.member(ext) {
                    None => assert!(w.is_null(), "{key}.{} missing", ext.as_str()),
                    Some(g) => {
                        assert_eq!(g.offset, w["offset_data"].as_u64().unwrap(), "{key}");
                        assert_eq!(g.size, w["size"].as_u64().unwrap(), "{key}");
                        assert_eq!(
                            g.header_offset,
                            w["header_offset"].as_u64().unwrap(),
                            "{key}"
                        );
                        assert!(g.complete);
                    }
                }
            }
            // Caption: length in chars and the 64-char head.
            let cap = &want["caption"];
            if cap.is_null() {
                assert!(got.caption.is_empty());
            } else {
                assert_eq!(
                    got.caption_chars() as u64,
                    cap["chars"].as_u64().unwrap(),
                    "{key}"
                );
                let head: String = got.caption.chars().take(64).collect();
                assert_eq!(head, cap["head64"].as_str().unwrap(), "{key}");
            }
            // Image frame facts from the JPEG header.
            let img = &want["image"];
            match got.jpeg {
                None => assert!(img.is_null(), "{key}: no JPEG info"),
                Some(j) => {
                    assert_eq!(u64::from(j.width), img["width"].as_u64().unwrap(), "{key}");
                    assert_eq!(
                        u64::from(j.height),
                        img["height"].as_u64().unwrap(),
                        "{key}"
                    );
                    assert_eq!(
                        u64::from(j.components),
                        img["components"].as_u64().unwrap(),
                        "{key}"
                    );
                }
            }
            // JSON fields.
            let wf = &want["fields"];
            let Some(f) = &got.fields else {
                assert!(wf.is_null(), "{key}: fields not parsed");
                continue;
            };
            assert_eq!(f.pmcid, wf["pmcid"].as_str().unwrap(), "{key}");
            assert_eq!(f.license, wf["license"].as_str().unwrap(), "{key}");
            assert_eq!(f.primary, strs(&wf["primary_labels"]), "{key}");
            assert_eq!(f.secondary, strs(&wf["secondary_labels"]), "{key}");
            assert_eq!(f.label_id, wf["label_id"].as_str().unwrap(), "{key}");
            assert_eq!(f.panel_type, wf["panel_type"].as_str().unwrap(), "{key}");
            assert_eq!(
                f.panel_subtype,
                wf["panel_subtype"].as_str().unwrap(),
                "{key}"
            );
            assert_eq!(f.width.map(u64::from), wf["image_width"].as_u64(), "{key}");
            assert_eq!(
                f.height.map(u64::from),
                wf["image_height"].as_u64(),
                "{key}"
            );
            assert_eq!(f.image_hash, wf["image_hash"].as_str().unwrap(), "{key}");
            assert_eq!(f.image_id, wf["image_id"].as_str().unwrap(), "{key}");
            assert_eq!(
                f.image_file_name,
                wf["image_file_name"].as_str().unwrap(),
                "{key}"
            );
            assert_eq!(f.journal, wf["journal"].as_str().unwrap(), "{key}");
            assert_eq!(f.date, wf["date"].as_str().unwrap(), "{key}");
            assert_eq!(f.date_unix(), wf["date_unix"].as_i64(), "{key}");
            assert_eq!(f.title, wf["title"].as_str().unwrap(), "{key}");
            assert_eq!(f.citation, wf["citation"].as_str().unwrap(), "{key}");
            assert_eq!(f.reference_count, wf["reference_count"].as_u64(), "{key}");
        }
    }
}

#[test]
fn counts_match_the_manifest() {
    let m = manifest();
    let counts = &m["counts"];
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    assert_eq!(
        cat.len() as u64,
        counts["totals"]["samples"].as_u64().unwrap()
    );
    let mut licence: BTreeMap<String, u64> = BTreeMap::new();
    let mut primary: BTreeMap<String, u64> = BTreeMap::new();
    let mut secondary: BTreeMap<String, u64> = BTreeMap::new();
    let mut subset: BTreeMap<String, u64> = BTreeMap::new();
    let mut panel: BTreeMap<String, u64> = BTreeMap::new();
    let mut without_json = 0;
    for id in 0..cat.len() as u32 {
        *subset.entry(cat.subset(id).to_owned()).or_default() += 1;
        if cat.member(id, Ext::Json).is_none() {
            without_json += 1;
            continue;
        }
        *licence.entry(cat.license(id).to_owned()).or_default() += 1;
        *panel.entry(cat.panel_type(id).to_owned()).or_default() += 1;
        for l in cat.primary_labels(id) {
            *primary.entry(l.to_owned()).or_default() += 1;
        }
        for l in cat.secondary_labels(id) {
            *secondary.entry(l.to_owned()).or_default() += 1;
        }
    }
    let as_map = |v: &Value| -> BTreeMap<String, u64> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(licence, as_map(&counts["license"]));
    assert_eq!(primary, as_map(&counts["primary_label"]));
    assert_eq!(secondary, as_map(&counts["secondary_label"]));
    assert_eq!(subset, as_map(&counts["subset"]));
    assert_eq!(panel, as_map(&counts["panel_type"]));
    assert_eq!(
        without_json,
        counts["totals"]["without_json"].as_u64().unwrap()
    );

    // Filters reproduce the same counts.
    let count = |f: Filter| cat.apply(&f).len() as u64;
    for (name, n) in as_map(&counts["primary_label"]) {
        let f = Filter {
            primary: Some(name.clone()),
            ..Default::default()
        };
        assert_eq!(count(f), n, "primary {name}");
    }
    for (name, n) in as_map(&counts["license"]) {
        let f = Filter {
            licenses: vec![name.clone()],
            ..Default::default()
        };
        assert_eq!(count(f), n, "licence {name}");
    }
    for (name, n) in as_map(&counts["subset"]) {
        let f = Filter {
            subsets: vec![name.clone()],
            ..Default::default()
        };
        assert_eq!(count(f), n, "subset {name}");
    }
    let both = Filter {
        subsets: vec!["commercial".into()],
        primary: Some("Microscopy".into()),
        ..Default::default()
    };
    let expected = m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["subset"] == "commercial")
        .flat_map(|s| s["samples"].as_array().unwrap())
        .filter(|s| {
            s["fields"]["primary_label_set"]
                .as_array()
                .is_some_and(|a| a.iter().any(|l| l == "Microscopy"))
        })
        .count();
    assert_eq!(count(both), expected as u64);
    assert_eq!(
        count(Filter {
            journal: Some("No such journal".into()),
            ..Default::default()
        }),
        0
    );
}

#[test]
fn caption_search_finds_the_manifest_hits() {
    let m = manifest();
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    for q in m["search"]["queries"].as_array().unwrap() {
        let query = q["query"].as_str().unwrap();
        let want: BTreeSet<String> = q["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap().to_owned())
            .collect();
        let got: BTreeSet<String> = cat
            .search(query)
            .iter()
            .map(|h| cat.key(h.item).to_owned())
            .collect();
        assert_eq!(got, want, "query {query:?}");
    }
}

fn expect_keys(idx: &ShardIndex, want: &Value) -> Vec<String> {
    let readable: Vec<String> = idx
        .samples
        .iter()
        .filter(|s| s.flags & flags::DAMAGED == 0)
        .map(|s| s.key.clone())
        .collect();
    assert_eq!(
        readable,
        strs(&want["readable_samples"]),
        "{}",
        idx.path.display()
    );
    readable
}

#[test]
fn damaged_shards_report_what_the_manifest_expects() {
    let m = manifest();
    for d in m["damaged"].as_array().unwrap() {
        let rel = d["path"].as_str().unwrap();
        let exp = &d["expect"];
        let idx = index(rel);
        let report = idx.report().join("\n");
        assert!(report.contains(rel) || report.is_empty(), "{report}");
        expect_keys(&idx, exp);
        // After a bad header nothing further is read, so a marker beyond it is unseen.
        if exp["structural_error"]["kind"] != "bad_header_checksum" {
            assert_eq!(
                idx.end_of_archive.is_some(),
                exp["end_of_archive_marker"].as_bool().unwrap(),
                "{rel}"
            );
        }
        match (&idx.structural, exp["structural_error"].as_object()) {
            (None, None) => {}
            (Some(got), Some(want)) => {
                assert_eq!(got.kind.as_str(), want["kind"].as_str().unwrap(), "{rel}");
                assert_eq!(got.offset, want["offset"].as_u64().unwrap(), "{rel}");
                assert_eq!(got.member, want["member"].as_str().unwrap(), "{rel}");
                assert_eq!(got.detail, want["detail"].as_str().unwrap(), "{rel}");
                assert!(report.contains(&got.detail), "{report}");
            }
            (got, want) => panic!("{rel}: structural {got:?}, expected {want:?}"),
        }
        if let Some(w) = exp.get("warning") {
            assert_eq!(w["kind"], "missing_end_of_archive");
            assert!(report.contains("missing_end_of_archive"), "{report}");
            assert_eq!(idx.len, w["offset"].as_u64().unwrap());
        }
        for a in exp["affected_samples"].as_array().unwrap() {
            let key = a["key"].as_str().unwrap();
            let s = idx.samples.iter().find(|s| s.key == key).unwrap();
            assert!(s.flags & flags::DAMAGED != 0, "{rel}: {key}");
            let readable: Vec<String> = Ext::ALL
                .into_iter()
                .filter(|&e| s.readable(e).is_some())
                .map(|e| e.as_str().to_owned())
                .collect();
            assert_eq!(readable, strs(&a["readable_members"]), "{rel}: {key}");
            if let Some(t) = a.get("truncated_members") {
                let truncated: Vec<String> = Ext::ALL
                    .into_iter()
                    .filter(|&e| s.member(e).is_some_and(|m| !m.complete))
                    .map(|e| e.as_str().to_owned())
                    .collect();
                assert_eq!(truncated, strs(t), "{rel}: {key}");
            }
        }
        let problems = exp["content_problems"].as_array().unwrap();
        let content: Vec<_> = idx
            .problems
            .iter()
            .filter(|p| p.kind != ProblemKind::MissingMember || !problems.is_empty())
            .collect();
        assert_eq!(content.len(), problems.len(), "{rel}: {:?}", idx.problems);
        for (got, want) in content.iter().zip(problems) {
            assert_eq!(got.key, want["key"].as_str().unwrap(), "{rel}");
            assert_eq!(got.kind.as_str(), want["kind"].as_str().unwrap(), "{rel}");
            assert_eq!(
                got.member.map(|e| e.as_str()),
                want["member"].as_str(),
                "{rel}"
            );
            let s = idx.samples.iter().find(|s| s.key == got.key).unwrap();
            match got.kind {
                ProblemKind::InvalidUtf8 => {
                    assert!(got.detail.contains(&want["first_invalid_byte"].to_string()));
                    assert_eq!(s.caption, want["lossy_text"].as_str().unwrap());
                    assert_eq!(
                        s.caption_chars() as u64,
                        want["lossy_chars"].as_u64().unwrap()
                    );
                    assert!(s.flags & flags::INVALID_UTF8 != 0);
                }
                ProblemKind::JpegDecodeError => {
                    assert!(s.flags & flags::BAD_JPEG != 0);
                    assert_eq!(
                        s.member(Ext::Jpg).unwrap().size,
                        want["bytes"].as_u64().unwrap()
                    );
                }
                ProblemKind::MissingMember => assert!(s.flags & flags::MISSING_MEMBER != 0),
                other => panic!("{rel}: unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn the_sidecar_round_trips_and_is_rebuilt_when_the_shard_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for rel in GOOD
        .iter()
        .chain(&["damaged/truncated.tar", "damaged/bad_header_checksum.tar"])
    {
        let idx = index(rel);
        let back = sidecar::decode(&sidecar::encode(&idx)).unwrap();
        assert_eq!(
            ShardIndex {
                path: idx.path.clone(),
                ..back
            },
            idx,
            "{rel}"
        );
    }
    // Cut-short and foreign files are rejected, never trusted.
    let bytes = sidecar::encode(&index(GOOD[0]));
    for cut in [0, 7, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(sidecar::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }

    let shard = dir.path().join("000000.tar");
    std::fs::copy(root().join(GOOD[0]), &shard).unwrap();
    let (first, origin) = sidecar::load_or_build(&shard, &cache, &|| false).unwrap();
    assert_eq!(origin, sidecar::Origin::Built);
    let (again, origin) = sidecar::load_or_build(&shard, &cache, &|| false).unwrap();
    assert_eq!(origin, sidecar::Origin::Sidecar);
    assert_eq!(again, first);
    // A shard replaced by a shorter one (a different size) is re-indexed.
    std::fs::copy(root().join("damaged/truncated.tar"), &shard).unwrap();
    let (changed, origin) = sidecar::load_or_build(&shard, &cache, &|| false).unwrap();
    assert_eq!(origin, sidecar::Origin::Built);
    assert_eq!(changed.samples.len(), 4);
    assert!(changed.structural.is_some());
}

#[test]
fn detail_metadata_is_read_lazily_from_the_shard() {
    let m = manifest();
    let mut cat = Catalog::default();
    cat.add_shard(index("noncommercial/000000.tar"));
    let want = &m["shards"][2]["samples"][0];
    let key = want["key"].as_str().unwrap();
    let id = (0..cat.len() as u32).find(|&i| cat.key(i) == key).unwrap();
    let json = cat.read_member(id, Ext::Json).unwrap();
    let caption = String::from_utf8(cat.read_member(id, Ext::Txt).unwrap()).unwrap();
    let meta = SampleMeta::from_json(key, &caption, &json).unwrap();
    // Every one of the 25 keys is present in the raw tree, in written order.
    let keys: Vec<&String> = meta.raw.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 25);
    for k in want["json"]["keys"].as_array().unwrap() {
        assert!(meta.get(k.as_str().unwrap()).is_some(), "{k}");
    }
    // This sample's abstract holds a lone surrogate escape: read as U+FFFD.
    assert!(
        meta.get("article_abstract")
            .unwrap()
            .as_str()
            .unwrap()
            .contains('\u{FFFD}')
    );
    assert_eq!(meta.fields.title, want["fields"]["title"].as_str().unwrap());
    assert_eq!(
        meta.pmc_url().as_deref(),
        Some("https://pmc.ncbi.nlm.nih.gov/articles/PMC7818123/")
    );
    assert!(!meta.mentions().is_empty());
    let jpg = cat.read_member(id, Ext::Jpg).unwrap();
    assert_eq!(jpg.len() as u64, want["image"]["bytes"].as_u64().unwrap());
    assert!(image::load_from_memory(&jpg).is_ok());
    assert!(catalog::read_range(&root().join("damaged/truncated.tar"), 63000, 4096).is_err());
}

#[test]
fn the_parquet_edition_reads_into_the_same_records() {
    let m = manifest();
    let p = &m["parquet"];
    let rows = loupe::datasets::biomedica::parquet::read(&root().join(p["path"].as_str().unwrap()))
        .unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.record.key.as_str()).collect();
    assert_eq!(keys, strs(&p["keys_in_order"]));
    // Same fields as the tar shard it was made from.
    let tar = index(p["from_shard"].as_str().unwrap());
    for row in &rows {
        let s = tar
            .samples
            .iter()
            .find(|s| s.key == row.record.key)
            .unwrap();
        assert_eq!(row.record.fields, s.fields, "{}", s.key);
        assert_eq!(row.record.caption, s.caption, "{}", s.key);
        assert_eq!(row.record.jpeg, s.jpeg, "{}", s.key);
        let jpg = row.jpg.as_ref().unwrap();
        assert_eq!(jpg.len() as u64, s.member(Ext::Jpg).unwrap().size);
        // Every metadata column equals the tar sample's JSON value, odd types included.
        let json: Value = loupe::datasets::biomedica::meta::parse_lenient(
            &catalog::read_range(
                &tar.path,
                s.member(Ext::Json).unwrap().offset,
                s.member(Ext::Json).unwrap().size,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(row.json, json, "{}", s.key);
    }
}

/// The WebDataset copy of a Parquet file is streamed row by row: a stop leaves neither
/// the copy nor a temporary file; run to the end it indexes to the Parquet rows.
#[test]
fn a_parquet_copy_stops_cleanly_and_otherwise_holds_every_row() {
    use loupe::datasets::biomedica::parquet;
    let m = manifest();
    let src = root().join(m["parquet"]["path"].as_str().unwrap());
    let cache = tempfile::tempdir().unwrap();
    let err = parquet::to_shard(&src, cache.path(), &|| true).unwrap_err();
    assert!(err.is::<parquet::Cancelled>(), "{err:#}");
    let copy = parquet::shard_copy_path(cache.path(), &src);
    assert!(!copy.exists());
    let leftovers: Vec<_> = walk(cache.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let copy = parquet::to_shard(&src, cache.path(), &|| false).unwrap();
    let shard = index_shard(&copy, &|| false).unwrap();
    let keys: Vec<String> = shard.samples.iter().map(|s| s.key.clone()).collect();
    assert_eq!(keys, strs(&m["parquet"]["keys_in_order"]));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn an_exported_selection_is_a_shard_that_indexes_to_the_same_samples() {
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    let selection = cat.apply(&Filter {
        primary: Some("Microscopy".into()),
        ..Default::default()
    });
    assert_eq!(selection.len(), 13);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("selection.tar");
    let mut out = Vec::new();
    loupe::datasets::biomedica::export::write_shard(&cat, &selection, &mut out).unwrap();
    loupe::atomic::write_atomic(&path, &out).unwrap();
    let back = index_shard(&path, &|| false).unwrap();
    assert!(back.is_clean(), "{:?}", back.report());
    let keys: Vec<&str> = back.samples.iter().map(|s| s.key.as_str()).collect();
    let want: Vec<&str> = selection.iter().map(|&i| cat.key(i)).collect();
    assert_eq!(keys, want);
    // Member bytes survive: the JSON fields and captions index identically.
    for (s, &id) in back.samples.iter().zip(&selection) {
        let orig = cat.read_member(id, Ext::Txt).unwrap();
        assert_eq!(s.caption.as_bytes(), orig.as_slice());
        assert_eq!(
            s.fields
                .as_ref()
                .map(|f| f.primary.contains(&"Microscopy".to_owned())),
            Some(true)
        );
    }
    let mut jsonl = Vec::new();
    loupe::datasets::biomedica::export::write_manifest(&cat, &selection, &mut jsonl).unwrap();
    let lines: Vec<Value> = jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0]["key"], want[0]);
    // The CSV manifest, read back by the csv crate: the same rows and fields as the
    // JSONL (captions with commas and quotes survive the quoting).
    let mut csv_bytes = Vec::new();
    let n =
        loupe::datasets::biomedica::export::write_csv(&cat, &selection, &mut csv_bytes).unwrap();
    assert_eq!(n, 13);
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 13);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(row[col("key")], *line["key"].as_str().unwrap());
        assert_eq!(
            row[col("caption_prefix")],
            *line["caption_prefix"].as_str().unwrap()
        );
        assert_eq!(row[col("license")], *line["license"].as_str().unwrap());
        let primary: Vec<&str> = line["primary_labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(row[col("primary_labels")], primary.join("; "));
        assert_eq!(row[col("width")], line["image_size"][0].to_string());
    }
}

/// Seeded damage of every kind a download or a disk can do: the indexer must report,
/// never panic, and never hand out a member that lies outside the file.
#[test]
fn mutated_shards_never_panic_and_never_point_outside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (round, rel) in GOOD.iter().cycle().take(240).enumerate() {
        let mut bytes = std::fs::read(root().join(rel)).unwrap();
        match round % 4 {
            // Truncate anywhere.
            0 => bytes.truncate(next() as usize % bytes.len()),
            // Flip a few bytes anywhere.
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = next() as usize % bytes.len();
                    bytes[i] ^= (next() % 255 + 1) as u8;
                }
            }
            // Rewrite a header's size field: random octal, or base-256 with a huge value.
            2 | 3 => {
                let blocks: Vec<usize> = (0..bytes.len() / 512)
                    .filter(|b| &bytes[b * 512 + 257..b * 512 + 262] == b"ustar")
                    .collect();
                let b = blocks[next() as usize % blocks.len()] * 512;
                if round % 4 == 2 {
                    let digits = format!("{:011o}\0", next() % (1 << 33));
                    bytes[b + 124..b + 136].copy_from_slice(digits.as_bytes());
                } else {
                    bytes[b + 124] = 0x80;
                    bytes[b + 125..b + 136].fill(0xFF);
                }
                // Keep the checksum valid so the size itself is what gets tested.
                bytes[b + 148..b + 156].fill(b' ');
                let sum: u32 = bytes[b..b + 512].iter().map(|&x| u32::from(x)).sum();
                bytes[b + 148..b + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            }
            _ => unreachable!(),
        }
        let path = dir.path().join(format!("m{round}.tar"));
        std::fs::write(&path, &bytes).unwrap();
        let idx = index_shard(&path, &|| false).unwrap();
        let len = bytes.len() as u64;
        for s in &idx.samples {
            for ext in Ext::ALL {
                if let Some(m) = s.readable(ext) {
                    assert!(
                        m.offset + m.size <= len,
                        "round {round}: {} past the end",
                        s.key
                    );
                }
            }
        }
        if idx.structural.is_some() || idx.end_of_archive.is_none() {
            assert!(
                !idx.report().is_empty(),
                "round {round}: damage without a report"
            );
        }
        // The sidecar of whatever was read round-trips, and a damaged sidecar is refused
        // or read, never a panic.
        let mut enc = sidecar::encode(&idx);
        assert_eq!(
            ShardIndex {
                path: idx.path.clone(),
                ..sidecar::decode(&enc).unwrap()
            },
            idx
        );
        if enc.len() > 30 {
            let i = 20 + next() as usize % (enc.len() - 20);
            enc[i] ^= 0xA5;
            let _ = sidecar::decode(&enc);
        }
    }
}

/// Every fixture JPEG decodes through the same path the grid uses (byte range of the
/// shard → image crate), greyscale and Adobe CMYK included, to the size and roughly the
/// colour Pillow reports (Pillow's own CMYK→RGB is naive, hence the loose tolerance).
#[test]
fn every_jpeg_decodes_from_its_byte_range_with_pillows_size_and_colour() {
    use loupe::image_cache::{ImageSource, Resolution, decode};
    let m = manifest();
    let mut cmyk = 0;
    for shard in m["shards"].as_array().unwrap() {
        let path: std::sync::Arc<Path> = root().join(shard["path"].as_str().unwrap()).into();
        for s in shard["samples"].as_array().unwrap() {
            let (img, jpg) = (&s["image"], &s["members"]["jpg"]);
            if img.is_null() {
                continue;
            }
            let source = ImageSource::Member {
                path: path.clone(),
                offset: jpg["offset_data"].as_u64().unwrap(),
                len: jpg["size"].as_u64().unwrap(),
            };
            let d = decode(&source, Resolution::Full).unwrap();
            let key = s["key"].as_str().unwrap();
            assert_eq!(
                [u64::from(d.original_size[0]), u64::from(d.original_size[1])],
                [
                    img["width"].as_u64().unwrap(),
                    img["height"].as_u64().unwrap()
                ],
                "{key}"
            );
            let n = d.image.pixels.len() as f64;
            let mean: Vec<f64> = (0..3)
                .map(|c| {
                    d.image
                        .pixels
                        .iter()
                        .map(|p| f64::from(p.to_array()[c]))
                        .sum::<f64>()
                        / n
                })
                .collect();
            let is_cmyk = img["mode"] == "CMYK";
            cmyk += usize::from(is_cmyk);
            let tolerance = if is_cmyk { 40.0 } else { 3.0 };
            for c in 0..3 {
                let want = img["rgb_mean_pillow"][c].as_f64().unwrap();
                assert!(
                    (mean[c] - want).abs() <= tolerance,
                    "{key} ({}): channel {c} mean {:.1}, Pillow {want}",
                    img["mode"],
                    mean[c]
                );
            }
        }
    }
    assert_eq!(cmyk, 2);
}

/// "Show the duplicates": the group filter shows exactly the samples whose manifest
/// `image_hash` equals the selected one's.
#[test]
fn a_duplicate_group_is_every_sample_with_the_same_image_hash() {
    let m = manifest();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for shard in m["shards"].as_array().unwrap() {
        for s in shard["samples"].as_array().unwrap() {
            if let Some(h) = s["fields"]["image_hash"].as_str().filter(|h| !h.is_empty()) {
                groups
                    .entry(h.to_owned())
                    .or_default()
                    .insert(s["key"].as_str().unwrap().to_owned());
            }
        }
    }
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    cat.finish();
    let mut checked = 0;
    for keys in groups.values().filter(|k| k.len() > 1) {
        let first = keys.iter().next().unwrap();
        let id = (0..cat.len() as u32)
            .find(|&i| cat.key(i) == first)
            .unwrap();
        assert_eq!(cat.duplicate_count(id) as usize, keys.len(), "{first}");
        let shown: BTreeSet<String> = cat
            .apply(&Filter {
                same_image: cat.item(id).map(|it| it.hash),
                ..Default::default()
            })
            .into_iter()
            .map(|i| cat.key(i).to_owned())
            .collect();
        assert_eq!(&shown, keys);
        checked += 1;
    }
    assert!(checked > 0, "the fixture has duplicate groups");
}

/// Opening the Parquet edition in the browser: it is indexed through a WebDataset copy
/// in the cache folder and yields the same samples (keys in row order, captions, fields,
/// image bytes) as the tar shard it was made from; a second open reuses the copy.
#[test]
fn a_parquet_file_opens_as_the_same_samples_as_its_shard() {
    let m = manifest();
    let p = &m["parquet"];
    let cache = tempfile::tempdir().unwrap();
    let folder = root().join("parquet");
    let (cat, stats) = loupe::datasets::biomedica::build_catalog(
        std::slice::from_ref(&folder),
        cache.path(),
        &|_, _| {},
        &|| false,
    )
    .unwrap();
    assert!(stats.failed.is_empty(), "{:?}", stats.failed);
    assert_eq!(stats.samples, p["rows"].as_u64().unwrap() as usize);
    let keys: Vec<&str> = (0..cat.len() as u32).map(|i| cat.key(i)).collect();
    assert_eq!(keys, strs(&p["keys_in_order"]));
    let mut tar = Catalog::default();
    tar.add_shard(index(p["from_shard"].as_str().unwrap()));
    for id in 0..cat.len() as u32 {
        let t = (0..tar.len() as u32)
            .find(|&j| tar.key(j) == cat.key(id))
            .unwrap();
        assert_eq!(cat.subset(id), "other");
        assert_eq!(cat.primary_labels(id), tar.primary_labels(t));
        assert_eq!(cat.license(id), tar.license(t));
        for ext in [Ext::Jpg, Ext::Txt] {
            assert_eq!(
                cat.read_member(id, ext).ok(),
                tar.read_member(t, ext).ok(),
                "{} .{}",
                cat.key(id),
                ext.as_str()
            );
        }
    }
    let (_, again) =
        loupe::datasets::biomedica::build_catalog(&[folder], cache.path(), &|_, _| {}, &|| false)
            .unwrap();
    assert_eq!(again.built, 0, "the copy and its sidecar are reused");
}

/// Title and MeSH search: the items found are exactly those whose title or MeSH terms
/// (read here from each sample's whole JSON document) hold a word containing
/// the query; "both" is the union with the caption hits.
#[test]
fn titles_and_mesh_terms_are_searchable() {
    use loupe::datasets::biomedica::catalog::SearchIn;
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut article_words: Vec<Vec<String>> = Vec::new();
    let mut mesh_seen = Vec::new();
    for id in 0..cat.len() as u32 {
        let json: Value = cat
            .read_member(id, Ext::Json)
            .ok()
            // Whole-document parse (lone surrogate escapes read as U+FFFD), not the
            // indexer's early-stopping field collector.
            .and_then(|b| loupe::datasets::biomedica::meta::parse_lenient(&b).ok())
            .unwrap_or(Value::Null);
        let mut text = json["article_title"].as_str().unwrap_or("").to_owned();
        if let Some(list) = json["article_mesh_terms"].as_array() {
            for m in list.iter().filter_map(Value::as_str) {
                text.push('\n');
                text.push_str(m);
                mesh_seen.extend(words(m));
            }
        }
        article_words.push(words(&text));
    }
    assert!(!mesh_seen.is_empty(), "the fixture has MeSH terms");
    let mut queries = vec!["spaceflight".to_owned(), "retinal".to_owned()];
    queries.push(mesh_seen[0].clone());
    queries.push(mesh_seen[mesh_seen.len() / 2].clone());
    for q in &queries {
        let want: BTreeSet<u32> = (0..cat.len() as u32)
            .filter(|&i| {
                article_words[i as usize]
                    .iter()
                    .any(|w| w.contains(q.as_str()))
            })
            .collect();
        assert!(!want.is_empty(), "{q}");
        let find = |scope| -> BTreeSet<u32> {
            cat.apply(&Filter {
                query: q.clone(),
                search_in: scope,
                ..Default::default()
            })
            .into_iter()
            .collect()
        };
        assert_eq!(find(SearchIn::Articles), want, "{q}");
        let captions = find(SearchIn::Captions);
        let both: BTreeSet<u32> = want.union(&captions).copied().collect();
        assert_eq!(find(SearchIn::Both), both, "{q}");
    }
}

/// The CLIP embedding job's cache and resume, with a stand-in encoder whose vector is
/// each image's (width, height, 1), so every stored vector can be checked against the
/// JPEG decoded here: a cancel after the first batch keeps that batch (`.part`), the
/// next run embeds only the rest, and a third run embeds nothing.
#[test]
fn embedding_resumes_after_a_cancel_and_reuses_finished_shards() {
    use loupe::datasets::biomedica::vectors::{VectorError, embed_catalog};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut cat = Catalog::default();
    for rel in GOOD {
        cat.add_shard(index(rel));
    }
    cat.finish();
    let cache = tempfile::tempdir().unwrap();
    let calls = AtomicUsize::new(0);
    let encode = |imgs: &[image::RgbImage]| -> Result<Vec<Vec<f32>>, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(imgs
            .iter()
            .map(|im| vec![im.width() as f32, im.height() as f32, 1.0])
            .collect())
    };
    let run = |cancel_after: usize| {
        calls.store(0, Ordering::SeqCst);
        embed_catalog(
            &cat,
            cache.path(),
            "stand-in",
            "stand-in",
            3,
            4,
            &encode,
            &|_, _| {},
            &|| calls.load(Ordering::SeqCst) >= cancel_after,
        )
    };
    // Decodable images, counted here with the image crate.
    let with_image: Vec<u32> = (0..cat.len() as u32)
        .filter(|&i| {
            cat.read_member(i, Ext::Jpg)
                .ok()
                .is_some_and(|b| image::load_from_memory(&b).is_ok())
        })
        .collect();
    assert!(matches!(run(1), Err(VectorError::Cancelled)));
    let second = run(usize::MAX).unwrap();
    let first_batch = with_image.len() - second.stats.embedded_now;
    assert!(
        (1..=4).contains(&first_batch),
        "the cancelled run's batch is kept ({first_batch})"
    );
    assert_eq!(second.len(), with_image.len());
    for &id in &with_image {
        let img = image::load_from_memory(&cat.read_member(id, Ext::Jpg).unwrap()).unwrap();
        let (w, h) = (img.width() as f32, img.height() as f32);
        let n = (w * w + h * h + 1.0).sqrt();
        let v = second.vector(id).unwrap();
        for (got, want) in v.iter().zip([w / n, h / n, 1.0 / n]) {
            assert!((got - want).abs() < 1e-3, "{}: {v:?}", cat.key(id));
        }
    }
    let third = run(usize::MAX).unwrap();
    assert_eq!(third.stats.embedded_now, 0);
    assert_eq!(third.stats.cached_shards, third.stats.shards);
}
