//! Splat and point-cloud file readers and writers. Every reader streams with progress,
//! names the file in its errors, skips (and counts) non-finite splats, and never panics.

pub mod compressed_ply;
pub mod gsplat_png;
pub mod ply;
pub mod splat;

use crate::splats::Splats;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error("{path}: cancelled")]
    Cancelled { path: String },
}

impl ReadError {
    pub(crate) fn format(path: &str, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            return Self::format(path, "the file is truncated");
        }
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A coloured point cloud (SfM points, dataset point clouds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointCloud {
    pub positions: Vec<[f32; 3]>,
    pub colors: Vec<[u8; 3]>,
}

impl PointCloud {
    /// The points as small opaque isotropic Gaussians of radius `sigma`, so point clouds
    /// of any size draw through the GPU splat pipeline (sorted off the UI thread)
    /// instead of being tessellated by the UI every frame.
    pub fn to_splats(&self, sigma: f32) -> Splats {
        let n = self.positions.len();
        Splats {
            means: self.positions.clone(),
            scales: vec![[sigma; 3]; n],
            rotations: vec![[1.0, 0.0, 0.0, 0.0]; n],
            opacities: vec![1.0; n],
            sh_degree: 0,
            sh: self
                .colors
                .iter()
                .flat_map(|c| {
                    c.map(|v| ((f64::from(v) / 255.0 - 0.5) / crate::splats::SH_C0) as f32)
                })
                .collect(),
            foreground: None,
        }
    }

    /// A splat radius that reads as a point: a small fraction of the cloud's extent.
    pub fn default_sigma(&self) -> f32 {
        let framing = crate::camera::OrbitController::framing(&self.positions);
        (framing.distance * 0.0015).max(1e-6) as f32
    }
}

/// What a reader found besides the data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Records with NaN or infinite values, left out.
    pub skipped_non_finite: usize,
}

/// The content of a 3-D file.
#[derive(Clone, Debug, PartialEq)]
pub enum SceneFile {
    Splats(Splats),
    Points(PointCloud),
}

/// Progress callback: receives the fraction done, returns `false` to cancel.
pub type Progress<'a> = &'a mut dyn FnMut(f32) -> bool;

/// Open any supported splat or point file by its content.
pub fn read_path(
    path: &Path,
    progress: Progress<'_>,
) -> Result<(SceneFile, ReadReport), ReadError> {
    // A gsplat PNG-compressed splat directory (uCO3D's `gaussian_splats/`), or its meta.json.
    let gsplat_dir = if path.is_dir() {
        Some(path)
    } else if path.file_name().is_some_and(|n| n == "meta.json") {
        path.parent()
    } else {
        None
    };
    if let Some(dir) = gsplat_dir {
        return gsplat_png::read_gsplat_dir(dir, progress).map(|(s, r)| (SceneFile::Splats(s), r));
    }
    let name = path.display().to_string();
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| ReadError::io(&name, e))?;
        let n = f.read(&mut head).map_err(|e| ReadError::io(&name, e))?;
        if n < 4 && n > 0 {
            return Err(ReadError::format(
                &name,
                "the file is too short to be a PLY or .splat file",
            ));
        }
    }
    if &head == b"ply\n" || &head[..3] == b"ply" {
        ply::read_ply(path, progress)
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("splat"))
    {
        splat::read_splat(path, progress).map(|(s, r)| (SceneFile::Splats(s), r))
    } else {
        Err(ReadError::format(
            &name,
            "not a PLY (no 'ply' magic) or .splat file",
        ))
    }
}
