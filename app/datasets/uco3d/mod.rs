//! uCO3D: a dataset root with `metadata.sqlite`, set lists, and per-sequence videos,
//! point clouds, depth and gsplat-PNG splats (`../shared/reference/uco3d-format.md`).
//!
//! Paths in the database are root-relative and joined as stored, never rebuilt.

pub mod camera;
pub mod caption_index;
pub mod db;
pub mod depth;
pub mod video;

use camera::{Alignment, OpenCvCamera};
use db::{FrameAnnot, MetadataDb, SequenceAnnot};
use loupe_render::Splats;
use loupe_render::io::{PointCloud, SceneFile};
use std::path::{Path, PathBuf};

/// Environment variable the official loader uses for the dataset root.
pub const ROOT_ENV: &str = "UCO3D_DATASET_ROOT";

/// The dataset root for `path`: the folder holding `metadata.sqlite`, given that
/// folder, the database itself, or any folder inside a sequence.
pub fn find_root(path: &Path) -> Option<PathBuf> {
    if path.file_name().is_some_and(|n| n == "metadata.sqlite") && path.is_file() {
        return path.parent().map(Path::to_path_buf);
    }
    let mut dir = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    // A sequence folder sits three levels below the root, its splat folder four.
    for _ in 0..5 {
        let d = dir?;
        if d.join("metadata.sqlite").is_file() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// An open dataset.
pub struct Dataset {
    pub root: PathBuf,
    pub db: MetadataDb,
}

impl Dataset {
    pub fn open(root: &Path) -> Result<Self, db::DbError> {
        Ok(Self {
            root: root.to_path_buf(),
            db: MetadataDb::open(&root.join("metadata.sqlite"))?,
        })
    }

    /// A root-relative path from the database, joined to the root.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Everything of one sequence except video frames (decoded on demand). Each missing
    /// or broken part becomes a line in `problems`; the rest still loads.
    pub fn load_sequence(
        &self,
        name: &str,
        progress: &mut dyn FnMut(f32, &str),
    ) -> Result<Sequence, db::DbError> {
        let annot = self.db.sequence(name)?.ok_or_else(|| db::DbError::Row {
            path: self.db.path().to_owned(),
            sequence: name.to_owned(),
            message: "no such sequence".into(),
        })?;
        progress(0.05, "cameras");
        let (frames, mut problems) = self.db.frames(name)?;
        if frames.is_empty() {
            problems.push(format!("{name}: no annotated frames"));
        }
        let cameras = frames.iter().map(|f| f.camera.to_opencv()).collect();
        let mut seq = Sequence {
            annot,
            frames,
            cameras,
            splats: None,
            point_cloud: None,
            segmented_point_cloud: None,
            sparse_point_cloud: None,
            problems,
        };
        progress(0.1, "splats");
        if let Some(dir) = seq.annot.gaussian_splats_dir.clone() {
            let path = self.resolve(&dir);
            match loupe_render::io::read_path(&path, &mut |_| true) {
                Ok((SceneFile::Splats(s), _)) => seq.splats = Some(s),
                Ok(_) => seq
                    .problems
                    .push(format!("{}: not a splat directory", path.display())),
                Err(e) => seq.problems.push(e.to_string()),
            }
        } else {
            seq.problems.push(format!(
                "{name}: no Gaussian splats (_gaussian_splats_dir is NULL)"
            ));
        }
        let clouds = [
            (0.6, seq.annot.point_cloud_path.clone(), 0usize),
            (0.75, seq.annot.segmented_point_cloud_path.clone(), 1),
            (0.9, seq.annot.sparse_point_cloud_path.clone(), 2),
        ];
        for (fraction, rel, which) in clouds {
            progress(fraction, "point clouds");
            let Some(rel) = rel else { continue };
            let path = self.resolve(&rel);
            let cloud = match loupe_render::io::read_path(&path, &mut |_| true) {
                Ok((SceneFile::Points(p), _)) => p,
                Ok(_) => {
                    seq.problems
                        .push(format!("{}: not a point cloud", path.display()));
                    continue;
                }
                Err(e) => {
                    seq.problems.push(e.to_string());
                    continue;
                }
            };
            match which {
                0 => seq.point_cloud = Some(cloud),
                1 => seq.segmented_point_cloud = Some(cloud),
                _ => seq.sparse_point_cloud = Some(cloud),
            }
        }
        for (what, rel) in [
            ("video", &seq.annot.video_path),
            ("mask video", &seq.annot.mask_video_path),
        ] {
            match rel {
                Some(rel) if !self.resolve(rel).is_file() => seq.problems.push(format!(
                    "{}: the {what} does not exist",
                    self.resolve(rel).display()
                )),
                None => seq
                    .problems
                    .push(format!("{name}: no {what} in the database")),
                _ => {}
            }
        }
        progress(1.0, "done");
        Ok(seq)
    }
}

/// One sequence, ready to view.
pub struct Sequence {
    pub annot: SequenceAnnot,
    pub frames: Vec<FrameAnnot>,
    /// `frames[i]`'s raw camera (raw frame, distorted intrinsics) in OpenCV form.
    pub cameras: Vec<OpenCvCamera>,
    pub splats: Option<Splats>,
    pub point_cloud: Option<PointCloud>,
    pub segmented_point_cloud: Option<PointCloud>,
    pub sparse_point_cloud: Option<PointCloud>,
    pub problems: Vec<String>,
}

impl Sequence {
    pub fn alignment(&self) -> Alignment {
        self.annot.alignment.unwrap_or_default()
    }

    /// The annotated frame nearest to `t` seconds.
    pub fn frame_near(&self, t: f64) -> Option<usize> {
        self.frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.timestamp.map(|ts| (i, (ts - t).abs())))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}
