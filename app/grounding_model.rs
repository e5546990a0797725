//! Running the grounding model: one place shared by `loupe ground` and the Grounding
//! workspace, so both load, prompt and parse exactly alike.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use loupe_models::answer::{GroundedAnswer, parse_grounded, referenced_image};
use loupe_models::qwen2vl::Error as ModelError;
use loupe_models::qwen2vl::chat::grounding_messages;
use loupe_models::qwen2vl::generate::{Decoding, GenerateParams, Output, generate};
use loupe_models::qwen2vl::loader::{self, Loaded, ModelSource};
use serde::{Deserialize, Serialize};

/// Where the model is and how to run it; persisted with the settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
    /// A local folder or a Hugging Face repo id (`owner/name[@revision]`).
    pub source: String,
    /// `auto` (the checkpoint's dtype on GPU and for bf16 checkpoints, else f32), `f32`, `bf16`, `f16`.
    pub dtype: String,
    pub max_new_tokens: usize,
    /// Sample instead of the checkpoint's (greedy) default.
    pub sample: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub repetition_penalty: f32,
    pub seed: u64,
    /// Override of `preprocessor_config.json`'s pixel budget per image.
    pub max_pixels: Option<usize>,
    pub min_pixels: Option<usize>,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            source: "Michael4933/Migician".into(),
            dtype: "auto".into(),
            max_new_tokens: 256,
            sample: false,
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: 0,
            max_pixels: None,
            min_pixels: None,
        }
    }
}

/// A loaded model plus what it was loaded from (to know when to reload).
pub struct GroundingModel {
    pub loaded: Loaded,
    pub key: (String, String),
}

fn model_error(e: ModelError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl ModelSettings {
    pub fn key(&self) -> (String, String) {
        (self.source.clone(), self.dtype.clone())
    }

    fn dtype(&self, config: &Path) -> anyhow::Result<candle_core::DType> {
        if self.dtype != "auto" {
            return loader::parse_dtype(&self.dtype).map_err(model_error);
        }
        let cfg = loader::load_config(config).map_err(model_error)?;
        let on_cpu = loader::default_device().is_cpu();
        Ok(match cfg.torch_dtype.as_deref() {
            Some("bfloat16") => candle_core::DType::BF16,
            Some("float16") if !on_cpu => candle_core::DType::F16,
            _ => candle_core::DType::F32,
        })
    }

    /// Loads the model: Hub downloads report to `fetch`, then `progress` gets (bytes
    /// read, total bytes); `fetch.cancel` stops either.
    pub fn load(
        &self,
        fetch: &loader::Fetch<'_>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> anyhow::Result<GroundingModel> {
        let cancel = fetch.cancel;
        let files =
            loader::resolve_with(&ModelSource::parse(&self.source), fetch).map_err(model_error)?;
        let dtype = self.dtype(&files.config)?;
        let mut loaded = loader::load(&files, dtype, &loader::default_device(), progress, cancel)
            .map_err(model_error)?;
        if let Some(v) = self.max_pixels {
            loaded.processor.image.max_pixels = v;
        }
        if let Some(v) = self.min_pixels {
            loaded.processor.image.min_pixels = v;
        }
        Ok(GroundingModel {
            loaded,
            key: self.key(),
        })
    }

    pub fn params(&self, loaded: &Loaded) -> GenerateParams {
        let mut p = GenerateParams::from_config(&loaded.generation, self.max_new_tokens);
        if self.sample {
            p.decoding = Decoding::Sample {
                temperature: self.temperature,
                top_k: (self.top_k > 0).then_some(self.top_k),
                top_p: self.top_p,
                seed: self.seed,
            };
            p.repetition_penalty = self.repetition_penalty;
        }
        p
    }
}

/// One box in pixels of the image it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PixelBox {
    /// 0-based image index.
    pub image: usize,
    pub label: Option<String>,
    /// `[x1, y1, x2, y2]` in pixels of the original image.
    pub bbox: [f32; 4],
}

#[derive(Clone, Debug, Serialize)]
pub struct GroundResult {
    pub answer: String,
    pub boxes: Vec<PixelBox>,
    pub truncated: bool,
    /// Generation was stopped by the user; `answer` holds what came before.
    pub stopped: bool,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tokens_per_sec: f64,
    pub decode_tokens_per_sec: f64,
}

/// Boxes of a (possibly partial) answer: the question decides the image when the
/// answer names none.
pub fn parse_answer(answer: &str, question: &str, n_images: usize) -> GroundedAnswer {
    parse_grounded(answer, n_images, referenced_image(question))
}

/// Answers `question` about `images`. `on_text` receives the text as it streams.
pub fn ground(
    model: &mut GroundingModel,
    settings: &ModelSettings,
    images: &[image::DynamicImage],
    question: &str,
    cancel: &dyn Fn() -> bool,
    on_text: &mut dyn FnMut(&str),
) -> anyhow::Result<GroundResult> {
    let loaded = &mut model.loaded;
    let prompt = loaded
        .processor
        .prepare(images, &grounding_messages(images.len(), question))
        .map_err(model_error)?;
    let params = settings.params(loaded);
    let out: Output = generate(
        &mut loaded.model,
        &loaded.processor,
        &prompt,
        &params,
        cancel,
        &mut |_, delta| on_text(delta),
    )
    .map_err(model_error)?;
    let parsed = parse_answer(&out.text, question, images.len());
    let boxes = parsed
        .boxes
        .iter()
        .filter_map(|b| {
            let (w, h) = prompt.images.get(b.image)?.original_wh;
            Some(PixelBox {
                image: b.image,
                label: b.label.clone(),
                bbox: b.bbox.to_pixels(w, h),
            })
        })
        .collect();
    Ok(GroundResult {
        answer: out.text.clone(),
        boxes,
        truncated: parsed.truncated,
        stopped: out.stop == loupe_models::qwen2vl::generate::StopReason::Cancelled,
        prompt_tokens: out.prompt_tokens,
        generated_tokens: out.tokens.len(),
        prefill_tokens_per_sec: out.prefill_tokens_per_sec(),
        decode_tokens_per_sec: out.decode_tokens_per_sec(),
    })
}

/// Decodes image files, naming the file that fails.
pub fn open_images(paths: &[PathBuf]) -> anyhow::Result<Vec<image::DynamicImage>> {
    paths
        .iter()
        .map(|p| image::open(p).with_context(|| format!("{}: cannot read the image", p.display())))
        .collect()
}
