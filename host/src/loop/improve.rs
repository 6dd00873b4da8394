//! Step 4, improve: the top finding of each target, then the candidates
//! queued for targets with no finding, each given one attempt (take a
//! candidate, prove it, start its rollout) within the safety limits.

use super::attempt::{Attempt, AttemptResult};
use super::sample::Sample;
use super::{CycleReport, Loop};
use crate::runtime::types::PluginKind;
use crate::store::findings::FindingRecord;

pub async fn improve(lp: &Loop, findings: &[FindingRecord], sample: &Sample, r: &mut CycleReport) {
    let mut started = 0;
    for (target, finding) in order(lp, findings) {
        let executions = sample.load.get(&target).copied().unwrap_or(0);
        let Some(a) = lp.attempt(&target, finding.as_ref(), started, executions).await else { continue };
        if a.improvement_id.is_some() {
            started += 1;
        }
        if matches!(a.result, AttemptResult::Denied(_)) {
            r.denied.push(format!("{target}: {}", a.result));
        }
        r.attempts.push(a);
    }
}

/// Targets in the order they are attempted: by their top finding's impact,
/// then units with a queued candidate and no finding.
fn order(lp: &Loop, findings: &[FindingRecord]) -> Vec<(String, Option<FindingRecord>)> {
    let ctx = &lp.ctx;
    let mut order: Vec<(String, Option<FindingRecord>)> = Vec::new();
    for f in findings {
        if !order.iter().any(|(t, _)| t == &f.target) {
            order.push((f.target.clone(), Some(f.clone())));
        }
    }
    for slot in ctx.runtime.slots_of(PluginKind::Unit) {
        if ctx.candidates.has(slot.name()) && !order.iter().any(|(t, _)| t == slot.name()) {
            order.push((slot.name().to_string(), None));
        }
    }
    order
}

/// Whether an attempt's result means part of the loop broke (not that
/// safety or a proof turned a change down).
pub fn broke(a: &Attempt) -> bool {
    matches!(a.result, AttemptResult::GeneratorFailed(_) | AttemptResult::Failed(_))
}
