//! gsplat `PngCompression` splat directories: how uCO3D ships every reconstruction
//! (its `gaussian_splats/` folders, written by gsplat v1.3.0
//! `gsplat/compression/png_compression.py`, read back by uCO3D's
//! `load_compressed_gaussians`).
//!
//! A directory holds:
//!
//! - `meta.json`: per parameter, its `shape` (`shape[0]` = N), torch `dtype`, and for
//!   quantised parameters `mins`/`maxs` (per channel for the PNGs, one scalar for `shN`,
//!   which also has `quantization`, the bits per centroid value);
//! - `means_l.png` + `means_u.png`: 16 bits per channel, `(u << 8 | l) / 65535` scaled to
//!   [min, max], stored as `sign(x)·log1p(|x|)`;
//! - `scales.png` (log σ), `quats.png` (RGBA, w x y z, normalised before quantising),
//!   `opacities.png` (grey, logits), `sh0.png` (DC): `px / 255` scaled to [min, max];
//! - `shN.npz`: `centroids` (K × 3·rest, integers, coefficient-major) and `labels` (one
//!   per Gaussian); value = `centroid / (2^bits − 1)` scaled to the global [min, max];
//! - `fg_mask.npz` (uCO3D, optional): array `arr`, a Gaussian is foreground if > 0.5.
//!
//! The grid is row-major: pixel (r, c) is Gaussian `r·side + c`, N = side². A parameter
//! whose shape has a 0 has no file. Values are stored before activation, so this reader
//! applies exp / sigmoid / normalisation to fill [`Splats`].
//!
//! The arithmetic follows the Python decoders: `mins`/`maxs` become float32 tensors, the
//! scaling runs in float64 and the result is cast to the parameter's dtype; the inverse
//! log of the means runs in that dtype.

use super::{Progress, ReadError, ReadReport};
use crate::splats::{Splats, sh_coeffs, sigmoid};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Progress is reported after each of these: meta.json, means, scales, quats, opacities,
/// sh0, shN, fg_mask, assembling the splats.
const STAGES: u32 = 9;

/// More rows than this in `centroids` is not a gsplat file (labels are uint16).
const MAX_CENTROIDS: usize = 1 << 16;

/// Read a gsplat PNG-compressed splat directory (the folder that holds `meta.json`).
pub fn read_gsplat_dir(
    dir: &Path,
    progress: Progress<'_>,
) -> Result<(Splats, ReadReport), ReadError> {
    let dir_name = dir.display().to_string();
    let mut stages = Stages {
        progress,
        done: 0,
        path: &dir_name,
    };

    let meta_path = dir.join("meta.json");
    let meta_name = meta_path.display().to_string();
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::format(
                &meta_name,
                "not found: a gsplat PNG-compressed splat directory has a meta.json",
            ));
        }
        Err(e) => return Err(ReadError::io(&meta_name, e)),
    };
    let meta: Map<String, Value> = match serde_json::from_str(&python_json(&text)) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ReadError::format(
                &meta_name,
                "expected a JSON object keyed by parameter name",
            ));
        }
        Err(e) => {
            return Err(ReadError::format(
                &meta_name,
                format!("not valid JSON: {e}"),
            ));
        }
    };
    for key in meta.keys() {
        if !PARAMS.contains(&key.as_str()) {
            tracing::debug!("{meta_name}: ignoring parameter '{key}'");
        }
    }
    let m = MetaFile {
        map: &meta,
        name: &meta_name,
    };
    let means = m.required("means")?;
    let n = match means.shape.as_slice() {
        [n, 3] => *n,
        _ => return Err(m.bad_shape(&means, "[N, 3]")),
    };
    let side = n.isqrt();
    if side * side != n {
        return Err(ReadError::format(
            &meta_name,
            format!(
                "'means' has {n} Gaussians, which is not a perfect square; gsplat stores them on a side × side grid"
            ),
        ));
    }
    let scales = m.required("scales")?;
    if scales.shape != [n, 3] {
        return Err(m.bad_shape(&scales, &format!("[{n}, 3]")));
    }
    let quats = m.required("quats")?;
    if quats.shape != [n, 4] {
        return Err(m.bad_shape(&quats, &format!("[{n}, 4]")));
    }
    let opacities = m.required("opacities")?;
    if !matches!(opacities.shape.as_slice(), [a] | [a, 1] if *a == n) {
        return Err(m.bad_shape(&opacities, &format!("[{n}] or [{n}, 1]")));
    }
    let sh0 = m.required("sh0")?;
    if !matches!(sh0.shape.as_slice(), [a, 1, 3] | [a, 3] if *a == n) {
        return Err(m.bad_shape(&sh0, &format!("[{n}, 1, 3] or [{n}, 3]")));
    }
    let shn = m.optional("shN")?;
    let rest = match &shn {
        None => 0,
        Some(p) => match p.shape.as_slice() {
            [a, rest, 3] if *a == n => *rest,
            _ => return Err(m.bad_shape(p, &format!("[{n}, coefficients, 3]"))),
        },
    };
    let sh_degree = match rest {
        0 => 0,
        3 => 1,
        8 => 2,
        15 => 3,
        _ => {
            return Err(ReadError::format(
                &meta_name,
                format!(
                    "'shN' has {rest} higher-order coefficients per channel; expected 0, 3, 8 or 15 (SH degree 0–3)"
                ),
            ));
        }
    };
    let fg_mask = m.optional("fg_mask")?;
    if let Some(p) = &fg_mask
        && !matches!(p.shape.as_slice(), [a] | [a, 1] if *a == n)
    {
        return Err(m.bad_shape(p, &format!("[{n}] or [{n}, 1]")));
    }
    for p in [&means, &scales, &quats, &opacities, &sh0]
        .into_iter()
        .chain(shn.as_ref())
    {
        if !p.dtype.is_float() {
            return Err(ReadError::format(
                &meta_name,
                format!(
                    "'{}' has dtype '{}'; expected a float type (float32, float16, bfloat16, float64)",
                    p.name, p.dtype_name
                ),
            ));
        }
    }
    stages.step()?;

    let grid = Grid { dir, side, m: &m };
    let means = grid.means(&means)?;
    stages.step()?;
    let scales = grid.png8(&scales, 3)?;
    stages.step()?;
    let quats = grid.png8(&quats, 4)?;
    stages.step()?;
    let opacities = grid.png8(&opacities, 1)?;
    stages.step()?;
    let sh0 = grid.png8(&sh0, 3)?;
    stages.step()?;
    let shn = match &shn {
        Some(p) if n > 0 && rest > 0 => grid.kmeans(p, n, rest * 3)?,
        _ => Vec::new(),
    };
    stages.step()?;
    let foreground = match &fg_mask {
        Some(p) => Some(grid.fg_mask(p, n)?),
        None => None,
    };
    stages.step()?;

    let mut report = ReadReport::default();
    let coeffs = sh_coeffs(sh_degree);
    let width = rest * 3;
    let mut s = Splats {
        means: Vec::with_capacity(n),
        scales: Vec::with_capacity(n),
        rotations: Vec::with_capacity(n),
        opacities: Vec::with_capacity(n),
        sh_degree,
        sh: Vec::with_capacity(n * coeffs * 3),
        foreground: foreground.as_ref().map(|_| Vec::with_capacity(n)),
    };
    let rows = arrays::<3>(&means)
        .zip(arrays::<3>(&scales))
        .zip(arrays::<4>(&quats))
        .zip(opacities.iter().copied())
        .zip(arrays::<3>(&sh0))
        .enumerate();
    for (i, ((((mean, log_scale), q), logit), dc)) in rows {
        let higher: &[f32] = if width == 0 {
            &[]
        } else {
            shn.get(i * width..(i + 1) * width).unwrap_or_default()
        };
        let scale = log_scale.map(f32::exp);
        let qn = q.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let finite = mean
            .iter()
            .chain(&scale)
            .chain(&dc)
            .chain(higher)
            .all(|v| v.is_finite())
            && logit.is_finite()
            && qn.is_finite()
            && qn > 0.0
            && higher.len() == width;
        if !finite {
            report.skipped_non_finite += 1;
            continue;
        }
        s.means.push(mean);
        s.scales.push(scale);
        s.rotations.push(q.map(|x| (f64::from(x) / qn) as f32));
        s.opacities.push(sigmoid(logit));
        s.sh.extend(dc);
        s.sh.extend_from_slice(higher);
        if let (Some(out), Some(fg)) = (&mut s.foreground, &foreground) {
            out.push(fg.get(i).copied().unwrap_or(false));
        }
    }
    s.validate().map_err(|e| ReadError::format(&dir_name, e))?;
    stages.step()?;
    Ok((s, report))
}

/// The PNG files of a folder with every image parameter (means split in low and high
/// bytes), for tests and fuzzing that damage them one at a time.
pub const PNG_FILES: [&str; 6] = [
    "means_l.png",
    "means_u.png",
    "scales.png",
    "quats.png",
    "opacities.png",
    "sh0.png",
];

/// The parameters this reader knows; gsplat stores any other one as `<name>.npz`.
const PARAMS: [&str; 7] = [
    "means",
    "scales",
    "quats",
    "opacities",
    "sh0",
    "shN",
    "fg_mask",
];

struct Stages<'p, 'a> {
    progress: Progress<'p>,
    done: u32,
    path: &'a str,
}

impl Stages<'_, '_> {
    fn step(&mut self) -> Result<(), ReadError> {
        self.done += 1;
        if (self.progress)(self.done as f32 / STAGES as f32) {
            Ok(())
        } else {
            Err(ReadError::Cancelled {
                path: self.path.to_owned(),
            })
        }
    }
}

/// `chunks_exact(K)` as arrays.
fn arrays<const K: usize>(v: &[f32]) -> impl Iterator<Item = [f32; K]> + '_ {
    v.chunks_exact(K)
        .map(|c| <[f32; K]>::try_from(c).unwrap_or([f32::NAN; K]))
}

/// Python's `json.dump` writes `NaN`, `Infinity` and `-Infinity` for non-finite floats
/// (gsplat's mins/maxs are NaN when a parameter holds a NaN). Read them as `null`, which
/// [`number`] turns into NaN, so those splats are skipped rather than the file refused.
fn python_json(text: &str) -> Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let (mut in_string, mut escaped) = (false, false);
    loop {
        if !in_string
            && let Some(after) = ["-Infinity", "Infinity", "NaN"]
                .iter()
                .find_map(|w| rest.strip_prefix(w))
        {
            out.push_str("null");
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        rest = chars.as_str();
        out.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
    }
    Cow::Owned(out)
}

/// A JSON number, with `null` (a Python NaN/±Infinity) as NaN.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Null => Some(f64::NAN),
        v => v.as_f64(),
    }
}

/// A torch dtype name from meta.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    Bool,
    Int,
    F16,
    BF16,
    F32,
    F64,
}

impl Dtype {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bool" => Self::Bool,
            "uint8" | "int8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64" => {
                Self::Int
            }
            "float16" | "half" => Self::F16,
            "bfloat16" => Self::BF16,
            "float32" | "float" => Self::F32,
            "float64" | "double" => Self::F64,
            _ => return None,
        })
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F16 | Self::BF16 | Self::F32 | Self::F64)
    }

    /// `tensor.to(dtype)` of a float64 value.
    fn cast(self, v: f64) -> f64 {
        match self {
            Self::Bool => f64::from(u8::from(v != 0.0)),
            Self::Int => v.trunc(),
            Self::F16 => half::f16::from_f64(v).to_f64(),
            Self::BF16 => half::bf16::from_f64(v).to_f64(),
            Self::F32 => f64::from(v as f32),
            Self::F64 => v,
        }
    }
}

/// One parameter's entry in meta.json.
struct Param {
    name: &'static str,
    shape: Vec<usize>,
    dtype: Dtype,
    dtype_name: String,
    /// Per channel (PNG parameters) or one value (`shN`); empty when absent.
    mins: Vec<f64>,
    maxs: Vec<f64>,
    quantization: Option<u64>,
}

impl Param {
    fn has_data(&self) -> bool {
        !self.shape.contains(&0)
    }
}

struct MetaFile<'a> {
    map: &'a Map<String, Value>,
    name: &'a str,
}

impl MetaFile<'_> {
    fn err(&self, message: impl Into<String>) -> ReadError {
        ReadError::format(self.name, message)
    }

    fn bad_shape(&self, p: &Param, want: &str) -> ReadError {
        self.err(format!(
            "'{}' has shape {:?}; expected {want}",
            p.name, p.shape
        ))
    }

    fn required(&self, name: &'static str) -> Result<Param, ReadError> {
        self.optional(name)?
            .ok_or_else(|| self.err(format!("no '{name}' entry")))
    }

    fn optional(&self, name: &'static str) -> Result<Option<Param>, ReadError> {
        let Some(entry) = self.map.get(name) else {
            return Ok(None);
        };
        let Some(obj) = entry.as_object() else {
            return Err(self.err(format!("'{name}' is not an object")));
        };
        let shape = obj
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                self.err(format!(
                    "'{name}' has no 'shape' list of non-negative integers"
                ))
            })?;
        if shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .is_none_or(|total| total > 1 << 40)
        {
            return Err(self.err(format!("'{name}' has an implausible shape {shape:?}")));
        }
        let dtype_name = obj
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| self.err(format!("'{name}' has no 'dtype' string")))?
            .to_owned();
        let dtype = Dtype::parse(&dtype_name).ok_or_else(|| {
            self.err(format!(
                "'{name}' has dtype '{dtype_name}', which is not a torch dtype this reader knows"
            ))
        })?;
        let list = |key: &str| -> Result<Vec<f64>, ReadError> {
            match obj.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(number)
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| self.err(format!("'{name}': '{key}' holds a non-number"))),
                Some(v) => number(v)
                    .map(|x| vec![x])
                    .ok_or_else(|| self.err(format!("'{name}': '{key}' is not a number or list"))),
            }
        };
        let quantization = match obj.get("quantization") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                self.err(format!(
                    "'{name}': 'quantization' is not a non-negative integer"
                ))
            })?),
        };
        Ok(Some(Param {
            name,
            shape,
            dtype,
            dtype_name,
            mins: list("mins")?,
            maxs: list("maxs")?,
            quantization,
        }))
    }

    /// Per channel `(min, max − min)`, as the Python decoders see them: float32 tensors.
    fn ranges(&self, p: &Param, channels: usize) -> Result<Vec<(f64, f64)>, ReadError> {
        if p.mins.len() != channels || p.maxs.len() != channels {
            return Err(self.err(format!(
                "'{}' has {} mins and {} maxs; it needs {channels} of each",
                p.name,
                p.mins.len(),
                p.maxs.len()
            )));
        }
        Ok(p.mins
            .iter()
            .zip(&p.maxs)
            .map(|(&lo, &hi)| {
                let (lo, hi) = (lo as f32, hi as f32);
                (f64::from(lo), f64::from(hi - lo))
            })
            .collect())
    }
}

/// Decodes the files of one directory.
struct Grid<'a> {
    dir: &'a Path,
    side: usize,
    m: &'a MetaFile<'a>,
}

impl Grid<'_> {
    /// An 8-bit PNG parameter, `channels` values per Gaussian, cast to its dtype.
    fn png8(&self, p: &Param, channels: usize) -> Result<Vec<f32>, ReadError> {
        if !p.has_data() {
            return Ok(Vec::new());
        }
        let ranges = self.m.ranges(p, channels)?;
        let px = self.png(p, &format!("{}.png", p.name), channels)?;
        Ok(px
            .iter()
            .zip(ranges.iter().cycle())
            .map(|(&v, &(lo, span))| p.dtype.cast(f64::from(v) / 255.0 * span + lo) as f32)
            .collect())
    }

    /// The means: two 8-bit PNGs make 16 bits, then the inverse of `sign·log1p(|x|)`.
    fn means(&self, p: &Param) -> Result<Vec<f32>, ReadError> {
        if !p.has_data() {
            return Ok(Vec::new());
        }
        let ranges = self.m.ranges(p, 3)?;
        let name = p.name;
        let lo = self.png(p, &format!("{name}_l.png"), 3)?;
        let hi = self.png(p, &format!("{name}_u.png"), 3)?;
        Ok(lo
            .iter()
            .zip(&hi)
            .zip(ranges.iter().cycle())
            .map(|((&l, &u), &(min, span))| {
                let v16 = (u16::from(u) << 8) | u16::from(l);
                let y = p.dtype.cast(f64::from(v16) / 65535.0 * span + min);
                if p.dtype == Dtype::F64 {
                    (y.signum() * y.abs().exp_m1()) as f32
                } else {
                    // torch computes the inverse log in the tensor's (float) dtype.
                    let y = y as f32;
                    y.signum() * y.abs().exp_m1()
                }
            })
            .collect())
    }

    /// Load `file` and check it is a side × side PNG with `channels` 8-bit channels.
    fn png(&self, p: &Param, file: &str, channels: usize) -> Result<Vec<u8>, ReadError> {
        let path = self.dir.join(file);
        let name = path.display().to_string();
        if !path.is_file() {
            return Err(ReadError::format(
                &name,
                format!(
                    "not found: meta.json gives '{}' the shape {:?}, so this file must exist",
                    p.name, p.shape
                ),
            ));
        }
        let reader = image::ImageReader::open(&path)
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(|e| ReadError::io(&name, e))?;
        if reader.format() != Some(image::ImageFormat::Png) {
            return Err(ReadError::format(&name, "not a PNG file"));
        }
        let img = reader
            .decode()
            .map_err(|e| ReadError::format(&name, format!("cannot decode the PNG: {e}")))?;
        let color = img.color();
        let got = match color {
            image::ColorType::L8 => 1,
            image::ColorType::La8 => 2,
            image::ColorType::Rgb8 => 3,
            image::ColorType::Rgba8 => 4,
            other => {
                return Err(ReadError::format(
                    &name,
                    format!("{other:?} pixels; gsplat writes 8-bit grey, RGB or RGBA PNGs"),
                ));
            }
        };
        let side = self.side;
        if img.width() as usize != side || img.height() as usize != side {
            return Err(ReadError::format(
                &name,
                format!(
                    "the image is {}×{} pixels; meta.json's shape {:?} for '{}' needs {side}×{side}",
                    img.width(),
                    img.height(),
                    p.shape,
                    p.name
                ),
            ));
        }
        if got != channels {
            return Err(ReadError::format(
                &name,
                format!(
                    "the image has {got} channel(s) ({color:?}); '{}' needs {channels}",
                    p.name
                ),
            ));
        }
        let bytes = img.into_bytes();
        if bytes.len() != side * side * channels {
            return Err(ReadError::format(
                &name,
                "the decoded image has the wrong size",
            ));
        }
        Ok(bytes)
    }

    /// `shN`: k-means centroids and a label per Gaussian, `width` values per Gaussian.
    fn kmeans(&self, p: &Param, n: usize, width: usize) -> Result<Vec<f32>, ReadError> {
        let bits = p
            .quantization
            .filter(|b| (1..=16).contains(b))
            .ok_or_else(|| {
                let got = p.quantization.map_or("none".to_owned(), |b| b.to_string());
                self.m.err(format!(
                    "'{}' needs a 'quantization' of 1 to 16 bits, has {got}",
                    p.name
                ))
            })?;
        let (min, span) = self
            .m
            .ranges(p, 1)?
            .first()
            .copied()
            .unwrap_or((f64::NAN, f64::NAN));
        let levels = f64::from((1u32 << bits) - 1);
        let path = self.dir.join(format!("{}.npz", p.name));
        let mut npz = Npz::open(&path, p)?;
        let centroids = npz.array("centroids", MAX_CENTROIDS.max(n).saturating_mul(width))?;
        let k = match centroids.shape.as_slice() {
            [k, w] if *w == width && *k > 0 => *k,
            _ => {
                return Err(npz.err(format!(
                    "'centroids' has shape {:?}; meta.json's shape {:?} needs (K, {width})",
                    centroids.shape, p.shape
                )));
            }
        };
        if centroids.kind == NpyKind::Float || centroids.kind == NpyKind::Bool {
            return Err(npz.err(format!(
                "'centroids' has dtype '{}'; gsplat writes quantised integers (uint8)",
                centroids.descr
            )));
        }
        let table: Vec<f32> = centroids
            .values
            .iter()
            .map(|&c| p.dtype.cast(c / levels * span + min) as f32)
            .collect();
        let labels = npz.array("labels", n)?;
        if labels.values.len() != n {
            return Err(npz.err(format!(
                "'labels' holds {} values for {n} Gaussians",
                labels.values.len()
            )));
        }
        if labels.kind == NpyKind::Float || labels.kind == NpyKind::Bool {
            return Err(npz.err(format!(
                "'labels' has dtype '{}'; expected integers (uint16)",
                labels.descr
            )));
        }
        let mut out = Vec::with_capacity(n * width);
        for (i, &label) in labels.values.iter().enumerate() {
            let row = (label >= 0.0 && label < k as f64)
                .then_some(label as usize)
                .and_then(|l| table.get(l * width..(l + 1) * width))
                .ok_or_else(|| {
                    npz.err(format!(
                        "label {label} of Gaussian {i} is out of range: 'centroids' has {k} rows"
                    ))
                })?;
            out.extend_from_slice(row);
        }
        Ok(out)
    }

    /// uCO3D's foreground mask: `arr` cast to the meta dtype, then `> 0.5`.
    fn fg_mask(&self, p: &Param, n: usize) -> Result<Vec<bool>, ReadError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let path = self.dir.join(format!("{}.npz", p.name));
        let mut npz = Npz::open(&path, p)?;
        let arr = npz.array("arr", n)?;
        if arr.values.len() != n {
            return Err(npz.err(format!(
                "'arr' holds {} values for {n} Gaussians",
                arr.values.len()
            )));
        }
        Ok(arr.values.iter().map(|&v| p.dtype.cast(v) > 0.5).collect())
    }
}

/// An `.npz` archive: a zip of `.npy` files named `<key>.npy`.
struct Npz {
    archive: zip::ZipArchive<BufReader<File>>,
    name: String,
}

impl Npz {
    fn open(path: &Path, p: &Param) -> Result<Self, ReadError> {
        let name = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadError::format(
                    &name,
                    format!(
                        "not found: meta.json gives '{}' the shape {:?}, so this file must exist",
                        p.name, p.shape
                    ),
                ));
            }
            Err(e) => return Err(ReadError::io(&name, e)),
        };
        let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            ReadError::format(
                &name,
                format!("not a readable .npz (zip) archive, perhaps truncated: {e}"),
            )
        })?;
        Ok(Self { archive, name })
    }

    fn err(&self, message: impl Into<String>) -> ReadError {
        ReadError::format(&self.name, message)
    }

    /// Read array `key`; at most `max_len` values.
    fn array(&mut self, key: &str, max_len: usize) -> Result<NpyArray, ReadError> {
        let name = &self.name;
        let entry = match self.archive.by_name(&format!("{key}.npy")) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(ReadError::format(name, format!("has no '{key}' array")));
            }
            Err(e) => return Err(ReadError::format(name, format!("'{key}': {e}"))),
        };
        read_npy(entry, max_len).map_err(|e| ReadError::format(name, format!("'{key}': {e}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NpyKind {
    Bool,
    Int,
    UInt,
    Float,
}

/// A decoded `.npy` array in C order.
struct NpyArray {
    shape: Vec<usize>,
    kind: NpyKind,
    descr: String,
    values: Vec<f64>,
}

fn io_message(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "truncated: the data ends early".to_owned()
    } else {
        format!("cannot read the data: {e}")
    }
}

/// Parse one `.npy` file (format versions 1–3, plain bool/int/uint/float dtypes).
fn read_npy(mut r: impl Read, max_len: usize) -> Result<NpyArray, String> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head).map_err(|e| io_message(&e))?;
    let [0x93, b'N', b'U', b'M', b'P', b'Y', major, minor] = head else {
        return Err("not a .npy array (bad magic)".to_owned());
    };
    let header_len = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| io_message(&e))?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| io_message(&e))?;
            usize::try_from(u32::from_le_bytes(b)).unwrap_or(usize::MAX)
        }
        _ => return Err(format!("unsupported .npy format version {major}.{minor}")),
    };
    if header_len > 1 << 16 {
        return Err(format!("implausible .npy header of {header_len} bytes"));
    }
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header).map_err(|e| io_message(&e))?;
    let dict = PyParser::new(&header).parse()?;
    let Py::Dict(items) = dict else {
        return Err("the .npy header is not a dict".to_owned());
    };
    let get = |key: &str| {
        items
            .iter()
            .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
            .map(|(_, v)| v)
    };
    let Some(Py::Str(descr)) = get("descr") else {
        return Err(
            "the .npy header has no plain 'descr' (structured arrays are not supported)".to_owned(),
        );
    };
    let Some(&Py::Bool(fortran)) = get("fortran_order") else {
        return Err("the .npy header has no 'fortran_order'".to_owned());
    };
    let Some(Py::Seq(dims)) = get("shape") else {
        return Err("the .npy header has no 'shape'".to_owned());
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            Py::Int(v) => usize::try_from(*v).ok(),
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or("the .npy shape is not a tuple of non-negative integers")?;
    let (kind, size, big_endian) = parse_descr(descr).ok_or_else(|| {
        format!("unsupported dtype '{descr}' (expected bool, int, uint or float)")
    })?;
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len <= max_len)
        .ok_or_else(|| {
            format!("shape {shape:?} is too large: at most {max_len} values are expected")
        })?;
    let mut data = vec![0u8; len * size];
    r.read_exact(&mut data).map_err(|e| io_message(&e))?;
    // Read to the end of the entry so the zip reader checks its CRC.
    std::io::copy(&mut r.take(1 << 20), &mut std::io::sink())
        .map_err(|e| format!("corrupt data: {e}"))?;
    let mut values: Vec<f64> = data
        .chunks_exact(size)
        .map(|b| decode_scalar(b, kind, big_endian))
        .collect();
    if fortran && shape.len() > 1 {
        values = fortran_to_c(&values, &shape);
    }
    Ok(NpyArray {
        shape,
        kind,
        descr: descr.clone(),
        values,
    })
}

/// `'<u2'` → (UInt, 2 bytes, little endian).
fn parse_descr(descr: &str) -> Option<(NpyKind, usize, bool)> {
    let mut chars = descr.chars();
    let big_endian = match chars.next()? {
        '<' | '|' => false,
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        _ => return None,
    };
    let kind = match chars.next()? {
        'b' => NpyKind::Bool,
        'i' => NpyKind::Int,
        'u' => NpyKind::UInt,
        'f' => NpyKind::Float,
        _ => return None,
    };
    let size: usize = chars.as_str().parse().ok()?;
    let ok = match kind {
        NpyKind::Bool => size == 1,
        NpyKind::Int | NpyKind::UInt => matches!(size, 1 | 2 | 4 | 8),
        NpyKind::Float => matches!(size, 2 | 4 | 8),
    };
    ok.then_some((kind, size, big_endian))
}

fn decode_scalar(b: &[u8], kind: NpyKind, big_endian: bool) -> f64 {
    fn bytes<const N: usize>(b: &[u8], big_endian: bool) -> [u8; N] {
        let mut out = [0u8; N];
        for (o, v) in out.iter_mut().zip(b) {
            *o = *v;
        }
        if big_endian {
            out.reverse();
        }
        out
    }
    match (kind, b.len()) {
        (NpyKind::Bool, _) => f64::from(u8::from(b.iter().any(|&v| v != 0))),
        (NpyKind::UInt, 1) => f64::from(u8::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::UInt, 2) => f64::from(u16::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::UInt, 4) => f64::from(u32::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::UInt, _) => u64::from_le_bytes(bytes(b, big_endian)) as f64,
        (NpyKind::Int, 1) => f64::from(i8::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::Int, 2) => f64::from(i16::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::Int, 4) => f64::from(i32::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::Int, _) => i64::from_le_bytes(bytes(b, big_endian)) as f64,
        (NpyKind::Float, 2) => half::f16::from_le_bytes(bytes(b, big_endian)).to_f64(),
        (NpyKind::Float, 4) => f64::from(f32::from_le_bytes(bytes(b, big_endian))),
        (NpyKind::Float, _) => f64::from_le_bytes(bytes(b, big_endian)),
    }
}

/// Reorder a Fortran-ordered array (first index fastest) to C order. gsplat's centroids
/// are Fortran-ordered: torch keeps the strides of `kmeans.centroids.permute(1, 0)`.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &d in shape {
        strides.push(stride);
        stride = stride.saturating_mul(d);
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(values.get(offset).copied().unwrap_or(f64::NAN));
        // Advance the C-order index: last axis fastest.
        for (i, &d) in index.iter_mut().zip(shape).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// A Python literal, as in a `.npy` header.
#[derive(Debug)]
enum Py {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Seq(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

/// Parses the dict literal of a `.npy` header, e.g.
/// `{'descr': '<u2', 'fortran_order': False, 'shape': (100,), }`.
struct PyParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> PyParser<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self {
            s,
            pos: 0,
            depth: 0,
        }
    }

    fn parse(mut self) -> Result<Py, String> {
        let v = self.value()?;
        self.ws();
        if self.pos < self.s.len() {
            return Err("unexpected text after the .npy header dict".to_owned());
        }
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Py, String> {
        self.ws();
        let bad = |what: &str| format!("bad .npy header: {what}");
        match self.peek() {
            Some(open @ (b'{' | b'(' | b'[')) => {
                self.depth += 1;
                if self.depth > 8 {
                    return Err(bad("nested too deeply"));
                }
                self.pos += 1;
                let close = match open {
                    b'{' => b'}',
                    b'(' => b')',
                    _ => b']',
                };
                let mut seq = Vec::new();
                let mut dict = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                    let item = self.value()?;
                    if open == b'{' {
                        self.ws();
                        if self.peek() != Some(b':') {
                            return Err(bad("expected ':' in the dict"));
                        }
                        self.pos += 1;
                        dict.push((item, self.value()?));
                    } else {
                        seq.push(item);
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => return Err(bad("expected ',' or a closing bracket")),
                    }
                }
                self.depth -= 1;
                Ok(if open == b'{' {
                    Py::Dict(dict)
                } else {
                    Py::Seq(seq)
                })
            }
            Some(quote @ (b'\'' | b'"')) => {
                self.pos += 1;
                let mut text = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err(bad("unterminated string")),
                        Some(b'\\') => {
                            self.pos += 1;
                            text.extend(self.peek());
                        }
                        Some(c) if c == quote => break,
                        Some(c) => text.push(c),
                    }
                    self.pos += 1;
                }
                self.pos += 1;
                Ok(Py::Str(String::from_utf8_lossy(&text).into_owned()))
            }
            Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'+' => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'+' || c == b'_')
                {
                    self.pos += 1;
                }
                let word = self.s.get(start..self.pos).unwrap_or_default();
                match word {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    w => {
                        // Python 2 wrote long integers with an `L` suffix.
                        let w = w.strip_suffix(b"L").unwrap_or(w);
                        std::str::from_utf8(w)
                            .ok()
                            .and_then(|t| t.parse::<i128>().ok())
                            .map(Py::Int)
                            .ok_or_else(|| {
                                bad(&format!("unexpected '{}'", String::from_utf8_lossy(w)))
                            })
                    }
                }
            }
            Some(_) => Err(bad("unexpected character")),
            None => Err(bad("it ends early")),
        }
    }
}
