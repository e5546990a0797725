//! Qwen2-VL (the architecture of Migician) on candle, matching transformers'
//! `qwen2_vl` numerically. Model code only: file access lives in [`loader`].

pub mod chat;
pub mod config;
pub mod generate;
pub mod image_processor;
pub mod linear;
pub mod loader;
pub mod processor;
pub mod rope_index;
pub mod text;
pub mod vision;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::{Config, GenerationConfig, VisionConfig};
pub use processor::{Processor, Prompt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {msg}")]
    Config { file: String, msg: String },
    #[error("{0}")]
    Image(String),
    #[error("{0}")]
    Prompt(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{path}: {msg}")]
    Weights { path: String, msg: String },
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("cancelled")]
    Cancelled,
}

/// Vision tower + decoder, with the decoding state (KV cache and the M-RoPE offset of
/// the current prompt).
pub struct Qwen2VL {
    vision: vision::VisionTower,
    text: text::TextModel,
    cfg: Config,
    rope_delta: i64,
}

/// Intermediate tensors of one prompt, for parity tests.
pub struct PrefillTrace {
    pub vision: vision::VisionTrace,
    pub image_embeds: Option<Tensor>,
    /// Input embeddings, then each layer's output, the last one final-normed.
    pub hidden_states: Vec<Tensor>,
}

impl Qwen2VL {
    /// Builds the model from a `VarBuilder` over the checkpoint. Both weight layouts are
    /// accepted: the released one (`visual.*`, `model.*`, `lm_head`) and the re-nested
    /// one of newer transformers (`model.visual.*`, `model.language_model.*`).
    pub fn new(cfg: &Config, vb: VarBuilder<'_>) -> Result<Self, Error> {
        let nested = vb.contains_tensor("model.visual.patch_embed.proj.weight");
        let (vis_vb, text_vb) = if nested {
            (vb.pp("model.visual"), vb.pp("model.language_model"))
        } else {
            (vb.pp("visual"), vb.pp("model"))
        };
        Ok(Self {
            vision: vision::VisionTower::new(&cfg.vision_config, vis_vb)?,
            text: text::TextModel::new(cfg, text_vb, vb.pp("lm_head"))?,
            cfg: cfg.clone(),
            rope_delta: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Merged image embeddings `[image tokens, hidden]` for all images of a prompt.
    pub fn encode_images(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
    ) -> Result<Tensor, Error> {
        self.vision.dims_ok(pixel_values)?;
        Ok(self.vision.forward(pixel_values, grids)?)
    }

    /// Token embeddings with the `<|image_pad|>` rows replaced, in order, by `images`.
    pub fn prompt_embeds(
        &self,
        input_ids: &[u32],
        images: Option<&Tensor>,
    ) -> Result<Tensor, Error> {
        let text = self.text.embed_tokens(input_ids)?;
        let n_pad = input_ids
            .iter()
            .filter(|&&t| t == self.cfg.image_token_id)
            .count();
        let n_img = match images {
            Some(t) => t.dim(0)?,
            None => 0,
        };
        if n_pad != n_img {
            return Err(Error::Prompt(format!(
                "the prompt has {n_pad} <|image_pad|> tokens but the images give {n_img} embeddings"
            )));
        }
        let Some(images) = images else {
            return Ok(text);
        };
        // One gather over [text rows; image rows] replaces the pad rows in a single pass.
        let len = input_ids.len() as u32;
        let mut k = 0u32;
        let index: Vec<u32> = input_ids
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if t == self.cfg.image_token_id {
                    k += 1;
                    len + k - 1
                } else {
                    i as u32
                }
            })
            .collect();
        let all = Tensor::cat(&[&text, &images.to_dtype(text.dtype())?], 0)?;
        let index = Tensor::new(index.as_slice(), text.device())?;
        Ok(all.index_select(&index, 0)?)
    }

    /// Clears the cache and runs the whole prompt; returns the logits of its last token,
    /// or `None` when `stop` interrupted it.
    pub fn prefill(
        &mut self,
        prompt: &Prompt,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Tensor>, Error> {
        let Some(hidden) = self.prefill_hidden(prompt, stop, None)? else {
            return Ok(None);
        };
        let last = hidden.narrow(0, hidden.dim(0)? - 1, 1)?;
        Ok(Some(self.text.logits(&last)?.squeeze(0)?))
    }

    /// As [`Self::prefill`], returning the final hidden states of every prompt token and
    /// optionally the intermediate tensors.
    pub fn prefill_hidden(
        &mut self,
        prompt: &Prompt,
        stop: &dyn Fn() -> bool,
        mut trace: Option<&mut PrefillTrace>,
    ) -> Result<Option<Tensor>, Error> {
        self.text.clear_cache();
        let image_embeds = if prompt.grids.is_empty() {
            None
        } else {
            let pixels = prompt.pixel_tensor(self.device())?;
            self.vision.dims_ok(&pixels)?;
            let vtrace = trace.as_deref_mut().map(|t| &mut t.vision);
            Some(self.vision.forward_traced(&pixels, &prompt.grids, vtrace)?)
        };
        if stop() {
            return Ok(None);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.image_embeds = image_embeds.clone();
        }
        let embeds = self.prompt_embeds(&prompt.input_ids, image_embeds.as_ref())?;
        let pos = &prompt.positions;
        self.rope_delta = pos.rope_delta;
        let hs = trace.map(|t| &mut t.hidden_states);
        Ok(self
            .text
            .forward(&embeds, [&pos.ids[0], &pos.ids[1], &pos.ids[2]], stop, hs)?)
    }

    /// Runs the decoder alone on ready input embeddings `[L, hidden]` (images already
    /// scattered in) with their M-RoPE positions; returns the final hidden states.
    pub fn prefill_embeds(
        &mut self,
        embeds: &Tensor,
        positions: &rope_index::RopePositions,
    ) -> Result<Tensor, Error> {
        self.text.clear_cache();
        self.rope_delta = positions.rope_delta;
        let p = &positions.ids;
        self.text
            .forward(embeds, [&p[0], &p[1], &p[2]], &|| false, None)?
            .ok_or(Error::Cancelled)
    }

    /// Feeds one generated token; returns the logits `[vocab]` of the next one.
    pub fn step(&mut self, token: u32) -> Result<Tensor, Error> {
        let p = self.text.cache_len() as i64 + self.rope_delta;
        let embeds = self.text.embed_tokens(&[token])?;
        let hidden = self
            .text
            .forward(&embeds, [&[p], &[p], &[p]], &|| false, None)?
            .ok_or(Error::Cancelled)?;
        Ok(self.text.logits(&hidden)?.squeeze(0)?)
    }

    /// Logits `[rows, vocab]` of final hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor, Error> {
        Ok(self.text.logits(hidden)?)
    }

    pub fn clear_cache(&mut self) {
        self.text.clear_cache();
    }

    pub fn device(&self) -> &Device {
        self.text.device()
    }

    pub fn dtype(&self) -> DType {
        self.text.dtype()
    }
}
