//! Tolerances derived from the floating-point arithmetic, not from one machine's result.
//!
//! Why this exists: candle's CPU matmul (the `gemm` crate) picks its micro-kernel and its
//! cache blocking from the CPU it runs on (SIMD width, L1/L2 sizes), so the order in which
//! a dot product is summed — and hence its last bits — changes between an AVX2 laptop, an
//! AVX-512 Xeon and an EPYC. A bound read off one machine's result fails on another; a
//! bound from the arithmetic holds for every order.
//!
//! # The derivation (used by every model parity bound in `models/tests`)
//!
//! 1. **Backward error of a reduction, any order.** A length-`n` dot product summed in
//!    *any* order (any blocking, SIMD width, with or without FMA) returns
//!    `x·(w + Δw)` with `Δw_i = w_i·θ_i`, each `θ_i` the product of at most `n`
//!    rounding factors `(1 + δ)`, `|δ| ≤ u` (Higham, *Accuracy and Stability of
//!    Numerical Algorithms*, 2nd ed., §3.1). The worst case `|θ_i| ≤ γ_n = nu/(1−nu)`
//!    is reached by no real computation; the probabilistic model of Higham & Mary
//!    (*A New Approach to Probabilistic Rounding Error Analysis*, SIAM J. Sci. Comput.
//!    41(5), 2019) takes the `δ` as independent and mean-zero, and round-to-nearest
//!    makes each roughly uniform on `[−u, u]` (RMS `u/√3`). So `θ_i` has RMS at most
//!    `u·√(n/3)`, whatever the order.
//! 2. **Per weight, per comparison.** Two f32 implementations (PyTorch's, candle's)
//!    each carry such a `θ`: relative to each other the RMS is `ρ = u_f32·√(2N/3)`,
//!    `N` the model's longest reduction (conservative for the shorter ones).
//!    Reduced precision (weights and activations stored in f16/bf16, f32 accumulation as
//!    `gemm` and candle do) rounds each weight, each matmul input and output, and the
//!    norm/residual it feeds: four roundings of `u_half`, RMS `u_half·√(4/3)`, plus the
//!    f32 pair term: `ρ = √(4u_half²/3 + 2N·u_f32²/3)` — three roundings when the weight
//!    is already exact in the half type. Vectors (norm scales, biases) take part in no
//!    reduction and act element-wise alike in both implementations: only their own
//!    rounding to the half type (`u_half/√3`, none when exact) is theirs, their outputs'
//!    rounding being the next matmul's input rounding ([`Rho::of`]). Element-wise f32
//!    functions (exp, SiLU, rsqrt) add O(u_f32) each, covered by the `N` term.
//! 3. **σ is measured, not guessed.** To first order an output moves by
//!    `S = Σ_i c_i θ_i` (`c_i = w_i ∂out/∂w_i`), a sum of many independent mean-zero
//!    terms with variance `ρ²·Σ c_i²` — exactly the variance of `S` when every weight is
//!    multiplied by `1 ± ρ` with independent random signs. [`Sensitivity`] runs the f32
//!    model so perturbed for [`SEEDS`] seeds and takes each output's RMS change; `σ` is
//!    the largest over a compared group. The f32 evaluation's own noise is far below
//!    what is measured (checked in [`Sensitivity::measure`]).
//! 4. **The bound** is `1.5·λ·σ`: with no single term dominating, `S` has Gaussian
//!    (Bernstein) tails, so over the `m` outputs of a group
//!    `P(any |S| ≥ λσ) ≤ 2m·exp(−λ²/2) = p` for `λ = √(2·ln(2m/p))`
//!    ([`hoeffding_lambda`], `p` = [`P_FAIL`]); the 1.5 covers estimating `σ` from 16
//!    draws (`P(χ²_16/16 < 1/1.5²) ≈ 3 %` for one output, less for a group's maximum).
//!
//! The bound therefore holds for every summation order with probability ≥ 1 − p under
//! the standard probabilistic rounding model; each test prints its measured error next
//! to its bound, and negative checks show a broken model (plain 1-D RoPE, a dropped
//! MLP) lying outside it.
#![allow(dead_code)]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

/// Unit roundoff `u = 2^-p` (half an ulp at 1) for a significand of `p` bits.
pub fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 2f64.powi(-53),
        DType::F32 => 2f64.powi(-24),
        DType::F16 => 2f64.powi(-11),
        DType::BF16 => 2f64.powi(-8),
        other => panic!("no unit roundoff for {other:?}"),
    }
}

/// Higham's `γ_n = n·u / (1 − n·u)`: the relative backward error of a length-`n`
/// reduction evaluated in any order.
pub fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    assert!(nu < 1.0, "γ_{n} undefined at u = {u}");
    nu / (1.0 - nu)
}

/// `ρ` of the module docs (step 2), per weight tensor: the RMS relative perturbation
/// equivalent to the rounding difference between a `dtype` evaluation and an f32
/// reference summed in another order, for reductions of length at most `n_max`.
#[derive(Clone, Copy, Debug)]
pub struct Rho {
    pub dtype: DType,
    pub n_max: usize,
}

/// The [`Rho`] policy for `dtype` against an f32 reference.
pub fn relative_backward_error(dtype: DType, n_max: usize) -> Rho {
    assert!(
        gamma(n_max, unit_roundoff(DType::F32)) < 0.01,
        "reduction too long for first-order analysis"
    );
    Rho { dtype, n_max }
}

impl Rho {
    /// ρ of a matrix weight (one that takes part in reductions) that does not round
    /// exactly to the dtype: `√(4u_half²/3 + 2N·u_f32²/3)`.
    pub fn matrix(&self) -> f64 {
        self.of(2, false)
    }

    /// ρ of a tensor of `rank` whose values are (`exact`) or are not representable in
    /// the dtype. Matrices (rank ≥ 2) take part in reductions: the f32 pair term, and
    /// in half precision the rounding of their inputs, outputs and the norm/residual
    /// they feed (3), plus their own rounding unless exact (1). Vectors (norm scales,
    /// biases) take part in no reduction and act element-wise, the same in both
    /// implementations; their outputs' rounding is the next matmul's input rounding,
    /// already counted: only their own rounding to the half type remains.
    pub fn of(&self, rank: usize, exact: bool) -> f64 {
        let u32 = unit_roundoff(DType::F32);
        let own = if exact { 0.0 } else { 1.0 };
        let (pair, half) = if rank >= 2 {
            (2.0 * self.n_max as f64 * u32 * u32 / 3.0, 3.0 + own)
        } else {
            (0.0, own)
        };
        let half = match self.dtype {
            DType::F32 => 0.0,
            d => half * unit_roundoff(d).powi(2) / 3.0,
        };
        (pair + half).sqrt()
    }

    /// ρ for this tensor.
    pub fn for_tensor(&self, t: &Tensor) -> f64 {
        let exact = self.dtype == DType::F32
            || t.to_dtype(self.dtype)
                .and_then(|h| h.to_dtype(DType::F64))
                .and_then(|h| (h - t.to_dtype(DType::F64)?)?.abs()?.flatten_all()?.max(0))
                .and_then(|m| m.to_scalar::<f64>())
                .is_ok_and(|m| m == 0.0);
        self.of(t.rank(), exact)
    }
}

/// Tail multiplier `λ = √(2·ln(2m/p))` for `m` outputs at total failure probability `p`
/// (Hoeffding's and, for sums of many small terms, Bernstein's bound).
pub fn hoeffding_lambda(m: usize, p: f64) -> f64 {
    (2.0 * (2.0 * m as f64 / p).ln()).sqrt()
}

/// Failure probability the suite is designed for (per bound).
pub const P_FAIL: f64 = 1e-6;
/// Seeds of the sensitivity measurement.
pub const SEEDS: u64 = 16;
/// Headroom for estimating `σ` from [`SEEDS`] draws (module docs, step 4).
pub const SIGMA_ESTIMATE_FACTOR: f64 = 1.5;

/// SplitMix64: a fixed, dependency-free stream of random signs, so a bound does not move
/// when a random-number crate changes its algorithm.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Every floating-point weight multiplied by `1 ± ρ` (its tensor's [`Rho::for_tensor`])
/// with independent random signs.
pub fn perturb_weights(
    weights: &HashMap<String, Tensor>,
    rho: &Rho,
    seed: u64,
) -> HashMap<String, Tensor> {
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut rng = SplitMix(seed.wrapping_mul(0xA076_1D64_78BD_642F) ^ 0x1234_5678);
    names
        .into_iter()
        .map(|name| {
            let t = &weights[name];
            if !t.dtype().is_float() {
                return (name.clone(), t.clone());
            }
            let rho = rho.for_tensor(t);
            let v = t
                .to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
                .expect("weights as f64");
            let mut bits = 0u64;
            let v: Vec<f64> = v
                .into_iter()
                .enumerate()
                .map(|(i, x)| {
                    if i % 64 == 0 {
                        bits = rng.next();
                    }
                    let sign = if (bits >> (i % 64)) & 1 == 1 {
                        1.0
                    } else {
                        -1.0
                    };
                    x * (1.0 + sign * rho)
                })
                .collect();
            let p = Tensor::from_vec(v, t.shape(), &Device::Cpu)
                .and_then(|p| p.to_dtype(DType::F32))
                .expect("perturbed tensor");
            (name.clone(), p)
        })
        .collect()
}

/// Runs a model over some weights and returns the compared outputs, grouped.
pub type Runner<'a> = dyn FnMut(&HashMap<String, Tensor>) -> Vec<Vec<f32>> + 'a;

/// RMS response of groups of outputs to random relative weight perturbations of size `ρ`.
pub struct Sensitivity {
    /// Relative perturbation used.
    pub rho: Rho,
    /// Per group: `max_j sqrt(mean_k (out_k,j − out_j)²)` over the group's outputs `j`.
    pub sigma: Vec<f64>,
    /// Per group: the number of outputs (for the union bound).
    pub outputs: Vec<usize>,
}

impl Sensitivity {
    /// Measures how the outputs of `run(weights)` move under [`SEEDS`] perturbations of
    /// size `rho`. `run` returns the compared outputs as groups of flat f32 vectors (one
    /// group per compared tensor), each group getting its own `σ`.
    pub fn measure(weights: &HashMap<String, Tensor>, rho: Rho, run: &mut Runner<'_>) -> Self {
        let base = run(weights);
        let mut sq: Vec<Vec<f64>> = base.iter().map(|g| vec![0.0; g.len()]).collect();
        for seed in 0..SEEDS {
            let out = run(&perturb_weights(weights, &rho, seed));
            assert_eq!(out.len(), base.len());
            for ((sq, o), b) in sq.iter_mut().zip(&out).zip(&base) {
                assert_eq!(o.len(), b.len());
                for ((s, o), b) in sq.iter_mut().zip(o).zip(b) {
                    let d = f64::from(*o) - f64::from(*b);
                    *s += d * d;
                }
            }
        }
        let sigma: Vec<f64> = sq
            .iter()
            .map(|g| {
                g.iter()
                    .map(|s| (s / SEEDS as f64).sqrt())
                    .fold(0.0, f64::max)
            })
            .collect();
        // The f32 evaluation itself must not dominate what is measured: its own noise
        // is about u_f32 ≈ 6e-8 relative per output, while ρ ≥ u_f32·√(2N/3) with
        // N ≥ 1000 here. A σ under 1e-6 of the group's largest output would mean the
        // perturbation was lost in rounding.
        for (g, s) in base.iter().zip(&sigma) {
            let scale = g.iter().fold(0f64, |m, x| m.max(f64::from(x.abs())));
            assert!(
                *s > 1e-6 * scale,
                "sensitivity {s:e} lost in rounding (outputs up to {scale})"
            );
        }
        Self {
            rho,
            outputs: base.iter().map(Vec::len).collect(),
            sigma,
        }
    }

    /// `1.5·λ·σ` of the module docs (step 4) for group `g`: the bound on
    /// `|got − reference|` over that group's outputs.
    pub fn bound(&self, g: usize) -> f64 {
        hoeffding_lambda(self.outputs[g], P_FAIL) * self.sigma[g] * SIGMA_ESTIMATE_FACTOR
    }
}

/// Max |a − b| over two tensors of the same shape, in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .unwrap_or_default();
    let b = b
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .unwrap_or_default();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
