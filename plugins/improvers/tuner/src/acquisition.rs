//! Expected improvement, the acquisition function, and its noisy form.
//!
//! For a minimised objective with posterior `N(μ, σ²)` at a point and a
//! reference `best`, `EI = (best − μ)·Φ(z) + σ·φ(z)` with `z = (best − μ)/σ`
//! (Jones, Schonlau & Welch, "Efficient Global Optimization of Expensive
//! Black-Box Functions", J. Global Optimization 1998). With noisy
//! observations there is no observed best to improve on. Two answers:
//!
//! - **plug-in**: the reference is the lowest posterior mean over the
//!   configs already measured ([`PlugIn`]);
//! - **noisy EI** (Letham, Karrer, Ottoni & Bakshy, "Constrained Bayesian
//!   Optimization with Noisy Experiments", Bayesian Analysis 2019, §4):
//!   draw the true values at the measured configs from their joint
//!   posterior, condition a noiseless surrogate on each draw, and average
//!   the EI over the draws, each against its own best ([`NoisyEi`]). The
//!   noiseless surrogates share one covariance, so only their means differ
//!   per draw.
//!
//! The normal CDF is computed with `libm::erfc`; the linear algebra is
//! `nalgebra`'s.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use crate::gp::Gp;

/// Expected improvement below `best` of a point whose posterior is
/// `N(mean, sd²)`. Zero where the surrogate is certain and no better.
pub fn expected_improvement(mean: f64, sd: f64, best: f64) -> f64 {
    let gain = best - mean;
    if sd <= 1e-12 {
        return gain.max(0.0);
    }
    let z = gain / sd;
    let cdf = 0.5 * libm::erfc(-z * FRAC_1_SQRT_2);
    let pdf = (-0.5 * z * z).exp() / (2.0 * PI).sqrt();
    (gain * cdf + sd * pdf).max(0.0)
}

/// Expected improvement in log units, the acquisition maximised.
pub trait Acquisition {
    fn value(&self, x: &[f64]) -> f64;
}

/// EI over the lowest posterior mean among measured configs.
pub struct PlugIn<'a> {
    gp: &'a Gp,
    best: f64,
}

impl<'a> PlugIn<'a> {
    pub fn new(gp: &'a Gp, measured: &[Vec<f64>]) -> PlugIn<'a> {
        let best = measured.iter().map(|m| gp.predict(m).0).fold(f64::INFINITY, f64::min);
        PlugIn { gp, best }
    }
}

impl Acquisition for PlugIn<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        let (mean, sd) = self.gp.predict(x);
        expected_improvement(mean, sd, self.best)
    }
}

/// Noisy expected improvement: EI averaged over draws of the measured
/// configs' true values.
pub struct NoisyEi<'a> {
    gp: &'a Gp,
    measured: Vec<Vec<f64>>,
    /// Factor of the measured configs' prior correlation (plus jitter).
    chol: Cholesky<f64, Dyn>,
    /// Per draw: `R⁻¹ (f − m)` and the draw's best.
    draws: Vec<(DVector<f64>, f64)>,
}

/// Draws of the measured values averaged over.
pub const NOISY_EI_DRAWS: usize = 32;

impl<'a> NoisyEi<'a> {
    /// `normal` supplies standard normal draws (a seeded generator). `None`
    /// when the measured configs' covariance cannot be factorised even with
    /// jitter (then use [`PlugIn`]).
    pub fn new(gp: &'a Gp, measured: &[Vec<f64>], mut normal: impl FnMut() -> f64) -> Option<NoisyEi<'a>> {
        let m = measured.len();
        let (means, covariance) = gp.joint(measured);
        let (mean, scale) = gp.mean_and_scale();
        let posterior = factor_with_jitter(covariance, scale)?;
        let prior = DMatrix::from_fn(m, m, |i, j| gp.correlation(&measured[i], &measured[j]));
        let chol = factor_with_jitter(prior, 1.0)?;
        let root = posterior.l();
        let draws = (0..NOISY_EI_DRAWS)
            .map(|_| {
                let z = DVector::from_fn(m, |_, _| normal());
                let f = &means + &root * z;
                let best = f.iter().copied().fold(f64::INFINITY, f64::min);
                (chol.solve(&f.add_scalar(-mean)), best)
            })
            .collect();
        Some(NoisyEi { gp, measured: measured.to_vec(), chol, draws })
    }
}

/// Cholesky of `a` with the smallest jitter (relative to `scale`) that
/// makes it positive definite.
fn factor_with_jitter(a: DMatrix<f64>, scale: f64) -> Option<Cholesky<f64, Dyn>> {
    [1e-10, 1e-8, 1e-6, 1e-4].into_iter().find_map(|jitter| {
        let n = a.nrows();
        Cholesky::new(&a + DMatrix::identity(n, n) * (jitter * scale))
    })
}

impl Acquisition for NoisyEi<'_> {
    fn value(&self, x: &[f64]) -> f64 {
        let (mean, scale) = self.gp.mean_and_scale();
        let r = DVector::from_iterator(self.measured.len(), self.measured.iter().map(|m| self.gp.correlation(m, x)));
        let v = self.chol.l_dirty().solve_lower_triangular(&r).expect("a Cholesky factor's diagonal is positive");
        let sd = (scale * (1.0 - v.dot(&v)).max(0.0)).sqrt();
        let total: f64 =
            self.draws.iter().map(|(alpha, best)| expected_improvement(mean + r.dot(alpha), sd, *best)).sum();
        total / self.draws.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Certain and no better: nothing to expect. Certain and better: the
    /// gain itself. Uncertain: something even when the mean is worse, and
    /// more the more uncertain.
    #[test]
    fn expected_improvement_follows_certainty_and_gain() {
        assert_eq!(expected_improvement(1.0, 0.0, 1.0), 0.0);
        assert_eq!(expected_improvement(1.2, 0.0, 1.0), 0.0);
        assert!(expected_improvement(5.0, 1e-3, 1.0) < 1e-300);
        assert!((expected_improvement(0.7, 0.0, 1.0) - 0.3).abs() < 1e-12);
        let (narrow, wide) = (expected_improvement(1.1, 0.1, 1.0), expected_improvement(1.1, 0.5, 1.0));
        assert!(narrow > 0.0 && wide > narrow, "{narrow} {wide}");
        // At the reference, EI is σ·φ(0).
        assert!((expected_improvement(1.0, 0.2, 1.0) - 0.2 / (2.0 * PI).sqrt()).abs() < 1e-12);
    }

    /// Without noise the draws of the measured values are those values:
    /// noisy EI is the plug-in EI, zero at a measured config.
    #[test]
    fn noisy_ei_without_noise_is_the_plug_in() {
        use crate::gp::{Gp, Hyper, Observation};
        let points = [(0.0, 1.0), (0.3, 0.2), (0.6, 0.5), (1.0, 0.9)];
        let obs: Vec<Observation> =
            points.iter().enumerate().map(|(i, &(x, y))| Observation { x: vec![x], y, period: i }).collect();
        let gp = Gp::with(&obs, &[0], Hyper { length_scales: vec![0.3], noise: 1e-9, period: 0.0 }).unwrap();
        let measured: Vec<Vec<f64>> = points.iter().map(|&(x, _)| vec![x]).collect();
        // Any draws will do: the posterior at the measured configs is a point.
        let mut k = 0;
        let noisy = NoisyEi::new(&gp, &measured, || {
            k += 1;
            [1.5, -0.5, 0.8, -2.0][k % 4]
        })
        .unwrap();
        let plug_in = PlugIn::new(&gp, &measured);
        assert!(noisy.value(&[0.3]) < 1e-4, "at the measured best: {}", noisy.value(&[0.3]));
        for x in [0.15, 0.4, 0.8] {
            let (a, b) = (noisy.value(&[x]), plug_in.value(&[x]));
            assert!(b > 1e-6 && (a - b).abs() < 0.05 * b, "at {x}: noisy {a}, plug-in {b}");
        }
    }
}
