//! The Qwen2-VL vision tower: patch embedding, 2-D rotary ViT blocks with attention
//! inside each image only, and the 2×2 patch merger into the LLM width.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder, layer_norm};

use super::linear::{Linear, linear};

use super::config::VisionConfig;

fn activation(name: &str, x: &Tensor) -> Result<Tensor> {
    match name {
        // x · sigmoid(1.702 x)
        "quick_gelu" => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        "gelu" => x.gelu_erf(),
        "gelu_pytorch_tanh" | "gelu_new" => x.gelu(),
        "silu" => x.silu(),
        other => candle_core::bail!("unsupported vision hidden_act {other:?}"),
    }
}

struct VisionAttention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl VisionAttention {
    fn new(cfg: &VisionConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let d = cfg.embed_dim;
        Ok(Self {
            qkv: linear(d, 3 * d, vb.pp("qkv"))?,
            proj: linear(d, d, vb.pp("proj"))?,
            heads: cfg.num_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// `x`: `[patches, dim]`; `spans`: patch ranges that attend to each other.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        let n = x.dim(0)?;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((n, 3, self.heads, self.head_dim))?
            .permute((1, 2, 0, 3))?; // [3, heads, n, hd]
        let rot = |t: Tensor| -> Result<Tensor> {
            let dtype = t.dtype();
            let t = t.to_dtype(DType::F32)?.unsqueeze(0)?.contiguous()?;
            candle_nn::rotary_emb::rope(&t, cos, sin)?
                .squeeze(0)?
                .to_dtype(dtype)
        };
        let q = rot(qkv.get(0)?)?;
        let k = rot(qkv.get(1)?)?;
        let v = qkv.get(2)?.contiguous()?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut outs = Vec::with_capacity(spans.len());
        for &(s, e) in spans {
            let q = q.narrow(1, s, e - s)?;
            let k = k.narrow(1, s, e - s)?;
            let v = v.narrow(1, s, e - s)?;
            let scores = (q.matmul(&k.t()?)? * scale)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?
                .to_dtype(v.dtype())?;
            outs.push(probs.matmul(&v)?); // [heads, len, hd]
        }
        let out = Tensor::cat(&outs, 1)?
            .transpose(0, 1)?
            .reshape((n, self.heads * self.head_dim))?;
        self.proj.forward(&out)
    }
}

struct VisionBlock {
    norm1: LayerNorm,
    norm2: LayerNorm,
    attn: VisionAttention,
    fc1: Linear,
    fc2: Linear,
    act: String,
}

impl VisionBlock {
    fn new(cfg: &VisionConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let d = cfg.embed_dim;
        Ok(Self {
            norm1: layer_norm(d, 1e-6, vb.pp("norm1"))?,
            norm2: layer_norm(d, 1e-6, vb.pp("norm2"))?,
            attn: VisionAttention::new(cfg, vb.pp("attn"))?,
            fc1: linear(d, cfg.mlp_hidden(), vb.pp("mlp.fc1"))?,
            fc2: linear(cfg.mlp_hidden(), d, vb.pp("mlp.fc2"))?,
            act: cfg.hidden_act.clone(),
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        let x = (x + self
            .attn
            .forward(&self.norm1.forward(x)?, cos, sin, spans)?)?;
        let h = activation(&self.act, &self.fc1.forward(&self.norm2.forward(&x)?)?)?;
        x + self.fc2.forward(&h)?
    }
}

struct PatchMerger {
    ln_q: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    merged: usize,
}

impl PatchMerger {
    fn new(cfg: &VisionConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let merged = cfg.embed_dim * cfg.spatial_merge_size * cfg.spatial_merge_size;
        Ok(Self {
            ln_q: layer_norm(cfg.embed_dim, 1e-6, vb.pp("ln_q"))?,
            fc1: linear(merged, merged, vb.pp("mlp.0"))?,
            fc2: linear(merged, cfg.hidden_size, vb.pp("mlp.2"))?,
            merged,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Consecutive rows are one 2×2 window (the processor's patch order).
        let x = self.ln_q.forward(x)?.reshape(((), self.merged))?;
        self.fc2.forward(&self.fc1.forward(&x)?.gelu_erf()?)
    }
}

pub struct VisionTower {
    patch_embed: Linear,
    blocks: Vec<VisionBlock>,
    merger: PatchMerger,
    cfg: VisionConfig,
    device: Device,
    dtype: DType,
}

/// Intermediate outputs, for parity tests against the reference.
pub struct VisionTrace {
    pub patch_embeds: Tensor,
    pub block_outputs: Vec<Tensor>,
}

impl VisionTower {
    pub fn new(cfg: &VisionConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let (c, t, p) = (cfg.in_channels(), cfg.temporal_patch_size, cfg.patch_size());
        // The Conv3d has kernel = stride = (t, p, p) over rows already cut to that size,
        // so it is a Linear over the flattened (C, T, p, p) row.
        let w = vb
            .pp("patch_embed.proj")
            .get((cfg.embed_dim, c, t, p, p), "weight")?
            .reshape((cfg.embed_dim, c * t * p * p))?;
        let blocks = (0..cfg.depth)
            .map(|i| VisionBlock::new(cfg, vb.pp(format!("blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed: Linear::new(w, None),
            blocks,
            merger: PatchMerger::new(cfg, vb.pp("merger"))?,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// cos/sin tables `[patches, head_dim/2]` of the 2-D rotary embedding: the first
    /// half of the frequencies turn with the patch row, the second with the column, in
    /// the processor's 2×2-window order.
    fn rotary(&self, grids: &[[usize; 3]]) -> Result<(Tensor, Tensor)> {
        let rot_dim = self.cfg.head_dim() / 2;
        let n_freq = rot_dim / 2;
        // As the reference: f32 powers and f32 products.
        let inv_freq: Vec<f32> = (0..n_freq)
            .map(|j| 1.0 / 10000f32.powf((2 * j) as f32 / rot_dim as f32))
            .collect();
        let m = self.cfg.spatial_merge_size;
        let total: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
        let mut cos = Vec::with_capacity(total * rot_dim);
        let mut sin = Vec::with_capacity(total * rot_dim);
        for &[t, h, w] in grids {
            for _ in 0..t {
                for bh in 0..h / m {
                    for bw in 0..w / m {
                        for ih in 0..m {
                            for iw in 0..m {
                                let (row, col) = ((bh * m + ih) as f32, (bw * m + iw) as f32);
                                for pos in [row, col] {
                                    for &f in &inv_freq {
                                        let a = pos * f;
                                        cos.push(a.cos());
                                        sin.push(a.sin());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let cos = Tensor::from_vec(cos, (total, rot_dim), &self.device)?;
        let sin = Tensor::from_vec(sin, (total, rot_dim), &self.device)?;
        Ok((cos, sin))
    }

    /// `pixel_values`: `[patches, C·T·p·p]`; returns `[patches / merge², hidden]`.
    pub fn forward(&self, pixel_values: &Tensor, grids: &[[usize; 3]]) -> Result<Tensor> {
        self.forward_traced(pixel_values, grids, None)
    }

    pub fn forward_traced(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
        mut trace: Option<&mut VisionTrace>,
    ) -> Result<Tensor> {
        let (cos, sin) = self.rotary(grids)?;
        // Attention spans: each frame of each image attends only to itself.
        let mut spans = Vec::new();
        let mut s = 0;
        for &[t, h, w] in grids {
            for _ in 0..t {
                spans.push((s, s + h * w));
                s += h * w;
            }
        }
        if s != pixel_values.dim(0)? {
            candle_core::bail!(
                "pixel_values has {} rows but the grids describe {s} patches",
                pixel_values.dim(0)?
            );
        }
        let mut x = self
            .patch_embed
            .forward(&pixel_values.to_dtype(self.dtype)?)?;
        if let Some(t) = trace.as_deref_mut() {
            t.patch_embeds = x.clone();
        }
        for block in &self.blocks {
            x = block.forward(&x, &cos, &sin, &spans)?;
            if let Some(t) = trace.as_deref_mut() {
                t.block_outputs.push(x.clone());
            }
        }
        self.merger.forward(&x)
    }

    pub fn dims_ok(&self, x: &Tensor) -> Result<()> {
        let want = self.cfg.patch_row_len();
        if x.dim(D::Minus1)? != want {
            candle_core::bail!("pixel rows have {} values, expected {want}", x.dim(1)?);
        }
        Ok(())
    }
}
