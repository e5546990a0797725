//! Text + images → model inputs, as `Qwen2VLProcessor` does: chat template, image
//! preprocessing, `<|image_pad|>` expansion, tokenisation and M-RoPE positions.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::DynamicImage;
use tokenizers::Tokenizer;

use super::Error;
use super::chat::{self, Message};
use super::config::Config;
use super::image_processor::{ImageProcessorConfig, ProcessedImage, process_image};
use super::rope_index::{RopePositions, rope_positions};

/// Sizes of one prompt image: where the model's boxes map back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub original_wh: (u32, u32),
    pub resized_hw: (usize, usize),
    pub grid_thw: [usize; 3],
}

/// Everything the model needs for one prompt.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub text: String,
    pub input_ids: Vec<u32>,
    /// `grids` rows of `row_len` values each.
    pub pixel_values: Vec<f32>,
    pub row_len: usize,
    pub grids: Vec<[usize; 3]>,
    pub images: Vec<ImageInfo>,
    pub positions: RopePositions,
}

impl Prompt {
    pub fn pixel_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        let rows = self.pixel_values.len() / self.row_len.max(1);
        Tensor::from_slice(&self.pixel_values, (rows, self.row_len), device)
    }

    pub fn num_image_tokens(&self, image_token: u32) -> usize {
        self.input_ids.iter().filter(|&&t| t == image_token).count()
    }
}

pub struct Processor {
    tokenizer: Tokenizer,
    pub image: ImageProcessorConfig,
    vision_start: u32,
    image_token: u32,
}

impl Processor {
    pub fn new(tokenizer: Tokenizer, image: ImageProcessorConfig, cfg: &Config) -> Self {
        Self {
            tokenizer,
            image,
            vision_start: cfg.vision_start_token_id,
            image_token: cfg.image_token_id,
        }
    }

    /// Reads `tokenizer.json` and, when present, `preprocessor_config.json`.
    pub fn from_files(
        tokenizer_json: &Path,
        preprocessor: Option<&Path>,
        cfg: &Config,
    ) -> Result<Self, Error> {
        let tokenizer = Tokenizer::from_file(tokenizer_json)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", tokenizer_json.display())))?;
        let image = match preprocessor {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::Config {
                    file: p.display().to_string(),
                    msg: e.to_string(),
                })?;
                ImageProcessorConfig::from_json(&text, &p.display().to_string())?
            }
            None => ImageProcessorConfig::default(),
        };
        Ok(Self::new(tokenizer, image, cfg))
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        // Qwen2's post-processor adds nothing, so special tokens in the text are the
        // only ones in the ids, exactly as the reference processor.
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, Error> {
        self.tokenizer
            .decode(ids, skip_special)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    pub fn process_image(&self, image: &DynamicImage) -> Result<ProcessedImage, Error> {
        process_image(image, &self.image)
    }

    /// Builds the prompt for `messages` whose image parts are `images`, in order.
    pub fn prepare(&self, images: &[DynamicImage], messages: &[Message]) -> Result<Prompt, Error> {
        let processed = images
            .iter()
            .map(|im| self.process_image(im))
            .collect::<Result<Vec<_>, _>>()?;
        self.prepare_processed(processed, messages)
    }

    /// As [`Self::prepare`] for images already processed (e.g. in parallel).
    pub fn prepare_processed(
        &self,
        images: Vec<ProcessedImage>,
        messages: &[Message],
    ) -> Result<Prompt, Error> {
        let merge = self.image.merge_size;
        let counts: Vec<usize> = images.iter().map(|i| i.llm_tokens(merge)).collect();
        let text = chat::render(messages, &counts).map_err(Error::Prompt)?;
        let input_ids = self.encode(&text)?;
        let grids: Vec<[usize; 3]> = images.iter().map(|i| i.grid_thw).collect();
        let positions = rope_positions(
            &input_ids,
            &grids,
            self.vision_start,
            self.image_token,
            merge,
        )
        .map_err(Error::Prompt)?;
        let row_len = 3 * self.image.temporal_patch_size * self.image.patch_size.pow(2);
        let infos = images
            .iter()
            .map(|i| ImageInfo {
                original_wh: i.original_wh,
                resized_hw: i.resized_hw,
                grid_thw: i.grid_thw,
            })
            .collect();
        let mut pixel_values =
            Vec::with_capacity(images.iter().map(|i| i.pixel_values.len()).sum());
        for im in images {
            pixel_values.extend_from_slice(&im.pixel_values);
        }
        Ok(Prompt {
            text,
            input_ids,
            pixel_values,
            row_len,
            grids,
            images: infos,
            positions,
        })
    }
}
