//! Flags a unit whose p95 latency is over the budget its operator set for it
//! — a latency objective, not a regression: a unit can be as slow as it
//! always was and still too slow. Budgets are per target, in milliseconds,
//! in this detector's configuration (`[runtime.plugin_config.latency-budget]
//! batcher = 1.5`); targets without one are left alone. At least
//! `min_executions` (default 50) calls in the window are needed.

use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct LatencyBudget;

impl Detector for LatencyBudget {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "latency-budget",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "p95 latency over the budget the operator set for the unit",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let min = config.u64("min_executions", 50);
        let mut out = Vec::new();
        for t in &input.targets {
            let budget = config.f64(&t.target, f64::NAN);
            let p95 = t.current.latency.p95_ms;
            let has_budget = budget.is_finite() && budget > 0.0;
            if !has_budget || t.current.executions < min || p95 <= budget {
                continue;
            }
            let over = (p95 / budget - 1.0) * 100.0;
            let severity = match over {
                o if o > 200.0 => Severity::High,
                o if o > 50.0 => Severity::Medium,
                _ => Severity::Low,
            };
            out.push(Finding {
                target: t.target.clone(),
                kind: "latency-over-budget".into(),
                severity,
                confidence: 0.9,
                summary: format!(
                    "{} {} p95 {:.2} ms over its {:.2} ms budget ({:.0} % over, {} calls)",
                    t.target, t.version, p95, budget, over, t.current.executions
                ),
                evidence: vec![
                    Evidence::new("p95_ms", format!("{p95:.3}")),
                    Evidence::new("budget_ms", budget),
                    Evidence::new("executions", t.current.executions),
                ],
                expected_gain_pct: (1.0 - budget / p95) * 100.0,
                risk: Risk::Low,
                category: Category::Performance,
            });
        }
        out
    }
}

kaizen_sdk::export_detector!(LatencyBudget);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window, with_latency};

    #[test]
    fn flags_only_targets_over_their_own_budget() {
        let slow = target("batcher", with_latency(window(100, 0), 2.0, 3.0, 4.0, 0.5), None);
        let other = target("calculator", with_latency(window(100, 0), 9.0, 9.0, 9.0, 0.5), None);
        let found = detect::<LatencyBudget>(&input(vec![slow, other]), &[("batcher", "1.5")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].target.as_str(), found[0].category), ("batcher", Category::Performance));
        assert!((found[0].expected_gain_pct - 50.0).abs() < 1e-9);
        let within = target("batcher", with_latency(window(100, 0), 1.0, 1.2, 1.3, 0.1), None);
        assert!(detect::<LatencyBudget>(&input(vec![within]), &[("batcher", "1.5")]).is_empty());
        let few = target("batcher", with_latency(window(10, 0), 2.0, 3.0, 4.0, 0.5), None);
        assert!(detect::<LatencyBudget>(&input(vec![few]), &[("batcher", "1.5")]).is_empty());
    }
}
