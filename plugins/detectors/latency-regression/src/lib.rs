//! Flags a p95 latency regression against the baseline window: more than
//! `pct` percent (default 20) above it — a slowdown large enough to matter —
//! and more than `sigmas` (default 2) standard errors of the two p95
//! estimates — shown beyond the noise of the windows — given at least
//! `min_executions` (default 20) calls in both. Both numbers are in the
//! finding, and both say the same thing.

use kaizen_sdk::stats::compare_p95;
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

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
                confidence: if cmp.z > 2.0 * sigmas { 0.9 } else { 0.7 },
                summary: format!(
                    "{} p95 is {:.2} ms against a baseline of {:.2} ms (+{:.0} %, {:.1} standard errors above it)",
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
                category: Category::Performance,
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

    /// `calls` a window, p99 at `tail` times the p95.
    fn case(cur_p95: f64, base_p95: f64, calls: u64, tail: f64) -> Vec<Finding> {
        let cur = with_latency(window(calls, 0), 1.0, cur_p95, cur_p95 * tail, 10.0);
        let base = with_latency(window(calls, 0), 1.0, base_p95, base_p95 * tail, 10.0);
        detect::<LatencyRegression>(&input(vec![target("a", cur, Some(base))]), &[])
    }

    fn evidence(f: &Finding, key: &str) -> f64 {
        f.evidence.iter().find(|e| e.key == key).unwrap().value.parse().unwrap()
    }

    #[test]
    fn fires_on_a_large_slowdown_shown_beyond_noise() {
        // +48 % with single calls spread over 10 ms: the p95 of 1000 calls
        // is known far better than that.
        let f = case(2.96, 2.0, 1000, 1.5);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Medium);
        assert!(evidence(&f[0], "change_pct") > 20.0 && evidence(&f[0], "z") > 2.0, "{:?}", f[0].evidence);
        assert!(f[0].summary.contains("+48 %"), "{}", f[0].summary);
        assert!(!f[0].summary.contains("0.0 standard errors"), "{}", f[0].summary);
    }

    #[test]
    fn quiet_when_the_change_is_within_noise() {
        // +48 %, but 20 calls of a wide distribution: not shown.
        assert!(case(2.96, 2.0, 20, 4.0).is_empty());
    }

    #[test]
    fn quiet_when_small_or_faster() {
        // +10 %: shown beyond noise, but below the 20 % that matters.
        assert!(case(11.0, 10.0, 10_000, 1.05).is_empty());
        assert!(case(5.0, 10.0, 1000, 1.2).is_empty());
    }
}
