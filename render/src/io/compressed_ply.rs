//! SuperSplat / PlayCanvas compressed PLY: a `chunk` element of per-256-splat bounds,
//! then `vertex` rows of four packed u32 (position and log-scale 11-10-11 within the
//! chunk bounds, colour RGBA 8-8-8-8 with opacity after the sigmoid, rotation as the
//! index of the largest of (w, x, y, z) plus the other three in order, 10 bits each,
//! scaled by √2), then optionally an `sh` element of u8 `f_rest_*` (channel-major,
//! value = (v/255 − 0.5)·8). Layout as decoded by the PlayCanvas engine and
//! GaussianSplats3D.

use super::{Progress, ReadError, ReadReport};
use crate::splats::{SH_C0, Splats, sh_coeffs};
use ply_rs_bw::ply::{ElementDef, Encoding, Header, PropertyType};
use std::io::BufRead;

pub const CHUNK: usize = 256;

/// The scalar rows of one element, each property as f64 (exact for u32).
fn read_rows(
    body: &mut impl BufRead,
    element: &ElementDef,
    encoding: &Encoding,
    name: &str,
) -> Result<Vec<f64>, ReadError> {
    let mut kinds = Vec::new();
    for p in element.properties.values() {
        match &p.data_type {
            PropertyType::Scalar(t) => kinds.push(super::ply::Kind::of(t)),
            PropertyType::List(..) => {
                return Err(ReadError::format(
                    name,
                    format!(
                        "element '{}' holds a list; compressed PLY holds scalars",
                        element.name
                    ),
                ));
            }
        }
    }
    let stride: usize = kinds.iter().map(|k| k.size()).sum();
    // The count comes from the header: never trust it for an allocation.
    let mut out = Vec::with_capacity((element.count * kinds.len()).min(1 << 24));
    let truncated =
        || ReadError::format(name, format!("truncated inside element '{}'", element.name));
    if matches!(encoding, Encoding::Ascii) {
        let mut line = String::new();
        for _ in 0..element.count {
            line.clear();
            if body
                .read_line(&mut line)
                .map_err(|e| ReadError::io(name, e))?
                == 0
            {
                return Err(truncated());
            }
            let mut parts = line.split_ascii_whitespace();
            for _ in 0..kinds.len() {
                out.push(
                    parts
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(truncated)?,
                );
            }
        }
        return Ok(out);
    }
    let big = matches!(encoding, Encoding::BinaryBigEndian);
    let mut record = vec![0u8; stride];
    for _ in 0..element.count {
        body.read_exact(&mut record).map_err(|_| truncated())?;
        let mut at = 0;
        for k in &kinds {
            out.push(super::ply::decode(&record[at..], *k, big));
            at += k.size();
        }
    }
    Ok(out)
}

fn column(element: &ElementDef, name: &str) -> Option<usize> {
    element.properties.keys().position(|k| k == name)
}

fn unorm(v: u32, bits: u32) -> f64 {
    let max = (1u32 << bits) - 1;
    f64::from(v & max) / f64::from(max)
}

fn unpack_111011(v: u32) -> [f64; 3] {
    [unorm(v >> 21, 11), unorm(v >> 11, 10), unorm(v, 11)]
}

/// Quaternion (w, x, y, z) from the 2-10-10-10 "largest dropped" packing.
pub fn unpack_rotation(v: u32) -> [f64; 4] {
    let s = std::f64::consts::SQRT_2;
    let rest = [
        (unorm(v >> 20, 10) - 0.5) * s,
        (unorm(v >> 10, 10) - 0.5) * s,
        (unorm(v, 10) - 0.5) * s,
    ];
    let largest_value = (1.0 - rest.iter().map(|x| x * x).sum::<f64>())
        .max(0.0)
        .sqrt();
    let largest = (v >> 30) as usize;
    let mut q = [0.0; 4];
    let mut others = rest.iter();
    for (i, slot) in q.iter_mut().enumerate() {
        *slot = if i == largest {
            largest_value
        } else {
            *others.next().unwrap_or(&0.0)
        };
    }
    q
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a * (1.0 - t) + b * t
}

pub fn read(
    header: &Header,
    mut body: impl BufRead,
    name: &str,
    progress: Progress<'_>,
) -> Result<(Splats, ReadReport), ReadError> {
    let get = |n: &str| {
        header.elements.get(n).ok_or_else(|| {
            ReadError::format(name, format!("compressed PLY without a '{n}' element"))
        })
    };
    let chunk_el = get("chunk")?;
    let vertex_el = get("vertex")?;
    // Elements come in header order; compressed files store chunk, vertex, then sh.
    let order: Vec<&str> = header.elements.keys().map(String::as_str).collect();
    if order.first() != Some(&"chunk") || order.get(1) != Some(&"vertex") {
        return Err(ReadError::format(
            name,
            format!("unexpected element order {order:?}; expected chunk, vertex[, sh]"),
        ));
    }
    let need = |el: &ElementDef, n: &str| {
        column(el, n).ok_or_else(|| {
            ReadError::format(name, format!("element '{}' has no '{n}' property", el.name))
        })
    };
    let chunk_cols: Vec<usize> = [
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
    ]
    .iter()
    .map(|n| need(chunk_el, n))
    .collect::<Result<_, _>>()?;
    let colour_cols: Option<Vec<usize>> = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
        .iter()
        .map(|n| column(chunk_el, n))
        .collect();
    let vcols: Vec<usize> = [
        "packed_position",
        "packed_rotation",
        "packed_scale",
        "packed_color",
    ]
    .iter()
    .map(|n| need(vertex_el, n))
    .collect::<Result<_, _>>()?;
    let n = vertex_el.count;
    if chunk_el.count < n.div_ceil(CHUNK) {
        return Err(ReadError::format(
            name,
            format!(
                "{} chunks cannot cover {n} splats (256 per chunk)",
                chunk_el.count
            ),
        ));
    }
    let chunks = read_rows(&mut body, chunk_el, &header.encoding, name)?;
    let cw = chunk_el.properties.len();
    if !progress(0.1) {
        return Err(ReadError::Cancelled {
            path: name.to_owned(),
        });
    }
    let verts = read_rows(&mut body, vertex_el, &header.encoding, name)?;
    let vw = vertex_el.properties.len();
    if !progress(0.6) {
        return Err(ReadError::Cancelled {
            path: name.to_owned(),
        });
    }
    let sh_el = header.elements.get("sh");
    let rest: usize = sh_el.map_or(0, |e| e.properties.len());
    let degree = match rest {
        0 => 0,
        9 => 1,
        24 => 2,
        45 => 3,
        r => {
            return Err(ReadError::format(
                name,
                format!("the 'sh' element has {r} properties; expected 9, 24 or 45"),
            ));
        }
    };
    let sh_rows = match sh_el {
        Some(e) if e.count == n => read_rows(&mut body, e, &header.encoding, name)?,
        Some(e) => {
            return Err(ReadError::format(
                name,
                format!("'sh' has {} rows for {n} splats", e.count),
            ));
        }
        None => Vec::new(),
    };
    let coeffs = sh_coeffs(degree);
    let mut s = Splats {
        sh_degree: degree,
        ..Splats::default()
    };
    let mut report = ReadReport::default();
    for i in 0..n {
        let c = &chunks[(i / CHUNK) * cw..(i / CHUNK + 1) * cw];
        let ch = |k: usize| c[chunk_cols[k]];
        let v = &verts[i * vw..(i + 1) * vw];
        let packed = |k: usize| v[vcols[k]] as u32;
        let p = unpack_111011(packed(0));
        let mean = [0, 1, 2].map(|a| lerp(ch(a), ch(a + 3), p[a]) as f32);
        let ls = unpack_111011(packed(2));
        let scale = [0, 1, 2].map(|a| lerp(ch(a + 6), ch(a + 9), ls[a]).exp() as f32);
        let q = unpack_rotation(packed(1));
        let col = packed(3);
        let mut rgb = [unorm(col >> 24, 8), unorm(col >> 16, 8), unorm(col >> 8, 8)];
        if let Some(cc) = &colour_cols {
            for (a, x) in rgb.iter_mut().enumerate() {
                *x = lerp(c[cc[a]], c[cc[a + 3]], *x);
            }
        }
        let opacity = unorm(col, 8) as f32;
        if mean.iter().chain(&scale).any(|x| !x.is_finite()) || rgb.iter().any(|x| !x.is_finite()) {
            report.skipped_non_finite += 1;
            continue;
        }
        s.means.push(mean);
        s.scales.push(scale);
        let qn = q.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        s.rotations.push(q.map(|x| (x / qn) as f32));
        s.opacities.push(opacity);
        s.sh.extend(rgb.map(|x| ((x - 0.5) / SH_C0) as f32));
        if degree > 0 {
            let row = &sh_rows[i * rest..(i + 1) * rest];
            let per = coeffs - 1;
            for k in 0..per {
                for ch in 0..3 {
                    s.sh.push(((row[ch * per + k] / 255.0 - 0.5) * 8.0) as f32);
                }
            }
        }
    }
    if !progress(1.0) {
        return Err(ReadError::Cancelled {
            path: name.to_owned(),
        });
    }
    s.validate().map_err(|m| ReadError::format(name, m))?;
    Ok((s, report))
}
