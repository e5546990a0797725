//! SuperSplat compressed PLY: an encoder written here from the format description
//! packs known Gaussians; the reader must recover them within each field's quantisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe_render::io::{SceneFile, read_path};
use loupe_render::splats::{SH_C0, Splats};
use std::io::Write;

fn pack_111011(t: [f64; 3]) -> u32 {
    let q = |v: f64, bits: u32| (v.clamp(0.0, 1.0) * f64::from((1u32 << bits) - 1)).round() as u32;
    (q(t[0], 11) << 21) | (q(t[1], 10) << 11) | q(t[2], 11)
}

fn norm01(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.0 }
}

fn pack_rotation(q: [f32; 4]) -> u32 {
    let mut q = q.map(f64::from);
    let largest = (0..4)
        .max_by(|&a, &b| q[a].abs().total_cmp(&q[b].abs()))
        .unwrap();
    if q[largest] < 0.0 {
        q = q.map(|v| -v);
    }
    let mut out = (largest as u32) << 30;
    let mut shift = 20;
    for (i, v) in q.iter().enumerate() {
        if i != largest {
            let u = ((v / std::f64::consts::SQRT_2 + 0.5).clamp(0.0, 1.0) * 1023.0).round() as u32;
            out |= u << shift;
            shift -= 10;
        }
    }
    out
}

/// Returns the file bytes and, per chunk, the bounds used (for the tolerances).
fn encode(s: &Splats) -> (Vec<u8>, Vec<[f64; 18]>) {
    let n = s.len();
    let chunks = n.div_ceil(256);
    let colour = |i: usize| [0, 1, 2].map(|c| 0.5 + SH_C0 * f64::from(s.sh_of(i)[c]));
    let log_scale = |i: usize| s.scales[i].map(|v| f64::from(v).ln());
    let mut bounds = Vec::new();
    for c in 0..chunks {
        let range = c * 256..((c + 1) * 256).min(n);
        let mut b = [f64::INFINITY; 18];
        // Minima start at +∞, maxima (every second group of three) at −∞.
        for (k, v) in b.iter_mut().enumerate() {
            if (k / 3) % 2 == 1 {
                *v = f64::NEG_INFINITY;
            }
        }
        for i in range {
            let vals = [s.means[i].map(f64::from), log_scale(i), colour(i)];
            for (g, v) in vals.iter().enumerate() {
                for a in 0..3 {
                    b[g * 6 + a] = b[g * 6 + a].min(v[a]);
                    b[g * 6 + 3 + a] = b[g * 6 + 3 + a].max(v[a]);
                }
            }
        }
        bounds.push(b);
    }
    let rest = (s.coeffs() - 1) * 3;
    let mut out = Vec::new();
    write!(
        out,
        "ply\nformat binary_little_endian 1.0\nelement chunk {chunks}\n"
    )
    .unwrap();
    for p in [
        "min_x",
        "min_y",
        "min_z",
        "max_x",
        "max_y",
        "max_z",
        "min_scale_x",
        "min_scale_y",
        "min_scale_z",
        "max_scale_x",
        "max_scale_y",
        "max_scale_z",
        "min_r",
        "min_g",
        "min_b",
        "max_r",
        "max_g",
        "max_b",
    ] {
        writeln!(out, "property float {p}").unwrap();
    }
    write!(out, "element vertex {n}\nproperty uint packed_position\nproperty uint packed_rotation\nproperty uint packed_scale\nproperty uint packed_color\n").unwrap();
    if rest > 0 {
        writeln!(out, "element sh {n}").unwrap();
        for k in 0..rest {
            writeln!(out, "property uchar f_rest_{k}").unwrap();
        }
    }
    writeln!(out, "end_header").unwrap();
    for b in &bounds {
        for v in b {
            out.extend((*v as f32).to_le_bytes());
        }
    }
    for i in 0..n {
        let b = &bounds[i / 256];
        let pos = [0, 1, 2].map(|a| norm01(f64::from(s.means[i][a]), b[a], b[a + 3]));
        let ls = log_scale(i);
        let sc = [0, 1, 2].map(|a| norm01(ls[a], b[6 + a], b[9 + a]));
        let col = colour(i);
        let c8 = [0, 1, 2].map(|a| (norm01(col[a], b[12 + a], b[15 + a]) * 255.0).round() as u32);
        let alpha = (f64::from(s.opacities[i]) * 255.0).round() as u32;
        let packed_colour = (c8[0] << 24) | (c8[1] << 16) | (c8[2] << 8) | alpha;
        for w in [
            pack_111011(pos),
            pack_rotation(s.rotations[i]),
            pack_111011(sc),
            packed_colour,
        ] {
            out.extend(w.to_le_bytes());
        }
    }
    let coeffs = s.coeffs();
    for i in 0..n {
        let sh = s.sh_of(i);
        for c in 0..3 {
            for k in 1..coeffs {
                let v = f64::from(sh[k * 3 + c]);
                out.push(((v / 8.0 + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
    }
    (out, bounds)
}

#[test]
fn compressed_ply_decodes_within_its_quantisation() {
    // 600 splats: three chunks, the last one partial.
    let s = Splats::random(31, 600, 3, 2.0, 0.05);
    let (bytes, bounds) = encode(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scene.compressed.ply");
    std::fs::write(&path, &bytes).unwrap();
    let SceneFile::Splats(d) = read_path(&path, &mut |_| true).unwrap().0 else {
        panic!("not splats")
    };
    assert_eq!(d.len(), 600);
    assert_eq!(d.sh_degree, 3);
    for i in 0..s.len() {
        let b = &bounds[i / 256];
        for a in 0..3 {
            // One quantisation step of the chunk's range, plus f32 rounding.
            let step =
                |lo: f64, hi: f64, bits: u32| (hi - lo) / f64::from((1u32 << bits) - 1) + 1e-6;
            let bits = if a == 1 { 10 } else { 11 };
            let err = (f64::from(d.means[i][a]) - f64::from(s.means[i][a])).abs();
            assert!(err <= step(b[a], b[a + 3], bits), "mean {i}.{a}: {err}");
            let lerr = (f64::from(d.scales[i][a]).ln() - f64::from(s.scales[i][a]).ln()).abs();
            assert!(
                lerr <= step(b[6 + a], b[9 + a], bits),
                "log scale {i}.{a}: {lerr}"
            );
            let col = |x: &Splats| 0.5 + SH_C0 * f64::from(x.sh_of(i)[a]);
            assert!(
                (col(&d) - col(&s)).abs() <= step(b[12 + a], b[15 + a], 8),
                "colour {i}.{a}"
            );
        }
        assert!(
            (d.opacities[i] - s.opacities[i]).abs() <= 0.5 / 255.0 + 1e-6,
            "opacity {i}"
        );
        let dot: f32 = (0..4).map(|k| d.rotations[i][k] * s.rotations[i][k]).sum();
        assert!(dot.abs() > 0.9995, "rotation {i}: {dot}");
        for k in 3..48 {
            let (x, y) = (d.sh_of(i)[k], s.sh_of(i)[k]);
            assert!(
                (x - y).abs() <= 4.0 / 255.0 + 1e-6,
                "sh {i}.{k}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn broken_compressed_plys_are_errors_naming_the_file() {
    let s = Splats::random(32, 300, 0, 1.0, 0.05);
    let (bytes, _) = encode(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.compressed.ply");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = read_path(&path, &mut |_| true).unwrap_err().to_string();
    assert!(
        err.contains("cut.compressed.ply") && err.contains("truncated"),
        "{err}"
    );
    // Too few chunks for the splat count.
    let end = bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .unwrap();
    let header = std::str::from_utf8(&bytes[..end]).unwrap().replacen(
        "element chunk 2",
        "element chunk 1",
        1,
    );
    let mut edited = header.into_bytes();
    edited.extend(&bytes[end..]);
    let few = dir.path().join("few.ply");
    std::fs::write(&few, &edited).unwrap();
    let err = read_path(&few, &mut |_| true).unwrap_err().to_string();
    assert!(err.contains("chunks cannot cover"), "{err}");
}
