//! Test detector `legacy-detector`, built against `wit/v0.1`: reports one
//! `latency-regression` finding (a kind whose words say performance) for
//! every target whose window failed more than half its calls, so a test can
//! see a 0.1 finding reach the host with a category.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "detector", path: "../../../wit/v0.1" });

use kaizen::plugin::types::{Evidence, PluginKind, Risk, Severity};

struct LegacyDetector;

impl Guest for LegacyDetector {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-detector".into(),
            kind: PluginKind::Detector,
            version: "0.1.0".into(),
            description: "Test detector built against contract 0.1.0".into(),
        }
    }

    fn detect(input: DetectionInput) -> Vec<Finding> {
        input
            .targets
            .iter()
            .filter(|t| t.current.executions > 0 && t.current.failures * 2 > t.current.executions)
            .map(|t| Finding {
                target: t.target.clone(),
                kind: "latency-regression".into(),
                severity: Severity::High,
                confidence: 0.9,
                summary: format!("{} failed {} of {} calls", t.target, t.current.failures, t.current.executions),
                evidence: vec![Evidence { key: "failures".into(), value: t.current.failures.to_string() }],
                expected_gain_pct: 50.0,
                risk: Risk::Low,
            })
            .collect()
    }
}

export!(LegacyDetector);
