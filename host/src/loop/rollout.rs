//! Stepwise rollout: checkpoint, canary steps through the slot's weighted
//! split with the judge between steps, promotion, a bake period, and a
//! rollback to the checkpoint's exact bytes the moment the judge fails the
//! candidate. An emergency stop freezes the rollout where it stands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Ctx;
use crate::invoke::{CallListener, CallRecord};
use crate::judge::{Arm, Judgement, Verdict, judge};
use crate::runtime::Plugin;
use crate::safety::{Outcome, RolloutPermit};
use crate::store::deployments::{DeployState, Deployment};
use crate::store::executions::Outcome as CallOutcome;
use crate::store::improvements::Improvement;
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

fn deployment(
    slot: &str,
    current: &Plugin,
    previous: Option<&str>,
    candidate: Option<&Plugin>,
    pct: f64,
    state: DeployState,
    reason: &str,
) -> Deployment {
    Deployment {
        slot: slot.to_string(),
        kind: "unit".into(),
        current_sha: current.sha256().to_string(),
        previous_sha: previous.map(str::to_string),
        candidate_sha: candidate.map(|c| c.sha256().to_string()),
        canary_percent: pct,
        state,
        reason: reason.to_string(),
        updated_at: now_ms(),
    }
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
    let limits = ctx.safety.limits_for(&target).clone();
    let Some(slot) = ctx.runtime.slot(&target) else {
        imp.state = "failed".into();
        imp.reason = format!("slot `{target}` disappeared");
        let _ = store::improvements::update(&ctx.db, &imp).await;
        return End::RolledBack;
    };
    let mut verdicts: Vec<serde_json::Value> = Vec::new();

    // Checkpoint: the version serving now, recorded before anything moves.
    let d = deployment(
        &target,
        &baseline,
        Some(baseline.sha256()),
        Some(&candidate),
        0.0,
        DeployState::Testing,
        "checkpoint before rollout",
    );
    let _ = store::deployments::record(&ctx.db, &d, candidate.sha256(), Some(baseline.sha256())).await;
    ctx.audit("loop", "checkpoint", &target, serde_json::json!({"baseline": baseline.sha256(), "baseline_version": baseline.version(), "candidate": candidate.sha256(), "candidate_version": candidate.version()})).await;

    let collector = Arc::new(Collector {
        candidate: candidate.sha256().into(),
        baseline: baseline.sha256().into(),
        arms: Mutex::default(),
    });
    let listener: Arc<dyn CallListener> = collector.clone();
    ctx.invoker.listen(&target, listener.clone());
    let mut baseline_history = Arm::default();

    let end = 'rollout: {
        for &pct in limits.canary_steps.iter().filter(|p| **p < 100.0) {
            // Hold while paused; freeze on an emergency stop.
            loop {
                if ctx.safety.stopped() {
                    break 'rollout End::Frozen;
                }
                if !ctx.safety.state().paused {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if slot.set_canary(candidate.clone(), pct).is_err() {
                break 'rollout End::RolledBack;
            }
            collector.reset(pct / 100.0);
            let d = deployment(
                &target,
                &baseline,
                Some(baseline.sha256()),
                Some(&candidate),
                pct,
                DeployState::Canary,
                &format!("canary at {pct}%"),
            );
            let _ = store::deployments::record(&ctx.db, &d, candidate.sha256(), Some(baseline.sha256())).await;
            imp.state = "canary".into();
            imp.reason = format!("canary at {pct}%");
            imp.updated_at = now_ms();
            let _ = store::improvements::update(&ctx.db, &imp).await;
            ctx.audit(
                "loop",
                "canary-step",
                &target,
                serde_json::json!({"percent": pct, "candidate_version": candidate.version()}),
            )
            .await;

            let started = Instant::now();
            let verdict = loop {
                tokio::time::sleep(Duration::from_millis(ctx.config.analysis_ms)).await;
                if ctx.safety.stopped() {
                    break 'rollout End::Frozen;
                }
                let (c, b) = collector.snapshot();
                let j = judge(&c, &b, &limits.judge);
                match j.verdict {
                    Verdict::Fail => break j,
                    Verdict::Pass if !ctx.safety.state().paused => break j,
                    _ if started.elapsed() > Duration::from_secs(limits.step_timeout_secs) => {
                        let mut j = j;
                        j.verdict = Verdict::Fail;
                        j.reason = format!("no verdict within {} s at {pct}%: {}", limits.step_timeout_secs, j.reason);
                        break j;
                    }
                    _ => {}
                }
            };
            let (_, b) = collector.snapshot();
            baseline_history.latencies_ms.extend(b.latencies_ms);
            baseline_history.errors += b.errors;
            verdicts.push(verdict_json("canary", pct, &verdict));
            ctx.event("verdict", &target, verdict_json("canary", pct, &verdict));
            if verdict.verdict == Verdict::Fail {
                rollback(&ctx, &slot, &target, &baseline, &candidate, &verdict, "canary").await;
                break 'rollout End::RolledBack;
            }
        }

        // Promotion, then the bake period at 100 %.
        if ctx.safety.stopped() {
            break 'rollout End::Frozen;
        }
        if slot.set_canary(candidate.clone(), 100.0).and_then(|_| slot.promote_canary()).is_err() {
            break 'rollout End::RolledBack;
        }
        let d = deployment(
            &target,
            &candidate,
            Some(baseline.sha256()),
            None,
            0.0,
            DeployState::Active,
            "promoted; baking",
        );
        let _ = store::deployments::record(&ctx.db, &d, candidate.sha256(), Some(baseline.sha256())).await;
        ctx.audit(
            "loop",
            "promoted",
            &target,
            serde_json::json!({"version": candidate.version(), "sha256": candidate.sha256()}),
        )
        .await;
        // The bake compares latency and errors with the baseline calls seen
        // during the canary steps. Those came from another period, so
        // throughput is not compared here (shares of zero switch it off).
        collector.reset(0.0);
        let bake_until = Instant::now() + Duration::from_secs(limits.bake_secs);
        let mut base = baseline_history;
        base.share = 0.0;
        let final_verdict = loop {
            tokio::time::sleep(Duration::from_millis(ctx.config.analysis_ms)).await;
            let (mut c, _) = collector.snapshot();
            c.share = 0.0;
            let j = judge(&c, &base, &limits.judge);
            if j.verdict == Verdict::Fail || Instant::now() >= bake_until {
                break j;
            }
        };
        verdicts.push(verdict_json("bake", 100.0, &final_verdict));
        if final_verdict.verdict == Verdict::Fail {
            // The slot's newest history entry is the checkpointed baseline.
            match slot.rollback() {
                Ok(rb) => {
                    let d =
                        deployment(&target, &rb.to, None, None, 0.0, DeployState::RolledBack, &final_verdict.reason);
                    let _ = store::deployments::record(&ctx.db, &d, candidate.sha256(), Some(candidate.sha256())).await;
                    ctx.audit("loop", "rolled-back", &target, serde_json::json!({"phase": "bake", "from": candidate.version(), "to": rb.to.version(), "reason": final_verdict.reason})).await;
                }
                Err(e) => {
                    ctx.audit("loop", "rollback-failed", &target, serde_json::json!({"error": e.to_string()})).await
                }
            }
            break 'rollout End::RolledBack;
        }
        End::Promoted
    };
    ctx.invoker.unlisten(&target, &listener);

    imp.verdicts = serde_json::Value::Array(verdicts);
    imp.updated_at = now_ms();
    let outcome = match end {
        End::Promoted => {
            imp.state = "promoted".into();
            imp.reason = format!(
                "{} promoted after {} step(s) and the bake period",
                candidate.version(),
                limits.canary_steps.len()
            );
            ctx.stats.deployed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(fid) = imp.finding_id {
                let _ = store::findings::set_status(&ctx.db, fid, "resolved").await;
            }
            Some(Outcome::Promoted)
        }
        End::RolledBack => {
            imp.state = "rolled-back".into();
            imp.reason = "the judge failed the candidate; the checkpoint serves again".into();
            ctx.stats.rolled_back.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(fid) = imp.finding_id {
                let _ = store::findings::set_status(&ctx.db, fid, "open").await;
            }
            Some(Outcome::RolledBack)
        }
        End::Frozen => {
            imp.state = "frozen".into();
            imp.reason = "emergency stop: rollout frozen where it stood".into();
            let serving = slot.serving();
            ctx.audit(
                "safety",
                "frozen",
                &target,
                serde_json::json!({"canary_percent": serving.canary.as_ref().map(|c| c.percent)}),
            )
            .await;
            None
        }
    };
    let _ = store::improvements::update(&ctx.db, &imp).await;
    ctx.event(&imp.state.clone(), &target, serde_json::json!({"improvement": imp.id, "version": candidate.version()}));
    if let Some(o) = outcome
        && let Ok(Some(why)) = ctx.safety.record_outcome(o).await
    {
        ctx.event("control", "", serde_json::json!({"action": "self-pause", "paused": true, "reason": why}));
    }
    end
}

fn verdict_json(phase: &str, pct: f64, j: &Judgement) -> serde_json::Value {
    serde_json::json!({ "phase": phase, "percent": pct, "judgement": j })
}

async fn rollback(
    ctx: &Ctx,
    slot: &crate::runtime::Slot,
    target: &str,
    baseline: &Plugin,
    candidate: &Plugin,
    verdict: &Judgement,
    phase: &str,
) {
    match slot.rollback() {
        Ok(rb) => {
            // The canary is withdrawn: every call is back on the checkpoint.
            debug_assert_eq!(rb.to.sha256(), baseline.sha256());
            let d = deployment(target, &rb.to, None, None, 0.0, DeployState::RolledBack, &verdict.reason);
            let _ = store::deployments::record(&ctx.db, &d, candidate.sha256(), Some(candidate.sha256())).await;
            ctx.audit(
                "loop",
                "rolled-back",
                target,
                serde_json::json!({"phase": phase, "from": candidate.version(), "to": rb.to.version(), "to_sha256": rb.to.sha256(), "reason": verdict.reason, "judgement": verdict}),
            )
            .await;
        }
        Err(e) => ctx.audit("loop", "rollback-failed", target, serde_json::json!({"error": e.to_string()})).await,
    }
}
