//! Predicted success: how likely an improvement of a target, for a kind of
//! finding, from a source (an operator's upload, the generator, an
//! improver), is to be promoted and kept — from what earlier attempts did.
//!
//! Each (target, finding kind, source) keeps a success record: successes
//! are improvements promoted (their bake passed), failures those rolled
//! back, rejected by their proof or failed. Inconclusive and aborted ones
//! are neither: missing evidence and an operator's choice say nothing of
//! the change. The prediction is the mean of the Beta posterior over the
//! success probability (the Beta–Binomial model; Gelman et al., *Bayesian
//! Data Analysis*, 3rd ed., §2.4, §5.3), with its 90 % equal-tailed
//! credible interval. The prior is empirical Bayes: centred on the loop's
//! overall record, worth [`PRIOR_WEIGHT`] attempts, so that a key without
//! history predicts what the loop usually achieves and a few attempts move
//! it. A finding's prediction pools every source on its (target, kind): the
//! source that will act is only known when a candidate is taken; the
//! attempt's own prediction, by its source, is stored with it.
//!
//! A finding's priority is its impact × this prediction, relative to the
//! overall rate ([`Predictor::weight`]): within a cycle that orders
//! findings exactly by impact × predicted success, while a host without
//! history keeps the impact's priority buckets.

use std::collections::HashMap;

use statrs::distribution::{Beta, ContinuousCDF};

pub use crate::store::findings::Prediction;

/// How many attempts the prior counts for.
pub const PRIOR_WEIGHT: f64 = 2.0;
/// The credible interval's level.
pub const LEVEL: f64 = 0.90;

/// How an attempt ended, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Success,
    Failure,
}

/// Success records, by (target, kind, source), and overall.
#[derive(Debug, Clone, Default)]
pub struct Predictor {
    by_source: HashMap<(String, String, String), (u32, u32)>,
    by_kind: HashMap<(String, String), (u32, u32)>,
    overall: (u32, u32),
}

impl Predictor {
    /// The record of `outcomes`: (target, finding kind, source, result).
    pub fn from_outcomes<'a>(outcomes: impl IntoIterator<Item = (&'a str, &'a str, &'a str, Ended)>) -> Predictor {
        let mut p = Predictor::default();
        for (target, kind, source, result) in outcomes {
            p.add(target, kind, source, result);
        }
        p
    }

    pub fn add(&mut self, target: &str, kind: &str, source: &str, result: Ended) {
        let bump = |c: &mut (u32, u32)| match result {
            Ended::Success => c.0 += 1,
            Ended::Failure => c.1 += 1,
        };
        bump(self.by_source.entry((target.into(), kind.into(), source.into())).or_default());
        bump(self.by_kind.entry((target.into(), kind.into())).or_default());
        bump(&mut self.overall);
    }

    /// The prior's mean: the overall record with a uniform prior under it.
    pub fn overall_rate(&self) -> f64 {
        (self.overall.0 as f64 + 1.0) / ((self.overall.0 + self.overall.1) as f64 + 2.0)
    }

    /// The prediction for `target` and `kind`, from `source`, or pooled
    /// over every source when `None`.
    pub fn predict(&self, target: &str, kind: &str, source: Option<&str>) -> Prediction {
        let (s, f) = match source {
            Some(src) => self.by_source.get(&(target.into(), kind.into(), src.into())),
            None => self.by_kind.get(&(target.into(), kind.into())),
        }
        .copied()
        .unwrap_or_default();
        let m = self.overall_rate();
        let (a, b) = (PRIOR_WEIGHT * m + s as f64, PRIOR_WEIGHT * (1.0 - m) + f as f64);
        let tail = (1.0 - LEVEL) / 2.0;
        let (low, high) = match Beta::new(a, b) {
            Ok(beta) => (beta.inverse_cdf(tail), beta.inverse_cdf(1.0 - tail)),
            Err(_) => (0.0, 1.0),
        };
        Prediction { p: a / (a + b), low, high, successes: s, failures: f }
    }

    /// What a finding's impact is multiplied by for its priority: its
    /// prediction relative to the overall rate.
    pub fn weight(&self, prediction: &Prediction) -> f64 {
        prediction.p / self.overall_rate()
    }
}

/// Attempts the record is read from, newest first.
pub const RECORD_LIMIT: i64 = 10_000;

/// The success record of the last [`RECORD_LIMIT`] attempts that ended
/// with a verdict on the change. A store that cannot be read gives an
/// empty record (every prediction the prior's), logged.
pub async fn load(ctx: &super::Ctx) -> Predictor {
    use crate::store::improvements::ImprovementState as S;
    let Some(rows) =
        ctx.write("improvement", "success record", crate::store::improvements::outcomes(&ctx.db, RECORD_LIMIT)).await
    else {
        return Predictor::default();
    };
    Predictor::from_outcomes(rows.iter().map(|(target, kind, source, state)| {
        let ended = if *state == S::Promoted { Ended::Success } else { Ended::Failure };
        (target.as_str(), kind.as_str(), source.as_str(), ended)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_history_predicts_even_odds_with_a_wide_interval() {
        let p = Predictor::default().predict("calc", "latency-regression", None);
        assert_eq!(p.p, 0.5);
        // Beta(1, 1) is uniform: the 90 % interval is [0.05, 0.95].
        assert!((p.low - 0.05).abs() < 1e-6 && (p.high - 0.95).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn failures_of_one_source_lower_its_prediction_and_the_pooled_one() {
        let mut outcomes = vec![("calc", "slow", "improver tuner", Ended::Failure); 5];
        outcomes.extend([("pay", "slow", "api", Ended::Success); 5]);
        let pred = Predictor::from_outcomes(outcomes);
        assert!((pred.overall_rate() - 0.5).abs() < 1e-12);
        let tuner = pred.predict("calc", "slow", Some("improver tuner"));
        // Beta(1 + 0, 1 + 5): mean 1/7.
        assert!((tuner.p - 1.0 / 7.0).abs() < 1e-12, "{tuner:?}");
        assert_eq!((tuner.successes, tuner.failures), (0, 5));
        assert!(tuner.high < 0.4, "{tuner:?}");
        let pooled = pred.predict("calc", "slow", None);
        assert_eq!(pooled.p, tuner.p);
        let fresh = pred.predict("calc", "slow", Some("api"));
        assert_eq!(fresh.p, 0.5, "another source starts from the overall rate");
        assert!(pred.weight(&tuner) < 0.3 && pred.weight(&fresh) == 1.0);
        assert_eq!(tuner.describe(), "14 % (1–39 %, 0 of 5)");
    }
}
