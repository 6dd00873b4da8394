//! Flags an error class that recurs more than `max_per_class` times (default
//! 10) in the current window: one class dominating points at one bug.

use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct RecurringError;

impl Detector for RecurringError {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "recurring-error",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "One error class recurring more than N times in the window",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let max = config.u64("max_per_class", 10);
        let mut out = Vec::new();
        for t in &input.targets {
            for e in t.current.errors.iter().filter(|e| e.count > max) {
                let share = e.count as f64 / t.current.executions.max(1) as f64 * 100.0;
                out.push(Finding {
                    target: t.target.clone(),
                    kind: "recurring-error".into(),
                    severity: if share > 25.0 { Severity::High } else { Severity::Medium },
                    confidence: 0.8,
                    summary: format!(
                        "{} failed {} times with `{}` ({:.1}% of calls)",
                        t.target, e.count, e.error_class, share
                    ),
                    evidence: vec![
                        Evidence::new("error_class", &e.error_class),
                        Evidence::new("count", e.count),
                        Evidence::new("share_pct", format!("{share:.2}")),
                    ],
                    expected_gain_pct: share,
                    risk: Risk::Low,
                    category: Category::Reliability,
                });
            }
        }
        out
    }
}

kaizen_sdk::export_detector!(RecurringError);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window, with_errors};

    #[test]
    fn one_finding_per_recurring_class() {
        let w = with_errors(window(100, 30), &[("trap", 20), ("timeout", 10)]);
        let f = detect::<RecurringError>(&input(vec![target("a", w, None)]), &[]);
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence.iter().any(|e| e.key == "error_class" && e.value == "trap"));
    }

    #[test]
    fn limit_is_configurable() {
        let w = with_errors(window(100, 10), &[("timeout", 10)]);
        assert!(detect::<RecurringError>(&input(vec![target("a", w.clone(), None)]), &[]).is_empty());
        assert_eq!(detect::<RecurringError>(&input(vec![target("a", w, None)]), &[("max_per_class", "5")]).len(), 1);
    }
}
