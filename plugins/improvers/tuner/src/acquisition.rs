//! Expected improvement, the acquisition function.
//!
//! For a minimised objective with posterior `N(μ, σ²)` at a point and a
//! reference `best`, `EI = (best − μ)·Φ(z) + σ·φ(z)` with `z = (best − μ)/σ`
//! (Jones, Schonlau & Welch, "Efficient Global Optimization of Expensive
//! Black-Box Functions", J. Global Optimization 1998). With noisy
//! observations there is no observed best to improve on: the reference is the
//! lowest posterior mean over the configs already measured, the plug-in
//! practice for noisy experiments that Letham, Karrer, Ottoni & Bakshy
//! ("Constrained Bayesian Optimization with Noisy Experiments", Bayesian
//! Analysis 2019) start from (their noisy EI goes further and averages EI
//! over posterior draws of the measured values). The normal CDF is computed
//! with `libm::erfc`.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

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
}
