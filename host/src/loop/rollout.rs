//! Stepwise rollout: checkpoint, canary steps through the slot's weighted
//! split with the judge between steps, promotion, a bake period, and a
//! rollback to the checkpoint's exact bytes the moment the judge fails the
//! candidate. An emergency stop freezes the rollout where it stands.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Ctx;
use crate::events::{Event, Phase};
use crate::invoke::{CallListener, CallRecord};
use crate::judge::{Arm, Judgement, Verdict, judge};
use crate::runtime::{Plugin, Slot};
use crate::safety::{Denied, Limits, Outcome, RolloutPermit};
use crate::store::deployments::{DeployState, Deployment};
use crate::store::executions::Outcome as CallOutcome;
use crate::store::findings::FindingStatus;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::{self, now_ms};

/// Collects the calls of the candidate and the baseline during a step.
struct Collector {
    candidate: String,
    baseline: String,
    arms: Mutex<(Arm, Arm)>,
}

impl CallListener for Collector {
    fn on_call(&self, r: &CallRecord) {
        let mut arms = self.arms.lock();
        let arm = if r.sha256 == self.candidate {
            &mut arms.0
        } else if r.sha256 == self.baseline {
            &mut arms.1
        } else {
            return;
        };
        arm.latencies_ms.push(r.latency_ms);
        arm.errors += u64::from(r.outcome == CallOutcome::Error);
    }
}

impl Collector {
    fn reset(&self, candidate_share: f64) {
        let mut arms = self.arms.lock();
        *arms = (
            Arm { share: candidate_share, ..Default::default() },
            Arm { share: 1.0 - candidate_share, ..Default::default() },
        );
    }

    fn snapshot(&self) -> (Arm, Arm) {
        self.arms.lock().clone()
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Promoted,
    RolledBack,
    Frozen,
}

/// One rollout in progress: what it moves, where, and what it has seen.
struct Rollout {
    ctx: Arc<Ctx>,
    slot: Arc<Slot>,
    target: String,
    limits: Limits,
    imp: Improvement,
    candidate: Arc<Plugin>,
    baseline: Arc<Plugin>,
    collector: Arc<Collector>,
    /// Baseline calls seen during the canary steps (the bake's reference).
    baseline_history: Arm,
    verdicts: Vec<serde_json::Value>,
}

/// Run one rollout to its end. `imp` is already stored.
pub async fn run(
    ctx: Arc<Ctx>,
    _permit: RolloutPermit,
    mut imp: Improvement,
    candidate: Arc<Plugin>,
    baseline: Arc<Plugin>,
) -> End {
    let target = candidate.name().to_string();
    let Some(slot) = ctx.runtime.slot(&target) else {
        imp.state = ImprovementState::Failed;
        imp.reason = format!("slot `{target}` disappeared");
        ctx.end(&imp, candidate.version()).await;
        return End::RolledBack;
    };
    let collector = Arc::new(Collector {
        candidate: candidate.sha256().into(),
        baseline: baseline.sha256().into(),
        arms: Mutex::default(),
    });
    let limits = ctx.safety.limits_for(&target).clone();
    let mut r = Rollout {
        ctx,
        slot,
        target,
        limits,
        imp,
        candidate,
        baseline,
        collector,
        baseline_history: Arm::default(),
        verdicts: Vec::new(),
    };
    r.checkpoint().await;
    let listener: Arc<dyn CallListener> = r.collector.clone();
    r.ctx.invoker.listen(&r.target, listener.clone());
    let end = match r.canary().await {
        Ok(()) => r.promote_and_bake().await,
        Err(end) => end,
    };
    r.ctx.invoker.unlisten(&r.target, &listener);
    r.finish(end).await;
    end
}

impl Rollout {
    /// The slot's deployment as this rollout leaves it.
    fn deployment(&self, current: &Plugin, candidate: bool, pct: f64, state: DeployState, reason: &str) -> Deployment {
        Deployment {
            slot: self.target.clone(),
            kind: "unit".into(),
            current_sha: current.sha256().to_string(),
            previous_sha: Some(self.baseline.sha256().to_string()),
            candidate_sha: candidate.then(|| self.candidate.sha256().to_string()),
            canary_percent: pct,
            state,
            reason: reason.to_string(),
            updated_at: now_ms(),
        }
    }

    async fn record(&self, d: Deployment) {
        let written =
            store::deployments::record(&self.ctx.db, &d, self.candidate.sha256(), Some(self.baseline.sha256()));
        self.ctx.write("deployment", &self.target, written).await;
    }

    /// The version serving now, recorded before anything moves.
    async fn checkpoint(&self) {
        let d = self.deployment(&self.baseline, true, 0.0, DeployState::Testing, "checkpoint before rollout");
        self.record(d).await;
        let event = Event::Checkpoint {
            baseline: self.baseline.sha256().into(),
            baseline_version: self.baseline.version().into(),
            candidate: self.candidate.sha256().into(),
            candidate_version: self.candidate.version().into(),
        };
        self.ctx.audit.record_event("loop", "checkpoint", &self.target, event).await;
    }

    /// The canary steps below 100 %, the judge between them; `Err` ends
    /// the rollout early.
    async fn canary(&mut self) -> Result<(), End> {
        let steps: Vec<f64> = self.limits.canary_steps.iter().copied().filter(|p| *p < 100.0).collect();
        for pct in steps {
            self.hold_while_paused().await?;
            if self.slot.set_canary(self.candidate.clone(), pct).is_err() {
                return Err(End::RolledBack);
            }
            self.collector.reset(pct / 100.0);
            let reason = format!("canary at {pct}%");
            self.record(self.deployment(&self.baseline, true, pct, DeployState::Canary, &reason)).await;
            self.imp.state = ImprovementState::Canary;
            self.imp.reason = reason;
            self.imp.updated_at = now_ms();
            self.ctx.save(&self.imp).await;
            let event = Event::CanaryStep { percent: pct, candidate_version: self.candidate.version().into() };
            self.ctx.audit.record_event("loop", "canary-step", &self.target, event).await;

            let verdict = self.await_verdict(pct).await?;
            let (_, b) = self.collector.snapshot();
            self.baseline_history.latencies_ms.extend(b.latencies_ms);
            self.baseline_history.errors += b.errors;
            self.verdicts.push(verdict_json(Phase::Canary, pct, &verdict));
            let event = Event::Verdict { phase: Phase::Canary, percent: pct, judgement: verdict.clone() };
            self.ctx.publish(&self.target, event);
            if verdict.verdict == Verdict::Fail {
                self.rollback(&verdict, Phase::Canary).await;
                return Err(End::RolledBack);
            }
        }
        Ok(())
    }

    /// Hold while the loop is paused; freeze on an emergency stop.
    async fn hold_while_paused(&self) -> Result<(), End> {
        loop {
            if self.ctx.safety.stopped() {
                return Err(End::Frozen);
            }
            if !self.ctx.safety.state().paused {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ask the judge until it passes or fails the candidate at `pct`; no
    /// verdict within the step timeout is a failure.
    async fn await_verdict(&self, pct: f64) -> Result<Judgement, End> {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(self.ctx.config.analysis_ms)).await;
            if self.ctx.safety.stopped() {
                return Err(End::Frozen);
            }
            let (c, b) = self.collector.snapshot();
            let mut j = judge(&c, &b, &self.limits.judge);
            match j.verdict {
                Verdict::Fail => return Ok(j),
                Verdict::Pass if !self.ctx.safety.state().paused => return Ok(j),
                _ if started.elapsed() > Duration::from_secs(self.limits.step_timeout_secs) => {
                    j.verdict = Verdict::Fail;
                    j.reason = format!("no verdict within {} s at {pct}%: {}", self.limits.step_timeout_secs, j.reason);
                    return Ok(j);
                }
                _ => {}
            }
        }
    }

    /// Promote the candidate to every call, then watch it through the bake
    /// period; a failed bake rolls back to the checkpoint.
    async fn promote_and_bake(&mut self) -> End {
        if self.ctx.safety.stopped() {
            return End::Frozen;
        }
        if self.slot.set_canary(self.candidate.clone(), 100.0).and_then(|_| self.slot.promote_canary()).is_err() {
            return End::RolledBack;
        }
        self.record(self.deployment(&self.candidate, false, 0.0, DeployState::Active, "promoted; baking")).await;
        let event =
            Event::Promoted { version: self.candidate.version().into(), sha256: self.candidate.sha256().into() };
        self.ctx.audit.record_event("loop", "promoted", &self.target, event).await;
        let verdict = self.bake().await;
        self.verdicts.push(verdict_json(Phase::Bake, 100.0, &verdict));
        if verdict.verdict == Verdict::Fail {
            // The slot's newest history entry is the checkpointed baseline.
            self.rollback(&verdict, Phase::Bake).await;
            return End::RolledBack;
        }
        End::Promoted
    }

    /// The bake compares latency and errors with the baseline calls seen
    /// during the canary steps. Those came from another period, so
    /// throughput is not compared here (shares of zero switch it off).
    async fn bake(&self) -> Judgement {
        self.collector.reset(0.0);
        let bake_until = Instant::now() + Duration::from_secs(self.limits.bake_secs);
        let mut base = self.baseline_history.clone();
        base.share = 0.0;
        loop {
            tokio::time::sleep(Duration::from_millis(self.ctx.config.analysis_ms)).await;
            let (mut c, _) = self.collector.snapshot();
            c.share = 0.0;
            let j = judge(&c, &base, &self.limits.judge);
            if j.verdict == Verdict::Fail || Instant::now() >= bake_until {
                return j;
            }
        }
    }

    /// Put the checkpoint back: the slot's previous version serves every
    /// call again.
    async fn rollback(&self, verdict: &Judgement, phase: Phase) {
        let (ctx, target) = (&self.ctx, self.target.as_str());
        match self.slot.rollback() {
            Ok(rb) => {
                debug_assert_eq!(rb.to.sha256(), self.baseline.sha256());
                let (to, from) = (rb.to.sha256(), self.candidate.sha256());
                let written = store::deployments::record_rollback(&ctx.db, target, "unit", to, from, &verdict.reason);
                ctx.write("deployment", target, written).await;
                let event = Event::Rollback {
                    from: self.candidate.version().into(),
                    to: rb.to.version().into(),
                    to_sha256: to.into(),
                    reason: verdict.reason.clone(),
                    phase: Some(phase),
                    judgement: Some(verdict.clone()),
                    requested_by: None,
                };
                ctx.audit.record_event("loop", "rolled-back", target, event).await;
            }
            Err(e) => {
                let event = Event::RollbackFailed { error: e.to_string() };
                ctx.audit.record_event("loop", "rollback-failed", target, event).await;
            }
        }
    }

    /// Settle the improvement: its final state, its finding, the counters
    /// and the safety controller's record.
    async fn finish(mut self, end: End) {
        let ctx = self.ctx.clone();
        let imp = &mut self.imp;
        imp.verdicts = serde_json::Value::Array(std::mem::take(&mut self.verdicts));
        imp.updated_at = now_ms();
        let version = self.candidate.version();
        let (state, reason, finding, outcome) = match end {
            End::Promoted => {
                ctx.stats.deployed.fetch_add(1, Ordering::Relaxed);
                let steps = self.limits.canary_steps.len();
                let why = format!("{version} promoted after {steps} step(s) and the bake period");
                (ImprovementState::Promoted, why, Some(FindingStatus::Resolved), Some(Outcome::Promoted))
            }
            End::RolledBack => {
                ctx.stats.rolled_back.fetch_add(1, Ordering::Relaxed);
                let why = "the judge failed the candidate; the checkpoint serves again".to_string();
                (ImprovementState::RolledBack, why, Some(FindingStatus::Open), Some(Outcome::RolledBack))
            }
            End::Frozen => {
                let pct = self.slot.serving().canary.as_ref().map(|c| c.percent);
                let detail = serde_json::json!({"canary_percent": pct});
                ctx.audit.record("safety", "frozen", &self.target, detail).await;
                let why = "emergency stop: rollout frozen where it stood".to_string();
                (ImprovementState::Frozen, why, None, None)
            }
        };
        (imp.state, imp.reason) = (state, reason);
        if let (Some(status), Some(fid)) = (finding, imp.finding_id) {
            ctx.set_finding(fid, status).await;
        }
        ctx.end(imp, version).await;
        if let Some(o) = outcome {
            ctx.record_outcome(o).await;
        }
    }
}

fn verdict_json(phase: Phase, pct: f64, j: &Judgement) -> serde_json::Value {
    serde_json::json!({ "phase": phase, "percent": pct, "judgement": j })
}

/// Carry out the rollbacks recovery strategies asked for: only while the
/// loop may act (`denied` says why not otherwise).
pub async fn requested_rollbacks(ctx: &Ctx, denied: Option<&Denied>) {
    let requests = ctx.invoker.healer().map(|h| h.take_rollback_requests()).unwrap_or_default();
    for (target, why) in requests {
        if let Some(denied) = denied {
            let event = Event::RollbackRequestDenied { reason: why, denied: denied.to_string() };
            ctx.audit.record_event("safety", "rollback-request-denied", &target, event).await;
            continue;
        }
        match ctx.runtime.rollback(&target) {
            Ok(rb) => {
                let kind = crate::runtime::validate::world_name(rb.to.kind());
                let written =
                    store::deployments::record_rollback(&ctx.db, &target, kind, rb.to.sha256(), rb.from.sha256(), &why);
                ctx.write("deployment", &target, written).await;
                let event = Event::rollback(&rb, &why, Some("recovery"));
                ctx.audit.record_event("safety", "rolled-back", &target, event).await;
            }
            Err(e) => {
                let event = Event::RollbackRequestFailed { reason: why, error: e.to_string() };
                ctx.audit.record_event("safety", "rollback-request-failed", &target, event).await;
            }
        }
    }
}
