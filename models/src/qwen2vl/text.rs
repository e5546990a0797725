//! The Qwen2 decoder with multimodal (sectioned) rotary positions and a KV cache.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm, VarBuilder, rms_norm};

use super::linear::{Linear, linear, linear_no_bias};

use super::config::Config;

/// Rotary tables for the M-RoPE: frequency `j` turns with the temporal, height or width
/// position depending on which `mrope_section` it falls in (the same split applies to
/// both halves of the head, as `rotate_half` pairs `j` with `j + head_dim/2`).
pub struct MRope {
    inv_freq: Vec<f32>,
    /// Axis (0 = t, 1 = h, 2 = w) of each frequency.
    axis: Vec<usize>,
}

impl MRope {
    pub fn new(cfg: &Config) -> Self {
        let hd = cfg.head_dim();
        // As the reference: theta^(2j/d) in f32, then its reciprocal.
        let theta = cfg.rope_theta as f32;
        let inv_freq = (0..hd / 2)
            .map(|j| 1.0 / theta.powf((2 * j) as f32 / hd as f32))
            .collect();
        let mut axis = Vec::with_capacity(hd / 2);
        for (a, &n) in cfg.rope_scaling.mrope_section.iter().enumerate() {
            axis.extend(std::iter::repeat_n(a, n));
        }
        Self { inv_freq, axis }
    }

    /// cos/sin `[len, head_dim/2]` for positions `[t, h, w]` of each token.
    pub fn tables(
        &self,
        positions: [&[i64]; 3],
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let len = positions[0].len();
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for i in 0..len {
            for (&f, &a) in self.inv_freq.iter().zip(&self.axis) {
                let angle = positions[a].get(i).copied().unwrap_or(0) as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (len, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (len, half), device)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    cache: Option<(Tensor, Tensor)>,
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder<'_>) -> Result<Self> {
        let h = cfg.hidden_size;
        let hd = cfg.head_dim();
        let kv = cfg.num_key_value_heads * hd;
        Ok(Self {
            q: linear(h, cfg.num_attention_heads * hd, vb.pp("q_proj"))?,
            k: linear(h, kv, vb.pp("k_proj"))?,
            v: linear(h, kv, vb.pp("v_proj"))?,
            o: linear_no_bias(cfg.num_attention_heads * hd, h, vb.pp("o_proj"))?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim: hd,
            cache: None,
        })
    }

    fn forward(
        &mut self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let split = |t: Tensor, n: usize| -> Result<Tensor> {
            t.reshape((b, l, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.q.forward(x)?, self.heads)?;
        let k = split(self.k.forward(x)?, self.kv_heads)?;
        let v = split(self.v.forward(x)?, self.kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = match &self.cache {
            Some((ck, cv)) => (Tensor::cat(&[ck, &k], 2)?, Tensor::cat(&[cv, &v], 2)?),
            None => (k, v),
        };
        self.cache = Some((k.clone(), v.clone()));
        let rep = self.heads / self.kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, l, self.heads * self.head_dim))?;
        self.o.forward(&out)
    }
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn new(cfg: &Config, vb: VarBuilder<'_>) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate: linear_no_bias(h, i, vb.pp("gate_proj"))?,
            up: linear_no_bias(h, i, vb.pp("up_proj"))?,
            down: linear_no_bias(i, h, vb.pp("down_proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate.forward(x)?.silu()?;
        self.down.forward(&(g * self.up.forward(x)?)?)
    }
}

struct DecoderLayer {
    attn: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_norm: RmsNorm,
}

impl DecoderLayer {
    fn new(cfg: &Config, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            attn: Attention::new(cfg, vb.pp("self_attn"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
            input_norm: rms_norm(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("input_layernorm"))?,
            post_norm: rms_norm(
                cfg.hidden_size,
                cfg.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
        })
    }

    fn forward(
        &mut self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let h = self
            .attn
            .forward(&self.input_norm.forward(x)?, cos, sin, mask)?;
        let x = (x + h)?;
        let h = self.mlp.forward(&self.post_norm.forward(&x)?)?;
        x + h
    }
}

pub struct TextModel {
    embed: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: MRope,
    hidden: usize,
    device: Device,
    dtype: DType,
}

impl TextModel {
    /// `vb` is the decoder's prefix (`model` or `model.language_model`); `head` is where
    /// `lm_head` lives, ignored when the embeddings are tied.
    pub fn new(cfg: &Config, vb: VarBuilder<'_>, head: VarBuilder<'_>) -> Result<Self> {
        let embed_w = vb.get((cfg.vocab_size, cfg.hidden_size), "embed_tokens.weight")?;
        let embed = Embedding::new(embed_w.clone(), cfg.hidden_size);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::new(cfg, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::new(embed_w, None)
        } else {
            linear_no_bias(cfg.hidden_size, cfg.vocab_size, head)?
        };
        Ok(Self {
            embed,
            layers,
            norm: rms_norm(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            lm_head,
            rope: MRope::new(cfg),
            hidden: cfg.hidden_size,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(ids, &self.device)?;
        self.embed.forward(&ids)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn clear_cache(&mut self) {
        for l in &mut self.layers {
            l.attn.cache = None;
        }
    }

    /// Tokens already in the KV cache.
    pub fn cache_len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.attn.cache.as_ref())
            .and_then(|(k, _)| k.dim(2).ok())
            .unwrap_or(0)
    }

    /// Runs `embeds` `[L, hidden]` after what the cache holds. Returns the final-normed
    /// hidden states `[L, hidden]`, or `None` when `stop` said so between layers (the
    /// cache is then cleared, since it holds a partial step). `trace` receives the input
    /// and every layer's output (the last one normed), as transformers' `hidden_states`.
    pub fn forward(
        &mut self,
        embeds: &Tensor,
        positions: [&[i64]; 3],
        stop: &dyn Fn() -> bool,
        mut trace: Option<&mut Vec<Tensor>>,
    ) -> Result<Option<Tensor>> {
        let l = embeds.dim(0)?;
        let offset = self.cache_len();
        let (cos, sin) = self.rope.tables(positions, self.dtype, &self.device)?;
        let mask = if l > 1 {
            let mut m = vec![0f32; l * (offset + l)];
            for i in 0..l {
                for j in offset + i + 1..offset + l {
                    m[i * (offset + l) + j] = f32::NEG_INFINITY;
                }
            }
            Some(Tensor::from_vec(m, (l, offset + l), &self.device)?)
        } else {
            None
        };
        let mut x = embeds.to_dtype(self.dtype)?.unsqueeze(0)?;
        if let Some(t) = trace.as_deref_mut() {
            t.push(x.squeeze(0)?);
        }
        let n = self.layers.len();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if stop() {
                self.clear_cache();
                return Ok(None);
            }
            x = layer.forward(&x, &cos, &sin, mask.as_ref())?;
            if let Some(t) = trace.as_deref_mut()
                && i + 1 < n
            {
                t.push(x.squeeze(0)?);
            }
        }
        let x = self.norm.forward(&x)?.squeeze(0)?;
        if let Some(t) = trace {
            t.push(x.clone());
        }
        Ok(Some(x))
    }

    /// Logits `[rows, vocab]` in f32 for final hidden states `[rows, hidden]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        debug_assert_eq!(hidden.dim(D::Minus1).ok(), Some(self.hidden));
        self.lm_head.forward(hidden)?.to_dtype(DType::F32)
    }
}
