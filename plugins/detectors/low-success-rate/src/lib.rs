//! Flags targets whose success rate in the current window is below
//! `threshold` (default 0.70) once they have at least `min_executions`
//! (default 20) calls, so that a handful of early failures is not a finding.

use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct LowSuccessRate;

impl Detector for LowSuccessRate {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "low-success-rate",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "Success rate below the threshold over enough executions",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let threshold = config.f64("threshold", 0.70);
        let min_executions = config.u64("min_executions", 20);
        input
            .targets
            .iter()
            .filter(|t| t.current.executions >= min_executions && t.current.success_rate < threshold)
            .map(|t| {
                let rate = t.current.success_rate;
                let severity = match rate {
                    r if r < 0.30 => Severity::Critical,
                    r if r <= 0.50 => Severity::High,
                    _ => Severity::Medium,
                };
                // More calls make the rate more trustworthy; 200 calls is full confidence.
                let confidence = (0.5 + t.current.executions as f64 / 400.0).min(1.0);
                Finding {
                    target: t.target.clone(),
                    kind: "low-success-rate".into(),
                    severity,
                    confidence,
                    summary: format!(
                        "{} {} succeeds in {:.1}% of {} calls (threshold {:.0}%)",
                        t.target,
                        t.version,
                        rate * 100.0,
                        t.current.executions,
                        threshold * 100.0
                    ),
                    evidence: vec![
                        Evidence::new("success_rate", format!("{rate:.4}")),
                        Evidence::new("executions", t.current.executions),
                        Evidence::new("failures", t.current.failures),
                        Evidence::new("version", &t.version),
                    ],
                    expected_gain_pct: ((1.0 - rate) * 100.0).min(100.0),
                    risk: Risk::Low,
                    category: Category::Reliability,
                }
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(LowSuccessRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window};

    #[test]
    fn fires_on_half_success() {
        let found = detect::<LowSuccessRate>(&input(vec![target("calc", window(100, 50), None)]), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "low-success-rate");
        assert_eq!(found[0].severity, Severity::High);
        assert!((found[0].expected_gain_pct - 50.0).abs() < 1e-9);
    }

    #[test]
    fn quiet_when_healthy_or_too_few_calls() {
        let healthy = input(vec![target("calc", window(100, 5), None)]);
        assert!(detect::<LowSuccessRate>(&healthy, &[]).is_empty());
        let few = input(vec![target("calc", window(10, 9), None)]);
        assert!(detect::<LowSuccessRate>(&few, &[]).is_empty());
    }

    #[test]
    fn threshold_is_configurable() {
        let i = input(vec![target("calc", window(100, 15), None)]);
        assert!(detect::<LowSuccessRate>(&i, &[]).is_empty());
        assert_eq!(detect::<LowSuccessRate>(&i, &[("threshold", "0.9")]).len(), 1);
    }
}
