//! Flags a burst of failures: more than `max_failures` (default 3) failures in
//! the current window, which the host sizes to at most `window_hours`
//! (default 24). Unlike the success-rate rule it fires on busy targets whose
//! rate still looks fine but whose absolute failure count is rising.

use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct FailureBurst;

impl Detector for FailureBurst {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "failure-burst",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "More failures than allowed within the window",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let max_failures = config.u64("max_failures", 3);
        let window_hours = config.f64("window_hours", 24.0);
        input
            .targets
            .iter()
            .filter(|t| t.current.duration_secs <= window_hours * 3600.0 + 1.0)
            .filter(|t| t.current.failures > max_failures)
            .map(|t| {
                let f = t.current.failures;
                let severity = if f > max_failures * 10 {
                    Severity::High
                } else if f > max_failures * 3 {
                    Severity::Medium
                } else {
                    Severity::Low
                };
                Finding {
                    target: t.target.clone(),
                    kind: "failure-burst".into(),
                    severity,
                    confidence: (0.6 + f as f64 / (max_failures as f64 * 20.0)).min(0.95),
                    summary: format!(
                        "{} had {} failures in {:.0} s (allowed {})",
                        t.target, f, t.current.duration_secs, max_failures
                    ),
                    evidence: vec![
                        Evidence::new("failures", f),
                        Evidence::new("window_secs", t.current.duration_secs),
                        Evidence::new("max_failures", max_failures),
                    ],
                    expected_gain_pct: (1.0 - t.current.success_rate) * 100.0,
                    risk: Risk::Low,
                    category: Category::Reliability,
                }
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(FailureBurst);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window};

    #[test]
    fn fires_above_three_failures() {
        assert!(detect::<FailureBurst>(&input(vec![target("a", window(1000, 3), None)]), &[]).is_empty());
        let found = detect::<FailureBurst>(&input(vec![target("a", window(1000, 4), None)]), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Low);
    }

    #[test]
    fn ignores_windows_longer_than_configured() {
        let mut w = window(1000, 40);
        w.duration_secs = 48.0 * 3600.0;
        assert!(detect::<FailureBurst>(&input(vec![target("a", w, None)]), &[]).is_empty());
    }

    #[test]
    fn severity_grows_with_count() {
        let found = detect::<FailureBurst>(&input(vec![target("a", window(1000, 40), None)]), &[]);
        assert_eq!(found[0].severity, Severity::High);
        let found =
            detect::<FailureBurst>(&input(vec![target("a", window(1000, 40), None)]), &[("max_failures", "50")]);
        assert!(found.is_empty());
    }
}
