//! Step 2, detect: every detector slot's current version looks at the
//! sample; each returns findings. A detector that fails is reported, not
//! fatal; one that returns more than `loop.max_findings_per_detector`
//! findings keeps that many, and the excess becomes one finding about the
//! detector (a flood would otherwise cost one store write per finding).
//!
//! A finding names a target, not a version, so each detector looks at one
//! version of each target at a time: a target serving two versions (a
//! canary) is shown to it twice, once per version, and what it finds is
//! about the version it saw. Versions of a hosted unit that no longer
//! serve are not shown at all: a finding about a retired version is news
//! to nobody.
//!
//! The baseline is the whole target's, so its throughput is scaled to the
//! version's share of the target's calls in the current window: a canary
//! at 10 % serves a tenth of the demand, which is no drop, and neither is
//! the part of the window a version rolled back (and so not shown) served.
//! A fall in demand still shows, in every version's part.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Ctx;
use super::sample::Sample;
use crate::runtime::types::{DetectionInput, Evidence, Finding, PluginKind, Risk, Severity, TargetStats};

/// One finding as a detector reported it.
pub struct Reported {
    pub detector: String,
    /// The hosted unit's version the detector was looking at.
    pub version: Option<String>,
    pub finding: Finding,
}

/// What the detectors reported, their errors, and which of them failed
/// (their findings cannot be told to have cleared this cycle).
pub struct Detected {
    pub findings: Vec<Reported>,
    pub errors: Vec<String>,
    pub failed: HashSet<String>,
}

/// The detection input split so that each part holds at most one version
/// of each target, with the hosted unit version each target stands for in
/// that part. Metrics go with the first part only.
pub fn by_version(ctx: &Ctx, input: &DetectionInput) -> Vec<(DetectionInput, HashMap<String, String>)> {
    // Every version's calls count toward the target's demand, those of a
    // version retired within the window (rolled back, promoted past) too.
    let mut demand: HashMap<&str, u64> = HashMap::new();
    for t in &input.targets {
        *demand.entry(&t.target).or_default() += t.current.executions;
    }
    let mut per_target: BTreeMap<&str, Vec<&TargetStats>> = BTreeMap::new();
    for t in &input.targets {
        match serving(ctx, &t.target) {
            Some(versions) if !versions.contains(&t.version) => continue,
            _ => per_target.entry(&t.target).or_default().push(t),
        }
    }
    let per_target: BTreeMap<&str, Vec<TargetStats>> =
        per_target.into_iter().map(|(target, stats)| (target, at_their_shares(&stats, demand[target]))).collect();
    let parts = per_target.values().map(Vec::len).max().unwrap_or(0).max(1);
    (0..parts)
        .map(|k| {
            let mut versions = HashMap::new();
            let mut targets = Vec::new();
            for (target, stats) in &per_target {
                let Some(t) = stats.get(k) else { continue };
                if serving(ctx, target).is_some() {
                    versions.insert(target.to_string(), t.version.clone());
                }
                targets.push(t.clone());
            }
            let metrics = if k == 0 { input.metrics.clone() } else { Vec::new() };
            (DetectionInput { now_ms: input.now_ms, targets, metrics }, versions)
        })
        .collect()
}

/// One target's versions, each with the target's baseline throughput
/// scaled to the version's share of the `total` calls the target took in
/// the current window (the baseline spans versions; a version shown alone
/// would otherwise be compared with the whole demand).
fn at_their_shares(stats: &[&TargetStats], total: u64) -> Vec<TargetStats> {
    stats
        .iter()
        .map(|t| {
            let mut t = (*t).clone();
            if let Some(base) = t.baseline.as_mut()
                && total > 0
            {
                base.throughput *= t.current.executions as f64 / total as f64;
            }
            t
        })
        .collect()
}

/// The versions a hosted unit serves now (current and canary); `None` when
/// `target` is not a hosted unit.
pub fn serving(ctx: &Ctx, target: &str) -> Option<Vec<String>> {
    let slot = ctx.runtime.slot(target).filter(|s| s.kind() == PluginKind::Unit)?;
    let s = slot.serving();
    let mut out = vec![s.current.version().to_string()];
    out.extend(s.canary.as_ref().map(|c| c.plugin.version().to_string()));
    Some(out)
}

pub async fn detect(ctx: &Ctx, sample: &Sample) -> Detected {
    let mut out = Detected { findings: Vec::new(), errors: Vec::new(), failed: HashSet::new() };
    let parts = by_version(ctx, &sample.input);
    for slot in ctx.runtime.slots_of(PluginKind::Detector) {
        let name = slot.name().to_string();
        let mut found: Vec<(Option<String>, Finding)> = Vec::new();
        for (input, versions) in &parts {
            let error = match slot.current().detect(input).await {
                Ok(fs) => {
                    found.extend(fs.into_iter().map(|f| (versions.get(&f.target).cloned(), f)));
                    continue;
                }
                Err(e) => e.to_string(),
            };
            out.errors.push(format!("{name}: {error}"));
            out.failed.insert(name.clone());
            break;
        }
        let kept = capped(&name, found, ctx.config.max_findings_per_detector);
        out.findings.extend(kept.into_iter().map(|(version, finding)| Reported {
            detector: name.clone(),
            version,
            finding,
        }));
    }
    out
}

/// At most `cap` of `found`, plus one finding about `detector` when it
/// returned more.
fn capped(detector: &str, mut found: Vec<(Option<String>, Finding)>, cap: usize) -> Vec<(Option<String>, Finding)> {
    if found.len() <= cap {
        return found;
    }
    let total = found.len();
    found.truncate(cap);
    found.push((
        None,
        Finding {
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
            category: crate::runtime::types::Category::Reliability,
        },
    ));
    found
}
