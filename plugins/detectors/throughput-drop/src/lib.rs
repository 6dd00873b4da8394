//! Flags throughput that fell by more than `pct` percent (default 30) against
//! the baseline window, when the baseline saw at least `min_executions`
//! (default 20) calls. A drop can mean callers gave up on a slow or failing
//! unit, or that something upstream broke.

use kaizen_sdk::stats::pct_change;
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
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
        input
            .targets
            .iter()
            .filter_map(|t| {
                let base = t.baseline.as_ref()?;
                if base.executions < min || base.throughput <= 0.0 {
                    return None;
                }
                let drop = -pct_change(t.current.throughput, base.throughput);
                (drop > pct).then(|| Finding {
                    target: t.target.clone(),
                    kind: "throughput-drop".into(),
                    severity: if drop > 80.0 { Severity::High } else { Severity::Medium },
                    confidence: 0.6,
                    summary: format!(
                        "{} serves {:.1}/s against {:.1}/s before (-{:.0}%)",
                        t.target, t.current.throughput, base.throughput, drop
                    ),
                    evidence: vec![
                        Evidence::new("throughput", format!("{:.3}", t.current.throughput)),
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
}
