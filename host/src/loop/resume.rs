//! What a start does with the improvements the last run left unfinished.
//!
//! The rule (the README states it for operators):
//! - A rollout (`canary`, `baking` or `frozen`) resumes at the canary step
//!   its slot's deployment record names, with fresh samples and a fresh
//!   time budget; one that was in its bake starts its bake again, against
//!   a fresh holdback. Under an emergency stop it resumes frozen at that
//!   step.
//! - It is closed as `aborted` instead, with the checkpoint serving, when
//!   its candidate or its checkpoint can no longer be loaded from the module
//!   store, or the slot serves neither of them.
//! - An improvement still being proven, or proven and waiting for a
//!   rollout, is closed as `aborted` and its candidate queued again in
//!   the place it had, first in its target's line: the next cycle proves
//!   it afresh. Closing it and queueing it are one write; if the store
//!   refuses it, the improvement stays open on disk and every cycle tries
//!   again ([`Ctx::end_and_requeue`]).
//! - The candidates that were queued and not yet taken up wait again, in
//!   the order they came (the queue is kept on disk: [`super::queue`]),
//!   behind those whose proof was cut short.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::candidates::Candidate;
use super::{Ctx, Loop, rollout};
use crate::events::Event;
use crate::runtime::Plugin;
use crate::store::deployments::DeployState;
use crate::store::findings::FindingStatus;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::{self, now_ms};

/// What a start found unfinished and did about it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    /// Rollouts carrying on from their recorded step.
    pub rollouts: usize,
    /// Rollouts that could not resume: closed, the checkpoint serving.
    pub closed: usize,
    /// Candidates whose proof was cut short, queued again.
    pub requeued: usize,
    /// Candidates waiting in the queue (kept on disk), these requeued ones
    /// included: the loop takes them up in the order they came, a requeued
    /// one first in its target's line (the place it had).
    #[serde(default)]
    pub queued: usize,
    pub errors: Vec<String>,
}

impl Loop {
    /// Resume or close every improvement the last run left unfinished (see
    /// the module's rule). Called once, when the host opens.
    pub async fn resume(&self) -> Resumed {
        let mut r = Resumed::default();
        let unfinished = match store::improvements::unsettled(&self.ctx.db).await {
            Ok(v) => v,
            Err(e) => {
                r.errors.push(format!("cannot read unfinished improvements: {e}"));
                return r;
            }
        };
        for imp in unfinished {
            if imp.state.rolling_out() {
                match self.resume_rollout(&imp).await {
                    Ok(()) => r.rollouts += 1,
                    Err(why) => {
                        self.close(imp, &format!("could not resume after a restart: {why}")).await;
                        r.closed += 1;
                    }
                }
            } else {
                let why = "interrupted by a restart before its rollout began; the candidate is queued again";
                match self.ctx.runtime.load_stored(&imp.candidate_sha) {
                    Ok(plugin) => {
                        let candidate = Candidate { plugin, source: imp.source.clone() };
                        let (id, mut imp) = (imp.id, imp);
                        (imp.state, imp.reason, imp.updated_at) = (ImprovementState::Aborted, why.into(), now_ms());
                        if !self.ctx.end_and_requeue(imp, candidate).await {
                            r.errors.push(format!(
                                "improvement {id}'s candidate could not be queued again yet; tried again next cycle"
                            ));
                        }
                        r.requeued += 1;
                    }
                    Err(e) => {
                        self.close(imp, &format!("interrupted by a restart; its candidate cannot be loaded: {e}"))
                            .await;
                        r.closed += 1;
                    }
                }
            }
        }
        // The candidates the last run (or the last leader) had answered
        // "candidate" for and not yet begun to prove, behind these requeued
        // ones.
        let refilled = {
            let _no_cycle = self.cycle_lock.lock().await;
            super::queue::refill(&self.ctx).await
        };
        match refilled {
            Ok(q) => {
                r.queued = q.queued;
                r.errors.extend(q.errors);
            }
            Err(e) => r.errors.push(format!("cannot read the queued candidates (read again next cycle): {e}")),
        }
        for e in &r.errors {
            tracing::error!("resume: {e}");
        }
        r
    }

    /// Take the slot again and start the rollout at its recorded step.
    async fn resume_rollout(&self, imp: &Improvement) -> Result<(), String> {
        let ctx = &self.ctx;
        let slot = ctx.runtime.slot(&imp.target).ok_or("its slot is gone")?;
        let candidate = ctx.runtime.load_stored(&imp.candidate_sha).map_err(|e| format!("candidate: {e}"))?;
        let baseline_sha = imp.baseline_sha.as_deref().ok_or("no checkpoint was recorded")?;
        let known: Vec<Arc<Plugin>> = std::iter::once(slot.current()).chain(slot.history()).collect();
        let baseline = stored(&known, baseline_sha)
            .map(Ok)
            .unwrap_or_else(|| ctx.runtime.load_stored(baseline_sha))
            .map_err(|e| format!("checkpoint: {e}"))?;
        let step = self.recorded_step(imp).await;
        let owned = rollout::begin(ctx, imp, &candidate, &baseline, &[baseline_sha, candidate.id()], true)
            .map_err(|e| e.to_string())?;
        // The split that was in force serves again before `open` returns.
        if let Some(pct) = canary_steps(ctx, &imp.target).get(step) {
            owned.claim.split(&baseline, &candidate, *pct, None).map_err(|e| e.to_string())?;
        }
        let run = rollout::run(ctx.clone(), owned, imp.clone(), candidate, baseline, rollout::Start::Resume { step });
        self.spawn_rollout(imp.id, run);
        Ok(())
    }

    /// The canary step the slot's deployment record names for `imp`: the
    /// step at its share while in canary, the bake (the number of steps)
    /// once it was promoted, else the first.
    async fn recorded_step(&self, imp: &Improvement) -> usize {
        let steps = canary_steps(&self.ctx, &imp.target);
        let record = store::deployments::get(&self.ctx.db, &imp.target).await.ok().flatten();
        match record {
            Some(d) if d.state == DeployState::Canary && d.candidate_sha.as_deref() == Some(&imp.candidate_sha) => {
                steps.iter().position(|p| *p >= d.canary_percent).unwrap_or(steps.len().saturating_sub(1))
            }
            Some(d) if d.current_sha == imp.candidate_sha => steps.len(),
            _ if imp.state == ImprovementState::Baking => steps.len(),
            _ => 0,
        }
    }

    /// End `imp` as aborted with the checkpoint serving.
    async fn close(&self, imp: Improvement, why: &str) {
        settle_unowned(&self.ctx, imp, why, ImprovementState::Aborted).await;
    }
}

/// End `imp`, whose rollout no longer holds its slot (a restart, a
/// panicked rollout task), in `state` with the checkpoint serving: its
/// canary is withdrawn, or a promoted candidate is rolled back to the
/// checkpoint's exact bytes.
pub(super) async fn settle_unowned(ctx: &Ctx, mut imp: Improvement, why: &str, state: ImprovementState) {
    let mut why = why.to_string();
    let slot = ctx.runtime.slot(&imp.target);
    let canary_is_ours =
        slot.as_ref().is_some_and(|s| s.serving().canary.as_ref().is_some_and(|c| c.plugin.id() == imp.candidate_sha));
    let taken_back = if canary_is_ours {
        Some(ctx.runtime.rollback(&imp.target))
    } else if let (Some(slot), Some(base)) = (&slot, imp.baseline_sha.as_deref())
        && slot.current().id() == imp.candidate_sha
    {
        Some(ctx.runtime.rollback_to(&imp.target, base))
    } else {
        None
    };
    if let Some(taken_back) = taken_back {
        match taken_back {
            Ok(rb) => {
                let written = store::deployments::record_rollback(
                    &ctx.db,
                    &imp.target,
                    "unit",
                    rb.to.id(),
                    rb.from.id(),
                    rb.chain.clone(),
                    &why,
                );
                ctx.write("deployment", &imp.target, written).await;
                let event = Event::rollback(&rb, &why, Some("host"));
                ctx.audit.record_event("host", "rolled-back", &imp.target, event).await;
            }
            Err(e) => why = format!("{why}; the checkpoint could not be put back: {e}"),
        }
    } else if imp.state.rolling_out() {
        why = format!("{why}; the checkpoint serves");
    }
    (imp.state, imp.reason, imp.updated_at) = (state, why.clone(), now_ms());
    let version = store::modules::version_of(&ctx.db, &imp.candidate_sha).await.ok().flatten().unwrap_or_default();
    let event = Event::RolloutAborted {
        improvement: imp.id,
        candidate_version: version.clone(),
        by: "host".into(),
        reason: why,
    };
    ctx.audit.record_event("host", "rollout-aborted", &imp.target, event).await;
    if let Some(fid) = imp.finding_id {
        ctx.set_finding(fid, FindingStatus::Open).await;
    }
    ctx.end(&imp, &version).await;
}

fn stored(history: &[Arc<Plugin>], sha: &str) -> Option<Arc<Plugin>> {
    history.iter().find(|p| p.id() == sha).cloned()
}

fn canary_steps(ctx: &Ctx, target: &str) -> Vec<f64> {
    ctx.safety.limits_for(target).canary_steps.iter().copied().filter(|p| *p < 100.0).collect()
}
