//! antimatter15's `.splat`: no header, 32 bytes per splat — position 3×f32, linear scale
//! 3×f32, RGBA u8 (colour = 0.5 + SH_C0·f_dc, alpha = opacity), rotation 4×u8 (w, x, y,
//! z) as q·128 + 128. Degree-0 colour only.

use super::{Progress, ReadError, ReadReport};
use crate::splats::{SH_C0, Splats};
use std::io::{Read, Write};
use std::path::Path;

pub const RECORD: usize = 32;

pub fn read_splat(path: &Path, progress: Progress<'_>) -> Result<(Splats, ReadReport), ReadError> {
    let name = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| ReadError::io(&name, e))?
        .len();
    if len % RECORD as u64 != 0 {
        return Err(ReadError::format(
            &name,
            format!("{len} bytes is not a whole number of 32-byte splats (truncated?)"),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| ReadError::io(&name, e))?;
    read_splat_from(
        std::io::BufReader::with_capacity(1 << 20, file),
        (len / RECORD as u64) as usize,
        &name,
        progress,
    )
}

pub fn read_splat_from(
    mut r: impl Read,
    count: usize,
    name: &str,
    progress: Progress<'_>,
) -> Result<(Splats, ReadReport), ReadError> {
    let mut s = Splats {
        sh_degree: 0,
        ..Splats::default()
    };
    let mut report = ReadReport::default();
    let mut buf = vec![0u8; RECORD * 8192];
    let mut done = 0;
    while done < count {
        let n = (buf.len() / RECORD).min(count - done);
        let bytes = &mut buf[..n * RECORD];
        r.read_exact(bytes).map_err(|e| ReadError::io(name, e))?;
        for rec in bytes.chunks_exact(RECORD) {
            let f = |i: usize| f32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
            let mean = [f(0), f(4), f(8)];
            let scale = [f(12), f(16), f(20)];
            let q = [rec[28], rec[29], rec[30], rec[31]].map(|b| (f32::from(b) - 128.0) / 128.0);
            let qn = q.iter().map(|v| v * v).sum::<f32>().sqrt();
            if mean.iter().chain(&scale).any(|v| !v.is_finite()) || qn == 0.0 {
                report.skipped_non_finite += 1;
                continue;
            }
            s.means.push(mean);
            s.scales.push(scale);
            s.rotations.push(q.map(|v| v / qn));
            s.sh.extend(
                [rec[24], rec[25], rec[26]].map(|c| ((f64::from(c) / 255.0 - 0.5) / SH_C0) as f32),
            );
            s.opacities.push(f32::from(rec[27]) / 255.0);
        }
        done += n;
        if !progress(done as f32 / count.max(1) as f32) {
            return Err(ReadError::Cancelled {
                path: name.to_owned(),
            });
        }
    }
    Ok((s, report))
}

/// Write degree-0 colour of `splats` as `.splat` (higher SH bands are dropped).
pub fn write_splat(out: &mut impl Write, splats: &Splats) -> std::io::Result<()> {
    for i in 0..splats.len() {
        for v in splats.means[i].iter().chain(&splats.scales[i]) {
            out.write_all(&v.to_le_bytes())?;
        }
        let dc = &splats.sh_of(i)[..3];
        let rgb = [0, 1, 2].map(|c| {
            ((0.5 + SH_C0 * f64::from(dc[c])) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        });
        out.write_all(&rgb)?;
        out.write_all(&[(splats.opacities[i] * 255.0).round().clamp(0.0, 255.0) as u8])?;
        out.write_all(
            &splats.rotations[i].map(|q| (q * 128.0 + 128.0).round().clamp(0.0, 255.0) as u8),
        )?;
    }
    out.flush()
}
