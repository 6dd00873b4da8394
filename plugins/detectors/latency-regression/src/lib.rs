//! Flags a p95 latency regression against the baseline window: more than
//! `pct` percent (default 20) or more than `sigmas` standard deviations
//! (default 2) above it, given at least `min_executions` (default 20) calls in
//! both windows. The deviation rule catches regressions on tight
//! distributions; the percentage rule catches them on noisy ones.

use kaizen_sdk::stats::compare_p95;
use kaizen_sdk::{Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity};

pub struct LatencyRegression;

impl Detector for LatencyRegression {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "latency-regression",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "p95 latency above its baseline by a percentage or a number of deviations",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let pct = config.f64("pct", 20.0);
        let sigmas = config.f64("sigmas", 2.0);
        let min = config.u64("min_executions", 20);
        let mut out = Vec::new();
        for t in &input.targets {
            let Some(base) = &t.baseline else { continue };
            if t.current.executions < min || base.executions < min {
                continue;
            }
            let Some(cmp) = compare_p95(t) else { continue };
            if !cmp.regressed(pct, sigmas) {
                continue;
            }
            let severity = match cmp.pct {
                p if p > 200.0 => Severity::Critical,
                p if p > 100.0 => Severity::High,
                p if p > 40.0 => Severity::Medium,
                _ => Severity::Low,
            };
            out.push(Finding {
                target: t.target.clone(),
                kind: "latency-regression".into(),
                severity,
                confidence: if cmp.pct > pct && cmp.z > sigmas { 0.9 } else { 0.7 },
                summary: format!(
                    "{} p95 is {:.2} ms against a baseline of {:.2} ms (+{:.0}%, z={:.1})",
                    t.target, cmp.current, cmp.baseline, cmp.pct, cmp.z
                ),
                evidence: vec![
                    Evidence::new("p95_ms", format!("{:.3}", cmp.current)),
                    Evidence::new("baseline_p95_ms", format!("{:.3}", cmp.baseline)),
                    Evidence::new("change_pct", format!("{:.1}", cmp.pct)),
                    Evidence::new("z", format!("{:.2}", cmp.z)),
                ],
                // Getting back to the baseline saves this share of the current p95.
                expected_gain_pct: ((cmp.current - cmp.baseline) / cmp.current * 100.0).clamp(0.0, 100.0),
                risk: Risk::Medium,
            });
        }
        out
    }
}

kaizen_sdk::export_detector!(LatencyRegression);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window, with_latency};

    fn case(cur_p95: f64, base_p95: f64, base_sd: f64) -> Vec<Finding> {
        let cur = with_latency(window(100, 0), 1.0, cur_p95, cur_p95 * 1.2, base_sd);
        let base = with_latency(window(100, 0), 1.0, base_p95, base_p95 * 1.2, base_sd);
        detect::<LatencyRegression>(&input(vec![target("a", cur, Some(base))]), &[])
    }

    #[test]
    fn fires_on_percentage() {
        // +50 %, but a wide spread so the z rule alone would not fire.
        let f = case(15.0, 10.0, 10.0);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn fires_on_deviations() {
        // +10 % only, but 4 sigma on a tight distribution.
        assert_eq!(case(11.0, 10.0, 0.25).len(), 1);
    }

    #[test]
    fn quiet_when_within_bounds_or_faster() {
        assert!(case(11.0, 10.0, 1.0).is_empty());
        assert!(case(5.0, 10.0, 0.1).is_empty());
    }
}
