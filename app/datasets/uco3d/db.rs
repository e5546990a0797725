//! `metadata.sqlite` and the set-list databases, read with SQLite itself (read-only,
//! queried per sequence, never loaded whole: the real file is several GB).
//!
//! Vector columns are headerless packed native (little-endian) float32/int32 BLOBs
//! (`orm_utils.py`, `TupleTypeFactory`); a BLOB of the wrong length is an error for
//! that row only.

use super::camera::{Alignment, NdcCamera};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};

/// The schema of `metadata.sqlite` (`uco3d/dataset_utils/orm_types.py`), used by the
/// fixture maker and the benchmark's synthetic database.
pub const SCHEMA: &str = "
CREATE TABLE sequence_annots (
  sequence_name TEXT NOT NULL PRIMARY KEY,
  category TEXT, super_category TEXT,
  _video_path TEXT, _video_length FLOAT,
  _mask_video_path TEXT, _mask_video_length FLOAT,
  _depth_video_path TEXT, _depth_video_length FLOAT,
  _sparse_point_cloud_path TEXT, _sparse_point_cloud_n_points INTEGER,
  _point_cloud_path TEXT, _point_cloud_n_points INTEGER,
  _segmented_point_cloud_path TEXT, _segmented_point_cloud_n_points INTEGER,
  _gaussian_splats_dir TEXT, _gaussian_splats_n_gaussians INTEGER,
  _reconstruction_quality_viewpoint FLOAT,
  _reconstruction_quality_gaussian_splats FLOAT,
  _reconstruction_quality_gaussian_splats_psnr FLOAT,
  _reconstruction_quality_gaussian_splats_ssim FLOAT,
  _reconstruction_quality_gaussian_splats_lpips FLOAT,
  _reconstruction_quality_sfm_n_registered_cameras INTEGER,
  _reconstruction_quality_sfm_mean_track_length FLOAT,
  _reconstruction_quality_sfm_bundle_adjustment_final_cost FLOAT,
  _caption_text TEXT, _caption_clip_score FLOAT,
  _short_caption_text TEXT, _short_caption_clip_score FLOAT,
  _alignment_R BLOB, _alignment_T BLOB, _alignment_scale FLOAT NOT NULL
);
CREATE INDEX ix_sequence_annots_category ON sequence_annots (category);
CREATE INDEX ix_sequence_annots_super_category ON sequence_annots (super_category);
CREATE TABLE frame_annots (
  sequence_name TEXT NOT NULL, frame_number INTEGER NOT NULL,
  frame_timestamp FLOAT,
  _image_path TEXT, _image_size BLOB,
  _mask_path TEXT, _mask_mass FLOAT, _mask_bounding_box_xywh BLOB,
  _depth_path TEXT, _depth_scale_adjustment FLOAT, _depth_mask_path TEXT,
  _viewpoint_R BLOB, _viewpoint_T BLOB, _viewpoint_focal_length BLOB,
  _viewpoint_principal_point BLOB, _viewpoint_colmap_distortion_coeffs BLOB,
  _viewpoint_intrinsics_format TEXT,
  PRIMARY KEY (sequence_name, frame_number)
);
CREATE INDEX ix_frame_annots_frame_timestamp ON frame_annots (frame_timestamp);
";

/// The set-list schema (`set_lists/set_lists_<name>.sqlite`).
pub const SET_LIST_SCHEMA: &str =
    "CREATE TABLE set_lists (sequence_name TEXT, frame_number INTEGER, subset TEXT);";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: sequence {sequence}: {message}")]
    Row {
        path: String,
        sequence: String,
        message: String,
    },
}

/// One sequence's annotations; paths are root-relative as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceAnnot {
    pub name: String,
    pub category: String,
    pub super_category: String,
    pub video_path: Option<String>,
    pub video_length: Option<f64>,
    pub mask_video_path: Option<String>,
    pub depth_path: Option<String>,
    pub sparse_point_cloud_path: Option<String>,
    pub point_cloud_path: Option<String>,
    pub segmented_point_cloud_path: Option<String>,
    pub gaussian_splats_dir: Option<String>,
    pub n_gaussians: Option<i64>,
    pub quality: Quality,
    pub caption: Option<String>,
    pub caption_clip_score: Option<f64>,
    pub short_caption: Option<String>,
    pub short_caption_clip_score: Option<f64>,
    pub alignment: Option<Alignment>,
}

/// `_reconstruction_quality_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quality {
    pub viewpoint: Option<f64>,
    pub gaussian_splats: Option<f64>,
    pub psnr: Option<f64>,
    pub ssim: Option<f64>,
    pub lpips: Option<f64>,
    pub sfm_n_registered_cameras: Option<i64>,
    pub sfm_mean_track_length: Option<f64>,
    pub sfm_bundle_adjustment_final_cost: Option<f64>,
}

/// One annotated frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameAnnot {
    pub frame_number: i64,
    /// Seconds into the video: the link to the video frame.
    pub timestamp: Option<f64>,
    pub camera: NdcCamera,
    pub depth_scale_adjustment: Option<f64>,
    pub mask_mass: Option<f64>,
    pub intrinsics_format: Option<String>,
}

/// A row of the sequence browser.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceRow {
    pub name: String,
    pub category: String,
    pub super_category: String,
    pub splat_quality: Option<f64>,
    pub camera_quality: Option<f64>,
    pub short_caption: Option<String>,
}

/// Browser query: everything optional, combined with AND.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceQuery {
    pub super_category: Option<String>,
    pub category: Option<String>,
    /// Case-insensitive substring of either caption.
    pub caption: String,
    pub min_splat_quality: Option<f64>,
    pub min_camera_quality: Option<f64>,
    pub sort: SortBy,
    /// Only sequences in this set list (a `set_lists_<name>.sqlite` file).
    pub set_list: Option<PathBuf>,
    /// A caption index built by [`super::caption_index::ensure`]; without it caption
    /// search scans every caption.
    pub caption_index: Option<PathBuf>,
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    #[default]
    Name,
    SplatQualityDesc,
    CameraQualityDesc,
}

/// The open metadata database.
pub struct MetadataDb {
    conn: Connection,
    path: String,
}

/// Decode a packed float32 BLOB of exactly `N` values.
pub fn f32s<const N: usize>(blob: &[u8]) -> Result<[f32; N], String> {
    if blob.len() != N * 4 {
        return Err(format!(
            "{} bytes, expected {} float32 values ({} bytes)",
            blob.len(),
            N,
            N * 4
        ));
    }
    let mut out = [0f32; N];
    for (v, c) in out.iter_mut().zip(blob.chunks_exact(4)) {
        *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(out)
}

/// Decode a packed int32 BLOB of exactly `N` values.
pub fn i32s<const N: usize>(blob: &[u8]) -> Result<[i32; N], String> {
    if blob.len() != N * 4 {
        return Err(format!(
            "{} bytes, expected {} int32 values ({} bytes)",
            blob.len(),
            N,
            N * 4
        ));
    }
    let mut out = [0i32; N];
    for (v, c) in out.iter_mut().zip(blob.chunks_exact(4)) {
        *v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(out)
}

/// Pack values the way Python's `struct.pack("f" * n)` does on little-endian machines.
pub fn pack_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn pack_i32(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn blob_f32<const N: usize>(row: &Row<'_>, col: &str) -> Result<Option<[f32; N]>, String> {
    let blob: Option<Vec<u8>> = row.get(col).map_err(|e| format!("{col}: {e}"))?;
    blob.map(|b| f32s::<N>(&b).map_err(|e| format!("{col}: {e}")))
        .transpose()
}

const SEQUENCE_COLUMNS: &str = "sequence_name, category, super_category, _video_path, _video_length, \
    _mask_video_path, _depth_video_path, _sparse_point_cloud_path, _point_cloud_path, \
    _segmented_point_cloud_path, _gaussian_splats_dir, _gaussian_splats_n_gaussians, \
    _reconstruction_quality_viewpoint, _reconstruction_quality_gaussian_splats, \
    _reconstruction_quality_gaussian_splats_psnr, _reconstruction_quality_gaussian_splats_ssim, \
    _reconstruction_quality_gaussian_splats_lpips, _reconstruction_quality_sfm_n_registered_cameras, \
    _reconstruction_quality_sfm_mean_track_length, _reconstruction_quality_sfm_bundle_adjustment_final_cost, \
    _caption_text, _caption_clip_score, _short_caption_text, _short_caption_clip_score, \
    _alignment_R, _alignment_T, _alignment_scale";

impl MetadataDb {
    /// Open read-only, as the official loader does (`?mode=ro`).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let name = path.display().to_string();
        let err = |source| DbError::Sqlite {
            path: name.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        // Fail now, with the file's name, if this is not a uCO3D database.
        conn.query_row("SELECT count(*) FROM sequence_annots LIMIT 1", [], |_| {
            Ok(())
        })
        .map_err(err)?;
        Ok(Self { conn, path: name })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn sql_err(&self, source: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn sequence_count(&self) -> Result<usize, DbError> {
        self.conn
            .query_row("SELECT count(*) FROM sequence_annots", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(|e| self.sql_err(e))
    }

    /// `(super_category, category, sequence count)`, sorted.
    pub fn categories(&self) -> Result<Vec<(String, String, usize)>, DbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT coalesce(super_category, ''), coalesce(category, ''), count(*) \
                 FROM sequence_annots GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize))
            })
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql_err(e))
    }

    /// The sequences matching `q`, in its order (at most `q.limit` when non-zero).
    pub fn query(&self, q: &SequenceQuery) -> Result<Vec<SequenceRow>, DbError> {
        let mut sql = String::from(
            "SELECT sequence_name, coalesce(category, ''), coalesce(super_category, ''), \
             _reconstruction_quality_gaussian_splats, _reconstruction_quality_viewpoint, \
             _short_caption_text FROM sequence_annots WHERE 1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = &q.super_category {
            sql.push_str(" AND super_category = ?");
            args.push(s.clone().into());
        }
        if let Some(c) = &q.category {
            sql.push_str(" AND category = ?");
            args.push(c.clone().into());
        }
        let needle = q.caption.trim();
        let indexed = q
            .caption_index
            .as_ref()
            .filter(|p| needle.chars().count() >= 3 && p.is_file());
        if let Some(index) = indexed {
            self.attach(index, "fts")?;
            sql.push_str(
                " AND sequence_name IN (SELECT name FROM fts.captions WHERE captions MATCH ?)",
            );
            args.push(super::caption_index::phrase(needle).into());
        } else if !needle.is_empty() {
            // instr on lower() rather than LIKE: no wildcard escaping for `%` or `_`.
            sql.push_str(
                " AND (instr(lower(coalesce(_caption_text, '')), ?) > 0 \
                 OR instr(lower(coalesce(_short_caption_text, '')), ?) > 0)",
            );
            let lower = needle.to_lowercase();
            args.push(lower.clone().into());
            args.push(lower.into());
        }
        if let Some(v) = q.min_splat_quality {
            sql.push_str(" AND _reconstruction_quality_gaussian_splats >= ?");
            args.push(v.into());
        }
        if let Some(v) = q.min_camera_quality {
            sql.push_str(" AND _reconstruction_quality_viewpoint >= ?");
            args.push(v.into());
        }
        if let Some(set_list) = &q.set_list {
            self.attach(set_list, "sl")?;
            sql.push_str(" AND sequence_name IN (SELECT DISTINCT sequence_name FROM sl.set_lists)");
        }
        sql.push_str(match q.sort {
            SortBy::Name => " ORDER BY sequence_name",
            SortBy::SplatQualityDesc => {
                " ORDER BY _reconstruction_quality_gaussian_splats IS NULL, \
                 _reconstruction_quality_gaussian_splats DESC, sequence_name"
            }
            SortBy::CameraQualityDesc => {
                " ORDER BY _reconstruction_quality_viewpoint IS NULL, \
                 _reconstruction_quality_viewpoint DESC, sequence_name"
            }
        });
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        }
        let result = (|| {
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok(SequenceRow {
                    name: r.get(0)?,
                    category: r.get(1)?,
                    super_category: r.get(2)?,
                    splat_quality: r.get(3)?,
                    camera_quality: r.get(4)?,
                    short_caption: r.get(5)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })();
        if q.set_list.is_some() {
            let _ = self.conn.execute("DETACH DATABASE sl", []);
        }
        if indexed.is_some() {
            let _ = self.conn.execute("DETACH DATABASE fts", []);
        }
        result.map_err(|e| self.sql_err(e))
    }

    /// Attach another database read-only under `alias` (re-attaching if a failed query
    /// left it attached).
    fn attach(&self, path: &Path, alias: &str) -> Result<(), DbError> {
        let uri = format!("file:{}?mode=ro", path.display());
        let sql = format!("ATTACH DATABASE ? AS {alias}");
        self.conn
            .execute(&sql, params![uri])
            .or_else(|_| {
                self.conn.execute(&format!("DETACH DATABASE {alias}"), [])?;
                self.conn.execute(&sql, params![uri])
            })
            .map(|_| ())
            .map_err(|e| self.sql_err(e))
    }

    pub fn sequence(&self, name: &str) -> Result<Option<SequenceAnnot>, DbError> {
        let sql = format!("SELECT {SEQUENCE_COLUMNS} FROM sequence_annots WHERE sequence_name = ?");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql_err(e))?;
        let row = stmt
            .query_row([name], |r| Ok(read_sequence(r)))
            .optional()
            .map_err(|e| self.sql_err(e))?;
        row.transpose().map_err(|message| DbError::Row {
            path: self.path.clone(),
            sequence: name.to_owned(),
            message,
        })
    }

    /// The sequence's annotated frames by frame number, each decoded on its own: a bad
    /// row becomes an error in the second list, the others still load.
    pub fn frames(&self, sequence: &str) -> Result<(Vec<FrameAnnot>, Vec<String>), DbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT frame_number, frame_timestamp, _image_size, _viewpoint_R, _viewpoint_T, \
                 _viewpoint_focal_length, _viewpoint_principal_point, \
                 _viewpoint_colmap_distortion_coeffs, _depth_scale_adjustment, _mask_mass, \
                 _viewpoint_intrinsics_format \
                 FROM frame_annots WHERE sequence_name = ? ORDER BY frame_number",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([sequence], |r| Ok(read_frame(r)))
            .map_err(|e| self.sql_err(e))?;
        let (mut frames, mut errors) = (Vec::new(), Vec::new());
        for row in rows {
            match row.map_err(|e| self.sql_err(e))? {
                Ok(f) => frames.push(f),
                Err(e) => errors.push(format!("{}: sequence {sequence}: {e}", self.path)),
            }
        }
        Ok((frames, errors))
    }
}

fn read_sequence(r: &Row<'_>) -> Result<SequenceAnnot, String> {
    let g = |e: rusqlite::Error| e.to_string();
    let align_r = blob_f32::<9>(r, "_alignment_R")?;
    let align_t = blob_f32::<3>(r, "_alignment_T")?;
    let scale: Option<f64> = r.get("_alignment_scale").map_err(g)?;
    let alignment = match (align_r, align_t, scale) {
        (Some(ar), Some(at), Some(s)) => Some(Alignment::from_blobs(ar, at, s)),
        _ => None,
    };
    Ok(SequenceAnnot {
        name: r.get(0).map_err(g)?,
        category: r
            .get::<_, Option<String>>(1)
            .map_err(g)?
            .unwrap_or_default(),
        super_category: r
            .get::<_, Option<String>>(2)
            .map_err(g)?
            .unwrap_or_default(),
        video_path: r.get(3).map_err(g)?,
        video_length: r.get(4).map_err(g)?,
        mask_video_path: r.get(5).map_err(g)?,
        depth_path: r.get(6).map_err(g)?,
        sparse_point_cloud_path: r.get(7).map_err(g)?,
        point_cloud_path: r.get(8).map_err(g)?,
        segmented_point_cloud_path: r.get(9).map_err(g)?,
        gaussian_splats_dir: r.get(10).map_err(g)?,
        n_gaussians: r.get(11).map_err(g)?,
        quality: Quality {
            viewpoint: r.get(12).map_err(g)?,
            gaussian_splats: r.get(13).map_err(g)?,
            psnr: r.get(14).map_err(g)?,
            ssim: r.get(15).map_err(g)?,
            lpips: r.get(16).map_err(g)?,
            sfm_n_registered_cameras: r.get(17).map_err(g)?,
            sfm_mean_track_length: r.get(18).map_err(g)?,
            sfm_bundle_adjustment_final_cost: r.get(19).map_err(g)?,
        },
        caption: r.get(20).map_err(g)?,
        caption_clip_score: r.get(21).map_err(g)?,
        short_caption: r.get(22).map_err(g)?,
        short_caption_clip_score: r.get(23).map_err(g)?,
        alignment,
    })
}

fn read_frame(r: &Row<'_>) -> Result<FrameAnnot, String> {
    let g = |e: rusqlite::Error| e.to_string();
    let frame_number: i64 = r.get(0).map_err(g)?;
    let ctx = |e: String| format!("frame {frame_number}: {e}");
    let size: Option<Vec<u8>> = r.get(2).map_err(g)?;
    let size = size.ok_or_else(|| ctx("_image_size is NULL".into()))?;
    let [h, w] = i32s::<2>(&size).map_err(|e| ctx(format!("_image_size: {e}")))?;
    if h <= 0 || w <= 0 {
        return Err(ctx(format!("_image_size is {h}×{w}")));
    }
    let need = |col: &str, v: Option<Vec<u8>>| v.ok_or_else(|| ctx(format!("{col} is NULL")));
    let rot = f32s::<9>(&need("_viewpoint_R", r.get(3).map_err(g)?)?)
        .map_err(|e| ctx(format!("_viewpoint_R: {e}")))?;
    let t = f32s::<3>(&need("_viewpoint_T", r.get(4).map_err(g)?)?)
        .map_err(|e| ctx(format!("_viewpoint_T: {e}")))?;
    let focal = f32s::<2>(&need("_viewpoint_focal_length", r.get(5).map_err(g)?)?)
        .map_err(|e| ctx(format!("_viewpoint_focal_length: {e}")))?;
    let principal = f32s::<2>(&need("_viewpoint_principal_point", r.get(6).map_err(g)?)?)
        .map_err(|e| ctx(format!("_viewpoint_principal_point: {e}")))?;
    let dist: Option<Vec<u8>> = r.get(7).map_err(g)?;
    let distortion = match dist {
        Some(b) => {
            f32s::<12>(&b).map_err(|e| ctx(format!("_viewpoint_colmap_distortion_coeffs: {e}")))?
        }
        None => [0.0; 12],
    };
    let format: Option<String> = r.get(10).map_err(g)?;
    if let Some(f) = &format
        && f != "ndc_norm_image_bounds"
    {
        return Err(ctx(format!(
            "unsupported _viewpoint_intrinsics_format {f:?}"
        )));
    }
    Ok(FrameAnnot {
        frame_number,
        timestamp: r.get(1).map_err(g)?,
        camera: NdcCamera {
            r: rot,
            t,
            focal,
            principal,
            image_hw: [h as u32, w as u32],
            distortion,
        },
        depth_scale_adjustment: r.get(8).map_err(g)?,
        mask_mass: r.get(9).map_err(g)?,
        intrinsics_format: format,
    })
}

/// The set-list files of a dataset root: `(name, path)`.
pub fn set_lists(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(root.join("set_lists")) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_prefix("set_lists_")?
                .strip_suffix(".sqlite")?
                .to_owned();
            Some((stem, e.path()))
        })
        .collect();
    out.sort();
    out
}
