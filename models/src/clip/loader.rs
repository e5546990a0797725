//! Finding and loading an OpenCLIP checkpoint in the layout open_clip's hub export writes:
//! `open_clip_config.json` + `open_clip_model.safetensors`, in a folder or a Hugging Face
//! repo (through the local hub cache). Hub resolution, header checks and the memory-mapped
//! `VarBuilder` are the Qwen2-VL loader's, shared.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::Error;
use super::config::ClipConfig;
use super::model::ClipModel;
use crate::qwen2vl::loader as shared;
pub use crate::qwen2vl::loader::{ModelSource, Progress};

pub const CONFIG: &str = "open_clip_config.json";
/// Weight file names open_clip looks for, in its order of preference (safetensors only:
/// the pickled `open_clip_pytorch_model.bin` is not read).
pub const WEIGHTS: [&str; 2] = [
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
];

/// The files of one checkpoint on disk.
#[derive(Clone, Debug)]
pub struct ClipFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

fn no_weights(place: &str) -> Error {
    Error::NotFound(format!(
        "{place}: no {} (or {}); pickled open_clip_pytorch_model.bin checkpoints are not supported, convert them to safetensors",
        WEIGHTS[0], WEIGHTS[1]
    ))
}

/// Finds the checkpoint files in a folder.
pub fn files_in_dir(dir: &Path) -> Result<ClipFiles, Error> {
    if !dir.is_dir() {
        return Err(Error::NotFound(format!(
            "{}: no such model folder",
            dir.display()
        )));
    }
    let config = dir.join(CONFIG);
    if !config.is_file() {
        return Err(Error::NotFound(format!(
            "{}: the model folder has no {CONFIG}",
            dir.display()
        )));
    }
    let weights = WEIGHTS
        .iter()
        .map(|w| dir.join(w))
        .find(|p| p.is_file())
        .ok_or_else(|| no_weights(&dir.display().to_string()))?;
    Ok(ClipFiles { config, weights })
}

/// Resolves a source to files on disk (see `qwen2vl::loader::hub_file_from` for the cache
/// rules: `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE`).
pub fn resolve(source: &ModelSource) -> Result<ClipFiles, Error> {
    resolve_with(source, &shared::Fetch::quiet())
}

/// [`resolve`], reporting downloads to `fetch` and stopping when it cancels.
pub fn resolve_with(source: &ModelSource, fetch: &shared::Fetch<'_>) -> Result<ClipFiles, Error> {
    match source {
        ModelSource::Dir(dir) => files_in_dir(dir),
        ModelSource::Hub { repo, revision } => resolve_in(
            &shared::HubConfig::from_env(),
            repo,
            revision.as_deref(),
            fetch,
        ),
    }
}

/// A Hub repo's files through an explicit cache and endpoint.
pub fn resolve_in(
    hub: &shared::HubConfig,
    repo: &str,
    rev: Option<&str>,
    fetch: &shared::Fetch<'_>,
) -> Result<ClipFiles, Error> {
    let config = shared::hub_file_from(hub, repo, rev, CONFIG, true, fetch)?
        .ok_or_else(|| Error::NotFound(format!("{repo}: {CONFIG}")))?;
    let mut weights = None;
    for (i, w) in WEIGHTS.iter().enumerate() {
        // The last candidate is required, so a miss reports where it looked.
        if let Some(p) = shared::hub_file_from(hub, repo, rev, w, i + 1 == WEIGHTS.len(), fetch)? {
            weights = Some(p);
            break;
        }
    }
    let weights = weights.ok_or_else(|| no_weights(repo))?;
    Ok(ClipFiles { config, weights })
}

pub fn load_config(path: &Path) -> Result<ClipConfig, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        file: path.display().to_string(),
        msg: e.to_string(),
    })?;
    ClipConfig::from_json(&text, &path.display().to_string())
}

/// Reads the config and maps the weights. `progress` gets (bytes read, total bytes);
/// `cancel` aborts between tensors.
pub fn load(
    files: &ClipFiles,
    dtype: DType,
    device: &Device,
    progress: Progress<'_>,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<(ClipConfig, ClipModel), Error> {
    let cfg = load_config(&files.config)?;
    let vb = shared::mmap_var_builder(
        std::slice::from_ref(&files.weights),
        dtype,
        device,
        progress,
        cancel,
    )?;
    let model = ClipModel::new(&cfg, vb).map_err(|e| {
        if cancel() {
            Error::Cancelled
        } else {
            Error::Weights {
                path: files.weights.display().to_string(),
                msg: e.to_string(),
            }
        }
    })?;
    Ok((cfg, model))
}
