//! The OpenCLIP ViT `CLIP` module on candle: a vision transformer (patch embedding,
//! class token, learned positions, pre-norm residual attention blocks, CLS pooling,
//! projection) and a causal text transformer pooled at the end-of-text token. Weight
//! names are open_clip's `state_dict` names.

use candle_core::{D, DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder, layer_norm};
use rayon::prelude::*;

use super::config::{ClipConfig, mlp_width};

/// torch's `nn.LayerNorm` default, which open_clip keeps.
const LN_EPS: f64 = 1e-5;

/// A linear layer applied as one 2-D matmul over all leading dimensions (a single large
/// gemm instead of a batched one).
#[derive(Clone, Debug)]
struct Lin {
    w: Tensor,
    b: Option<Tensor>,
}

impl Lin {
    fn new(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder<'_>) -> Result<Self> {
        let w = vb.get((out_dim, in_dim), "weight")?;
        let b = if bias {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Ok(Self { w, b })
    }

    fn forward_no_bias(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let last = *dims.last().unwrap_or(&1);
        let rows = x.elem_count() / last.max(1);
        let y = x
            .contiguous()?
            .reshape((rows, last))?
            .matmul(&self.w.t()?)?;
        let mut out = dims;
        if let Some(l) = out.last_mut() {
            *l = self.w.dim(0)?;
        }
        y.reshape(out)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.forward_no_bias(x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Act {
    /// Exact GELU (erf), torch's `nn.GELU()`.
    Gelu,
    /// OpenAI's `x · sigmoid(1.702 x)`.
    QuickGelu,
}

impl Act {
    fn scalar(self, v: f32) -> f32 {
        match self {
            // candle's `gelu_erf` formula, so both paths agree bit for bit.
            Self::Gelu => {
                (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0)
                    * 0.5
                    * v
            }
            Self::QuickGelu => v / (1.0 + (-1.702 * v).exp()),
        }
    }

    /// `act(x + bias)` over the last dimension. Candle's CPU element-wise ops run on one
    /// thread; for f32 on the CPU this fuses the bias and spreads the rows over rayon
    /// (the MLP activation is the largest element-wise pass in a ViT-L layer).
    fn forward_bias(self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let n = x.dim(D::Minus1)?;
            let b = match bias {
                Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
                None => vec![0.0; n],
            };
            let mut v = x.flatten_all()?.to_vec1::<f32>()?;
            v.par_chunks_mut(n.max(1) * 64).for_each(|rows| {
                for row in rows.chunks_mut(n) {
                    for (y, &bb) in row.iter_mut().zip(&b) {
                        *y = self.scalar(*y + bb);
                    }
                }
            });
            return Tensor::from_vec(v, x.shape(), x.device());
        }
        let x = match bias {
            Some(b) => x.broadcast_add(b)?,
            None => x.clone(),
        };
        match self {
            Self::Gelu => x.gelu_erf(),
            Self::QuickGelu => x.mul(&candle_nn::ops::sigmoid(&(&x * 1.702)?)?),
        }
    }
}

/// Softmax over the last dimension, with an optional causal mask (row `i` sees columns
/// `0..=i` of a square `[…, l, l]` block), in parallel over rows for f32 on the CPU.
/// Same arithmetic as the reference: max-subtracted exp, divided by the sum.
fn softmax_rows(att: &Tensor, causal: bool) -> Result<Tensor> {
    if !(att.device().is_cpu() && att.dtype() == DType::F32) {
        let att = if causal {
            let l = att.dim(D::Minus1)?;
            let m: Vec<f32> = (0..l)
                .flat_map(|i| (0..l).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            att.broadcast_add(&Tensor::from_vec(m, (l, l), att.device())?.to_dtype(att.dtype())?)?
        } else {
            att.clone()
        };
        return candle_nn::ops::softmax_last_dim(&att);
    }
    let l = att.dim(D::Minus1)?;
    let mut v = att.flatten_all()?.to_vec1::<f32>()?;
    v.par_chunks_mut(l * 16).enumerate().for_each(|(c, rows)| {
        for (r, row) in rows.chunks_mut(l).enumerate() {
            let i = (c * 16 + r) % l;
            let valid = if causal { i + 1 } else { l };
            let (keep, masked) = row.split_at_mut(valid);
            let max = keep.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for y in keep.iter_mut() {
                *y = (*y - max).exp();
                sum += *y;
            }
            for y in keep.iter_mut() {
                *y /= sum;
            }
            masked.fill(0.0);
        }
    });
    Tensor::from_vec(v, att.shape(), att.device())
}

/// open_clip's `ResidualAttentionBlock` with torch's `nn.MultiheadAttention` (packed
/// `in_proj` q/k/v, `out_proj`), optional LayerScale.
#[derive(Clone, Debug)]
struct Block {
    ln_1: LayerNorm,
    in_proj: Lin,
    out_proj: Lin,
    ln_2: LayerNorm,
    c_fc: Lin,
    c_proj: Lin,
    ls_1: Option<Tensor>,
    ls_2: Option<Tensor>,
    heads: usize,
    act: Act,
}

impl Block {
    fn new(
        width: usize,
        heads: usize,
        mlp_ratio: f64,
        layer_scale: bool,
        act: Act,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let attn = vb.pp("attn");
        let in_proj = Lin {
            w: attn.get((3 * width, width), "in_proj_weight")?,
            b: Some(attn.get(3 * width, "in_proj_bias")?),
        };
        let hidden = mlp_width(width, mlp_ratio);
        let ls = |name: &str| -> Result<Option<Tensor>> {
            if layer_scale {
                Ok(Some(vb.pp(name).get(width, "gamma")?))
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            ln_1: layer_norm(width, LN_EPS, vb.pp("ln_1"))?,
            in_proj,
            out_proj: Lin::new(width, width, true, attn.pp("out_proj"))?,
            ln_2: layer_norm(width, LN_EPS, vb.pp("ln_2"))?,
            c_fc: Lin::new(width, hidden, true, vb.pp("mlp").pp("c_fc"))?,
            c_proj: Lin::new(hidden, width, true, vb.pp("mlp").pp("c_proj"))?,
            ls_1: ls("ls_1")?,
            ls_2: ls("ls_2")?,
            heads,
            act,
        })
    }

    fn attention(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let hd = d / self.heads;
        let qkv = self
            .in_proj
            .forward(x)?
            .reshape((b, l, 3, self.heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let q = (qkv.i(0)?.contiguous()? * scale)?;
        let k = qkv.i(1)?.contiguous()?;
        let v = qkv.i(2)?.contiguous()?;
        let att = softmax_rows(&q.matmul(&k.t()?)?, causal)?;
        let o = att.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out_proj.forward(&o)
    }

    fn forward(&self, x: &Tensor, causal: bool) -> Result<Tensor> {
        let a = self.attention(&self.ln_1.forward(x)?, causal)?;
        let a = match &self.ls_1 {
            Some(g) => a.broadcast_mul(g)?,
            None => a,
        };
        let x = (x + a)?;
        let h = self.c_fc.forward_no_bias(&self.ln_2.forward(&x)?)?;
        let h = self.act.forward_bias(&h, self.c_fc.b.as_ref())?;
        let m = self.c_proj.forward(&h)?;
        let m = match &self.ls_2 {
            Some(g) => m.broadcast_mul(g)?,
            None => m,
        };
        x + m
    }
}

fn blocks(
    n: usize,
    width: usize,
    heads: usize,
    mlp_ratio: f64,
    layer_scale: bool,
    act: Act,
    vb: VarBuilder<'_>,
) -> Result<Vec<Block>> {
    (0..n)
        .map(|i| {
            Block::new(
                width,
                heads,
                mlp_ratio,
                layer_scale,
                act,
                vb.pp("transformer.resblocks").pp(i),
            )
        })
        .collect()
}

#[derive(Clone, Debug)]
struct VisionTower {
    /// `conv1.weight` `[width, 3, ph, pw]` as a `[width, 3·ph·pw]` matrix.
    patch_w: Tensor,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: Option<LayerNorm>,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
    proj: Tensor,
    patch: (usize, usize),
    grid: (usize, usize),
    width: usize,
    avg_pool: bool,
    final_ln_after_pool: bool,
}

impl VisionTower {
    fn new(cfg: &ClipConfig, act: Act, vb: VarBuilder<'_>) -> Result<Self> {
        let v = &cfg.model.vision_cfg;
        let (ph, pw) = v.patch_size.hw();
        let (ih, iw) = v.image_size.hw();
        let grid = (ih / ph, iw / pw);
        let width = v.width;
        let patch_w = vb
            .get((width, 3, ph, pw), "conv1.weight")?
            .reshape((width, 3 * ph * pw))?;
        let n_pos = grid.0 * grid.1 + 1;
        let proj = vb.get((width, cfg.model.embed_dim), "proj")?;
        Ok(Self {
            patch_w,
            class_embedding: vb.get(width, "class_embedding")?,
            positional_embedding: vb.get((n_pos, width), "positional_embedding")?,
            ln_pre: if v.no_ln_pre {
                None
            } else {
                Some(layer_norm(width, LN_EPS, vb.pp("ln_pre"))?)
            },
            blocks: blocks(
                cfg.vision_layers(),
                width,
                width / v.head_width,
                v.mlp_ratio,
                v.ls_init_value.is_some(),
                act,
                vb.clone(),
            )?,
            ln_post: layer_norm(width, LN_EPS, vb.pp("ln_post"))?,
            proj,
            patch: (ph, pw),
            grid,
            width,
            avg_pool: v.pool_type == "avg",
            final_ln_after_pool: v.final_ln_after_pool,
        })
    }

    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = pixels.dims4()?;
        let (ph, pw) = self.patch;
        let (gh, gw) = (h / ph, w / pw);
        if (gh, gw) != self.grid || c != 3 {
            candle_core::bail!(
                "pixels {:?} do not fit the vision tower ({}x{} patches of {ph}x{pw})",
                pixels.dims(),
                self.grid.0,
                self.grid.1
            );
        }
        // Conv2d with stride = kernel is a matmul over non-overlapping patches, each
        // flattened channel-major like the kernel.
        let patches = pixels
            .reshape((b, c, gh, ph, gw, pw))?
            .permute([0, 2, 4, 1, 3, 5])?
            .contiguous()?
            .reshape((b * gh * gw, c * ph * pw))?;
        let x = patches
            .matmul(&self.patch_w.t()?)?
            .reshape((b, gh * gw, self.width))?;
        let cls = self
            .class_embedding
            .reshape((1, 1, self.width))?
            .broadcast_as((b, 1, self.width))?;
        let mut x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.positional_embedding)?;
        if let Some(ln) = &self.ln_pre {
            x = ln.forward(&x)?;
        }
        for blk in &self.blocks {
            x = blk.forward(&x, false)?;
        }
        let pooled = if self.avg_pool {
            let n = x.dim(1)?;
            if self.final_ln_after_pool {
                self.ln_post.forward(&x.narrow(1, 1, n - 1)?.mean(1)?)?
            } else {
                self.ln_post.forward(&x)?.narrow(1, 1, n - 1)?.mean(1)?
            }
        } else {
            // LayerNorm is per token, so normalising only the class token is the same.
            self.ln_post.forward(&x.i((.., 0))?.contiguous()?)?
        };
        pooled.matmul(&self.proj)
    }
}

#[derive(Clone, Debug)]
enum TextProj {
    Matrix(Tensor),
    Linear(Lin),
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextPool {
    Argmax,
    Eos(u32),
    First,
    Last,
}

#[derive(Clone, Debug)]
struct TextTower {
    token_embedding: Tensor,
    positional_embedding: Tensor,
    blocks: Vec<Block>,
    ln_final: LayerNorm,
    proj: TextProj,
    pool: TextPool,
    causal: bool,
    context_length: usize,
    vocab_size: usize,
}

impl TextTower {
    fn new(cfg: &ClipConfig, act: Act, vb: VarBuilder<'_>) -> Result<Self> {
        let t = &cfg.model.text_cfg;
        let proj = if t.proj_type == "none" {
            TextProj::None
        } else if vb.contains_tensor("text_projection.weight") {
            TextProj::Linear(Lin::new(
                t.width,
                cfg.model.embed_dim,
                t.proj_bias,
                vb.pp("text_projection"),
            )?)
        } else {
            TextProj::Matrix(vb.get((t.width, cfg.model.embed_dim), "text_projection")?)
        };
        Ok(Self {
            token_embedding: vb.get((t.vocab_size, t.width), "token_embedding.weight")?,
            positional_embedding: vb.get((t.context_length, t.width), "positional_embedding")?,
            blocks: blocks(
                t.layers,
                t.width,
                t.heads,
                t.mlp_ratio,
                t.ls_init_value.is_some(),
                act,
                vb.clone(),
            )?,
            ln_final: layer_norm(t.width, LN_EPS, vb.pp("ln_final"))?,
            proj,
            pool: match t.pool_type.as_str() {
                "eos" => TextPool::Eos(t.eos_id),
                "first" => TextPool::First,
                "last" => TextPool::Last,
                _ => TextPool::Argmax,
            },
            causal: !t.no_causal_mask,
            context_length: t.context_length,
            vocab_size: t.vocab_size,
        })
    }

    /// Where each sequence is pooled.
    fn pool_positions(&self, ids: &[Vec<u32>]) -> Vec<usize> {
        ids.iter()
            .map(|row| match self.pool {
                // torch.argmax: the first of equal maxima.
                TextPool::Argmax => {
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, 0),
                            |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                        )
                        .0
                }
                TextPool::Eos(eos) => row.iter().position(|&v| v == eos).unwrap_or(0),
                TextPool::First => 0,
                TextPool::Last => row.len().saturating_sub(1),
            })
            .collect()
    }

    fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let b = ids.len();
        let full = self.context_length;
        if let Some(bad) = ids.iter().find(|r| r.len() != full) {
            candle_core::bail!("token rows must have {full} ids, got {}", bad.len());
        }
        if let Some(&bad) = ids
            .iter()
            .flatten()
            .find(|&&t| t as usize >= self.vocab_size)
        {
            candle_core::bail!(
                "token id {bad} is outside the vocabulary ({})",
                self.vocab_size
            );
        }
        let pos = self.pool_positions(ids);
        // With a causal mask no position sees a later one, so everything after the last
        // pooled position can be left out: same features, a fraction of the work for
        // short captions.
        let len = if self.causal && self.pool != TextPool::Last {
            pos.iter().max().map_or(1, |m| m + 1)
        } else {
            full
        };
        let flat: Vec<u32> = ids.iter().flat_map(|r| r[..len].iter().copied()).collect();
        let idx = Tensor::from_vec(flat, b * len, device)?;
        let x = self
            .token_embedding
            .index_select(&idx, 0)?
            .reshape((b, len, ()))?;
        let mut x = x.broadcast_add(&self.positional_embedding.narrow(0, 0, len)?)?;
        for blk in &self.blocks {
            x = blk.forward(&x, self.causal)?;
        }
        let width = x.dim(D::Minus1)?;
        let rows: Vec<u32> = pos
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * len + p) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, b, device)?;
        let gather = |x: &Tensor| x.reshape((b * len, width))?.index_select(&rows, 0);
        // LayerNorm is per token: normalising only the pooled rows is the same, and the
        // same whether open_clip pools first (`final_ln_after_pool`) or not.
        let pooled = self.ln_final.forward(&gather(&x)?)?;
        match &self.proj {
            TextProj::Matrix(p) => pooled.matmul(p),
            TextProj::Linear(l) => l.forward(&pooled),
            TextProj::None => Ok(pooled),
        }
    }
}

/// The two towers and the learned temperature.
#[derive(Clone, Debug)]
pub struct ClipModel {
    vision: VisionTower,
    text: TextTower,
    logit_scale: f32,
    logit_bias: Option<f32>,
    dtype: DType,
    device: Device,
}

impl ClipModel {
    /// Builds the model from open_clip's weight names: flat (`CLIP`) or with the text
    /// tower under `text.` (`CustomTextCLIP`).
    pub fn new(cfg: &ClipConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let act = if cfg.model.quick_gelu {
            Act::QuickGelu
        } else {
            Act::Gelu
        };
        let text_vb = if cfg.model.custom_text || vb.contains_tensor("text.token_embedding.weight")
        {
            vb.pp("text")
        } else {
            vb.clone()
        };
        let scalar = |name: &str| -> Result<f32> {
            vb.get((), name)
                .or_else(|_| vb.get(1, name).and_then(|t| t.squeeze(0)))?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()
        };
        let logit_bias = if vb.contains_tensor("logit_bias") {
            Some(scalar("logit_bias")?)
        } else {
            None
        };
        Ok(Self {
            vision: VisionTower::new(cfg, act, vb.pp("visual"))?,
            text: TextTower::new(cfg, act, text_vb)?,
            logit_scale: scalar("logit_scale")?,
            logit_bias,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// Image features `[B, embed_dim]` (not normalised), in the model dtype, from
    /// normalised pixels `[B, 3, H, W]`.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.vision.forward(&pixels.to_dtype(self.dtype)?)
    }

    /// Text features `[B, embed_dim]` (not normalised) from padded token rows.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        self.text.forward(ids, &self.device)
    }

    /// `logit_scale` as stored (a log); similarities are scaled by its exp.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    pub fn logit_bias(&self) -> Option<f32> {
        self.logit_bias
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}
