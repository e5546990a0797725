//! Gaussian splats in memory: activated parameters, one array per attribute.

use rand_pcg::Pcg64Mcg;
use rand_pcg::rand_core::{Rng, SeedableRng};

/// SH coefficients per colour channel for a degree.
pub const fn sh_coeffs(degree: u32) -> usize {
    ((degree + 1) * (degree + 1)) as usize
}

/// `0.5 + SH_C0·f_dc` maps a DC coefficient to a colour.
pub const SH_C0: f64 = 0.282_094_791_773_878_14;

/// A set of 3-D Gaussians with *activated* parameters: linear scales, normalised
/// quaternions (w, x, y, z), opacities in [0, 1], SH coefficients coefficient-major
/// (for splat i, coefficient k, channel c: `sh[(i·coeffs + k)·3 + c]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Splats {
    pub means: Vec<[f32; 3]>,
    pub scales: Vec<[f32; 3]>,
    pub rotations: Vec<[f32; 4]>,
    pub opacities: Vec<f32>,
    pub sh_degree: u32,
    pub sh: Vec<f32>,
    /// Foreground flag per splat (uCO3D's `fg_mask`), when the source has one.
    pub foreground: Option<Vec<bool>>,
}

impl Splats {
    pub fn len(&self) -> usize {
        self.means.len()
    }

    pub fn is_empty(&self) -> bool {
        self.means.is_empty()
    }

    pub fn coeffs(&self) -> usize {
        sh_coeffs(self.sh_degree)
    }

    /// The SH coefficients of splat `i` as RGB triplets.
    pub fn sh_of(&self, i: usize) -> &[f32] {
        let n = self.coeffs() * 3;
        &self.sh[i * n..(i + 1) * n]
    }

    /// Check the arrays agree in length; readers call this before returning.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.len();
        let checks = [
            ("scales", self.scales.len()),
            ("rotations", self.rotations.len()),
            ("opacities", self.opacities.len()),
            ("sh", self.sh.len() / (self.coeffs() * 3)),
        ];
        for (name, len) in checks {
            if len != n {
                return Err(format!("{name} has {len} entries for {n} splats"));
            }
        }
        if self.sh.len() != n * self.coeffs() * 3 {
            return Err("sh length is not a whole number of splats".into());
        }
        if let Some(fg) = &self.foreground
            && fg.len() != n
        {
            return Err(format!(
                "foreground mask has {} entries for {n} splats",
                fg.len()
            ));
        }
        Ok(())
    }

    /// Axis-aligned bounds of the means, `None` when empty.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let mut it = self.means.iter();
        let first = *it.next()?;
        Some(it.fold((first, first), |(mut lo, mut hi), p| {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
            (lo, hi)
        }))
    }

    /// Keep only the splats for which `keep(i)` is true.
    pub fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(i)).collect();
        let n = self.coeffs() * 3;
        self.means = idx.iter().map(|&i| self.means[i]).collect();
        self.scales = idx.iter().map(|&i| self.scales[i]).collect();
        self.rotations = idx.iter().map(|&i| self.rotations[i]).collect();
        self.opacities = idx.iter().map(|&i| self.opacities[i]).collect();
        self.sh = idx
            .iter()
            .flat_map(|&i| self.sh[i * n..(i + 1) * n].iter().copied())
            .collect();
        if let Some(fg) = &self.foreground {
            self.foreground = Some(idx.iter().map(|&i| fg[i]).collect());
        }
    }

    /// Seeded random anisotropic Gaussians inside a cube of half-size `extent`, used by
    /// tests and benchmarks (the same seed gives the same scene on every machine).
    pub fn random(seed: u64, count: usize, sh_degree: u32, extent: f32, scale: f32) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut uniform = move || (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        let coeffs = sh_coeffs(sh_degree);
        let mut s = Self {
            sh_degree,
            ..Self::default()
        };
        for _ in 0..count {
            s.means
                .push([0, 1, 2].map(|_| (uniform() * 2.0 - 1.0) * extent));
            s.scales
                .push([0, 1, 2].map(|_| scale * (0.2 + 1.8 * uniform())));
            let q = [0, 1, 2, 3].map(|_| uniform() * 2.0 - 1.0);
            let norm = q.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
            s.rotations.push(q.map(|v| v / norm));
            s.opacities.push(0.3 + 0.7 * uniform());
            for k in 0..coeffs {
                // Colour mostly from DC; higher bands add visible view dependence.
                let amp = if k == 0 { 1.5 } else { 0.35 };
                s.sh.extend([0, 1, 2].map(|_| (uniform() * 2.0 - 1.0) * amp));
            }
        }
        s
    }
}

/// Logistic sigmoid (3DGS stores opacity as a logit).
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Inverse of [`sigmoid`], clamped so that 0 and 1 stay finite.
pub fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_scenes_are_reproducible_and_valid() {
        let a = Splats::random(7, 50, 3, 1.0, 0.05);
        assert_eq!(a, Splats::random(7, 50, 3, 1.0, 0.05));
        assert_ne!(a, Splats::random(8, 50, 3, 1.0, 0.05));
        a.validate().unwrap();
        assert_eq!(a.sh.len(), 50 * 16 * 3);
        for q in &a.rotations {
            let n: f32 = q.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn retain_keeps_attributes_aligned() {
        let mut s = Splats::random(1, 10, 1, 1.0, 0.1);
        let orig = s.clone();
        s.retain(|i| i % 3 == 0);
        assert_eq!(s.len(), 4);
        assert_eq!(s.means[1], orig.means[3]);
        assert_eq!(s.sh_of(1), orig.sh_of(3));
        s.validate().unwrap();
    }

    #[test]
    fn sigmoid_and_logit_are_inverse() {
        for p in [0.01f32, 0.3, 0.5, 0.99] {
            assert!((sigmoid(logit(p)) - p).abs() < 1e-6);
        }
    }
}
