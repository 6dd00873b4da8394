//! Detector `__NAME__`: flags targets whose p95 latency is over a budget.
//! Configure with `[runtime.plugin_config.__NAME__] budget_ms = "50"`.

use kaizen_sdk::{Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity};

pub struct __TYPE__;

impl Detector for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Detector, env!("CARGO_PKG_VERSION"), "p95 latency over a budget")
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let budget = config.f64("budget_ms", 50.0);
        input
            .targets
            .iter()
            .filter(|t| t.current.executions >= 20 && t.current.latency.p95_ms > budget)
            .map(|t| Finding {
                target: t.target.clone(),
                kind: "__NAME__".into(),
                severity: Severity::Medium,
                confidence: 0.8,
                summary: format!("{} p95 {:.1} ms over a {budget} ms budget", t.target, t.current.latency.p95_ms),
                evidence: vec![Evidence::new("p95_ms", t.current.latency.p95_ms)],
                expected_gain_pct: (1.0 - budget / t.current.latency.p95_ms) * 100.0,
                risk: Risk::Low,
                category: Category::Reliability,
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window, with_latency};

    #[test]
    fn fires_over_budget_only() {
        let slow = with_latency(window(100, 0), 10.0, 80.0, 90.0, 5.0);
        let fast = with_latency(window(100, 0), 1.0, 2.0, 3.0, 0.5);
        assert_eq!(detect::<__TYPE__>(&input(vec![target("api", slow, None)]), &[]).len(), 1);
        assert!(detect::<__TYPE__>(&input(vec![target("api", fast, None)]), &[]).is_empty());
    }
}
