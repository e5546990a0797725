//! `open_clip_config.json` as open_clip's hub export writes it: `{"model_cfg": …,
//! "preprocess_cfg": …}` (a bare model config is accepted too, as open_clip does).
//! Field names and defaults mirror `CLIPVisionCfg` / `CLIPTextCfg` / `PreprocessCfg` in
//! open_clip; options this port does not implement are rejected by [`ClipConfig::validate`]
//! instead of being silently ignored.

use serde::Deserialize;

use super::Error;

/// OpenAI CLIP's normalisation, open_clip's default (`OPENAI_DATASET_MEAN` / `_STD`),
/// digit for digit as released; f32 rounds them as torch does.
#[allow(clippy::excessive_precision)]
pub const OPENAI_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const OPENAI_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// `image_size` / `patch_size`: an int or an `[h, w]` pair.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Pair([usize; 2]),
}

impl Size2 {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Self::Square(s) => (s, s),
            Self::Pair([h, w]) => (h, w),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "d_vision_layers")]
    pub layers: serde_json::Value,
    #[serde(default = "d_vision_width")]
    pub width: usize,
    #[serde(default = "d_head_width")]
    pub head_width: usize,
    #[serde(default = "d_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "d_patch")]
    pub patch_size: Size2,
    #[serde(default = "d_image_size")]
    pub image_size: Size2,
    #[serde(default)]
    pub ls_init_value: Option<f64>,
    #[serde(default)]
    pub attentional_pool: bool,
    #[serde(default)]
    pub no_ln_pre: bool,
    #[serde(default = "d_learnable")]
    pub pos_embed_type: String,
    #[serde(default)]
    pub final_ln_after_pool: bool,
    #[serde(default = "d_tok")]
    pub pool_type: String,
    #[serde(default)]
    pub timm_model_name: Option<String>,
    #[serde(default)]
    pub act_kwargs: Option<serde_json::Value>,
    #[serde(default)]
    pub norm_kwargs: Option<serde_json::Value>,
    #[serde(default)]
    pub block_type: Option<String>,
    #[serde(default)]
    pub qk_norm: bool,
    #[serde(default)]
    pub scaled_cosine_attn: bool,
    #[serde(default)]
    pub scale_heads: bool,
    #[serde(default)]
    pub scale_attn_inner: bool,
    #[serde(default)]
    pub scale_attn: bool,
    #[serde(default)]
    pub scale_fc: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TextConfig {
    #[serde(default = "d_context")]
    pub context_length: usize,
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default)]
    pub hf_tokenizer_name: Option<String>,
    #[serde(default)]
    pub hf_model_name: Option<String>,
    #[serde(default)]
    pub tokenizer_kwargs: Option<serde_json::Value>,
    #[serde(default = "d_text_width")]
    pub width: usize,
    #[serde(default = "d_text_heads")]
    pub heads: usize,
    #[serde(default = "d_text_layers")]
    pub layers: usize,
    #[serde(default = "d_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default)]
    pub ls_init_value: Option<f64>,
    #[serde(default)]
    pub embed_cls: bool,
    #[serde(default)]
    pub no_causal_mask: bool,
    #[serde(default)]
    pub final_ln_after_pool: bool,
    #[serde(default = "d_argmax")]
    pub pool_type: String,
    #[serde(default = "d_eos_id")]
    pub eos_id: u32,
    #[serde(default)]
    pub proj_bias: bool,
    #[serde(default = "d_linear")]
    pub proj_type: String,
    #[serde(default)]
    pub act_kwargs: Option<serde_json::Value>,
    #[serde(default)]
    pub norm_kwargs: Option<serde_json::Value>,
    #[serde(default)]
    pub block_type: Option<String>,
    #[serde(default)]
    pub qk_norm: bool,
    #[serde(default)]
    pub scaled_cosine_attn: bool,
    #[serde(default)]
    pub scale_heads: bool,
    #[serde(default)]
    pub scale_attn_inner: bool,
    #[serde(default)]
    pub scale_attn: bool,
    #[serde(default)]
    pub scale_fc: bool,
}

/// `model_cfg`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelConfig {
    pub embed_dim: usize,
    /// OpenAI's original checkpoints use QuickGELU; OpenCLIP-trained ones (BMC_CLIP_CF,
    /// CommonPool, DataComp, LAION) use exact GELU, the default.
    #[serde(default)]
    pub quick_gelu: bool,
    pub vision_cfg: VisionConfig,
    pub text_cfg: TextConfig,
    /// Text tower in its own module (`text.*` weights) rather than flat in the CLIP module.
    #[serde(default)]
    pub custom_text: bool,
    #[serde(default)]
    pub init_logit_bias: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Shortest side to the target, then centre crop (open_clip's default).
    Shortest,
    /// Straight to the target size, aspect ratio not kept.
    Squash,
}

/// `preprocess_cfg`, with open_clip's `PreprocessCfg` defaults.
#[derive(Clone, Debug, Deserialize)]
pub struct PreprocessConfig {
    #[serde(default)]
    pub size: Option<Size2>,
    #[serde(default = "d_mean")]
    pub mean: Vec<f32>,
    #[serde(default = "d_std")]
    pub std: Vec<f32>,
    #[serde(default = "d_bicubic")]
    pub interpolation: String,
    #[serde(default = "d_shortest")]
    pub resize_mode: String,
    #[serde(default)]
    pub fill_color: u8,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            size: None,
            mean: d_mean(),
            std: d_std(),
            interpolation: d_bicubic(),
            resize_mode: d_shortest(),
            fill_color: 0,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug)]
pub struct ClipConfig {
    pub model: ModelConfig,
    pub preprocess: PreprocessConfig,
}

#[derive(Deserialize)]
struct HubFile {
    model_cfg: ModelConfig,
    #[serde(default)]
    preprocess_cfg: PreprocessConfig,
}

impl ClipConfig {
    /// Parses and validates; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, Error> {
        let bad = |msg: String| Error::Config {
            file: origin.to_string(),
            msg,
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let cfg = if v.get("model_cfg").is_some() {
            let f: HubFile = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
            Self {
                model: f.model_cfg,
                preprocess: f.preprocess_cfg,
            }
        } else {
            let model: ModelConfig = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
            Self {
                model,
                preprocess: PreprocessConfig::default(),
            }
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Rejects what this port does not implement, naming the option.
    pub fn validate(&self) -> Result<(), String> {
        let v = &self.model.vision_cfg;
        let t = &self.model.text_cfg;
        let mut unsupported = Vec::new();
        let mut flag = |on: bool, name: &str| {
            if on {
                unsupported.push(name.to_string());
            }
        };
        flag(v.timm_model_name.is_some(), "vision_cfg.timm_model_name");
        flag(!v.layers.is_u64(), "vision_cfg.layers (ResNet towers)");
        flag(v.attentional_pool, "vision_cfg.attentional_pool");
        flag(
            v.pos_embed_type != "learnable",
            "vision_cfg.pos_embed_type other than learnable",
        );
        flag(
            !matches!(v.pool_type.as_str(), "tok" | "avg"),
            "vision_cfg.pool_type other than tok/avg",
        );
        for (side, b, kw) in [
            (
                "vision_cfg",
                custom_block(v),
                (&v.act_kwargs, &v.norm_kwargs),
            ),
            (
                "text_cfg",
                custom_text_block(t),
                (&t.act_kwargs, &t.norm_kwargs),
            ),
        ] {
            flag(
                b,
                &format!("{side} custom attention blocks (qk_norm, scale_*)"),
            );
            flag(
                kw.0.as_ref().is_some_and(|k| !k.is_null()),
                &format!("{side}.act_kwargs"),
            );
            flag(
                kw.1.as_ref().is_some_and(|k| !k.is_null()),
                &format!("{side}.norm_kwargs"),
            );
        }
        flag(
            t.hf_model_name.is_some(),
            "text_cfg.hf_model_name (HF text towers)",
        );
        flag(
            t.hf_tokenizer_name.is_some(),
            "text_cfg.hf_tokenizer_name (only OpenCLIP's SimpleTokenizer is implemented)",
        );
        let clean = t
            .tokenizer_kwargs
            .as_ref()
            .and_then(|k| k.get("clean"))
            .and_then(|c| c.as_str());
        flag(
            clean.is_some_and(|c| c != "lower"),
            "text_cfg.tokenizer_kwargs.clean other than lower",
        );
        flag(
            t.tokenizer_kwargs
                .as_ref()
                .and_then(|k| k.get("reduction_mask"))
                .and_then(|c| c.as_str())
                .is_some_and(|c| !c.is_empty()),
            "text_cfg.tokenizer_kwargs.reduction_mask",
        );
        flag(t.embed_cls, "text_cfg.embed_cls");
        flag(
            !matches!(t.pool_type.as_str(), "argmax" | "first" | "last" | "eos"),
            "text_cfg.pool_type",
        );
        flag(
            !matches!(t.proj_type.as_str(), "linear" | "none"),
            "text_cfg.proj_type other than linear/none",
        );
        flag(
            self.preprocess.interpolation != "bicubic",
            "preprocess_cfg.interpolation other than bicubic",
        );
        flag(
            !matches!(self.preprocess.resize_mode.as_str(), "shortest" | "squash"),
            "preprocess_cfg.resize_mode other than shortest/squash",
        );
        let (in_h, in_w) = self.input_hw();
        flag(
            self.preprocess.resize_mode == "shortest" && in_h != in_w,
            "a non-square input with resize_mode shortest",
        );
        if !unsupported.is_empty() {
            return Err(format!("unsupported: {}", unsupported.join(", ")));
        }
        let (ih, iw) = v.image_size.hw();
        let (ph, pw) = v.patch_size.hw();
        if ph == 0 || pw == 0 || !ih.is_multiple_of(ph) || !iw.is_multiple_of(pw) {
            // open_clip floors the grid; a partial patch would be dropped silently there.
            return Err(format!(
                "image_size {ih}x{iw} is not a multiple of patch_size {ph}x{pw}"
            ));
        }
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            return Err(format!(
                "vision width {} is not a multiple of head_width {}",
                v.width, v.head_width
            ));
        }
        if t.heads == 0 || !t.width.is_multiple_of(t.heads) {
            return Err(format!(
                "text width {} is not a multiple of heads {}",
                t.width, t.heads
            ));
        }
        if self.preprocess.mean.len() != 3 || self.preprocess.std.len() != 3 {
            return Err("preprocess_cfg mean and std need 3 values".into());
        }
        if t.context_length < 2 {
            return Err("text_cfg.context_length must be at least 2".into());
        }
        Ok(())
    }

    pub fn vision_layers(&self) -> usize {
        self.model
            .vision_cfg
            .layers
            .as_u64()
            .map_or(0, |l| l as usize)
    }

    /// The model input `(height, width)`: `preprocess_cfg.size` if given, else the vision
    /// tower's `image_size`.
    pub fn input_hw(&self) -> (usize, usize) {
        self.preprocess
            .size
            .unwrap_or(self.model.vision_cfg.image_size)
            .hw()
    }

    pub fn resize_mode(&self) -> ResizeMode {
        if self.preprocess.resize_mode == "squash" {
            ResizeMode::Squash
        } else {
            ResizeMode::Shortest
        }
    }

    pub fn mean(&self) -> [f32; 3] {
        let m = &self.preprocess.mean;
        [m[0], m[1], m[2]]
    }

    pub fn std(&self) -> [f32; 3] {
        let s = &self.preprocess.std;
        [s[0], s[1], s[2]]
    }
}

/// `int(width * mlp_ratio)` as Python computes it.
pub fn mlp_width(width: usize, ratio: f64) -> usize {
    (width as f64 * ratio) as usize
}

fn custom_block(v: &VisionConfig) -> bool {
    v.block_type.as_deref().is_some_and(|b| b != "default")
        || v.qk_norm
        || v.scaled_cosine_attn
        || v.scale_heads
        || v.scale_attn_inner
        || v.scale_attn
        || v.scale_fc
}

fn custom_text_block(t: &TextConfig) -> bool {
    t.block_type.as_deref().is_some_and(|b| b != "default")
        || t.qk_norm
        || t.scaled_cosine_attn
        || t.scale_heads
        || t.scale_attn_inner
        || t.scale_attn
        || t.scale_fc
}

fn d_vision_layers() -> serde_json::Value {
    serde_json::Value::from(12)
}
fn d_vision_width() -> usize {
    768
}
fn d_head_width() -> usize {
    64
}
fn d_mlp_ratio() -> f64 {
    4.0
}
fn d_patch() -> Size2 {
    Size2::Square(16)
}
fn d_image_size() -> Size2 {
    Size2::Square(224)
}
fn d_learnable() -> String {
    "learnable".into()
}
fn d_tok() -> String {
    "tok".into()
}
fn d_context() -> usize {
    77
}
fn d_vocab() -> usize {
    49408
}
fn d_text_width() -> usize {
    512
}
fn d_text_heads() -> usize {
    8
}
fn d_text_layers() -> usize {
    12
}
fn d_argmax() -> String {
    "argmax".into()
}
fn d_eos_id() -> u32 {
    2
}
fn d_linear() -> String {
    "linear".into()
}
fn d_mean() -> Vec<f32> {
    OPENAI_MEAN.to_vec()
}
fn d_std() -> Vec<f32> {
    OPENAI_STD.to_vec()
}
fn d_bicubic() -> String {
    "bicubic".into()
}
fn d_shortest() -> String {
    "shortest".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_l_14_defaults() {
        let text = r#"{"embed_dim": 768, "vision_cfg": {"image_size": 224, "layers": 24,
            "width": 1024, "patch_size": 14}, "text_cfg": {"context_length": 77,
            "vocab_size": 49408, "width": 768, "heads": 12, "layers": 12}}"#;
        let c = ClipConfig::from_json(text, "x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.vision_layers(), 24);
        assert_eq!(c.model.vision_cfg.head_width, 64);
        assert!(!c.model.quick_gelu);
        assert_eq!(c.input_hw(), (224, 224));
        assert_eq!(c.mean(), OPENAI_MEAN);
        assert_eq!(mlp_width(1024, 4.0), 4096);
    }

    #[test]
    fn unsupported_options_are_named() {
        let text = r#"{"embed_dim": 8, "vision_cfg": {"attentional_pool": true},
            "text_cfg": {"embed_cls": true}}"#;
        let e = ClipConfig::from_json(text, "cfg.json")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("cfg.json") && e.contains("attentional_pool") && e.contains("embed_cls")
        );
    }
}
