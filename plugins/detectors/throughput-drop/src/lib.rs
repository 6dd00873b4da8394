//! Flags throughput that fell by more than `pct` percent (default 30) against
//! the baseline window, when the baseline saw at least `min_executions`
//! (default 20) calls. A drop can mean callers gave up on a slow or failing
//! unit, or that something upstream broke. The rate is the target's: the
//! versions serving side by side in a canary are added up. (The loop shows
//! each version alone, its baseline scaled to the version's share, which
//! reads the same.)

use std::collections::BTreeMap;

use kaizen_sdk::stats::pct_change;
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity, WindowStats,
};

pub struct ThroughputDrop;

impl Detector for ThroughputDrop {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "throughput-drop",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "Throughput fell by more than N percent against its baseline",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let pct = config.f64("pct", 30.0);
        let min = config.u64("min_executions", 20);
        // Throughput is the target's, not one version's: during a canary
        // each arm serves its share of the same demand, and the baseline is
        // the whole target's. So the versions' rates are added up first.
        let mut targets: BTreeMap<&str, (f64, Option<&WindowStats>)> = BTreeMap::new();
        for t in &input.targets {
            let entry = targets.entry(&t.target).or_insert((0.0, None));
            entry.0 += t.current.throughput;
            entry.1 = entry.1.or(t.baseline.as_ref());
        }
        targets
            .into_iter()
            .filter_map(|(target, (current, base))| {
                let base = base?;
                if base.executions < min || base.throughput <= 0.0 {
                    return None;
                }
                let drop = -pct_change(current, base.throughput);
                (drop > pct).then(|| Finding {
                    target: target.to_string(),
                    kind: "throughput-drop".into(),
                    severity: if drop > 80.0 { Severity::High } else { Severity::Medium },
                    confidence: 0.6,
                    summary: format!(
                        "{target} serves {current:.1}/s against {:.1}/s before (-{drop:.0}%)",
                        base.throughput
                    ),
                    evidence: vec![
                        Evidence::new("throughput", format!("{current:.3}")),
                        Evidence::new("baseline_throughput", format!("{:.3}", base.throughput)),
                        Evidence::new("drop_pct", format!("{drop:.1}")),
                    ],
                    expected_gain_pct: drop,
                    risk: Risk::Medium,
                    category: Category::Performance,
                })
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(ThroughputDrop);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window};

    #[test]
    fn fires_on_a_forty_percent_drop() {
        let f = detect::<ThroughputDrop>(&input(vec![target("a", window(60, 0), Some(window(100, 0)))]), &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "throughput-drop");
    }

    #[test]
    fn quiet_on_small_drop_or_thin_baseline() {
        assert!(
            detect::<ThroughputDrop>(&input(vec![target("a", window(80, 0), Some(window(100, 0)))]), &[]).is_empty()
        );
        assert!(detect::<ThroughputDrop>(&input(vec![target("a", window(1, 0), Some(window(10, 0)))]), &[]).is_empty());
    }

    #[test]
    fn a_canary_split_is_not_a_drop() {
        // 90 and 10 calls over the window against 100 before: the demand
        // is the same, split between two versions.
        let split = input(vec![
            target("a", window(90, 0), Some(window(100, 0))),
            kaizen_sdk::TargetStats { version: "2.0.0".into(), ..target("a", window(10, 0), Some(window(100, 0))) },
        ]);
        assert!(detect::<ThroughputDrop>(&split, &[]).is_empty());
        // Both arms down by half: one finding, for the target.
        let down = input(vec![
            target("a", window(45, 0), Some(window(100, 0))),
            kaizen_sdk::TargetStats { version: "2.0.0".into(), ..target("a", window(5, 0), Some(window(100, 0))) },
        ]);
        let f = detect::<ThroughputDrop>(&down, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].summary.contains("-50%"), "{}", f[0].summary);
    }
}
