//! One attempt to improve a target: take a candidate, record the
//! improvement, prove the candidate, start its rollout. Each way it can end
//! is an [`AttemptResult`] in the cycle report.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::candidates::{self, Candidate, GenerateError};
use super::inaction::NoAttempt;
use super::prove::{self, ProofStep};
use super::rollout::BeginError;
use super::waiting::Waiting;
use super::{Ctx, Loop, rollout};
use crate::events::Event;
use crate::runtime::types::PluginKind;
use crate::runtime::{Plugin, Slot};
use crate::safety::{Denied, Outcome};
use crate::store::findings::{FindingRecord, FindingStatus};
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::{self, now_ms};

/// One attempt in a cycle report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub target: String,
    pub finding_id: Option<i64>,
    pub candidate: Option<String>,
    pub improvement_id: Option<i64>,
    pub result: AttemptResult,
    pub proof: Vec<ProofStep>,
    /// Its predicted success, by its source, once a candidate was taken.
    #[serde(default)]
    pub prediction: Option<crate::store::findings::Prediction>,
}

/// How an attempt ended. Written in reports as text (`rolling out`,
/// `denied: …`, `generator failed: …`, `rejected: …`, `failed: …`,
/// `aborted: …`). A
/// finding with nothing to try, or turned down before a candidate was
/// taken, is no attempt: it carries a [`NoAttempt`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// Proven; its rollout runs in the background.
    RollingOut,
    /// Proven; it waits to roll out (outside the rollout windows, in a
    /// change freeze, at the rollout limit), parked until the gate opens.
    Waiting(String),
    /// Safety turned it down.
    Denied(String),
    GeneratorFailed(String),
    /// The proof failed.
    Rejected(String),
    /// The loop could not carry it out (its record could not be written).
    Failed(String),
    /// An operator aborted it while it was being proven.
    Aborted(String),
}

/// Why an attempt stopped short of a rollout.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error("denied: {0}")]
    Denied(#[from] Denied),
    #[error("no candidate")]
    NoCandidate,
    #[error("generator failed: {0}")]
    Generator(#[from] GenerateError),
    #[error("cannot record the improvement: {0}")]
    NotRecorded(#[from] store::StoreError),
    #[error("rejected: {0}")]
    Rejected(String),
}

impl From<Stopped> for AttemptResult {
    fn from(s: Stopped) -> Self {
        match s {
            Stopped::Denied(d) => AttemptResult::Denied(d.to_string()),
            Stopped::NoCandidate => AttemptResult::Failed("no candidate".into()),
            Stopped::Generator(e) => AttemptResult::GeneratorFailed(e.to_string()),
            Stopped::NotRecorded(e) => AttemptResult::Failed(format!("cannot record the improvement: {e}")),
            Stopped::Rejected(why) => AttemptResult::Rejected(why),
        }
    }
}

impl std::fmt::Display for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptResult::RollingOut => f.write_str("rolling out"),
            AttemptResult::Waiting(why) => write!(f, "waiting: {why}"),
            AttemptResult::Denied(d) => write!(f, "denied: {d}"),
            AttemptResult::GeneratorFailed(e) => write!(f, "generator failed: {e}"),
            AttemptResult::Rejected(why) => write!(f, "rejected: {why}"),
            AttemptResult::Failed(why) => write!(f, "failed: {why}"),
            AttemptResult::Aborted(why) => write!(f, "aborted: {why}"),
        }
    }
}

/// Text that is not an attempt result.
#[derive(Debug, thiserror::Error)]
#[error("unknown attempt result `{0}`")]
pub struct UnknownAttemptResult(String);

impl std::str::FromStr for AttemptResult {
    type Err = UnknownAttemptResult;
    fn from_str(s: &str) -> Result<Self, UnknownAttemptResult> {
        let after = |prefix: &str| s.strip_prefix(prefix).map(str::to_string);
        Ok(match s {
            "rolling out" => AttemptResult::RollingOut,
            _ => None
                .or_else(|| after("waiting: ").map(AttemptResult::Waiting))
                .or_else(|| after("denied: ").map(AttemptResult::Denied))
                .or_else(|| after("generator failed: ").map(AttemptResult::GeneratorFailed))
                .or_else(|| after("rejected: ").map(AttemptResult::Rejected))
                .or_else(|| after("failed: ").map(AttemptResult::Failed))
                .or_else(|| after("aborted: ").map(AttemptResult::Aborted))
                .ok_or_else(|| UnknownAttemptResult(s.to_string()))?,
        })
    }
}

impl PartialEq<&str> for AttemptResult {
    fn eq(&self, other: &&str) -> bool {
        other.parse::<AttemptResult>().is_ok_and(|o| o == *self)
    }
}

impl Serialize for AttemptResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttemptResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What trying to improve a target came to.
pub(super) enum Tried {
    Attempted(Attempt),
    /// Nothing was attempted: no candidate, or safety turned it down
    /// before one was taken.
    Not(NoAttempt),
}

impl Loop {
    /// Try to improve `target`: take a candidate, prove it, start a rollout.
    pub(super) async fn attempt(
        &self,
        target: &str,
        finding: Option<&FindingRecord>,
        started: usize,
        executions: u64,
    ) -> Tried {
        let Some(slot) = self.ctx.runtime.slot(target).filter(|s| s.kind() == PluginKind::Unit) else {
            return Tried::Not(NoAttempt::NotHosted);
        };
        if finding.is_some_and(|f| f.status == FindingStatus::Addressed) {
            return Tried::Not(NoAttempt::Addressed);
        }
        if let Some((improvement, why)) = self.waiting_on(target) {
            return Tried::Not(NoAttempt::Waiting { improvement, why });
        }
        let mut a = Attempt {
            target: target.into(),
            finding_id: finding.map(|f| f.id),
            candidate: None,
            improvement_id: None,
            result: AttemptResult::RollingOut,
            proof: vec![],
            prediction: None,
        };
        a.result = match self.try_attempt(&mut a, &slot, finding, started, executions).await {
            Ok(result) => result,
            // Turned down or nothing to try before any candidate was taken:
            // no attempt, and the finding says why.
            Err(Stopped::NoCandidate) => {
                return Tried::Not(NoAttempt::NoCandidate { watch_dir: self.ctx.watch_dir.lock().clone() });
            }
            Err(Stopped::Denied(d)) if a.candidate.is_none() && finding.is_some() => {
                return Tried::Not(NoAttempt::denied(&d));
            }
            Err(stopped) => AttemptResult::from(stopped),
        };
        Tried::Attempted(a)
    }

    async fn try_attempt(
        &self,
        a: &mut Attempt,
        slot: &Slot,
        finding: Option<&FindingRecord>,
        started: usize,
        executions: u64,
    ) -> Result<AttemptResult, Stopped> {
        let (ctx, target) = (&self.ctx, slot.name());
        // Operators' candidates are acted on regardless of load (the queue
        // says they are taken up by the next cycle, a finding of their unit
        // or not); a finding with nothing queued needs enough calls behind
        // it before the loop makes or asks for a candidate of its own.
        let queued = ctx.candidates.has(target);
        let needed_calls = if finding.is_some() && !queued { executions } else { u64::MAX };
        ctx.safety.may_attempt(target, started, 0, needed_calls)?;
        // A queued candidate waits for requests to replay; with none queued
        // the finding says it has no candidate, the more useful reason.
        if queued {
            replay_possible(ctx, target).await?;
        }
        // The version an improver or the generator is shown is the proof's
        // baseline and the one the rollout expects to hold the slot: read
        // once, so that an operator's deploy while a candidate is made (or
        // proven) ends the improvement instead of judging a change made for
        // one version against another.
        let current = slot.current();
        let candidate = take_candidate(ctx, target, finding, slot, &current).await?;
        a.candidate = Some(format!("{} {}", candidate.plugin.version(), &candidate.plugin.id()[..12]));
        if let Err(d) = ctx.safety.may_attempt(target, started, candidate.plugin.size(), needed_calls) {
            // An operator's candidate waits in its queue again. One the loop
            // made is not queued as if an operator had: it was made for the
            // version serving now, and is made again from what serves when
            // the loop may go on.
            if !super::improvers::made_for_finding(&candidate.source) {
                ctx.candidates.push(candidate);
            }
            return Err(d.into());
        }
        ctx.stats.attempted.fetch_add(1, Ordering::Relaxed);
        let imp = open_improvement(ctx, &candidate, finding, &current).await?;
        (a.improvement_id, a.prediction) = (Some(imp.id), imp.prediction);
        // Shown beside the waiting ones while its proof runs (`kaizen status`).
        ctx.proving.lock().insert(target.to_string(), (imp.id, candidate.plugin.version().to_string()));
        let proven = prove_candidate(ctx, imp, &candidate.plugin, &current, finding, &mut a.proof).await;
        ctx.proving.lock().remove(target);
        let imp = proven?;
        let critical = finding.is_some_and(|f| f.severity == "critical");
        let proven = Waiting { imp, candidate, baseline: current, critical };
        // An operator aborted it while it was being proven.
        let asked = ctx.abort_requests.lock().remove(target);
        if let Some((by, why)) = asked {
            return Ok(AttemptResult::Aborted(self.abort_proven(proven, &by, &why).await));
        }
        match self.may_start(target, critical) {
            Ok(()) => Ok(self.start_rollout(proven).await),
            Err(why) => Ok(self.park(proven, &why).await),
        }
    }

    /// Step 6: take the slot for a rollout and start it in the background;
    /// without a permit (the rollout limit) it waits, parked. A slot that
    /// changed while the candidate was being proven (an operator deployed)
    /// is not rolled out over: the improvement is aborted.
    pub(super) async fn start_rollout(&self, w: Waiting) -> AttemptResult {
        let ctx = &self.ctx;
        let owned = match rollout::begin(ctx, &w.imp, &w.candidate.plugin, &w.baseline, &[w.baseline.id()], false) {
            Ok(owned) => owned,
            Err(BeginError::Denied(d)) => return self.park(w, &d).await,
            Err(e) => {
                let Waiting { mut imp, candidate, .. } = w;
                imp.state = ImprovementState::Aborted;
                imp.reason = format!("the slot changed while the candidate was proven: {e}");
                imp.updated_at = now_ms();
                ctx.end(&imp, candidate.plugin.version()).await;
                if let Some(fid) = imp.finding_id {
                    ctx.set_finding(fid, FindingStatus::Open).await;
                }
                return AttemptResult::Failed(imp.reason);
            }
        };
        let Waiting { mut imp, candidate, baseline, .. } = w;
        imp.state = ImprovementState::Canary;
        ctx.save(&imp).await;
        let id = imp.id;
        let run = rollout::run(ctx.clone(), owned, imp, candidate.plugin, baseline, rollout::Start::Fresh);
        self.spawn_rollout(id, run);
        AttemptResult::RollingOut
    }
}

/// With replay required, `target` must have a call whose request was
/// recorded: a candidate taken up before one is could only be rejected
/// ("required step skipped"), used up by the wait for traffic. It stays
/// queued instead ([`Denied::NoRecordedRequests`]). A store that cannot be
/// read lets the proof say so.
pub(super) async fn replay_possible(ctx: &Ctx, target: &str) -> Result<(), Denied> {
    if !ctx.safety.limits_for(target).required_proof.iter().any(|step| step == "replay") {
        return Ok(());
    }
    match store::executions::replayable(&ctx.db, target, 1).await {
        Ok(recorded) if recorded.is_empty() => Err(Denied::NoRecordedRequests(target.into())),
        _ => Ok(()),
    }
}

/// A queued candidate for `target`, or one an improver or the generator
/// makes for its finding from `current`, the version serving.
async fn take_candidate(
    ctx: &Arc<Ctx>,
    target: &str,
    finding: Option<&FindingRecord>,
    slot: &Slot,
    current: &Arc<Plugin>,
) -> Result<Candidate, Stopped> {
    while let Some(c) = ctx.candidates.pop(target) {
        // A config candidate is settings for one module (`kaizen tune`
        // makes it for the module serving then). Once the operator has
        // deployed another module, rolling it out would bring the old
        // module back: it is withdrawn instead, saying so.
        if c.plugin.config_version().is_some() && c.plugin.sha256() != current.sha256() {
            let id = c.plugin.id().to_string();
            let reason = format!(
                "a config of {} {}, which no longer serves ({} does): tune the version serving instead",
                target,
                c.plugin.module_version(),
                current.version()
            );
            if let Err(e) = store::candidate_queue::remove(&ctx.db, target, &id).await {
                ctx.failures.count("candidate", target, &e);
                ctx.candidates.push_front(c);
                return Err(e.into());
            }
            let event = Event::CandidateWithdrawn { version: c.plugin.version().into(), sha256: id, reason };
            ctx.audit.record_event("loop", "candidate-withdrawn", target, event).await;
            continue;
        }
        return Ok(c);
    }
    if let Some(f) = finding
        && let Some(c) = super::improvers::propose(ctx, f, slot, current).await
    {
        return Ok(c);
    }
    let (Some(f), Some(g)) = (finding, &ctx.config.generator) else { return Err(Stopped::NoCandidate) };
    match candidates::from_generator(ctx, f, g, current).await {
        Ok(c) => Ok(c),
        Err(e) => {
            ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
            let event = Event::GeneratorFailed { finding: f.id, error: e.to_string() };
            ctx.audit.record_event("loop", "generator-failed", target, event).await;
            Err(e.into())
        }
    }
}

/// Record the improvement (`proving`) and mark its finding addressed. An
/// improvement that cannot be recorded is not attempted: its candidate
/// waits for the next cycle.
async fn open_improvement(
    ctx: &Ctx,
    candidate: &Candidate,
    finding: Option<&FindingRecord>,
    current: &Plugin,
) -> Result<Improvement, Stopped> {
    let mut imp = Improvement {
        id: 0,
        finding_id: finding.map(|f| f.id),
        target: current.name().into(),
        candidate_sha: candidate.plugin.id().into(),
        baseline_sha: Some(current.id().into()),
        source: candidate.source.clone(),
        state: ImprovementState::Proving,
        reason: String::new(),
        proof: serde_json::json!([]),
        verdicts: serde_json::json!([]),
        created_at: now_ms(),
        updated_at: now_ms(),
        prediction: Some(ctx.predictor.lock().predict(
            current.name(),
            finding.map_or("", |f| f.kind.as_str()),
            Some(&candidate.source),
        )),
    };
    match store::improvements::insert(&ctx.db, &imp).await {
        Ok(id) => imp.id = id,
        Err(e) => {
            ctx.failures.count("improvement", &imp.target, &e);
            ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
            // As when safety turns it down: only an operator's waits again.
            if !super::improvers::made_for_finding(&candidate.source) {
                ctx.candidates.push(candidate.clone());
            }
            return Err(e.into());
        }
    }
    if let Some(f) = finding {
        ctx.set_finding(f.id, FindingStatus::Addressed).await;
    }
    Ok(imp)
}

/// Step 5: prove the candidate against the version serving; a failed proof
/// rejects the improvement and reopens its finding.
async fn prove_candidate(
    ctx: &Ctx,
    mut imp: Improvement,
    candidate: &Arc<Plugin>,
    current: &Arc<Plugin>,
    finding: Option<&FindingRecord>,
    proof: &mut Vec<ProofStep>,
) -> Result<Improvement, Stopped> {
    let limits = ctx.safety.limits_for(&imp.target).clone();
    let steps = prove::prove(&ctx.db, &ctx.invoker, current, candidate, &limits, &ctx.config.prove, finding).await;
    imp.proof = serde_json::to_value(&steps).unwrap_or_default();
    *proof = steps.clone();
    let event = Event::Proof { improvement: imp.id, candidate_version: candidate.version().into(), steps };
    ctx.audit.record_event("loop", "proof", &imp.target, event).await;
    let Some(bad) = proof.iter().find(|s| s.failed()) else { return Ok(imp) };
    imp.state = ImprovementState::Rejected;
    imp.reason = format!("{} failed: {}", bad.step, bad.detail);
    imp.updated_at = now_ms();
    ctx.end(&imp, candidate.version()).await;
    if let Some(f) = finding {
        ctx.set_finding(f.id, FindingStatus::Open).await;
    }
    ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
    ctx.record_outcome(Outcome::Rejected).await;
    Err(Stopped::Rejected(imp.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_back_from_their_text() {
        for r in [
            AttemptResult::RollingOut,
            AttemptResult::Waiting("outside the rollout window (Mon 02:00-03:00)".into()),
            AttemptResult::Denied("the loop is paused: x".into()),
            AttemptResult::GeneratorFailed("generator timed out after 1 s".into()),
            AttemptResult::Rejected("replay failed: y".into()),
            AttemptResult::Failed("cannot record the improvement: z".into()),
            AttemptResult::Aborted("aborted by api before its rollout began: not today".into()),
        ] {
            let text = serde_json::to_value(&r).unwrap();
            assert_eq!(text.as_str().unwrap(), r.to_string());
            assert_eq!(serde_json::from_value::<AttemptResult>(text).unwrap(), r);
        }
        assert_eq!(AttemptResult::RollingOut, "rolling out");
        let bad = serde_json::from_value::<AttemptResult>(serde_json::json!("exploded")).unwrap_err();
        assert!(bad.to_string().contains("`exploded`"), "{bad}");
    }
}
