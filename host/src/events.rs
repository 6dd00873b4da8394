//! Live events (findings, rollout steps, verdicts, swaps, rollbacks, control
//! changes) for whoever watches: the dashboard's stream, webhooks, metrics,
//! the demo's narration, tests, logs.
//!
//! Every happening is one variant of [`Event`], published once under one
//! name. Watchers match on variants; nobody guesses from field names. On
//! the wire (server-sent events, JSON) an event is its [`Envelope`]:
//! `{"at": …, "target": …, "kind": "<variant name>", "detail": {…}}`, the
//! SSE event's name being the `kind`.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::judge::Judgement;
use crate::store::control::ControlState;
use crate::store::findings::{FindingRecord, FindingStatus};
use crate::store::health::HealthReport;
use crate::store::improvements::{ImprovementState, ProofStep};

/// Something that happened, with what a watcher needs to know about it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum Event {
    /// A finding opened (`new`: a detector reported it and it is not a
    /// repeat of the current occurrence) or changed state (resolved,
    /// acknowledged, snoozed, closed, opened again after a snooze, taken up
    /// by an improvement). A finding reported again unchanged is not
    /// published again.
    Finding {
        id: i64,
        kind: String,
        severity: String,
        priority: String,
        summary: String,
        new: bool,
        status: FindingStatus,
        /// The hosted unit's version it is about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// Why it stands where it does (`condition cleared`, `version
        /// retired`, an operator's reason).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
        /// The earlier occurrence a new one recurs after.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<i64>,
    },
    /// A new version of a unit was queued to be proven.
    Candidate { version: String, sha256: String },
    /// An operator took a queued candidate out of the queue before the loop
    /// took it up.
    CandidateWithdrawn { version: String, sha256: String, reason: String },
    /// The configured generator could not produce a candidate.
    GeneratorFailed { finding: i64, error: String },
    /// An improver proposed a change for a finding: taken as the candidate
    /// (`accepted`), or refused with `reason` (an unknown tunable, a value
    /// out of bounds, a module version the host does not keep).
    Proposal {
        improver: String,
        finding: i64,
        change: String,
        accepted: bool,
        rationale: String,
        expected_gain_pct: f64,
        reason: String,
    },
    /// An improver's call failed (trapped, ran out of time or memory): it
    /// proposed nothing, and the loop went on without it.
    ImproverFailed { improver: String, finding: i64, error: String },
    /// Improvers' last `trials` trials against the version serving all
    /// ended without a promotion (`loop.max_improver_trials`): they are not
    /// asked about this version again; a new version serving starts anew.
    ImproversSpent { finding: i64, version: String, trials: u32 },
    /// A candidate's proof ran (every step, in order).
    Proof { improvement: i64, candidate_version: String, steps: Vec<ProofStep> },
    /// The version serving was recorded before a rollout moved anything.
    Checkpoint { baseline: String, baseline_version: String, candidate: String, candidate_version: String },
    /// A rollout moved a share of the calls to the candidate, and as many
    /// to a matched control (a copy of the serving version) when the step
    /// is judged against one.
    CanaryStep {
        percent: f64,
        candidate_version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        control_percent: Option<f64>,
    },
    /// The judge decided a rollout step.
    Verdict {
        phase: Phase,
        percent: f64,
        judgement: Judgement,
        /// In a fleet, the judged calls by the host that served them (the
        /// leader's own and those its followers shipped).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        calls_by_host: std::collections::BTreeMap<String, u64>,
    },
    /// A candidate took all of its slot's calls; the bake period begins.
    Promoted { version: String, sha256: String },
    /// An emergency stop froze a rollout at its step: nothing moves and its
    /// time budget stands still until the stop is released.
    RolloutFrozen { improvement: i64, percent: f64 },
    /// A change freeze holds a rollout at its step: it neither advances
    /// nor is promoted, and its time budget stands still until the freeze
    /// ends (a failing candidate is still rolled back).
    RolloutHeld { improvement: i64, percent: f64, reason: String },
    /// A proven candidate waits to start its rollout: outside the rollout
    /// windows, in a freeze, or at the limit on concurrent rollouts.
    RolloutWaiting { improvement: i64, candidate_version: String, reason: String },
    /// A rollout carries on: after a restart (at its recorded step, with
    /// fresh samples) or after an emergency stop was released.
    RolloutResumed { improvement: i64, percent: f64, candidate_version: String, reason: String },
    /// An operator (or a recovery strategy's rollback request) aborted a
    /// rollout; it took back its candidate and the checkpoint serves.
    RolloutAborted { improvement: i64, candidate_version: String, by: String, reason: String },
    /// A slot went back to its previous version: by the judge, for a
    /// recovery strategy, or for an operator.
    Rollback {
        /// Version rolled back from, and the version serving now.
        from: String,
        to: String,
        to_sha256: String,
        reason: String,
        /// Where the rollout was when the judge failed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<Phase>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judgement: Option<Judgement>,
        /// Who asked when it was not the judge (`recovery`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_by: Option<String>,
    },
    /// A rollback was called for but could not be made.
    RollbackFailed { error: String },
    /// A recovery strategy asked for a rollback while the loop may not act.
    RollbackRequestDenied { reason: String, denied: String },
    /// A recovery strategy asked for a rollback the runtime could not make.
    RollbackRequestFailed { reason: String, error: String },
    /// An improvement reached its end: promoted (kept after the bake),
    /// rolled back by the judge, inconclusive (no verdict in its step's
    /// running time), aborted, rejected by its proof, or failed.
    ImprovementEnded { improvement: i64, state: ImprovementState, version: String, reason: String },
    /// A version was deployed directly (not through a rollout).
    Deploy { version: String, sha256: String, reason: String },
    /// An operator replaced the bytes of a version already recorded
    /// (versions are immutable otherwise): what it had, what it has now.
    VersionReplaced { version: String, replaced_sha256: String, sha256: String },
    /// The control state changed.
    Control { action: ControlAction, reason: String, by: String, state: ControlState },
    /// A host of the fleet took the leader's lease: a new term, whose
    /// fencing epoch every write of the leader carries.
    Leader {
        host: String,
        epoch: i64,
        /// The host that led before, when another one did.
        previous: Option<String>,
    },
    /// A leader's term ended on this host (its lease ran out unrenewed, or
    /// another host holds it).
    Deposed { host: String, epoch: i64, reason: String },
    /// The leader could not take a candidate uploaded to another host of
    /// the fleet into its loop (its bytes could not be fetched, verified or
    /// loaded): the upload was answered, so its failure is recorded here.
    SubmissionRefused { version: String, sha256: String, submitted_on: String, reason: String },
    /// A circuit breaker was forced by an operator.
    ForceBreaker { state: String, ms: Option<u64>, reason: String },
    /// The health check remediated a slot.
    Remediate { action: String },
    /// A health report.
    Health(HealthReport),
    /// A cycle of the loop ended (`failed` when part of the loop broke).
    Cycle {
        id: i64,
        kind: String,
        findings: usize,
        attempts: usize,
        skipped: Option<String>,
        failed: bool,
        errors: Vec<String>,
    },
    /// The watch folder handled a file.
    Watch {
        result: WatchResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Where a rollout is: moving shares of the calls to the candidate, or
/// watching it serve every call after its promotion.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Canary,
    Bake,
}

/// A change of the control state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlAction {
    Pause,
    Resume,
    EmergencyStop,
    ReleaseStop,
    /// An operator declared a change freeze.
    Freeze,
    /// An operator lifted it.
    LiftFreeze,
    /// The safety controller paused the loop: too many of its recent
    /// improvements failed or were rolled back.
    SelfPause,
}

/// What the watch folder did with a file.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchResult {
    Deployed,
    Unchanged,
    Candidate,
    Rejected,
    Retry,
}

impl Event {
    /// The variant's name on the wire: the `kind` field and the SSE event
    /// name.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Finding { .. } => "finding",
            Event::Candidate { .. } => "candidate",
            Event::CandidateWithdrawn { .. } => "candidate-withdrawn",
            Event::GeneratorFailed { .. } => "generator-failed",
            Event::Proposal { .. } => "proposal",
            Event::ImproverFailed { .. } => "improver-failed",
            Event::ImproversSpent { .. } => "improvers-spent",
            Event::Proof { .. } => "proof",
            Event::Checkpoint { .. } => "checkpoint",
            Event::CanaryStep { .. } => "canary-step",
            Event::Verdict { .. } => "verdict",
            Event::Promoted { .. } => "promoted",
            Event::RolloutFrozen { .. } => "rollout-frozen",
            Event::RolloutHeld { .. } => "rollout-held",
            Event::RolloutWaiting { .. } => "rollout-waiting",
            Event::RolloutResumed { .. } => "rollout-resumed",
            Event::RolloutAborted { .. } => "rollout-aborted",
            Event::Rollback { .. } => "rollback",
            Event::RollbackFailed { .. } => "rollback-failed",
            Event::RollbackRequestDenied { .. } => "rollback-request-denied",
            Event::RollbackRequestFailed { .. } => "rollback-request-failed",
            Event::ImprovementEnded { .. } => "improvement-ended",
            Event::Deploy { .. } => "deploy",
            Event::VersionReplaced { .. } => "version-replaced",
            Event::Control { .. } => "control",
            Event::Leader { .. } => "leader",
            Event::Deposed { .. } => "deposed",
            Event::SubmissionRefused { .. } => "submission-refused",
            Event::ForceBreaker { .. } => "force-breaker",
            Event::Remediate { .. } => "remediate",
            Event::Health(_) => "health",
            Event::Cycle { .. } => "cycle",
            Event::Watch { .. } => "watch",
        }
    }

    /// A rollback the runtime made (not by the judge).
    pub fn rollback(rb: &crate::runtime::Rollback, reason: &str, requested_by: Option<&str>) -> Event {
        Event::Rollback {
            from: rb.from.version().into(),
            to: rb.to.version().into(),
            to_sha256: rb.to.id().into(),
            reason: reason.into(),
            phase: None,
            judgement: None,
            requested_by: requested_by.map(str::to_string),
        }
    }

    /// A finding as it stands now: `new` when it just opened.
    pub fn finding(f: &FindingRecord, new: bool) -> Event {
        Event::Finding {
            id: f.id,
            kind: f.kind.clone(),
            severity: f.severity.clone(),
            priority: f.priority.clone(),
            summary: f.summary.clone(),
            new,
            status: f.status,
            version: f.version.clone(),
            reason: f.reason.clone(),
            previous: f.previous,
        }
    }

    /// The event's fields as JSON (what the audit trail keeps as detail).
    pub fn detail(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v.get_mut("detail").map(serde_json::Value::take).unwrap_or_default()
    }
}

/// An event as published: when, on what (empty when it concerns no one
/// target), and the event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub at: i64,
    pub target: String,
    #[serde(flatten)]
    pub event: Event,
}

/// A broadcast of events; slow watchers miss old events rather than slowing
/// the loop.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Envelope>,
}

impl Default for Events {
    fn default() -> Self {
        Events { tx: broadcast::channel(1024).0 }
    }
}

impl Events {
    /// Publish `event` about `target`, stamped now.
    pub fn publish(&self, target: &str, event: Event) {
        let _ = self.tx.send(Envelope { at: crate::store::now_ms(), target: target.into(), event });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_at_target_kind_detail() {
        let e = Envelope {
            at: 7,
            target: "calculator".into(),
            event: Event::CanaryStep { percent: 10.0, candidate_version: "2.0.0".into(), control_percent: None },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"at": 7, "target": "calculator", "kind": "canary-step",
                "detail": {"percent": 10.0, "candidate_version": "2.0.0"}})
        );
        assert_eq!(serde_json::from_value::<Envelope>(v).unwrap(), e);
        assert_eq!(e.event.detail(), serde_json::json!({"percent": 10.0, "candidate_version": "2.0.0"}));
    }

    #[test]
    fn kind_names_the_serialized_variant() {
        let events = [
            Event::Candidate { version: "1".into(), sha256: "s".into() },
            Event::CandidateWithdrawn { version: "1".into(), sha256: "s".into(), reason: "r".into() },
            Event::Rollback {
                from: "2".into(),
                to: "1".into(),
                to_sha256: "s".into(),
                reason: "r".into(),
                phase: None,
                judgement: None,
                requested_by: None,
            },
            Event::ImprovementEnded {
                improvement: 1,
                state: ImprovementState::RolledBack,
                version: "2".into(),
                reason: "r".into(),
            },
            Event::RollbackRequestDenied { reason: "r".into(), denied: "d".into() },
            Event::SubmissionRefused {
                version: "2".into(),
                sha256: "s".into(),
                submitted_on: "b".into(),
                reason: "r".into(),
            },
            Event::RolloutFrozen { improvement: 1, percent: 10.0 },
            Event::RolloutHeld { improvement: 1, percent: 10.0, reason: "change freeze".into() },
            Event::RolloutWaiting { improvement: 1, candidate_version: "2".into(), reason: "outside".into() },
            Event::RolloutResumed {
                improvement: 1,
                percent: 10.0,
                candidate_version: "2".into(),
                reason: "host restarted".into(),
            },
            Event::RolloutAborted {
                improvement: 1,
                candidate_version: "2".into(),
                by: "api".into(),
                reason: "r".into(),
            },
            Event::Watch { result: WatchResult::Rejected, name: None, version: None, reason: Some("bad".into()) },
            Event::VersionReplaced { version: "1".into(), replaced_sha256: "a".into(), sha256: "b".into() },
        ];
        for e in events {
            assert_eq!(serde_json::to_value(&e).unwrap()["kind"], e.kind());
        }
    }
}
