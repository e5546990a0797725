//! OpenCLIP ViT models (BMC-CLIP / BMCA-CLIP is ViT-L-14) on candle, matching
//! open-clip-torch: the tokenizer id for id, the preprocessing pixel for pixel, and the
//! embeddings to float rounding in f32. Model code lives in [`model`]; file access in
//! [`loader`].

pub mod clean;
pub mod config;
pub mod loader;
pub mod model;
pub mod preprocess;
pub mod tokenizer;

use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;

pub use config::ClipConfig;
pub use loader::ModelSource;
pub use model::ClipModel;
pub use preprocess::Preprocess;
pub use tokenizer::Tokenizer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {msg}")]
    Config { file: String, msg: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{path}: {msg}")]
    Weights { path: String, msg: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Input(String),
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("cancelled")]
    Cancelled,
}

impl From<crate::qwen2vl::Error> for Error {
    fn from(e: crate::qwen2vl::Error) -> Self {
        use crate::qwen2vl::Error as Q;
        match e {
            Q::Config { file, msg } => Self::Config { file, msg },
            Q::Weights { path, msg } => Self::Weights { path, msg },
            Q::NotFound(m) => Self::NotFound(m),
            Q::Candle(c) => Self::Candle(c),
            Q::Cancelled => Self::Cancelled,
            other => Self::NotFound(other.to_string()),
        }
    }
}

/// How many images / captions go through the model at once: bounds activation memory
/// (ViT-L-14 at 224 px is ~257 tokens × 1024 wide per image and layer).
const IMAGE_BATCH: usize = 16;
const TEXT_BATCH: usize = 64;

/// A loaded OpenCLIP model with its tokenizer and preprocessing.
pub struct Clip {
    model: ClipModel,
    tokenizer: Tokenizer,
    preprocess: Preprocess,
    config: ClipConfig,
    model_id: String,
}

/// The id shown for a source: the repo id (with `@revision`) or the folder name.
fn source_id(source: &ModelSource) -> String {
    match source {
        ModelSource::Hub {
            repo,
            revision: Some(r),
        } => format!("{repo}@{r}"),
        ModelSource::Hub { repo, .. } => repo.clone(),
        ModelSource::Dir(dir) => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string()),
    }
}

/// L2 normalisation as `F.normalize` (norm clamped at 1e-12).
fn l2_rows(t: &Tensor) -> Result<Vec<Vec<f32>>, Error> {
    let rows = t.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter_mut().for_each(|v| *v /= n);
            r
        })
        .collect())
}

impl Clip {
    /// Loads a folder or hub repo (`owner/name[@revision]`, see [`ModelSource::parse`]).
    /// f32 on the CPU reproduces open-clip-torch; bf16/f16 trade accuracy for speed.
    pub fn load(source: &ModelSource, dtype: DType, device: &Device) -> Result<Self, Error> {
        let fetch = crate::qwen2vl::loader::Fetch::quiet();
        Self::load_with(source, dtype, device, &fetch, &|_, _| {})
    }

    /// [`Clip::load`] reporting Hub downloads to `fetch`, then loading progress in bytes
    /// to `progress`; `fetch.cancel` stops either.
    pub fn load_with(
        source: &ModelSource,
        dtype: DType,
        device: &Device,
        fetch: &crate::qwen2vl::loader::Fetch<'_>,
        progress: loader::Progress<'_>,
    ) -> Result<Self, Error> {
        let files = loader::resolve_with(source, fetch)?;
        let (config, model) = loader::load(&files, dtype, device, progress, fetch.cancel)?;
        Self::from_parts(config, model, source_id(source))
    }

    /// Wraps a model built elsewhere (e.g. from another `VarBuilder`) with its config.
    pub fn from_parts(
        config: ClipConfig,
        model: ClipModel,
        model_id: impl Into<String>,
    ) -> Result<Self, Error> {
        let tokenizer = Tokenizer::new(config.model.text_cfg.context_length)?;
        Ok(Self {
            preprocess: Preprocess::from_config(&config),
            model,
            tokenizer,
            config,
            model_id: model_id.into(),
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Length of the embeddings.
    pub fn embed_dim(&self) -> usize {
        self.config.model.embed_dim
    }

    /// exp(logit_scale), the factor open_clip applies to cosine similarities (clamped at
    /// 100 as in training).
    pub fn logit_scale(&self) -> f32 {
        self.model.logit_scale().exp().min(100.0)
    }

    /// Normalised pixels `[n, 3, H, W]` of a batch, preprocessed in parallel.
    pub fn pixel_tensor(&self, images: &[RgbImage]) -> Result<Tensor, Error> {
        let (h, w) = self.preprocess.size;
        let flat: Vec<f32> = images
            .par_iter()
            .map(|im| self.preprocess.pixels(im))
            .collect::<Vec<_>>()
            .concat();
        Ok(Tensor::from_vec(
            flat,
            (images.len(), 3, h, w),
            self.model.device(),
        )?)
    }

    /// L2-normalised embeddings of already preprocessed pixels `[n, 3, H, W]`.
    pub fn encode_pixels(&self, pixels: &Tensor) -> Result<Vec<Vec<f32>>, Error> {
        l2_rows(&self.model.image_features(pixels)?)
    }

    /// L2-normalised image embeddings, one per image, in order.
    pub fn encode_images(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>, Error> {
        if let Some(i) = images
            .iter()
            .position(|im| im.width() == 0 || im.height() == 0)
        {
            return Err(Error::Input(format!("image {i} is empty")));
        }
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGE_BATCH) {
            out.extend(self.encode_pixels(&self.pixel_tensor(chunk)?)?);
        }
        Ok(out)
    }

    /// L2-normalised text embeddings, one per caption, in order.
    pub fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let ids: Vec<Vec<u32>> = texts
            .par_iter()
            .map(|t| self.tokenizer.tokenize(t))
            .collect();
        // The text tower only runs up to a batch's longest caption, so batches of similar
        // lengths do the least work: sort by token count, embed, put back in order.
        let len = |i: usize| ids[i].iter().take_while(|&&t| t != 0).count();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| len(i));
        // A batch also ends where lengths double (once it has 8 rows), so one long caption
        // does not stretch many short ones to its length.
        let mut chunks: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        for k in 1..=order.len() {
            let n = k - start;
            if k == order.len()
                || n == TEXT_BATCH
                || (n >= 8 && len(order[k]) > 2 * len(order[start]))
            {
                chunks.push(&order[start..k]);
                start = k;
            }
        }
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in chunks {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let emb = l2_rows(&self.model.text_features(&batch)?)?;
            for (&i, e) in chunk.iter().zip(emb) {
                out[i] = e;
            }
        }
        Ok(out)
    }
}
