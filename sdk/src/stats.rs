//! Arithmetic every detector needs, kept here so that rules agree on it.

use crate::{TargetStats, WindowStats};

/// Standard score of `value` against a mean and standard deviation; 0 when
/// the deviation is zero (no spread means no evidence of an anomaly).
pub fn z_score(value: f64, mean: f64, stddev: f64) -> f64 {
    if stddev <= f64::EPSILON { 0.0 } else { (value - mean) / stddev }
}

/// Relative change of `current` against `baseline`, in percent; 0 when the
/// baseline is zero.
pub fn pct_change(current: f64, baseline: f64) -> f64 {
    if baseline.abs() <= f64::EPSILON { 0.0 } else { (current - baseline) / baseline * 100.0 }
}

/// The `q`-quantile (0..=1) of `samples` by linear interpolation; `None` when
/// empty. Sorts a copy, so the caller's order is kept.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Mean and population standard deviation of `samples`.
pub fn mean_stddev(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// How a current value compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub current: f64,
    pub baseline: f64,
    /// Relative change in percent.
    pub pct: f64,
    /// The change in standard errors of the difference of the two
    /// estimates: how far beyond the noise of the two windows it is.
    pub z: f64,
}

impl Comparison {
    /// True when `current` is above the baseline by more than `pct` percent
    /// and by more than `sigmas` standard errors: a change large enough to
    /// matter and shown beyond noise, so neither number contradicts the
    /// other.
    pub fn regressed(&self, pct: f64, sigmas: f64) -> bool {
        self.current > self.baseline && self.pct > pct && self.z > sigmas
    }
}

/// The standard error of a window's p95 estimate: the asymptotic variance
/// of a sample quantile, p(1 − p) / (n f²), with the density f at the p95
/// read from the window's quantiles (0.04 of the calls lie between p95 and
/// p99). Never below 1 % of the value: the latency sketch's resolution.
pub fn p95_standard_error(window: &WindowStats) -> f64 {
    let l = &window.latency;
    let n = window.executions.max(1) as f64;
    let spread = (l.p99_ms - l.p95_ms).max(0.0);
    let se = (0.95 * 0.05 / n).sqrt() * spread / 0.04;
    se.max(0.01 * l.p95_ms.abs())
}

/// Compare p95 latency of the current window with the baseline window: the
/// change in percent, and in standard errors of the two p95 estimates
/// (the spread of single calls says nothing about how well a p95 is
/// known: it was the cause of findings of +48 % at "z=0.0").
pub fn compare_p95(stats: &TargetStats) -> Option<Comparison> {
    let base = stats.baseline.as_ref()?;
    if base.executions == 0 || stats.current.executions == 0 {
        return None;
    }
    let (current, baseline) = (stats.current.latency.p95_ms, base.latency.p95_ms);
    let se = p95_standard_error(&stats.current).hypot(p95_standard_error(base));
    Some(Comparison {
        current,
        baseline,
        pct: pct_change(current, baseline),
        z: if se > f64::EPSILON { (current - baseline) / se } else { 0.0 },
    })
}

/// Error rate of a window in percentage points.
pub fn error_rate_pct(window: &WindowStats) -> f64 {
    if window.executions == 0 { 0.0 } else { window.failures as f64 / window.executions as f64 * 100.0 }
}

/// Failures of `class` in `window`.
pub fn class_count(window: &WindowStats, class: &str) -> u64 {
    window.errors.iter().filter(|e| e.error_class == class).map(|e| e.count).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_and_pct() {
        assert_eq!(z_score(13.0, 10.0, 1.0), 3.0);
        assert_eq!(z_score(13.0, 10.0, 0.0), 0.0);
        assert_eq!(pct_change(120.0, 100.0), 20.0);
        assert_eq!(pct_change(5.0, 0.0), 0.0);
    }

    #[test]
    fn percentile_interpolates() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert!((percentile(&v, 0.95).unwrap() - 95.05).abs() < 1e-9);
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn a_p95_change_is_measured_in_standard_errors_of_the_p95() {
        use crate::testing::{target, window, with_latency};
        // +48 % on a heavy tail (single calls spread over 12 ms): many
        // standard errors of a p95 known from 1000 calls a window.
        let w = |p95: f64| with_latency(window(1000, 0), 1.0, p95, p95 * 1.5, 12.0);
        let c = compare_p95(&target("a", w(2.96), Some(w(2.0)))).unwrap();
        assert!((c.pct - 48.0).abs() < 1e-9);
        assert!(c.z > 3.0, "{c:?}");
        assert!(c.regressed(20.0, 2.0));
        // The same change seen in 20 calls of a wide distribution is noise.
        let w = |p95: f64| with_latency(window(20, 0), 1.0, p95, p95 * 4.0, 12.0);
        let c = compare_p95(&target("a", w(2.96), Some(w(2.0)))).unwrap();
        assert!(c.z < 2.0 && !c.regressed(20.0, 2.0), "{c:?}");
    }

    #[test]
    fn mean_and_spread() {
        let (m, s) = mean_stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert_eq!(s, 2.0);
    }
}
