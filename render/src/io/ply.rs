//! 3D Gaussian Splatting PLY (the INRIA reference layout) and plain coloured point PLYs.
//!
//! The header is parsed with `ply-rs-bw`. The body is decoded here: `ply-rs` turns every
//! record into a map keyed by property name, which is several times slower than the
//! reference Python reader; the body of a splat file is fixed-size records, so a flat
//! decoder with precomputed offsets streams it at disk speed (see BENCHMARKS.md).

use super::{PointCloud, Progress, ReadError, ReadReport, SceneFile};
use crate::splats::{Splats, sh_coeffs, sigmoid};
use ply_rs_bw::parser::{Parser, Reader};
use ply_rs_bw::ply::{DefaultElement, ElementDef, Encoding, PropertyType, ScalarType};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

pub fn read_ply(path: &Path, progress: Progress<'_>) -> Result<(SceneFile, ReadReport), ReadError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| ReadError::io(&name, e))?;
    read_ply_from(BufReader::with_capacity(1 << 20, file), &name, progress)
}

/// `ply-rs`'s scalar type, as a `Copy` value for the hot decode loop.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Kind {
    pub(crate) fn of(ty: &ScalarType) -> Self {
        match ty {
            ScalarType::Char => Self::I8,
            ScalarType::UChar => Self::U8,
            ScalarType::Short => Self::I16,
            ScalarType::UShort => Self::U16,
            ScalarType::Int => Self::I32,
            ScalarType::UInt => Self::U32,
            ScalarType::Float => Self::F32,
            ScalarType::Double => Self::F64,
        }
    }

    pub(crate) fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// Where one property sits in a binary record and how it is stored.
#[derive(Clone, Copy, Debug)]
struct Field {
    offset: usize,
    ty: Kind,
}

/// Decode one scalar at `bytes[0..size]` as f64.
pub(crate) fn decode(bytes: &[u8], ty: Kind, big_endian: bool) -> f64 {
    macro_rules! num {
        ($t:ty, $n:literal) => {{
            let mut b = [0u8; $n];
            b.copy_from_slice(&bytes[..$n]);
            f64::from(if big_endian {
                <$t>::from_be_bytes(b)
            } else {
                <$t>::from_le_bytes(b)
            })
        }};
    }
    match ty {
        Kind::I8 => f64::from(bytes[0] as i8),
        Kind::U8 => f64::from(bytes[0]),
        Kind::I16 => num!(i16, 2),
        Kind::U16 => num!(u16, 2),
        Kind::I32 => num!(i32, 4),
        Kind::U32 => num!(u32, 4),
        Kind::F32 => num!(f32, 4),
        Kind::F64 => num!(f64, 8),
    }
}

/// The vertex properties Loupe uses, as indices into the record's property list.
struct Layout {
    xyz: [usize; 3],
    dc: Option<[usize; 3]>,
    /// Plain colours and the scale that maps them to [0, 1].
    rgb: Option<([usize; 3], f64)>,
    rest: Vec<usize>,
    opacity: Option<usize>,
    scale: Option<[usize; 3]>,
    rot: Option<[usize; 4]>,
}

fn layout(name: &str, element: &ElementDef) -> Result<Layout, ReadError> {
    let names: Vec<&str> = element.properties.keys().map(String::as_str).collect();
    let find = |n: &str| names.iter().position(|p| *p == n);
    let find3 = |a: &str, b: &str, c: &str| Some([find(a)?, find(b)?, find(c)?]);
    let xyz = find3("x", "y", "z")
        .ok_or_else(|| ReadError::format(name, "the vertex element has no x, y, z properties"))?;
    let mut rest: Vec<(u32, usize)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.strip_prefix("f_rest_")?.parse().ok().map(|k| (k, i)))
        .collect();
    // Numeric order: f_rest_10 comes after f_rest_9, not after f_rest_1.
    rest.sort_unstable();
    let rgb = find3("red", "green", "blue")
        .or_else(|| find3("r", "g", "b"))
        .map(|idx| {
            let ty = match &element.properties[idx[0]].data_type {
                PropertyType::Scalar(t) | PropertyType::List(_, t) => Kind::of(t),
            };
            let max = match ty {
                Kind::U8 | Kind::I8 => 255.0,
                Kind::U16 | Kind::I16 => 65535.0,
                _ => 1.0,
            };
            (idx, max)
        });
    Ok(Layout {
        xyz,
        dc: find3("f_dc_0", "f_dc_1", "f_dc_2"),
        rgb,
        rest: rest.into_iter().map(|(_, i)| i).collect(),
        opacity: find("opacity"),
        scale: find3("scale_0", "scale_1", "scale_2"),
        rot: (|| {
            Some([
                find("rot_0")?,
                find("rot_1")?,
                find("rot_2")?,
                find("rot_3")?,
            ])
        })(),
    })
}

pub fn read_ply_from<R: BufRead>(
    reader: R,
    name: &str,
    progress: Progress<'_>,
) -> Result<(SceneFile, ReadReport), ReadError> {
    let parser = Parser::<DefaultElement>::new();
    let mut reader = Reader::new(reader);
    let header = parser
        .read_header(&mut reader)
        .map_err(|e| ReadError::format(name, format!("bad PLY header: {e}")))?;
    let mut body = reader.into_inner();
    let Some(vertex_pos) = header.elements.keys().position(|k| k == "vertex") else {
        return Err(ReadError::format(name, "no 'vertex' element"));
    };
    if header.elements.contains_key("chunk") {
        let (splats, report) = super::compressed_ply::read(&header, body, name, progress)?;
        return Ok((SceneFile::Splats(splats), report));
    }
    let vertex = &header.elements[vertex_pos];
    for p in vertex.properties.values() {
        if matches!(p.data_type, PropertyType::List(..)) {
            return Err(ReadError::format(
                name,
                format!(
                    "vertex property '{}' is a list; splat files hold scalars",
                    p.name
                ),
            ));
        }
    }
    let lay = layout(name, vertex)?;
    let degree = match lay.rest.len() {
        0 => 0,
        9 => 1,
        24 => 2,
        45 => 3,
        n => {
            return Err(ReadError::format(
                name,
                format!("{n} f_rest properties; expected 0, 9, 24 or 45 (SH degree 0–3)"),
            ));
        }
    };
    let is_splat = lay.scale.is_some() && lay.rot.is_some() && lay.opacity.is_some();
    let count = vertex.count;
    let ascii = matches!(header.encoding, Encoding::Ascii);
    let big_endian = matches!(header.encoding, Encoding::BinaryBigEndian);

    // Skip elements stored before the vertices.
    for element in header.elements.values().take(vertex_pos) {
        skip_element(&mut body, element, ascii, name)?;
    }

    let nprops = vertex.properties.len();
    let mut values = vec![0f64; nprops];
    // The header's count is untrusted: reserve at most what a million records need and grow.
    let mut out = Builder::new(is_splat, degree, count.min(1 << 20));
    let mut report = ReadReport::default();
    let every = (count / 100).max(1024);
    if ascii {
        let mut line = String::new();
        for i in 0..count {
            line.clear();
            let n = body
                .read_line(&mut line)
                .map_err(|e| ReadError::io(name, e))?;
            if n == 0 {
                return Err(ReadError::format(
                    name,
                    format!(
                        "truncated: the header promises {count} vertices, the file ends after {i}"
                    ),
                ));
            }
            let mut parts = line.split_ascii_whitespace();
            for v in values.iter_mut() {
                *v = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
                    ReadError::format(name, format!("vertex {i}: expected {nprops} numbers"))
                })?;
            }
            out.push(&values, &lay, &mut report);
            if i % every == 0 && !progress(i as f32 / count as f32) {
                return Err(ReadError::Cancelled {
                    path: name.to_owned(),
                });
            }
        }
    } else {
        let mut fields = Vec::with_capacity(nprops);
        let mut offset = 0;
        for p in vertex.properties.values() {
            let ty = match &p.data_type {
                PropertyType::Scalar(t) | PropertyType::List(_, t) => Kind::of(t),
            };
            fields.push(Field { offset, ty });
            offset += ty.size();
        }
        let stride = offset;
        let all_f32_le = !big_endian && fields.iter().all(|f| matches!(f.ty, Kind::F32));
        const CHUNK: usize = 16384;
        let mut buf = vec![0u8; stride * CHUNK];
        let mut done = 0;
        while done < count {
            let n = CHUNK.min(count - done);
            let bytes = &mut buf[..n * stride];
            read_full(&mut body, bytes).map_err(|got| {
                ReadError::format(
                    name,
                    format!(
                        "truncated: the header promises {count} vertices, the file ends after {}",
                        done + got / stride
                    ),
                )
            })?;
            // Records are independent: decode slices of the chunk on all cores, then
            // append the parts in order.
            use rayon::prelude::*;
            let parts: Vec<(Builder, usize)> = bytes
                .par_chunks(stride * 2048)
                .map(|slice| {
                    let mut part = Builder::new(is_splat, degree, slice.len() / stride);
                    let mut part_report = ReadReport::default();
                    let mut values = vec![0f64; nprops];
                    for record in slice.chunks_exact(stride) {
                        if all_f32_le {
                            // The common case (every 3DGS exporter): no per-field dispatch.
                            for (v, b) in values.iter_mut().zip(record.chunks_exact(4)) {
                                *v = f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                            }
                        } else {
                            for (v, f) in values.iter_mut().zip(&fields) {
                                *v = decode(&record[f.offset..], f.ty, big_endian);
                            }
                        }
                        part.push(&values, &lay, &mut part_report);
                    }
                    (part, part_report.skipped_non_finite)
                })
                .collect();
            for (part, skipped) in parts {
                out.append(part);
                report.skipped_non_finite += skipped;
            }
            done += n;
            if !progress(done as f32 / count.max(1) as f32) {
                return Err(ReadError::Cancelled {
                    path: name.to_owned(),
                });
            }
        }
    }
    let scene = out.finish();
    if let SceneFile::Splats(s) = &scene {
        s.validate().map_err(|m| ReadError::format(name, m))?;
    }
    Ok((scene, report))
}

/// Fill `buf` completely; on a short read, `Err(bytes_read)`.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> Result<(), usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(got),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(got),
        }
    }
    Ok(())
}

fn skip_element(
    body: &mut impl BufRead,
    element: &ElementDef,
    ascii: bool,
    name: &str,
) -> Result<(), ReadError> {
    if ascii {
        let mut line = String::new();
        for _ in 0..element.count {
            line.clear();
            if body
                .read_line(&mut line)
                .map_err(|e| ReadError::io(name, e))?
                == 0
            {
                return Err(ReadError::format(
                    name,
                    format!("truncated inside element '{}'", element.name),
                ));
            }
        }
        return Ok(());
    }
    let mut stride = 0;
    for p in element.properties.values() {
        match &p.data_type {
            PropertyType::Scalar(t) => stride += Kind::of(t).size(),
            PropertyType::List(..) => {
                return Err(ReadError::format(
                    name,
                    format!(
                        "cannot skip element '{}' before the vertices: it holds lists",
                        element.name
                    ),
                ));
            }
        }
    }
    let mut remaining = (stride * element.count) as u64;
    while remaining > 0 {
        let chunk = body.fill_buf().map_err(|e| ReadError::io(name, e))?;
        if chunk.is_empty() {
            return Err(ReadError::format(
                name,
                format!("truncated inside element '{}'", element.name),
            ));
        }
        let n = (chunk.len() as u64).min(remaining) as usize;
        body.consume(n);
        remaining -= n as u64;
    }
    Ok(())
}

/// Collects activated splats (or plain points) record by record.
struct Builder {
    splats: Option<Splats>,
    points: PointCloud,
}

impl Builder {
    fn new(is_splat: bool, degree: u32, count: usize) -> Self {
        let splats = is_splat.then(|| Splats {
            means: Vec::with_capacity(count),
            scales: Vec::with_capacity(count),
            rotations: Vec::with_capacity(count),
            opacities: Vec::with_capacity(count),
            sh_degree: degree,
            sh: Vec::with_capacity(count * sh_coeffs(degree) * 3),
            foreground: None,
        });
        Self {
            splats,
            points: PointCloud::default(),
        }
    }

    fn push(&mut self, v: &[f64], lay: &Layout, report: &mut ReadReport) {
        if lay.xyz.iter().any(|&i| !v[i].is_finite()) {
            report.skipped_non_finite += 1;
            return;
        }
        let xyz = lay.xyz.map(|i| v[i] as f32);
        let Some(s) = &mut self.splats else {
            let rgb = lay.rgb.map_or([200, 200, 200], |(idx, max)| {
                idx.map(|i| (v[i] / max * 255.0).round().clamp(0.0, 255.0) as u8)
            });
            self.points.positions.push(xyz);
            self.points.colors.push(rgb);
            return;
        };
        let (Some(scale), Some(rot), Some(op)) = (lay.scale, lay.rot, lay.opacity) else {
            return;
        };
        let coeffs = sh_coeffs(s.sh_degree);
        let rest_per_channel = coeffs - 1;
        let dc = match (lay.dc, lay.rgb) {
            (Some(dc), _) => dc.map(|i| v[i]),
            (None, Some((idx, max))) => idx.map(|i| (v[i] / max - 0.5) / crate::splats::SH_C0),
            (None, None) => [0.0; 3],
        };
        let q = rot.map(|i| v[i]);
        let qn = q.iter().map(|x| x * x).sum::<f64>().sqrt();
        let all_finite = scale
            .iter()
            .chain(lay.rest.iter())
            .all(|&i| v[i].is_finite())
            && v[op].is_finite()
            && dc.iter().all(|x| x.is_finite())
            && qn.is_finite()
            && qn > 0.0;
        if !all_finite {
            report.skipped_non_finite += 1;
            return;
        }
        s.means.push(xyz);
        s.scales.push(scale.map(|i| (v[i] as f32).exp()));
        s.rotations.push(q.map(|x| (x / qn) as f32));
        s.opacities.push(sigmoid(v[op] as f32));
        s.sh.extend(dc.map(|x| x as f32));
        // f_rest is channel-major: all of R's coefficients, then G's, then B's.
        for k in 0..rest_per_channel {
            for c in 0..3 {
                s.sh.push(v[lay.rest[c * rest_per_channel + k]] as f32);
            }
        }
    }

    fn append(&mut self, other: Self) {
        if let (Some(s), Some(o)) = (&mut self.splats, other.splats) {
            s.means.extend(o.means);
            s.scales.extend(o.scales);
            s.rotations.extend(o.rotations);
            s.opacities.extend(o.opacities);
            s.sh.extend(o.sh);
        }
        self.points.positions.extend(other.points.positions);
        self.points.colors.extend(other.points.colors);
    }

    fn finish(self) -> SceneFile {
        match self.splats {
            Some(s) => SceneFile::Splats(s),
            None => SceneFile::Points(self.points),
        }
    }
}

/// Write `splats` as a binary little-endian 3DGS PLY in the reference layout
/// (pre-activation values, channel-major `f_rest`).
pub fn write_ply(out: &mut impl Write, splats: &Splats) -> std::io::Result<()> {
    let coeffs = splats.coeffs();
    let rest = (coeffs - 1) * 3;
    let mut header = format!(
        "ply\nformat binary_little_endian 1.0\nelement vertex {}\n",
        splats.len()
    );
    for p in [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ] {
        header += &format!("property float {p}\n");
    }
    for k in 0..rest {
        header += &format!("property float f_rest_{k}\n");
    }
    for p in [
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        header += &format!("property float {p}\n");
    }
    header += "end_header\n";
    out.write_all(header.as_bytes())?;
    let mut record: Vec<f32> = Vec::with_capacity(17 + rest);
    for i in 0..splats.len() {
        record.clear();
        record.extend(splats.means[i]);
        record.extend([0.0; 3]);
        let sh = splats.sh_of(i);
        record.extend(&sh[..3]);
        for c in 0..3 {
            for k in 1..coeffs {
                record.push(sh[k * 3 + c]);
            }
        }
        record.push(crate::splats::logit(splats.opacities[i]));
        record.extend(splats.scales[i].map(f32::ln));
        record.extend(splats.rotations[i]);
        for v in &record {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()
}

/// Write a coloured point cloud as binary little-endian PLY (x y z red green blue).
pub fn write_points(out: &mut impl Write, points: &PointCloud) -> std::io::Result<()> {
    write!(
        out,
        "ply\nformat binary_little_endian 1.0\nelement vertex {}\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n",
        points.positions.len()
    )?;
    for (p, c) in points.positions.iter().zip(&points.colors) {
        for v in p {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(c)?;
    }
    out.flush()
}
