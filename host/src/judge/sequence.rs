//! Time-uniform confidence sequences for a rate and for a quantile, from the
//! beta-binomial mixture martingale (Howard, Ramdas, McAuliffe & Sekhon,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann.
//! Statist. 49(2), 2021, §3 and Prop. 6; for quantiles, Howard & Ramdas,
//! "Sequential estimation of quantiles with applications to A/B-testing and
//! best-arm identification", Bernoulli 28(3), 2022).
//!
//! For Bernoulli observations with rate θ₀, the mixture of likelihood
//! ratios over a Beta(a, b) prior,
//!
//! ```text
//! M_n(θ₀) = B(a + S_n, b + n − S_n) / B(a, b) / (θ₀^S_n (1 − θ₀)^(n − S_n)),
//! ```
//!
//! is a nonnegative martingale with M_0 = 1, so by Ville's inequality
//! P(∃n: M_n(θ₀) ≥ 1/α) ≤ α. The set {θ₀ : M_n(θ₀) < 1/α} is therefore a
//! confidence sequence: it holds at every n at once, so the judge may look
//! after every call, stop whenever it likes and never wear the guarantee
//! down by looking again.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

/// ln B(a, b).
fn ln_beta(a: f64, b: f64) -> f64 {
    libm::lgamma(a) + libm::lgamma(b) - libm::lgamma(a + b)
}

/// ln M_n(θ₀) for `hits` of `n` under a Beta(`a`, `b`) prior.
fn ln_mixture(hits: f64, n: f64, theta: f64, a: f64, b: f64) -> f64 {
    let misses = n - hits;
    let mut v = ln_beta(a + hits, b + misses) - ln_beta(a, b);
    if hits > 0.0 {
        v -= hits * theta.ln();
    }
    if misses > 0.0 {
        v -= misses * (1.0 - theta).ln();
    }
    v
}

/// The Jeffreys prior: no preference for any rate, tight for rare events
/// (with no hit in n calls the upper bound is ≈ (ln(1/α) − ½ ln(πn)) / n).
const RATE_PRIOR: (f64, f64) = (0.5, 0.5);

/// A confidence sequence for a Bernoulli rate after `hits` of `n`: `(low,
/// high)` holds the true rate at every `n` at once with probability at least
/// `1 − alpha`. With no observation it is `(0, 1)`.
pub fn rate_bounds(hits: u64, n: u64, alpha: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (h, nf) = (hits.min(n) as f64, n as f64);
    let (a, b) = RATE_PRIOR;
    let limit = (1.0 / alpha).ln();
    let inside = |theta: f64| ln_mixture(h, nf, theta, a, b) < limit;
    let mle = h / nf;
    // ln M is convex in θ₀ with its minimum at the observed rate: bisect for
    // the crossing on each side.
    let edge = |mut inner: f64, mut outer: f64| {
        if inside(outer) {
            return outer;
        }
        for _ in 0..60 {
            let mid = 0.5 * (inner + outer);
            if inside(mid) {
                inner = mid;
            } else {
                outer = mid;
            }
        }
        inner
    };
    (edge(mle, 0.0), edge(mle, 1.0))
}

/// Bounds on the increase of a rate from `base` to `cand`, each a `(hits,
/// n)`: the difference of the two arms' confidence sequences, each at
/// `alpha / 2`, so the pair holds with probability at least `1 − alpha`.
/// Fractions (0.02 = two percentage points).
pub fn increase_bounds(cand: (u64, u64), base: (u64, u64), alpha: f64) -> (f64, f64) {
    let (cl, ch) = rate_bounds(cand.0, cand.1, alpha / 2.0);
    let (bl, bh) = rate_bounds(base.0, base.1, alpha / 2.0);
    (cl - bh, ch - bl)
}

/// Whether the data show, at level `alpha` and anytime-valid, that the
/// candidate's rate exceeds the baseline's by more than `margin` (a
/// fraction: 0.01 = one percentage point). Used by the judge for each
/// outcome class and by replay and shadow for rates of differing outcomes.
pub fn increase_shown(cand: (u64, u64), base: (u64, u64), margin: f64, alpha: f64) -> bool {
    increase_bounds(cand, base, alpha).0 > margin
}

/// Strength of the Beta prior centred on the quantile's level: tightest for
/// a few hundred to a few thousand observations, the range where a rollout
/// step decides (Howard & Ramdas 2022, §4, tune the prior the same way).
const QUANTILE_PRIOR_STRENGTH: f64 = 20.0;

/// Ranks of the order statistics bounding a quantile: (lower, upper).
pub type Ranks = (Option<u64>, Option<u64>);

/// Ranks already computed, by (p, alpha, n) — p and alpha as bits.
type Kept = HashMap<(u64, u64, u64), Ranks>;

/// Which order statistics bound the `p`-quantile after `n` observations:
/// `(lower, upper)` as 1-based ranks, the lower bound being the `lower`-th
/// smallest value (`None`: no lower bound yet, 0) and the upper the
/// `upper`-th smallest (`None`: no upper bound yet, +∞). Together they hold
/// the true quantile at every `n` at once with probability at least
/// `1 − alpha`, ties included: the count of observations below the quantile
/// is dominated by, and the count at or below it dominates, a Binomial(n, p)
/// path, and each side is tested at `alpha / 2`.
///
/// The ranks depend only on `(p, n, alpha)`, never on the data, so they are
/// computed once and kept.
pub fn quantile_ranks(p: f64, n: u64, alpha: f64) -> Ranks {
    static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(Mutex::default);
    let key = (p.to_bits(), alpha.to_bits(), n);
    if let Some(r) = KEPT.lock().get(&key) {
        return *r;
    }
    let r = compute_quantile_ranks(p, n, alpha);
    let mut kept = KEPT.lock();
    if kept.len() > 2_000_000 {
        kept.clear();
    }
    kept.insert(key, r);
    r
}

fn compute_quantile_ranks(p: f64, n: u64, alpha: f64) -> Ranks {
    if n == 0 {
        return (None, None);
    }
    let (a, b) = (p * QUANTILE_PRIOR_STRENGTH, (1.0 - p) * QUANTILE_PRIOR_STRENGTH);
    let limit = (2.0 / alpha).ln();
    let nf = n as f64;
    let rejects = |k: u64| ln_mixture(k as f64, nf, p, a, b) >= limit;
    let centre = (nf * p).floor() as u64;
    // Below the centre ln M decreases in k: the largest rejected k.
    let low = if rejects(0) {
        let (mut yes, mut no) = (0u64, centre.max(1));
        if rejects(no) {
            yes = no;
        } else {
            while no - yes > 1 {
                let mid = (yes + no) / 2;
                if rejects(mid) { yes = mid } else { no = mid }
            }
        }
        // At most `yes` observations at or below the quantile would be
        // implausible: it lies at or above the (yes + 1)-th smallest.
        Some(yes + 1)
    } else {
        None
    };
    // Above the centre ln M increases in k: the smallest rejected k.
    let high = if rejects(n) {
        let (mut no, mut yes) = ((nf * p).ceil() as u64, n);
        if rejects(no) {
            yes = no;
        } else {
            while yes - no > 1 {
                let mid = (yes + no) / 2;
                if rejects(mid) { yes = mid } else { no = mid }
            }
        }
        // `yes` observations strictly below the quantile would be
        // implausible: it lies at or below the yes-th smallest.
        Some(yes)
    } else {
        None
    };
    (low.filter(|&r| r <= n), high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_sequence_holds_the_observed_rate_and_narrows() {
        let (lo, hi) = rate_bounds(10, 1000, 0.01);
        assert!(lo < 0.01 && 0.01 < hi, "{lo} {hi}");
        let (lo2, hi2) = rate_bounds(100, 10_000, 0.01);
        assert!(hi2 - lo2 < hi - lo);
        assert_eq!(rate_bounds(0, 0, 0.01), (0.0, 1.0));
        let (lo, hi) = rate_bounds(0, 1000, 0.01);
        assert_eq!(lo, 0.0);
        assert!(hi < 0.01 && hi > 0.0005, "no hit in 1000: {hi}");
    }

    #[test]
    fn every_call_refused_is_an_increase_shown_at_once() {
        assert!(increase_shown((30, 30), (0, 300), 0.01, 0.001));
        assert!(!increase_shown((1, 30), (3, 300), 0.01, 0.001));
    }

    #[test]
    fn quantile_ranks_bracket_the_centre_and_need_data() {
        assert_eq!(quantile_ranks(0.5, 3, 0.01), (None, None));
        let (lo, hi) = quantile_ranks(0.5, 1000, 0.001);
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!(lo < 500 && hi > 500 && hi - lo < 300, "{lo} {hi}");
        let (lo2, hi2) = quantile_ranks(0.5, 10_000, 0.001);
        assert!((hi2.unwrap() - lo2.unwrap()) as f64 / 10_000.0 < (hi - lo) as f64 / 1000.0);
    }
}
