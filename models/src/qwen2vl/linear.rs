//! Linear layers with a fast CPU path for bf16 weights at decode time.
//!
//! candle's CPU matmul has no bf16 kernel: it widens both operands to f32 on every call,
//! i.e. converts the whole weight matrix per generated token. For a few rows (decoding)
//! that conversion dominates, so this module streams the bf16 weights once, widening on
//! the fly inside the dot products (`gemm`, candle's kernel crate, has no bf16 either).
//! Prefill (many rows) keeps candle's path, where the widening is amortised.

use candle_core::{CpuStorage, DType, Layout, Module, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows up to which the streaming kernel is used.
const MAX_STREAM_ROWS: usize = 8;

#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    inner: candle_nn::Linear,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            inner: candle_nn::Linear::new(weight.clone(), bias.clone()),
            weight,
            bias,
        }
    }

    fn streams(&self, x: &Tensor) -> bool {
        let rows = x.elem_count() / x.dims().last().copied().unwrap_or(1).max(1);
        x.device().is_cpu()
            && self.weight.dtype() == DType::BF16
            && x.dtype() == DType::BF16
            && rows <= MAX_STREAM_ROWS
            && self.weight.is_contiguous()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.streams(x) {
            return self.inner.forward(x);
        }
        let x = x.contiguous()?;
        let y = x.apply_op2_no_bwd(&self.weight, &Bf16Gemv)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

pub fn linear(d_in: usize, d_out: usize, vb: candle_nn::VarBuilder<'_>) -> Result<Linear> {
    let w = vb.get((d_out, d_in), "weight")?;
    let b = vb.get(d_out, "bias")?;
    Ok(Linear::new(w, Some(b)))
}

pub fn linear_no_bias(d_in: usize, d_out: usize, vb: candle_nn::VarBuilder<'_>) -> Result<Linear> {
    let w = vb.get((d_out, d_in), "weight")?;
    Ok(Linear::new(w, None))
}

/// `y = x · Wᵀ` for bf16 `x` `[.., K]` and bf16 `W` `[N, K]`, accumulated in f32.
struct Bf16Gemv;

#[inline]
fn widen(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// Dot product of bf16 rows in f32, eight independent accumulators so the loop
/// vectorises without reassociating a single sum.
fn dot(a: &[u16], b: &[u16]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += widen(x[i]) * widen(y[i]);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += widen(*x) * widen(*y);
    }
    s
}

impl candle_core::CustomOp2 for Bf16Gemv {
    fn name(&self) -> &'static str {
        "bf16-gemv"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::BF16(x), CpuStorage::BF16(w)) = (s1, s2) else {
            candle_core::bail!("bf16-gemv needs bf16 operands");
        };
        let (n, k) = l2.shape().dims2()?;
        let (Some((x0, x1)), Some((w0, w1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("bf16-gemv needs contiguous operands");
        };
        let x: &[u16] = bytemuck_cast(&x[x0..x1]);
        let w: &[u16] = bytemuck_cast(&w[w0..w1]);
        if !x.len().is_multiple_of(k) {
            candle_core::bail!("bf16-gemv: input width differs from the weight's {k}");
        }
        let rows = x.len() / k;
        let mut out = vec![half::bf16::ZERO; rows * n];
        // Parallel over output features: each weight row is read once for all input rows.
        const CHUNK: usize = 64;
        let cols: Vec<Vec<f32>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let start = c * CHUNK;
                let end = (start + CHUNK).min(n);
                let mut v = Vec::with_capacity((end - start) * rows);
                for j in start..end {
                    let wr = &w[j * k..(j + 1) * k];
                    for r in 0..rows {
                        v.push(dot(&x[r * k..(r + 1) * k], wr));
                    }
                }
                v
            })
            .collect();
        for (c, v) in cols.iter().enumerate() {
            let start = c * CHUNK;
            let width = v.len() / rows.max(1);
            for jj in 0..width {
                for r in 0..rows {
                    out[r * n + start + jj] = half::bf16::from_f32(v[jj * rows + r]);
                }
            }
        }
        let mut dims = l1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::BF16(out), Shape::from(dims)))
    }
}

/// bf16 values as their bit patterns (a free view; `half` provides it safely).
fn bytemuck_cast(v: &[half::bf16]) -> &[u16] {
    half::slice::HalfFloatSliceExt::reinterpret_cast(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn streaming_bf16_matches_the_f32_product() {
        let dev = Device::Cpu;
        for (rows, k, n) in [(1, 37, 5), (3, 130, 200), (8, 64, 129)] {
            let x = Tensor::randn(0f32, 1.0, (rows, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
            let (xb, wb, bb) = (
                x.to_dtype(DType::BF16).unwrap(),
                w.to_dtype(DType::BF16).unwrap(),
                b.to_dtype(DType::BF16).unwrap(),
            );
            let lin = Linear::new(wb.clone(), Some(bb.clone()));
            assert!(lin.streams(&xb));
            let got = lin.forward(&xb).unwrap().to_dtype(DType::F32).unwrap();
            // Reference: the same bf16 values, multiplied in f32 by candle.
            let want = xb
                .to_dtype(DType::F32)
                .unwrap()
                .matmul(&wb.to_dtype(DType::F32).unwrap().t().unwrap())
                .unwrap()
                .to_dtype(DType::BF16)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .broadcast_add(&bb.to_dtype(DType::F32).unwrap())
                .unwrap();
            let scale = want
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(got.dims(), &[rows, n]);
            let diff = (got - &want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            // Two bf16 roundings (product, then bias add) at most.
            assert!(
                diff <= scale * 2.0 * 2f32.powi(-8),
                "{rows}×{k}×{n}: {diff} of {scale}"
            );
        }
    }
}
