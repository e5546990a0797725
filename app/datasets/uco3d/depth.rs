//! `depth_maps.h5`: one z-depth map per annotated frame, named `frame_number + 1`.
//! Values × `_depth_scale_adjustment` (× the alignment scale when aligned) are depths
//! along the camera axis; non-finite or ≤ 0 means no depth.

use loupe_render::camera::Intrinsics;
use nalgebra::{Isometry3, Point3};
use std::path::Path;

/// A depth map in metres-ish scene units, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DepthError {
    pub path: String,
    pub message: String,
}

/// Read the depth of `frame_number`, multiplied by `scale`.
pub fn read_depth(path: &Path, frame_number: i64, scale: f32) -> Result<DepthMap, DepthError> {
    let err = |message: String| DepthError {
        path: path.display().to_string(),
        message,
    };
    let file = hdf5::File::open(path).map_err(|e| err(format!("not a readable HDF5 file: {e}")))?;
    let key = (frame_number + 1).to_string();
    let ds = file.dataset(&key).map_err(|e| {
        err(format!(
            "no depth for frame {frame_number} (dataset {key:?}): {e}"
        ))
    })?;
    let shape = ds.shape();
    // Accept H×W and H×W×1 (and 1×H×W) as the writers produce either.
    let dims: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
    let [h, w] = dims[..] else {
        return Err(err(format!(
            "dataset {key:?} has shape {shape:?}, expected H×W"
        )));
    };
    let mut values = ds
        .read_raw::<f32>()
        .map_err(|e| err(format!("dataset {key:?}: {e}")))?;
    for v in &mut values {
        *v *= scale;
    }
    Ok(DepthMap {
        width: w as u32,
        height: h as u32,
        values,
    })
}

impl DepthMap {
    /// World points of every valid pixel (pixel centres at +0.5, the renderer's
    /// convention), with `k` scaled to this map's size when it differs from the frame.
    pub fn unproject(
        &self,
        k: &Intrinsics,
        world_to_camera: &Isometry3<f64>,
        stride: usize,
    ) -> Vec<Point3<f64>> {
        let sx = f64::from(self.width) / f64::from(k.width);
        let sy = f64::from(self.height) / f64::from(k.height);
        let (fx, fy, cx, cy) = (k.fx * sx, k.fy * sy, k.cx * sx, k.cy * sy);
        let inv = world_to_camera.inverse();
        let stride = stride.max(1);
        let mut out = Vec::new();
        for y in (0..self.height as usize).step_by(stride) {
            for x in (0..self.width as usize).step_by(stride) {
                let z = f64::from(self.values[y * self.width as usize + x]);
                if !z.is_finite() || z <= 0.0 {
                    continue;
                }
                let p = Point3::new(
                    (x as f64 + 0.5 - cx) / fx * z,
                    (y as f64 + 0.5 - cy) / fy * z,
                    z,
                );
                out.push(inv * p);
            }
        }
        out
    }
}
