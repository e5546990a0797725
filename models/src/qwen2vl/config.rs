//! `config.json` of a Qwen2-VL checkpoint, field for field.
//!
//! The released configs put the language-model fields at the top level; newer
//! transformers versions nest them under `text_config`. Both are accepted: the nested
//! object's keys are lifted to the top level before deserialising.

use serde::Deserialize;

use super::Error;

#[derive(Clone, Debug, Deserialize)]
pub struct RopeScaling {
    /// `[temporal, height, width]` frequency counts; they sum to `head_dim / 2`.
    pub mrope_section: Vec<usize>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct VisionConfig {
    pub depth: usize,
    pub embed_dim: usize,
    /// Output width of the patch merger, equal to the LLM's `hidden_size`.
    pub hidden_size: usize,
    #[serde(default = "default_vision_act")]
    pub hidden_act: String,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    pub num_heads: usize,
    // The released config carries both spellings of these two fields, so they cannot be
    // serde aliases of one another (that would be a duplicate-field error).
    #[serde(default)]
    in_channels: Option<usize>,
    #[serde(default)]
    in_chans: Option<usize>,
    #[serde(default)]
    patch_size: Option<usize>,
    #[serde(default)]
    spatial_patch_size: Option<usize>,
    #[serde(default = "default_merge")]
    pub spatial_merge_size: usize,
    #[serde(default = "default_temporal")]
    pub temporal_patch_size: usize,
}

fn default_vision_act() -> String {
    "quick_gelu".into()
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_merge() -> usize {
    2
}
fn default_temporal() -> usize {
    2
}

impl VisionConfig {
    pub fn in_channels(&self) -> usize {
        self.in_channels.or(self.in_chans).unwrap_or(3)
    }
    pub fn patch_size(&self) -> usize {
        self.patch_size.or(self.spatial_patch_size).unwrap_or(14)
    }
    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }
    /// Values in one flattened patch row: channels × temporal × patch².
    pub fn patch_row_len(&self) -> usize {
        self.in_channels() * self.temporal_patch_size * self.patch_size() * self.patch_size()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    pub rope_scaling: RopeScaling,
    pub vision_config: VisionConfig,
    #[serde(default = "default_vision_start")]
    pub vision_start_token_id: u32,
    #[serde(default = "default_vision_end")]
    pub vision_end_token_id: u32,
    #[serde(default = "default_image_token")]
    pub image_token_id: u32,
    #[serde(default = "default_video_token")]
    pub video_token_id: u32,
    #[serde(default)]
    pub torch_dtype: Option<String>,
    #[serde(default)]
    pub use_sliding_window: bool,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    1e6
}
fn default_vision_start() -> u32 {
    151652
}
fn default_vision_end() -> u32 {
    151653
}
fn default_image_token() -> u32 {
    151655
}
fn default_video_token() -> u32 {
    151656
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parses `config.json` text; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        let cfg: Config = parse_json(text, origin, |obj| {
            if let Some(serde_json::Value::Object(text_cfg)) = obj.remove("text_config") {
                obj.extend(text_cfg);
            }
        })?;
        cfg.validate().map_err(|msg| Error::Config {
            file: origin.to_string(),
            msg,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let hd = self.head_dim();
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        if self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return Err("num_attention_heads is not a multiple of num_key_value_heads".into());
        }
        let sections: usize = self.rope_scaling.mrope_section.iter().sum();
        if self.rope_scaling.mrope_section.len() != 3 || sections * 2 != hd {
            return Err(format!(
                "rope_scaling.mrope_section {:?} must have 3 entries summing to head_dim/2 = {}",
                self.rope_scaling.mrope_section,
                hd / 2
            ));
        }
        let v = &self.vision_config;
        if v.num_heads == 0
            || !v.embed_dim.is_multiple_of(v.num_heads)
            || !v.head_dim().is_multiple_of(4)
        {
            return Err("vision_config: embed_dim/num_heads must be a multiple of 4".into());
        }
        if v.hidden_size != self.hidden_size {
            return Err(format!(
                "vision_config.hidden_size {} differs from hidden_size {}",
                v.hidden_size, self.hidden_size
            ));
        }
        Ok(())
    }
}

/// Deserialises a JSON config after `adjust` has rewritten its top-level object (for
/// layout variants between transformers versions); errors name `origin`.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    adjust: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<T, Error> {
    let bad = |e: serde_json::Error| Error::Config {
        file: origin.to_string(),
        msg: e.to_string(),
    };
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
    if let Some(obj) = value.as_object_mut() {
        adjust(obj);
    }
    serde_json::from_value(value).map_err(bad)
}

/// `generation_config.json`: the decoding defaults a checkpoint ships with.
#[derive(Clone, Debug, Deserialize)]
pub struct GenerationConfig {
    #[serde(default)]
    pub do_sample: bool,
    #[serde(default = "one_f64")]
    pub temperature: f64,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default = "one_f64")]
    pub top_p: f64,
    #[serde(default = "one_f32")]
    pub repetition_penalty: f32,
    #[serde(default, deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<u32>,
}

fn one_f64() -> f64 {
    1.0
}
fn one_f32() -> f32 {
    1.0
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

impl Default for GenerationConfig {
    /// Qwen2-VL-Instruct's values, used when a folder has no `generation_config.json`.
    fn default() -> Self {
        Self {
            do_sample: true,
            temperature: 0.01,
            top_k: Some(1),
            top_p: 0.001,
            repetition_penalty: 1.0,
            eos_token_id: vec![151645, 151643],
        }
    }
}

impl GenerationConfig {
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::Config {
            file: origin.to_string(),
            msg: e.to_string(),
        })
    }
}
