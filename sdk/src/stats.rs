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
    /// Standard score of `current` against the baseline's spread.
    pub z: f64,
}

impl Comparison {
    /// True when `current` is above the baseline by more than `pct` percent
    /// or by more than `sigmas` standard deviations.
    pub fn regressed(&self, pct: f64, sigmas: f64) -> bool {
        self.current > self.baseline && (self.pct > pct || self.z > sigmas)
    }
}

/// Compare p95 latency of the current window with the baseline window, the
/// spread taken from the baseline's standard deviation.
pub fn compare_p95(stats: &TargetStats) -> Option<Comparison> {
    let base = stats.baseline.as_ref()?;
    if base.executions == 0 || stats.current.executions == 0 {
        return None;
    }
    let (current, baseline) = (stats.current.latency.p95_ms, base.latency.p95_ms);
    Some(Comparison {
        current,
        baseline,
        pct: pct_change(current, baseline),
        z: z_score(current, baseline, base.latency.stddev_ms),
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
    fn mean_and_spread() {
        let (m, s) = mean_stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert_eq!(s, 2.0);
    }
}
