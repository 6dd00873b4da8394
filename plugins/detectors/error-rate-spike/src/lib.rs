//! Flags an error rate that rose by more than `points` percentage points
//! (default 5) over the baseline window, with at least `min_executions`
//! (default 20) calls in the current window.

use kaizen_sdk::stats::error_rate_pct;
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct ErrorRateSpike;

impl Detector for ErrorRateSpike {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "error-rate-spike",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "Error rate up by more than N points over the baseline",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let points = config.f64("points", 5.0);
        let min = config.u64("min_executions", 20);
        input
            .targets
            .iter()
            .filter(|t| t.current.executions >= min)
            .filter_map(|t| {
                let base = t.baseline.as_ref()?;
                let (now, before) = (error_rate_pct(&t.current), error_rate_pct(base));
                let rise = now - before;
                (rise > points).then(|| Finding {
                    target: t.target.clone(),
                    kind: "error-rate-spike".into(),
                    severity: match rise {
                        r if r > 50.0 => Severity::Critical,
                        r if r > 20.0 => Severity::High,
                        _ => Severity::Medium,
                    },
                    confidence: if base.executions >= min { 0.85 } else { 0.6 },
                    summary: format!(
                        "{} error rate {:.1}% against {:.1}% before (+{:.1} points)",
                        t.target, now, before, rise
                    ),
                    evidence: vec![
                        Evidence::new("error_rate_pct", format!("{now:.2}")),
                        Evidence::new("baseline_error_rate_pct", format!("{before:.2}")),
                        Evidence::new("rise_points", format!("{rise:.2}")),
                    ],
                    expected_gain_pct: rise,
                    risk: Risk::Low,
                    category: Category::Reliability,
                })
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(ErrorRateSpike);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window};

    #[test]
    fn fires_above_five_points() {
        let f = detect::<ErrorRateSpike>(&input(vec![target("a", window(100, 8), Some(window(100, 1)))]), &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn quiet_at_five_points_or_without_baseline() {
        assert!(
            detect::<ErrorRateSpike>(&input(vec![target("a", window(100, 6), Some(window(100, 1)))]), &[]).is_empty()
        );
        assert!(detect::<ErrorRateSpike>(&input(vec![target("a", window(100, 60), None)]), &[]).is_empty());
    }
}
