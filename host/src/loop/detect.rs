//! Step 2, detect: every detector slot's current version looks at the
//! sample; each returns findings. A detector that fails is reported, not
//! fatal; one that returns more than `loop.max_findings_per_detector`
//! findings keeps that many, and the excess becomes one finding about the
//! detector (a flood would otherwise cost one store write per finding).

use super::Ctx;
use super::sample::Sample;
use crate::runtime::types::{Evidence, Finding, PluginKind, Risk, Severity};

/// Findings by detector name, and the detectors' errors.
pub struct Detected {
    pub findings: Vec<(String, Finding)>,
    pub errors: Vec<String>,
}

pub async fn detect(ctx: &Ctx, sample: &Sample) -> Detected {
    let mut out = Detected { findings: Vec::new(), errors: Vec::new() };
    for slot in ctx.runtime.slots_of(PluginKind::Detector) {
        let (det, input) = (slot.current(), sample.input.clone());
        match tokio::task::spawn_blocking(move || det.detect(&input)).await {
            Ok(Ok(found)) => {
                let name = slot.name().to_string();
                let kept = capped(&name, found, ctx.config.max_findings_per_detector);
                out.findings.extend(kept.into_iter().map(|f| (name.clone(), f)));
            }
            Ok(Err(e)) => out.errors.push(format!("{}: {e}", slot.name())),
            Err(e) => out.errors.push(format!("{}: {e}", slot.name())),
        }
    }
    out
}

/// At most `cap` of `found`, plus one finding about `detector` when it
/// returned more.
fn capped(detector: &str, mut found: Vec<Finding>, cap: usize) -> Vec<Finding> {
    if found.len() <= cap {
        return found;
    }
    let total = found.len();
    found.truncate(cap);
    found.push(Finding {
        target: detector.to_string(),
        kind: "detector-flood".into(),
        severity: Severity::Medium,
        confidence: 1.0,
        summary: format!(
            "detector {detector} returned {total} findings in one pass; the first {cap} were kept \
             (loop.max_findings_per_detector)"
        ),
        evidence: vec![
            Evidence { key: "returned".into(), value: total.to_string() },
            Evidence { key: "kept".into(), value: cap.to_string() },
            Evidence { key: "dropped".into(), value: (total - cap).to_string() },
        ],
        expected_gain_pct: 0.0,
        risk: Risk::Low,
    });
    found
}
