//! The Gaussian-process surrogate of the objective's logarithm.
//!
//! Observations are canary arms: each trial measured its candidate and its
//! baseline in the same period, so both share that period's conditions (a
//! busier machine slows both arms alike). The model says so:
//!
//! `y = m + f(x) + p(trial) + ε`, with `f ~ GP(0, s²·k)`, `p ~ N(0, s²·λp)`
//! shared by the two arms of a trial, and `ε ~ N(0, s²·λn)` per arm,
//!
//! where `k` is a Matérn 5/2 kernel with one length scale per knob (Rasmussen
//! & Williams, *Gaussian Processes for Machine Learning*, 2006, §4.2). A
//! comparison within a trial then carries more weight than two arms of
//! different trials, as it should. Predictions are of `m + f(x)`, the
//! objective without any period's conditions.
//!
//! The constant mean `m` (generalised least squares) and the scale `s²` are
//! profiled out of the likelihood; the length scales and the two noise ratios
//! are chosen by marginal likelihood (with a log-normal prior on the length
//! scales, so that a handful of points cannot pick a degenerate one) on a
//! grid, then refined coordinate by coordinate. Linear algebra is `nalgebra`'s
//! Cholesky factorisation.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

/// One observed arm: its point in the cube, the log of its estimate, and the
/// trial (period) it was measured in.
#[derive(Debug, Clone)]
pub struct Observation {
    pub x: Vec<f64>,
    pub y: f64,
    pub period: usize,
}

/// Hyperparameters: a length scale per knob (in cube units) and the noise
/// and period variances relative to the signal's.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    pub length_scales: Vec<f64>,
    pub noise: f64,
    pub period: f64,
}

/// A fitted surrogate.
#[derive(Debug, Clone)]
pub struct Gp {
    /// The knob each cube coordinate belongs to (a choice has several).
    coordinate_knob: Vec<usize>,
    hyper: Hyper,
    xs: Vec<Vec<f64>>,
    chol: Cholesky<f64, Dyn>,
    /// `A⁻¹ (y − m)`.
    alpha: DVector<f64>,
    mean: f64,
    scale: f64,
}

/// The prior on each log length scale: centred on 0.3 cube units, one
/// e-fold either way at one standard deviation.
const LENGTH_PRIOR_CENTRE: f64 = 0.3;
const LENGTH_PRIOR_SD: f64 = 1.0;
/// Noise ratios below this are held at it (a well-conditioned factorisation).
const MIN_NOISE: f64 = 1e-6;

/// Matérn 5/2 at scaled distance `r`.
fn matern52(r: f64) -> f64 {
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

fn correlation(a: &[f64], b: &[f64], coordinate_knob: &[usize], length_scales: &[f64]) -> f64 {
    let r2: f64 = a
        .iter()
        .zip(b)
        .zip(coordinate_knob)
        .map(|((a, b), &k)| {
            let d = (a - b) / length_scales[k];
            d * d
        })
        .sum();
    matern52(r2.sqrt())
}

impl Gp {
    /// Fits the surrogate to `obs` by marginal likelihood. `coordinate_knob`
    /// maps each cube coordinate to its knob. `None` with fewer than two
    /// observations (nothing to learn a scale from).
    pub fn fit(obs: &[Observation], coordinate_knob: &[usize]) -> Option<Gp> {
        if obs.len() < 2 {
            return None;
        }
        let knobs = coordinate_knob.iter().max().map_or(0, |m| m + 1);
        let mut best: Option<(f64, Hyper)> = None;
        let consider = |hyper: Hyper, best: &mut Option<(f64, Hyper)>| {
            if let Some(score) = Self::log_posterior(obs, coordinate_knob, &hyper)
                && best.as_ref().is_none_or(|(b, _)| score > *b)
            {
                *best = Some((score, hyper));
            }
        };
        // A grid with one length scale for every knob…
        for &length in &[0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 2.0] {
            for &noise in &[1e-6, 1e-4, 1e-3, 1e-2, 0.1, 0.5] {
                for &period in &[0.0, 1e-3, 1e-2, 0.1] {
                    consider(Hyper { length_scales: vec![length; knobs], noise, period }, &mut best);
                }
            }
        }
        // …then each knob's own, and the noise ratios, refined in turn.
        for _ in 0..2 {
            for k in 0..knobs + 2 {
                for factor in [0.5, 0.7, 1.4, 2.0] {
                    let (_, mut hyper) = best.clone()?;
                    match k {
                        k if k < knobs => hyper.length_scales[k] = (hyper.length_scales[k] * factor).clamp(0.02, 5.0),
                        k if k == knobs => hyper.noise = (hyper.noise * factor).max(MIN_NOISE),
                        _ => hyper.period = (hyper.period * factor).max(0.0),
                    }
                    consider(hyper, &mut best);
                }
            }
        }
        let (_, hyper) = best?;
        Self::with(obs, coordinate_knob, hyper)
    }

    /// The surrogate with these hyperparameters; `None` if the covariance
    /// is not positive definite.
    pub fn with(obs: &[Observation], coordinate_knob: &[usize], hyper: Hyper) -> Option<Gp> {
        let (chol, alpha, mean, scale, _) = Self::factor(obs, coordinate_knob, &hyper)?;
        Some(Gp {
            coordinate_knob: coordinate_knob.to_vec(),
            hyper,
            xs: obs.iter().map(|o| o.x.clone()).collect(),
            chol,
            alpha,
            mean,
            scale,
        })
    }

    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// Factorises the covariance; returns the factor, `A⁻¹(y − m)`, `m`,
    /// `s²` and the profiled log likelihood.
    #[allow(clippy::type_complexity)]
    fn factor(
        obs: &[Observation],
        coordinate_knob: &[usize],
        hyper: &Hyper,
    ) -> Option<(Cholesky<f64, Dyn>, DVector<f64>, f64, f64, f64)> {
        let n = obs.len();
        let a = DMatrix::from_fn(n, n, |i, j| {
            let mut c = correlation(&obs[i].x, &obs[j].x, coordinate_knob, &hyper.length_scales);
            if obs[i].period == obs[j].period {
                c += hyper.period;
            }
            if i == j {
                c += hyper.noise.max(MIN_NOISE);
            }
            c
        });
        let chol = Cholesky::new(a)?;
        let y = DVector::from_iterator(n, obs.iter().map(|o| o.y));
        let ones = DVector::from_element(n, 1.0);
        let a_inv_ones = chol.solve(&ones);
        let a_inv_y = chol.solve(&y);
        let mean = a_inv_y.sum() / a_inv_ones.sum();
        let alpha = a_inv_y - a_inv_ones * mean;
        let residual = y - DVector::from_element(n, mean);
        let scale = (residual.dot(&alpha) / n as f64).max(1e-12);
        let log_det: f64 = chol.l_dirty().diagonal().iter().map(|d| 2.0 * d.ln()).sum();
        let log_likelihood = -0.5 * (n as f64) * scale.ln() - 0.5 * log_det;
        log_likelihood.is_finite().then_some((chol, alpha, mean, scale, log_likelihood))
    }

    fn log_posterior(obs: &[Observation], coordinate_knob: &[usize], hyper: &Hyper) -> Option<f64> {
        let (.., log_likelihood) = Self::factor(obs, coordinate_knob, hyper)?;
        let prior: f64 = hyper
            .length_scales
            .iter()
            .map(|l| {
                let z = (l / LENGTH_PRIOR_CENTRE).ln() / LENGTH_PRIOR_SD;
                -0.5 * z * z
            })
            .sum();
        Some(log_likelihood + prior)
    }

    /// The kernel's correlation between two points (`k`, without `s²`).
    pub fn correlation(&self, a: &[f64], b: &[f64]) -> f64 {
        correlation(a, b, &self.coordinate_knob, &self.hyper.length_scales)
    }

    /// The constant mean `m` and the signal variance `s²`.
    pub fn mean_and_scale(&self) -> (f64, f64) {
        (self.mean, self.scale)
    }

    /// The joint posterior of `m + f` at `xs`: means and covariance.
    pub fn joint(&self, xs: &[Vec<f64>]) -> (DVector<f64>, DMatrix<f64>) {
        let k = DMatrix::from_fn(self.xs.len(), xs.len(), |i, j| self.correlation(&self.xs[i], &xs[j]));
        let means = DVector::from_iterator(xs.len(), (0..xs.len()).map(|j| self.mean + k.column(j).dot(&self.alpha)));
        let v = self.chol.l_dirty().solve_lower_triangular(&k).expect("a Cholesky factor's diagonal is positive");
        let prior = DMatrix::from_fn(xs.len(), xs.len(), |i, j| self.correlation(&xs[i], &xs[j]));
        (means, (prior - v.transpose() * v) * self.scale)
    }

    /// Posterior mean and standard deviation of the log objective at `x`,
    /// without any period's conditions or an arm's noise.
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let k = DVector::from_iterator(
            self.xs.len(),
            self.xs.iter().map(|xi| correlation(xi, x, &self.coordinate_knob, &self.hyper.length_scales)),
        );
        let mean = self.mean + k.dot(&self.alpha);
        // `l_dirty`'s lower triangle is the factor, and only it is read.
        let v = self.chol.l_dirty().solve_lower_triangular(&k).expect("a Cholesky factor's diagonal is positive");
        let variance = self.scale * (1.0 - v.dot(&v)).max(0.0);
        (mean, variance.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(points: &[(f64, f64)]) -> Vec<Observation> {
        points.iter().enumerate().map(|(i, &(x, y))| Observation { x: vec![x], y, period: i }).collect()
    }

    /// With (almost) no noise the surrogate passes through every point and
    /// is certain there, and is uncertain away from them.
    #[test]
    fn noiseless_points_are_interpolated() {
        let data = obs(&[(0.0, 1.0), (0.2, 0.3), (0.5, -0.4), (0.8, 0.1), (1.0, 0.9)]);
        let hyper = Hyper { length_scales: vec![0.3], noise: 1e-9, period: 0.0 };
        let gp = Gp::with(&data, &[0], hyper).unwrap();
        for o in &data {
            let (mean, sd) = gp.predict(&o.x);
            assert!((mean - o.y).abs() < 1e-4, "at {:?}: {mean} vs {}", o.x, o.y);
            assert!(sd < 1e-3, "sd {sd} at {:?}", o.x);
        }
        let (_, between) = gp.predict(&[0.35]);
        assert!(between > 0.01, "sd between points {between}");
        // The fitted surrogate of a smooth curve interpolates too.
        let smooth: Vec<(f64, f64)> = (0..8).map(|i| i as f64 / 7.0).map(|x| (x, (3.0 * x).sin())).collect();
        let gp = Gp::fit(&obs(&smooth), &[0]).unwrap();
        for (x, y) in smooth {
            assert!((gp.predict(&[x]).0 - y).abs() < 0.02, "at {x}");
        }
        let (mean, _) = gp.predict(&[0.5]);
        assert!((mean - 1.5f64.sin()).abs() < 0.05, "between the points: {mean}");
    }

    /// Two arms measured in one period share its conditions: a shift that
    /// hits both arms of a trial is read as the period's, and the difference
    /// between the arms is kept.
    #[test]
    fn a_shared_period_shift_is_not_read_as_the_surface() {
        // x = 0 and x = 1 compared in three periods, each period shifting
        // both arms alike; x = 1 is 0.1 lower within every period.
        let mut data = Vec::new();
        for (period, shift) in [0.0, 0.5, -0.3].into_iter().enumerate() {
            data.push(Observation { x: vec![0.0], y: 1.0 + shift, period });
            data.push(Observation { x: vec![1.0], y: 0.9 + shift, period });
        }
        let hyper = Hyper { length_scales: vec![0.3], noise: 1e-4, period: 1.0 };
        let gp = Gp::with(&data, &[0], hyper).unwrap();
        let difference = gp.predict(&[1.0]).0 - gp.predict(&[0.0]).0;
        assert!((difference + 0.1).abs() < 0.01, "difference {difference}");
    }
}
