//! Replay: recorded requests run on the serving version and the candidate,
//! compared class by class ([`super::outcomes`]).

use std::collections::HashSet;
use std::sync::Arc;

use super::outcomes::{About, RateTest, Runs, Tally, run, settle};
use super::{ProofStep, ProveConfig};
use crate::runtime::Plugin;
use crate::store::{Db, executions};

/// Run one recorded request on both versions, again when it ends
/// differently.
async fn runs_of(current: &Arc<Plugin>, candidate: &Arc<Plugin>, request: Vec<u8>, reruns: u32, outputs: bool) -> Runs {
    let first = (run(current, &request).await, run(candidate, &request).await);
    settle(current, candidate, &request, first, reruns, outputs).await
}

/// Replay up to `replay_max` distinct recorded requests of the unit.
/// Outputs are compared when `compare_outputs` (the finding is not about
/// wrong outputs).
pub async fn replay(
    db: &Db,
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    cfg: &ProveConfig,
    test: RateTest,
    about: &About,
    compare_outputs: bool,
) -> ProofStep {
    let recorded = match executions::replayable(db, candidate.name(), cfg.replay_max).await {
        Ok(r) => r,
        Err(e) => return ProofStep::new("replay", "failed", format!("cannot read recorded requests: {e}")),
    };
    let (sv, cv) = (current.version(), candidate.version());
    let mut seen = HashSet::new();
    let mut tally = Tally::default();
    for r in recorded {
        let Some(req) = r.execution.request else { continue };
        if !seen.insert(req.clone()) {
            continue;
        }
        let runs = runs_of(current, candidate, req.clone(), cfg.reruns, compare_outputs).await;
        let failed =
            tally.add(Some(r.id), &req, &runs, about, compare_outputs).or_else(|| tally.increase(test, sv, cv));
        if let Some(d) = failed {
            return ProofStep::new("replay", "failed", d.words(sv, cv));
        }
    }
    if tally.requests == 0 {
        return ProofStep::new("replay", "skipped", "no recorded requests to replay");
    }
    let outputs = if compare_outputs { "outcomes and outputs" } else { "outcomes" };
    ProofStep::new(
        "replay",
        "passed",
        format!(
            "{} recorded request(s) replayed on {sv} and {cv}, {outputs} compared{}",
            tally.requests,
            tally.words(cfg.reruns, about, sv, cv),
        ),
    )
}
