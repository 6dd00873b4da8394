//! Time-uniform confidence sequences for a rate, from the beta-binomial
//! mixture martingale (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
//! nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2),
//! 2021, §3 and Prop. 6).
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
}
