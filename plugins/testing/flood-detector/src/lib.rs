//! Test detector `flood`: returns `count` (default 5000) findings on every
//! pass, each of its own kind, whatever the input. The host must cap what
//! one detector can write per cycle.

use kaizen_sdk::{Category, Config, DetectionInput, Detector, Finding, PluginInfo, PluginKind, Risk, Severity};

pub struct Flood;

impl Detector for Flood {
    fn describe() -> PluginInfo {
        PluginInfo::new("flood", PluginKind::Detector, env!("CARGO_PKG_VERSION"), "Test detector that floods findings")
    }

    fn detect(_input: &DetectionInput, config: &Config) -> Vec<Finding> {
        (0..config.u64("count", 5000))
            .map(|i| Finding {
                target: "calculator".into(),
                kind: format!("flood-{i}"),
                severity: Severity::Low,
                confidence: 0.9,
                summary: format!("flood finding {i}"),
                evidence: vec![],
                expected_gain_pct: 1.0,
                risk: Risk::Low,
                category: Category::Reliability,
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(Flood);
