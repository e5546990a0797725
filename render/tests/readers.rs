//! Reader round trips (write known Gaussians, read them back) and bad-input reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe_render::io::{ReadError, SceneFile, ply, read_path, splat};
use loupe_render::splats::{SH_C0, Splats, logit};
use std::io::Write;
use std::path::{Path, PathBuf};

fn no_progress() -> impl FnMut(f32) -> bool {
    |_| true
}

fn read_splats(path: &Path) -> (Splats, usize) {
    match read_path(path, &mut no_progress()).unwrap() {
        (SceneFile::Splats(s), report) => (s, report.skipped_non_finite),
        other => panic!("expected splats, got {other:?}"),
    }
}

fn assert_close(a: &Splats, b: &Splats, tol_sh: f32, tol_opacity: f32, tol_rot: f32) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.sh_degree, b.sh_degree);
    for i in 0..a.len() {
        for k in 0..3 {
            assert_eq!(a.means[i][k], b.means[i][k], "mean {i}");
            let rel = (a.scales[i][k] - b.scales[i][k]).abs() / a.scales[i][k];
            assert!(
                rel < 1e-5,
                "scale {i}: {} vs {}",
                a.scales[i][k],
                b.scales[i][k]
            );
        }
        assert!(
            (a.opacities[i] - b.opacities[i]).abs() <= tol_opacity,
            "opacity {i}"
        );
        for k in 0..4 {
            assert!(
                (a.rotations[i][k] - b.rotations[i][k]).abs() <= tol_rot,
                "rotation {i}"
            );
        }
        for (x, y) in a.sh_of(i).iter().zip(b.sh_of(i)) {
            assert!((x - y).abs() <= tol_sh, "sh {i}: {x} vs {y}");
        }
    }
}

fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn binary_ply_round_trips_every_sh_degree() {
    for degree in 0..=3 {
        let s = Splats::random(10 + u64::from(degree), 300, degree, 2.0, 0.05);
        let (_d, path) = temp("scene.ply");
        let mut f = std::fs::File::create(&path).unwrap();
        ply::write_ply(&mut f, &s).unwrap();
        drop(f);
        let (back, skipped) = read_splats(&path);
        assert_eq!(skipped, 0);
        // Only the logit/log round trip separates the values: f32 exactness.
        assert_close(&s, &back, 1e-7, 1e-5, 1e-6);
    }
}

/// Write `s` as ASCII or big-endian PLY with the properties in a scrambled order, by
/// hand, independently of the library writer.
fn write_variant(path: &Path, s: &Splats, ascii: bool) {
    let coeffs = s.coeffs();
    let rest = (coeffs - 1) * 3;
    let mut names: Vec<String> = [
        "rot_3", "opacity", "z", "f_dc_1", "scale_2", "x", "rot_0", "f_dc_0", "scale_0", "y",
        "rot_1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // f_rest in reverse numeric order: the reader must sort by number, not position.
    names.extend((0..rest).rev().map(|k| format!("f_rest_{k}")));
    names.extend(["scale_1", "f_dc_2", "rot_2"].map(String::from));
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let fmt = if ascii { "ascii" } else { "binary_big_endian" };
    writeln!(
        f,
        "ply\nformat {fmt} 1.0\ncomment scrambled\nelement vertex {}",
        s.len()
    )
    .unwrap();
    for n in &names {
        // Doubles for positions exercise another scalar type.
        let ty = if n.len() == 1 { "double" } else { "float" };
        writeln!(f, "property {ty} {n}").unwrap();
    }
    writeln!(f, "end_header").unwrap();
    for i in 0..s.len() {
        let sh = s.sh_of(i);
        for (j, n) in names.iter().enumerate() {
            let v: f32 = match n.as_str() {
                "x" => s.means[i][0],
                "y" => s.means[i][1],
                "z" => s.means[i][2],
                "opacity" => logit(s.opacities[i]),
                n if n.starts_with("scale_") => s.scales[i][n[6..].parse::<usize>().unwrap()].ln(),
                n if n.starts_with("rot_") => s.rotations[i][n[4..].parse::<usize>().unwrap()],
                n if n.starts_with("f_dc_") => sh[n[5..].parse::<usize>().unwrap()],
                n => {
                    // Channel-major: f_rest_k is channel k / (coeffs−1), coefficient k % (coeffs−1) + 1.
                    let k: usize = n[7..].parse().unwrap();
                    let (c, coeff) = (k / (coeffs - 1), k % (coeffs - 1) + 1);
                    sh[coeff * 3 + c]
                }
            };
            if ascii {
                write!(f, "{}{v:e}", if j == 0 { "" } else { " " }).unwrap();
            } else if n.len() == 1 {
                f.write_all(&f64::from(v).to_be_bytes()).unwrap();
            } else {
                f.write_all(&v.to_be_bytes()).unwrap();
            }
        }
        if ascii {
            writeln!(f).unwrap();
        }
    }
}

#[test]
fn ascii_and_big_endian_with_any_property_order_read_the_same() {
    let s = Splats::random(21, 120, 3, 1.0, 0.1);
    for ascii in [true, false] {
        let (_d, path) = temp("variant.ply");
        write_variant(&path, &s, ascii);
        let (back, _) = read_splats(&path);
        assert_close(&s, &back, 1e-6, 1e-5, 1e-6);
    }
}

#[test]
fn splat_format_round_trips_within_its_quantisation() {
    let s = Splats::random(5, 500, 0, 3.0, 0.2);
    let (_d, path) = temp("scene.splat");
    let mut f = std::fs::File::create(&path).unwrap();
    splat::write_splat(&mut f, &s).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 500 * 32);
    let (back, _) = read_splats(&path);
    // Colour in 8 bits: half a step of 1/255 in colour is 0.5/255/SH_C0 in f_dc, but
    // colours outside [0, 1] clip, so compare the colour the renderer would see.
    for i in 0..s.len() {
        for c in 0..3 {
            let want = (0.5 + SH_C0 * f64::from(s.sh_of(i)[c])).clamp(0.0, 1.0);
            let got = 0.5 + SH_C0 * f64::from(back.sh_of(i)[c]);
            assert!((want - got).abs() <= 0.5 / 255.0 + 1e-6, "colour {i}");
        }
        assert!((s.opacities[i] - back.opacities[i]).abs() <= 0.5 / 255.0 + 1e-6);
        // Each quaternion component is within 1/128 before renormalising; the rotation
        // is the same up to sign.
        let dot: f32 = (0..4)
            .map(|k| s.rotations[i][k] * back.rotations[i][k])
            .sum();
        assert!(dot.abs() > 0.999, "rotation {i}: dot {dot}");
        assert_eq!(s.means[i], back.means[i]);
        assert_eq!(s.scales[i], back.scales[i]);
    }
}

#[test]
fn point_cloud_plys_read_as_points_with_colours() {
    let (_d, path) = temp("points.ply");
    std::fs::write(
        &path,
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n0 1 2 255 0 10\n3 4 5 0 128 255\n",
    )
    .unwrap();
    match read_path(&path, &mut no_progress()).unwrap().0 {
        SceneFile::Points(p) => {
            assert_eq!(p.positions, vec![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
            assert_eq!(p.colors, vec![[255, 0, 10], [0, 128, 255]]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn point_clouds_become_opaque_splats_of_the_same_colour() {
    let cloud = loupe_render::io::PointCloud {
        positions: vec![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
        colors: vec![[255, 0, 10], [0, 128, 255]],
    };
    let s = cloud.to_splats(0.01);
    s.validate().unwrap();
    assert_eq!(s.means, cloud.positions);
    assert_eq!(s.opacities, vec![1.0, 1.0]);
    for (i, c) in cloud.colors.iter().enumerate() {
        for (&sh, &channel) in s.sh_of(i).iter().zip(c) {
            let back = 0.5 + SH_C0 * f64::from(sh);
            assert!((back * 255.0 - f64::from(channel)).abs() < 1e-3);
        }
    }
}

fn error_of(bytes: &[u8], name: &str) -> String {
    let (_d, path) = temp(name);
    std::fs::write(&path, bytes).unwrap();
    let err = read_path(&path, &mut no_progress()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(name), "error does not name the file: {text}");
    text
}

#[test]
fn bad_files_give_clear_errors_naming_the_file() {
    let good = {
        let mut v = Vec::new();
        ply::write_ply(&mut v, &Splats::random(1, 10, 1, 1.0, 0.1)).unwrap();
        v
    };
    // Truncated in the middle of the body.
    let cut = &good[..good.len() - 100];
    let e = error_of(cut, "cut.ply");
    assert!(
        e.contains("truncated") && e.contains("promises 10 vertices"),
        "{e}"
    );
    // Missing positions.
    let e = error_of(
        b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float a\nend_header\n1\n",
        "nopos.ply",
    );
    assert!(e.contains("no x, y, z"), "{e}");
    // A wrong number of f_rest properties.
    let mut header = String::from(
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n",
    );
    for k in 0..5 {
        header += &format!("property float f_rest_{k}\n");
    }
    header += "end_header\n0 0 0 0 0 0 0 0\n";
    let e = error_of(header.as_bytes(), "rest.ply");
    assert!(e.contains("5 f_rest"), "{e}");
    // Not a PLY header at all.
    let e = error_of(b"ply\nthis is not a header\n", "garbage.ply");
    assert!(e.contains("bad PLY header"), "{e}");
    // A .splat of the wrong length.
    let e = error_of(&[0u8; 40], "odd.splat");
    assert!(e.contains("32-byte"), "{e}");
    // Cancelled reads say so.
    let (_d, path) = temp("c.ply");
    std::fs::write(&path, &good).unwrap();
    assert!(matches!(
        read_path(&path, &mut |_| false),
        Err(ReadError::Cancelled { .. })
    ));
}

#[test]
fn non_finite_splats_are_skipped_and_counted() {
    let mut s = Splats::random(3, 6, 0, 1.0, 0.1);
    s.means[1][0] = f32::NAN;
    s.sh[4 * 3] = f32::INFINITY;
    let mut bytes = Vec::new();
    ply::write_ply(&mut bytes, &s).unwrap();
    let (_d, path) = temp("nan.ply");
    std::fs::write(&path, &bytes).unwrap();
    let (back, skipped) = read_splats(&path);
    assert_eq!(skipped, 2);
    assert_eq!(back.len(), 4);
    assert_eq!(back.means[1], s.means[2]);
}
