//! Finding and loading a checkpoint: a local folder or a Hugging Face repo id (through
//! the local hub cache, downloading only when allowed), sharded safetensors mapped into
//! memory, with loading progress in bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;

use super::config::{Config, GenerationConfig};
use super::{Error, Processor, Qwen2VL};

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    Dir(PathBuf),
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

impl ModelSource {
    /// An existing folder, or else `owner/name[@revision]` on the Hub.
    pub fn parse(spec: &str) -> Self {
        let path = Path::new(spec);
        if path.is_dir()
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.matches('/').count() != 1
        {
            return Self::Dir(path.to_path_buf());
        }
        match spec.split_once('@') {
            Some((repo, rev)) => Self::Hub {
                repo: repo.into(),
                revision: Some(rev.into()),
            },
            None => Self::Hub {
                repo: spec.into(),
                revision: None,
            },
        }
    }
}

/// The files of one checkpoint on disk.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: Vec<PathBuf>,
    pub tokenizer: PathBuf,
    pub preprocessor: Option<PathBuf>,
    pub generation: Option<PathBuf>,
}

const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::Config {
        file: path.display().to_string(),
        msg: e.to_string(),
    })
}

/// Shard file names listed in an index's `weight_map`.
fn shard_names(index: &Path) -> Result<Vec<String>, Error> {
    let text = read_text(index)?;
    let bad = |msg: &str| Error::Config {
        file: index.display().to_string(),
        msg: msg.to_string(),
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no weight_map object"))?;
    let names: BTreeSet<String> = map
        .values()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    if names.is_empty() {
        return Err(bad("weight_map lists no files"));
    }
    Ok(names.into_iter().collect())
}

/// Finds the checkpoint files in a folder.
pub fn files_in_dir(dir: &Path) -> Result<ModelFiles, Error> {
    let need = |name: &str| -> Result<PathBuf, Error> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::NotFound(format!(
                "{}: the model folder has no {name}",
                dir.display()
            )))
        }
    };
    let opt = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    let config = need("config.json")?;
    let weights = if let Some(index) = opt(INDEX) {
        let names = shard_names(&index)?;
        names
            .iter()
            .map(|n| need(n))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![need(SINGLE)?]
    };
    Ok(ModelFiles {
        config,
        weights,
        tokenizer: need("tokenizer.json")?,
        preprocessor: opt("preprocessor_config.json"),
        generation: opt("generation_config.json"),
    })
}

/// What a Hub download reports and how it is stopped.
pub struct Fetch<'a> {
    /// (file name, bytes so far, file size) as a file downloads.
    pub progress: &'a (dyn Fn(&str, u64, u64) + Sync),
    pub cancel: &'a (dyn Fn() -> bool + Sync),
}

impl Fetch<'static> {
    /// No progress, never cancelled (the command line).
    pub fn quiet() -> Self {
        Fetch {
            progress: &|_, _, _| {},
            cancel: &|| false,
        }
    }
}

/// Resolves a source to files on disk. Hub repos are looked up in the local cache
/// (`HF_HOME` / `HF_HUB_CACHE`); missing files are downloaded unless `HF_HUB_OFFLINE`
/// is set, and an offline miss says where it looked.
pub fn resolve(source: &ModelSource) -> Result<ModelFiles, Error> {
    resolve_with(source, &Fetch::quiet())
}

/// [`resolve`], reporting downloads to `fetch` and stopping when it cancels.
pub fn resolve_with(source: &ModelSource, fetch: &Fetch<'_>) -> Result<ModelFiles, Error> {
    match source {
        ModelSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(Error::NotFound(format!(
                    "{}: no such model folder",
                    dir.display()
                )));
            }
            files_in_dir(dir)
        }
        ModelSource::Hub { repo, revision } => resolve_hub(repo, revision.as_deref(), fetch),
    }
}

/// Where Hub files are cached and fetched from, as `huggingface_hub` reads it from the
/// environment (tests build one directly instead of changing the process environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// The cache folder (`…/hub`, holding `models--owner--name`).
    pub cache: PathBuf,
    /// `https://huggingface.co`, or a mirror.
    pub endpoint: Option<String>,
    /// Never download.
    pub offline: bool,
}

impl HubConfig {
    /// The cache folder: `HF_HUB_CACHE` (or its old name `HUGGINGFACE_HUB_CACHE`), else
    /// `HF_HOME/hub`, else `~/.cache/huggingface/hub` (`hf_hub::Cache::from_env` only
    /// knows `HF_HOME`); the endpoint from `HF_ENDPOINT`; offline when `HF_HUB_OFFLINE`
    /// is set to anything but 0.
    pub fn from_env() -> Self {
        let cache = ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]
            .iter()
            .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
            .map_or_else(|| hf_hub::Cache::from_env().path().clone(), PathBuf::from);
        Self {
            cache,
            endpoint: std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()),
            offline: std::env::var_os("HF_HUB_OFFLINE").is_some_and(|v| v != "0" && !v.is_empty()),
        }
    }
}

/// One file of a Hub repo, from the cache `hub` names or (unless it is offline)
/// downloaded into it with progress reported to `fetch`. A missing optional file is
/// `Ok(None)`; a missing required one is an error that says where the cache was
/// searched. Shared with the other models' loaders. A cancel returns at once; the download
/// thread runs on to the end of the file (hf-hub cannot be interrupted), and a download
/// stopped by the network is resumed from its `.incomplete` file next time.
pub fn hub_file_from(
    hub: &HubConfig,
    repo_id: &str,
    revision: Option<&str>,
    file: &str,
    required: bool,
    fetch: &Fetch<'_>,
) -> Result<Option<PathBuf>, Error> {
    use hf_hub::{Repo, RepoType};
    let rev = revision.unwrap_or("main").to_string();
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, rev.clone());
    let cache = hf_hub::Cache::new(hub.cache.clone());
    if let Some(p) = cache.repo(repo.clone()).get(file) {
        return Ok(Some(p));
    }
    let where_ = cache
        .path()
        .join(format!("models--{}", repo_id.replace('/', "--")))
        .join("snapshots");
    if hub.offline {
        return if required {
            Err(Error::NotFound(format!(
                "{repo_id}@{rev}: {file} is not in the Hugging Face cache (looked in {}) and HF_HUB_OFFLINE is set",
                where_.display()
            )))
        } else {
            Ok(None)
        };
    }
    if (fetch.cancel)() {
        return Err(Error::Cancelled);
    }
    let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(cache);
    // Mirrors and private endpoints (`from_cache` alone ignores HF_ENDPOINT).
    if let Some(endpoint) = &hub.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_owned());
    }
    let api = builder
        .build()
        .map_err(|e| Error::NotFound(format!("{repo_id}: hub client: {e}")))?;
    match download(api.repo(repo), file, fetch)? {
        Ok(p) => Ok(Some(p)),
        Err(e) if required => Err(Error::NotFound(format!(
            "{repo_id}@{rev}: {file} is not in the Hugging Face cache (looked in {}) and downloading it failed: {e}",
            where_.display()
        ))),
        Err(_) => Ok(None),
    }
}

/// Forwards hf-hub's byte counts to the waiting thread.
struct Forward {
    tx: crossbeam_channel::Sender<(u64, u64)>,
    done: u64,
    total: u64,
}

impl hf_hub::api::Progress for Forward {
    fn init(&mut self, size: usize, _: &str) {
        self.total = size as u64;
        self.done = 0;
        let _ = self.tx.send((0, self.total));
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        let _ = self.tx.send((self.done, self.total));
    }

    fn finish(&mut self) {}
}

/// One file through hf-hub on a helper thread, so the caller can report progress and
/// give up on cancel. The outer error is the cancel; the inner one hf-hub's.
fn download(
    repo: hf_hub::api::sync::ApiRepo,
    file: &str,
    fetch: &Fetch<'_>,
) -> Result<Result<PathBuf, String>, Error> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let name = file.to_owned();
    let spawned = std::thread::Builder::new()
        .name(format!("download {file}"))
        .spawn(move || {
            let forward = Forward {
                tx,
                done: 0,
                total: 0,
            };
            let result = repo
                .download_with_progress(&name, forward)
                .map_err(|e| e.to_string());
            let _ = done_tx.send(result);
        });
    if let Err(e) = spawned {
        return Ok(Err(format!("cannot start the download thread: {e}")));
    }
    loop {
        if (fetch.cancel)() {
            return Err(Error::Cancelled);
        }
        crossbeam_channel::select! {
            recv(rx) -> msg => {
                if let Ok((done, total)) = msg {
                    (fetch.progress)(file, done, total);
                }
            }
            recv(done_rx) -> result => {
                // Counts sent just before the end may still be queued.
                if let Some((done, total)) = rx.try_iter().last() {
                    (fetch.progress)(file, done, total);
                }
                return Ok(result.unwrap_or_else(|_| Err("the download thread stopped".into())));
            }
            default(std::time::Duration::from_millis(100)) => {}
        }
    }
}

fn resolve_hub(
    repo_id: &str,
    revision: Option<&str>,
    fetch: &Fetch<'_>,
) -> Result<ModelFiles, Error> {
    let hub = HubConfig::from_env();
    let get =
        |file: &str, required: bool| hub_file_from(&hub, repo_id, revision, file, required, fetch);
    let config = get("config.json", true)?.ok_or_else(|| Error::NotFound(repo_id.into()))?;
    let weights = match get(INDEX, false)? {
        Some(index) => shard_names(&index)?
            .iter()
            .map(|n| get(n, true)?.ok_or_else(|| Error::NotFound(n.clone())))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![get(SINGLE, true)?.ok_or_else(|| Error::NotFound(SINGLE.into()))?],
    };
    Ok(ModelFiles {
        config,
        weights,
        tokenizer: get("tokenizer.json", true)?
            .ok_or_else(|| Error::NotFound("tokenizer.json".into()))?,
        preprocessor: get("preprocessor_config.json", false)?,
        generation: get("generation_config.json", false)?,
    })
}

/// Loading progress: bytes of tensors materialised so far and in all.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// A safetensors backend that counts bytes as tensors are read and stops on cancel.
struct CountingBackend<'a> {
    inner: MmapedSafetensors,
    total: u64,
    done: AtomicU64,
    progress: Progress<'a>,
    cancel: &'a (dyn Fn() -> bool + Sync),
}

impl CountingBackend<'_> {
    fn load(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if (self.cancel)() {
            candle_core::bail!("cancelled");
        }
        let view = self.inner.get(name)?;
        let bytes = view.data().len() as u64;
        let t = self.inner.load(name, dev)?.to_dtype(dtype)?;
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        (self.progress)(done, self.total);
        Ok(t)
    }
}

impl SimpleBackend for CountingBackend<'_> {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.load(name, dtype, dev)?;
        if t.shape() != &s {
            candle_core::bail!(
                "{name}: shape {:?} in the file, {:?} expected",
                t.shape(),
                s
            );
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.get(name).is_ok()
    }
}

/// A loaded checkpoint: the model, its processor and its decoding defaults.
pub struct Loaded {
    pub model: Qwen2VL,
    pub processor: Processor,
    pub generation: GenerationConfig,
    pub files: ModelFiles,
}

/// The dtype named by a CLI/UI string.
pub fn parse_dtype(s: &str) -> Result<DType, Error> {
    match s {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(Error::Prompt(format!(
            "unknown dtype {other:?} (use f32, bf16 or f16)"
        ))),
    }
}

/// The best device compiled in: CUDA or Metal when built with that feature and present,
/// else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

pub fn load_config(path: &Path) -> Result<Config, Error> {
    Config::from_json(&read_text(path)?, &path.display().to_string())
}

/// Loads a checkpoint. `progress` gets (bytes read, total bytes); `cancel` aborts.
pub fn load(
    files: &ModelFiles,
    dtype: DType,
    device: &Device,
    progress: Progress<'_>,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<Loaded, Error> {
    let cfg = load_config(&files.config)?;
    let generation = match &files.generation {
        Some(p) => GenerationConfig::from_json(&read_text(p)?, &p.display().to_string())?,
        None => GenerationConfig::default(),
    };
    let processor = Processor::from_files(&files.tokenizer, files.preprocessor.as_deref(), &cfg)?;
    let vb = mmap_var_builder(&files.weights, dtype, device, progress, cancel)?;
    let model = Qwen2VL::new(&cfg, vb).map_err(|e| {
        if cancel() {
            Error::Cancelled
        } else {
            Error::Weights {
                path: files
                    .weights
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                msg: e.to_string(),
            }
        }
    })?;
    Ok(Loaded {
        model,
        processor,
        generation,
        files: files.clone(),
    })
}

/// Maps safetensors files (after checking their headers) into a `VarBuilder` that converts
/// each tensor to `dtype` on `device` as it is read, checks shapes, reports `progress` in
/// bytes and stops when `cancel` returns true. Shared with the other models' loaders.
pub fn mmap_var_builder<'a>(
    weights: &[PathBuf],
    dtype: DType,
    device: &Device,
    progress: Progress<'a>,
    cancel: &'a (dyn Fn() -> bool + Sync),
) -> Result<VarBuilder<'a>, Error> {
    for w in weights {
        check_safetensors_header(w)?;
    }
    // SAFETY: the files are mapped read-only. Another process truncating or rewriting
    // a checkpoint while it is loaded is undefined behaviour; candle has no safe mmap
    // API, and copying a 15 GB checkpoint into memory first is not an option.
    #[allow(unsafe_code)]
    let inner = unsafe { MmapedSafetensors::multi(weights) }.map_err(|e| Error::Weights {
        path: weights
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        msg: e.to_string(),
    })?;
    let total = inner
        .tensors()
        .iter()
        .map(|(_, v)| v.data().len() as u64)
        .sum();
    let backend = CountingBackend {
        inner,
        total,
        done: AtomicU64::new(0),
        progress,
        cancel,
    };
    Ok(VarBuilder::from_backend(
        Box::new(backend),
        dtype,
        device.clone(),
    ))
}

/// Reads the 8-byte header length and JSON header so a truncated or foreign file gets a
/// clear error before it is mapped.
pub fn check_safetensors_header(path: &Path) -> Result<(), Error> {
    use std::io::Read;
    let bad = |msg: String| Error::Weights {
        path: path.display().to_string(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let len = f.metadata().map_err(|e| bad(e.to_string()))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| bad("shorter than a safetensors header".into()))?;
    let header = u64::from_le_bytes(n);
    if header == 0 || header > 100_000_000 || 8 + header > len {
        return Err(bad(format!(
            "not a safetensors file (header length {header}, file size {len})"
        )));
    }
    let mut json = vec![0u8; header as usize];
    f.read_exact(&mut json).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| bad(format!("header: {e}")))?;
    let data = len - 8 - header;
    let end = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if end > data {
        return Err(bad(format!(
            "truncated: tensors need {end} data bytes but the file has {data}"
        )));
    }
    Ok(())
}
