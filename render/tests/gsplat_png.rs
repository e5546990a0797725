//! The gsplat PNG-compressed splat reader (uCO3D `gaussian_splats/` folders) against the
//! fixture that `scripts/fixtures/make_gsplat_png_fixture.py` writes: the expected values
//! come from a Python decode of the same files, so they agree to float rounding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe_render::io::gsplat_png::read_gsplat_dir;
use loupe_render::io::{ReadError, ReadReport, SceneFile, read_path};
use loupe_render::splats::Splats;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsplat_png")
}

fn expected(variant: &str) -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["variants"][variant].clone()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn read(dir: &Path) -> Result<(Splats, ReadReport), ReadError> {
    read_gsplat_dir(dir, &mut |_| true)
}

/// Both sides decode the same quantised bytes, so only float rounding (an ulp or two
/// in exp/expm1) separates them.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * w.abs().max(g.abs()) + 1e-7;
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

fn check_variant(variant: &str) -> Splats {
    let e = expected(variant);
    let (s, report) = read(&fixture().join(variant)).unwrap();
    assert_eq!(s.len() as u64, e["n"].as_u64().unwrap(), "{variant}: count");
    assert_eq!(
        report.skipped_non_finite as u64,
        e["skipped_non_finite"].as_u64().unwrap(),
        "{variant}: skipped"
    );
    assert_eq!(u64::from(s.sh_degree), e["sh_degree"].as_u64().unwrap());
    assert_close("means", s.means.as_flattened(), &floats(&e["means"]));
    assert_close("scales", s.scales.as_flattened(), &floats(&e["scales"]));
    assert_close(
        "rotations",
        s.rotations.as_flattened(),
        &floats(&e["rotations"]),
    );
    assert_close("opacities", &s.opacities, &floats(&e["opacities"]));
    assert_close("sh", &s.sh, &floats(&e["sh"]));
    let fg: Option<Vec<bool>> = e["foreground"].as_array().map(|a| {
        a.iter()
            .map(|v| v.as_bool().unwrap())
            .collect::<Vec<bool>>()
    });
    assert_eq!(s.foreground, fg, "{variant}: foreground");
    s.validate().unwrap();
    s
}

#[test]
fn degree3_directory_decodes_to_the_expected_values() {
    let s = check_variant("deg3");
    assert_eq!(s.len(), 100);
    assert_eq!(s.sh_degree, 3);
    let fg = s.foreground.as_ref().unwrap();
    // Soft probabilities: both classes occur; exactly 0.5 (splat 0) is background and the
    // next float32 above it (splat 1) is foreground.
    assert!(fg.iter().any(|&f| f) && fg.iter().any(|&f| !f));
    assert!(!fg[0] && fg[1]);
}

#[test]
fn quaternions_are_renormalised_after_dequantising() {
    let e = expected("deg3");
    // The stored (8-bit) quaternions are measurably off unit length ...
    let before = e["quat_norm_max_deviation_before_renormalising"]
        .as_f64()
        .unwrap();
    assert!(
        before > 1e-3,
        "fixture quaternions should be off unit length"
    );
    // ... and the reader's are unit length, w first: splat 1 was stored as (3, 0, 0, 0).
    let (s, _) = read(&fixture().join("deg3")).unwrap();
    for (i, q) in s.rotations.iter().enumerate() {
        let n = q.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-6, "rotation {i} has norm {n}");
    }
    let q1 = s.rotations[1];
    assert!(q1[0] > 0.999, "w comes first: {q1:?}");
}

#[test]
fn sh_is_dc_first_then_shn_coefficient_major() {
    let e = expected("deg3");
    let (s, _) = read(&fixture().join("deg3")).unwrap();
    let kept = e["kept"][0].as_u64().unwrap();
    assert_eq!(kept, 0);
    let first = s.sh_of(0);
    assert_eq!(first.len(), 16 * 3);
    let rows = e["shN_of_first_kept"].as_array().unwrap();
    assert_eq!(rows.len(), 15);
    for (k, row) in rows.iter().enumerate() {
        let want = floats(row);
        for c in 0..3 {
            // Coefficient k + 1 (after the DC term), channel c.
            let got = first[(k + 1) * 3 + c];
            assert!(
                (got - want[c]).abs() <= 1e-6,
                "coefficient {} channel {c}: got {got}, want {}",
                k + 1,
                want[c]
            );
        }
    }
}

#[test]
fn degree0_directory_has_no_shn_file_and_no_mask() {
    let dir = fixture().join("deg0");
    assert!(!dir.join("shN.npz").exists());
    assert!(!dir.join("fg_mask.npz").exists());
    let s = check_variant("deg0");
    assert_eq!(s.sh_degree, 0);
    assert_eq!(s.sh.len(), s.len() * 3);
    assert!(s.foreground.is_none());
}

#[test]
fn non_finite_splats_are_skipped_and_counted() {
    // Two Gaussians have log σ of 95 and 120: exp overflows float32. The fixture also has
    // SH degree 1, 8-bit centroids and a uint8 fg_mask of shape [N].
    let s = check_variant("deg1_nonfinite");
    let e = expected("deg1_nonfinite");
    assert_eq!(e["skipped_non_finite"], 2);
    assert_eq!(s.len(), 7);
    assert_eq!(s.sh_degree, 1);
    assert!(s.scales.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn read_path_opens_the_directory_or_its_meta_json() {
    let dir = fixture().join("deg3");
    let (direct, _) = read(&dir).unwrap();
    for path in [dir.clone(), dir.join("meta.json")] {
        match read_path(&path, &mut |_| true).unwrap() {
            (SceneFile::Splats(s), report) => {
                assert_eq!(s, direct, "{}", path.display());
                assert_eq!(report.skipped_non_finite, 0);
            }
            other => panic!("expected splats, got {other:?}"),
        }
    }
}

#[test]
fn progress_is_reported_per_parameter_and_can_cancel() {
    let dir = fixture().join("deg3");
    let mut seen = Vec::new();
    read_gsplat_dir(&dir, &mut |f| {
        seen.push(f);
        true
    })
    .unwrap();
    assert!(seen.len() >= 7, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(1.0));

    let mut calls = 0;
    let err = read_gsplat_dir(&dir, &mut |_| {
        calls += 1;
        calls < 3
    })
    .unwrap_err();
    assert!(matches!(err, ReadError::Cancelled { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Bad input: a copy of the fixture, broken one way at a time.
// ---------------------------------------------------------------------------

fn copy_of(variant: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gaussian_splats");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture().join(variant)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (tmp, dir)
}

fn edit_meta(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("meta.json");
    let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut meta);
    std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
}

/// The read fails with a format error that names `file` and says `what`.
fn assert_fails(dir: &Path, file: &str, what: &str) {
    let err = read(dir).expect_err("a broken directory must not read");
    let ReadError::Format { path, message } = &err else {
        panic!("expected a format error, got {err:?}");
    };
    assert!(
        path.ends_with(file),
        "error should name {file}, names {path}: {message}"
    );
    assert!(
        message.contains(what),
        "error for {file} should say '{what}': {message}"
    );
}

#[test]
fn missing_meta_json_is_reported() {
    let (_t, dir) = copy_of("deg3");
    std::fs::remove_file(dir.join("meta.json")).unwrap();
    assert_fails(&dir, "meta.json", "not found");
    // read_path on such a folder says the same.
    let err = read_path(&dir, &mut |_| true).unwrap_err();
    assert!(err.to_string().contains("meta.json"), "{err}");
}

#[test]
fn corrupt_meta_json_is_reported() {
    let (_t, dir) = copy_of("deg3");
    let text = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    std::fs::write(dir.join("meta.json"), &text[..text.len() / 2]).unwrap();
    assert_fails(&dir, "meta.json", "not valid JSON");
}

#[test]
fn missing_pngs_are_reported() {
    for file in loupe_render::io::gsplat_png::PNG_FILES {
        let (_t, dir) = copy_of("deg3");
        std::fs::remove_file(dir.join(file)).unwrap();
        assert_fails(&dir, file, "not found");
    }
}

#[test]
fn missing_npz_files_are_reported() {
    for file in ["shN.npz", "fg_mask.npz"] {
        let (_t, dir) = copy_of("deg3");
        std::fs::remove_file(dir.join(file)).unwrap();
        assert_fails(&dir, file, "not found");
    }
}

#[test]
fn truncated_npz_is_reported() {
    for file in ["shN.npz", "fg_mask.npz"] {
        let (_t, dir) = copy_of("deg3");
        let bytes = std::fs::read(dir.join(file)).unwrap();
        std::fs::write(dir.join(file), &bytes[..bytes.len() * 2 / 3]).unwrap();
        assert_fails(&dir, file, "truncated");
    }
}

#[test]
fn truncated_png_is_reported() {
    let (_t, dir) = copy_of("deg3");
    let bytes = std::fs::read(dir.join("quats.png")).unwrap();
    std::fs::write(dir.join("quats.png"), &bytes[..bytes.len() / 2]).unwrap();
    assert_fails(&dir, "quats.png", "cannot decode");
}

#[test]
fn png_of_the_wrong_size_or_channels_is_reported() {
    let (_t, dir) = copy_of("deg3");
    image::GrayImage::new(9, 9)
        .save(dir.join("opacities.png"))
        .unwrap();
    assert_fails(&dir, "opacities.png", "9×9");

    let (_t, dir) = copy_of("deg3");
    image::GrayImage::new(10, 10)
        .save(dir.join("sh0.png"))
        .unwrap();
    assert_fails(&dir, "sh0.png", "channel");

    let (_t, dir) = copy_of("deg3");
    image::ImageBuffer::<image::Rgb<u16>, _>::new(10, 10)
        .save(dir.join("scales.png"))
        .unwrap();
    assert_fails(&dir, "scales.png", "8-bit");
}

#[test]
fn bad_meta_entries_are_reported() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 7] = [
        ("dtype 'int32'", |m| m["scales"]["dtype"] = "int32".into()),
        ("dtype 'complex64'", |m| {
            m["quats"]["dtype"] = "complex64".into()
        }),
        ("not a perfect square", |m| {
            m["means"]["shape"] = serde_json::json!([99, 3])
        }),
        ("expected [100, 4]", |m| {
            m["quats"]["shape"] = serde_json::json!([100, 3])
        }),
        ("no 'sh0' entry", |m| {
            m.as_object_mut().unwrap().remove("sh0");
        }),
        ("needs 3 of each", |m| {
            m["sh0"]["mins"] = serde_json::json!([0.0, 1.0])
        }),
        ("'quantization'", |m| m["shN"]["quantization"] = 0.into()),
    ];
    for (what, edit) in cases {
        let (_t, dir) = copy_of("deg3");
        edit_meta(&dir, edit);
        assert_fails(&dir, "meta.json", what);
    }
}

#[test]
fn shn_entry_may_be_absent_and_nan_ranges_skip_splats() {
    // Without an shN entry the splats are degree 0.
    let (_t, dir) = copy_of("deg3");
    edit_meta(&dir, |m| {
        m.as_object_mut().unwrap().remove("shN");
    });
    let (s, _) = read(&dir).unwrap();
    assert_eq!((s.len(), s.sh_degree), (100, 0));

    // Python's json.dump writes NaN when a parameter held one: every splat is non-finite.
    let (_t, dir) = copy_of("deg3");
    edit_meta(&dir, |m| m["opacities"]["mins"][0] = "NAN_HERE".into());
    let path = dir.join("meta.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"NAN_HERE\"", "NaN")).unwrap();
    let (s, report) = read(&dir).unwrap();
    assert_eq!((s.len(), report.skipped_non_finite), (0, 100));
}

/// A `.npy` file as numpy writes it (header padded to 64 bytes).
fn npy(header_dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header_dict.to_owned();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn u8_centroids(k: usize, value: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let data: Vec<u8> = (0..k * 45).map(|i| value(i / 45, i % 45)).collect();
    npy(
        &format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({k}, 45), }}"),
        &data,
    )
}

/// Write an uncompressed `.npz` (as `np.savez` does) of the given centroids and u16 labels.
fn write_shn_npz(path: &Path, centroids: &[u8], labels: &[u16]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    use std::io::Write;
    zip.start_file("centroids.npy", opts).unwrap();
    zip.write_all(centroids).unwrap();
    zip.start_file("labels.npy", opts).unwrap();
    let data: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    let header = format!(
        "{{'descr': '<u2', 'fortran_order': False, 'shape': ({},), }}",
        labels.len()
    );
    zip.write_all(&npy(&header, &data)).unwrap();
    zip.finish().unwrap();
}

fn alternating_labels() -> Vec<u16> {
    (0..100).map(|i| (i % 2) as u16).collect()
}

#[test]
fn shn_labels_out_of_range_and_bad_centroids_are_reported() {
    // A stored (np.savez) archive reads; every label points at centroid row 1.
    let (_t, dir) = copy_of("deg3");
    write_shn_npz(&dir.join("shN.npz"), &u8_centroids(2, |_, _| 7), &[1; 100]);
    let (s, _) = read(&dir).unwrap();
    let first = s.sh_of(0)[3..].to_vec();
    assert!(
        first.iter().all(|&v| v == first[0]),
        "all centroid values are 7"
    );
    assert!(s.sh_of(99)[3..] == first[..]);

    let (_t, dir) = copy_of("deg3");
    let mut labels = [0u16; 100];
    labels[42] = 2;
    write_shn_npz(&dir.join("shN.npz"), &u8_centroids(2, |_, _| 7), &labels);
    assert_fails(&dir, "shN.npz", "label 2 of Gaussian 42 is out of range");

    let (_t, dir) = copy_of("deg3");
    write_shn_npz(&dir.join("shN.npz"), &u8_centroids(2, |_, _| 7), &[0; 99]);
    assert_fails(&dir, "shN.npz", "99 values for 100");

    // The degree-1 fixture's centroids are 9 wide; a degree-3 meta needs 45.
    let (_t, dir) = copy_of("deg3");
    std::fs::copy(
        fixture().join("deg1_nonfinite/shN.npz"),
        dir.join("shN.npz"),
    )
    .unwrap();
    assert_fails(&dir, "shN.npz", "'centroids' has shape [4, 9]");
}

#[test]
fn fortran_ordered_big_endian_centroids_read_like_c_ordered_bytes() {
    // Row r, column j holds r * 45 + j (mod 64, within 6 bits).
    let value = |r: usize, j: usize| ((r * 45 + j) % 64) as u8;
    let (_t, dir) = copy_of("deg3");
    write_shn_npz(
        &dir.join("shN.npz"),
        &u8_centroids(2, value),
        &alternating_labels(),
    );
    let (c_order, _) = read(&dir).unwrap();

    // The same values as big-endian int16, written column by column.
    let mut data = Vec::new();
    for j in 0..45 {
        for r in 0..2 {
            data.extend(i16::from(value(r, j)).to_be_bytes());
        }
    }
    let centroids = npy(
        "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 45), }",
        &data,
    );
    let (_t, dir) = copy_of("deg3");
    write_shn_npz(&dir.join("shN.npz"), &centroids, &alternating_labels());
    let (fortran, _) = read(&dir).unwrap();
    assert_eq!(c_order.sh, fortran.sh);
    // Splat 1 uses row 1: coefficient 1 (after DC), channel 0 is column 0 = 45 % 64.
    let first_rest = c_order.sh_of(1)[3];
    assert_ne!(first_rest, c_order.sh_of(0)[3]);
}

#[test]
fn malformed_npy_headers_are_reported() {
    let data = vec![0u8; 2 * 45 * 8];
    let headers = [
        (
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 45), }",
            "descr",
        ),
        (
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 45), }",
            "unsupported dtype",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 45), }",
            "gsplat writes quantised integers",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (-2, 45), }",
            "non-negative",
        ),
        ("{'descr': '|u1', 'shape': (2, 45), }", "fortran_order"),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }",
            "too large",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': ((((((((((2,),),),),),),),),),), }",
            "nested",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 45",
            "bad .npy header",
        ),
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (60000, 45), }",
            "truncated",
        ),
    ];
    for (header, what) in headers {
        let (_t, dir) = copy_of("deg3");
        write_shn_npz(
            &dir.join("shN.npz"),
            &npy(header, &data),
            &alternating_labels(),
        );
        assert_fails(&dir, "shN.npz", what);
    }
    let (_t, dir) = copy_of("deg3");
    write_shn_npz(
        &dir.join("shN.npz"),
        b"\x93NUMPX\x01\x00",
        &alternating_labels(),
    );
    assert_fails(&dir, "shN.npz", "bad magic");
}
