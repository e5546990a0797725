//! `loupe index` end to end on the committed BIOMEDICA fixture: the summary counts and
//! every damaged shard's report come out on stdout, and a second run uses the sidecars.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("index")
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn index_prints_counts_and_problems_and_reuses_sidecars() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/biomedica");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap();
    let subsets: Vec<String> = ["commercial", "noncommercial", "other"]
        .iter()
        .map(|s| fixture.join(s).display().to_string())
        .collect();
    let mut args: Vec<&str> = subsets.iter().map(String::as_str).collect();
    args.extend(["--cache", cache]);
    let (ok, out) = run(&args);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("4 shards (4 indexed now, 0 from sidecars), 40 samples"),
        "{out}"
    );
    // The good shards' only problems: one sample without .jpg, one without .json.
    assert!(out.contains("\n2 problems, 0 unreadable paths"), "{out}");
    let (ok, again) = run(&args);
    assert!(ok);
    assert!(
        again.starts_with("4 shards (0 indexed now, 4 from sidecars), 40 samples"),
        "{again}"
    );

    let damaged = fixture.join("damaged").display().to_string();
    let (ok, out) = run(&[&damaged, "--cache", cache]);
    assert!(ok, "{out}");
    assert!(out.starts_with("7 shards (7 indexed now"), "{out}");
    for needle in [
        "truncated.tar: unexpected_eof at offset 63607 (filelist_commercial_3_118-PMC4106123-0-pone.0102872.g003.json): member declares 9441 bytes at offset 58880, only 4727 present",
        "bad_header_checksum.tar: bad_header_checksum at offset 39424",
        "stored '010212', computed 010211",
        "member_past_eof.tar: member_past_eof at offset 88064",
        "no_end_of_archive.tar: missing_end_of_archive",
        "invalid_utf8_caption.tar: filelist_commercial_8_301-PMC8075123-0-elife-64123-fig1.txt: invalid_utf8",
        "corrupt_jpeg.tar: filelist_commercial_3_118-PMC4106123-0-pone.0102872.g003.jpg: jpeg_decode_error",
        "missing_member.tar: filelist_commercial_5_42-PMC6775123-2-41598_2019_50234_Fig3_HTML.txt: missing_member",
    ] {
        assert!(out.contains(needle), "{needle:?} not in\n{out}");
    }
    // Nothing to index is an error.
    let empty = tempfile::tempdir().unwrap();
    let (ok, _) = run(&[empty.path().to_str().unwrap(), "--cache", cache]);
    assert!(!ok);
}
