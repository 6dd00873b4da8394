//! Proven candidates waiting to roll out. Outside the rollout windows, in a
//! change freeze, in an hour that historically brings too little traffic
//! for a canary ([`super::hours`]), or at the limit on concurrent rollouts, a candidate that
//! passed its proof is parked here with its improvement `proposed` (the
//! reason says what it waits for). At the start of each cycle's improve
//! step it starts when the gate opens — without being proven again, since
//! the version it was proven against still serves. If another version
//! serves by then, its proof no longer holds: the improvement ends
//! `aborted` and the candidate is queued again, to be proven afresh.
//!
//! One improvement waits per target at most; while it waits nothing else
//! is tried on that target. A restart closes it and queues its candidate
//! again (see [`super::resume`]).

use std::sync::Arc;

use super::attempt::{Attempt, AttemptResult};
use super::candidates::Candidate;
use super::{CycleReport, Loop};
use crate::events::Event;
use crate::runtime::Plugin;
use crate::safety::Denied;
use crate::schedule::Gate;
use crate::store::findings::FindingStatus;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::now_ms;

/// A proven candidate and what it was proven against.
pub struct Waiting {
    pub imp: Improvement,
    pub candidate: Candidate,
    pub baseline: Arc<Plugin>,
    /// Its finding is critical (an emergency fix, see `safety.schedule`).
    pub critical: bool,
}

impl Loop {
    /// Park a proven candidate that may not roll out now because of `why`;
    /// the attempt's result says it waits.
    pub(super) async fn park(&self, mut w: Waiting, why: &Denied) -> AttemptResult {
        let reason = format!("proven; waits to roll out: {why}");
        (w.imp.state, w.imp.reason, w.imp.updated_at) = (ImprovementState::Proposed, reason.clone(), now_ms());
        self.ctx.save(&w.imp).await;
        let event = Event::RolloutWaiting {
            improvement: w.imp.id,
            candidate_version: w.candidate.plugin.version().into(),
            reason: why.to_string(),
        };
        self.ctx.audit.record_event("loop", "rollout-waiting", &w.imp.target, event).await;
        self.ctx.waiting.lock().insert(w.imp.target.clone(), w);
        AttemptResult::Waiting(why.to_string())
    }

    /// May a proven candidate of `target` start its rollout now? The safety
    /// controller's windows and freezes, then the traffic this hour of day
    /// brings ([`super::hours`]); a critical finding's fix is not held for
    /// traffic.
    pub(super) fn may_start(&self, target: &str, critical: bool) -> Result<(), Denied> {
        self.ctx.safety.may_start_rollout(target, critical)?;
        if critical {
            return Ok(());
        }
        super::hours::canary_traffic(&self.ctx, target, crate::store::now_ms())
    }

    /// The improvement waiting on `target`, and what it waits for.
    pub fn waiting_on(&self, target: &str) -> Option<(i64, String)> {
        self.ctx.waiting.lock().get(target).map(|w| (w.imp.id, w.imp.reason.clone()))
    }

    /// Every waiting improvement, and the one being proven: target,
    /// improvement id, candidate version and what it waits for.
    pub fn waiting(&self) -> Vec<(String, i64, String, String)> {
        let mut v: Vec<_> = self
            .ctx
            .waiting
            .lock()
            .values()
            .map(|w| (w.imp.target.clone(), w.imp.id, w.candidate.plugin.version().to_string(), w.imp.reason.clone()))
            .collect();
        v.extend(self.ctx.proving.lock().iter().map(|(target, (id, version))| {
            let why = format!("being proven; `kaizen abort {target}` stops it when its proof ends");
            (target.clone(), *id, version.clone(), why)
        }));
        v.sort();
        v
    }

    /// How long until the gate of a waiting candidate may open (the next
    /// window, the end of a freeze), so that the loop wakes then instead of
    /// at its next interval; `None` when nothing waits on a time.
    pub(super) fn until_gate_opens(&self) -> Option<std::time::Duration> {
        let now = jiff::Timestamp::now();
        let waiting = self.ctx.waiting.lock();
        waiting
            .values()
            .filter_map(|w| match self.ctx.safety.gate(&w.imp.target, w.critical) {
                Gate::OutsideWindow { next, .. } => next,
                Gate::Frozen { until, .. } => until,
                // Waiting for an hour with traffic, or on the rollout limit
                // (the next cycle will see).
                Gate::Open => super::hours::traffic_returns_at(&self.ctx, &w.imp.target, now.as_millisecond())
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
            })
            .map(|t| std::time::Duration::from_millis((t.as_millisecond() - now.as_millisecond()).max(0) as u64))
            .min()
    }

    /// Start the rollouts of the waiting candidates whose gate is open now,
    /// within the cycle's limit; the others keep waiting, their reason
    /// brought up to date.
    pub(super) async fn start_waiting(&self, started: &mut usize, r: &mut CycleReport) {
        let ctx = &self.ctx;
        let parked: Vec<Waiting> = std::mem::take(&mut *ctx.waiting.lock()).into_values().collect();
        for mut w in parked {
            let target = w.imp.target.clone();
            let Some(slot) = ctx.runtime.slot(&target) else {
                self.give_up(w, "its slot is gone").await;
                continue;
            };
            let serving = slot.current();
            // Its own bytes deployed directly: nothing is left to roll out
            // (the deploy normally ends it at once, see
            // [`Loop::end_waiting_deployed`]; a cycle holding it then
            // leaves it to this).
            if serving.id() == w.candidate.plugin.id() {
                ctx.stats.aborted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let why =
                    format!("deployed directly: {target} {} serves, nothing is left to roll out", serving.version());
                self.give_up(w, &why).await;
                continue;
            }
            if serving.id() != w.baseline.id() {
                ctx.stats.aborted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // One the loop made for the version it was proven against is
                // not carried over to another: the loop makes its candidates
                // again from what serves. An operator's is queued again.
                if super::improvers::made_for_finding(&w.candidate.source) {
                    let why = format!(
                        "{} {} serves now, not the {} it was made for and proven against",
                        target,
                        serving.version(),
                        w.baseline.version()
                    );
                    self.give_up(w, &why).await;
                    continue;
                }
                let why = format!(
                    "{} {} serves now, not the {} it was proven against; its candidate is queued again to be proven \
                     against it",
                    target,
                    serving.version(),
                    w.baseline.version()
                );
                (w.imp.state, w.imp.reason, w.imp.updated_at) = (ImprovementState::Aborted, why, now_ms());
                ctx.end_and_requeue(w.imp, w.candidate).await;
                continue;
            }
            let limit = ctx.safety.limits_for(&target).improvements_per_cycle;
            let gate = if *started >= limit {
                Err(Denied::CycleLimit(*started, limit))
            } else {
                self.may_start(&target, w.critical)
            };
            if let Err(why) = gate {
                let reason = format!("proven; waits to roll out: {why}");
                if reason != w.imp.reason {
                    (w.imp.reason, w.imp.updated_at) = (reason, now_ms());
                    ctx.save(&w.imp).await;
                }
                ctx.waiting.lock().insert(target, w);
                continue;
            }
            let mut a = Attempt {
                target: target.clone(),
                finding_id: w.imp.finding_id,
                candidate: Some(format!("{} {}", w.candidate.plugin.version(), &w.candidate.plugin.id()[..12])),
                improvement_id: Some(w.imp.id),
                result: AttemptResult::RollingOut,
                proof: serde_json::from_value(w.imp.proof.clone()).unwrap_or_default(),
                prediction: w.imp.prediction,
            };
            a.result = self.start_rollout(w).await;
            if a.result == AttemptResult::RollingOut {
                *started += 1;
            }
            r.attempts.push(a);
        }
    }

    /// An operator's abort of `target`'s proven candidate that waits to
    /// roll out (no rollout is in flight to abort): it ends `aborted`, its
    /// finding opens again, and its candidate is not queued again.
    /// Waits for the cycle in progress, which may be starting it; `None`
    /// when nothing waits on `target` (then or after that cycle).
    pub async fn abort_waiting(&self, target: &str, by: &str, reason: &str) -> Option<Improvement> {
        // A candidate of `target` being proven by the cycle in progress is
        // aborted by that cycle as soon as its proof ends (see
        // [`Loop::attempt`]); the request goes when this call does.
        self.ctx.abort_requests.lock().insert(target.to_string(), (by.to_string(), reason.to_string()));
        let _no_cycle = self.cycle_lock.lock().await;
        let asked = self.ctx.abort_requests.lock().remove(target);
        let Some(w) = self.ctx.waiting.lock().remove(target) else {
            // Taken by the cycle: what it aborted is the newest improvement
            // of `target`, ended with this reason.
            if asked.is_some() {
                return None;
            }
            let newest = crate::store::improvements::list(&self.ctx.db, Some(target), 1).await.ok()?.pop()?;
            let ours = newest.state == ImprovementState::Aborted && newest.reason.ends_with(reason);
            return ours.then_some(newest);
        };
        let id = w.imp.id;
        self.abort_proven(w, by, reason).await;
        crate::store::improvements::get(&self.ctx.db, id).await.ok().flatten()
    }

    /// End proven `w` aborted by `by` for `reason` before its rollout began:
    /// its finding opens again, its candidate is not queued again; audited
    /// as `rollout-aborted`. Returns the improvement's reason.
    pub(super) async fn abort_proven(&self, w: Waiting, by: &str, reason: &str) -> String {
        let (target, version, id) = (w.imp.target.clone(), w.candidate.plugin.version().to_string(), w.imp.id);
        let why = format!("aborted by {by} before its rollout began: {reason}");
        self.ctx.stats.aborted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.give_up(w, &why).await;
        let event =
            Event::RolloutAborted { improvement: id, candidate_version: version, by: by.into(), reason: reason.into() };
        self.ctx.audit.record_event(by, "rollout-aborted", &target, event).await;
        why
    }

    /// End the improvement waiting on `target` if its candidate is `id`,
    /// because an operator (`actor`) deployed those very bytes directly:
    /// left waiting, the next cycle would find another version serving and
    /// queue the candidate again, only for its proof to reject it as the
    /// version already serving. Audited as `rollout-aborted`; returns
    /// whether one waited.
    pub async fn end_waiting_deployed(&self, target: &str, id: &str, actor: &str) -> bool {
        let w = {
            let mut waiting = self.ctx.waiting.lock();
            match waiting.get(target) {
                Some(w) if w.candidate.plugin.id() == id => waiting.remove(target),
                _ => None,
            }
        };
        let Some(w) = w else { return false };
        let (improvement, version) = (w.imp.id, w.candidate.plugin.version().to_string());
        let reason = format!("deployed directly by {actor}: {target} {version} serves, nothing is left to roll out");
        self.ctx.stats.aborted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.give_up(w, &reason).await;
        let event = Event::RolloutAborted { improvement, candidate_version: version, by: actor.into(), reason };
        self.ctx.audit.record_event(actor, "rollout-aborted", target, event).await;
        true
    }

    /// End a waiting improvement as `aborted`: its finding is open again.
    async fn give_up(&self, mut w: Waiting, why: &str) {
        (w.imp.state, w.imp.reason, w.imp.updated_at) = (ImprovementState::Aborted, why.to_string(), now_ms());
        self.ctx.end(&w.imp, w.candidate.plugin.version()).await;
        if let Some(fid) = w.imp.finding_id {
            self.ctx.set_finding(fid, FindingStatus::Open).await;
        }
    }
}
