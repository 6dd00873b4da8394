//! Why the loop made no attempt on a finding in a cycle, in words that say
//! what to do about it. Every finding a cycle saw either led to an attempt
//! or carries one of these, in the cycle report and on the finding.

use serde::{Deserialize, Serialize};

use crate::safety::Denied;

/// Why a finding led to no attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum NoAttempt {
    /// The target is known only from telemetry pushed from outside.
    NotHosted,
    /// The target is a plugin slot of another kind (a detector, a
    /// recovery strategy): the loop improves units only.
    NotAUnit { kind: String },
    /// Nothing to try: no candidate queued and no generator configured.
    NoCandidate {
        /// The watch folder, when it is on.
        watch_dir: Option<String>,
    },
    /// The safety controller turned the attempt down.
    Denied {
        /// The setting that set the limit, when one did.
        limit: Option<String>,
        why: String,
    },
    /// The loop is paused, stopped or disabled.
    NotRunning { why: String, remedy: String },
    /// An improvement for it is already under way.
    Addressed,
    /// A proven candidate for its target waits to start its rollout.
    Waiting { improvement: i64, why: String },
    /// Another finding of the same target was attempted this cycle.
    OtherFindingFirst { finding: i64, kind: String },
    /// An operator snoozed it.
    Snoozed { until: i64 },
    /// An operator closed it.
    Closed,
}

impl NoAttempt {
    /// The reason a safety denial gives, naming the limit it hit.
    pub fn denied(d: &Denied) -> NoAttempt {
        let why = d.to_string();
        let not_running = |remedy: &str| NoAttempt::NotRunning { why: why.clone(), remedy: remedy.into() };
        let limit = match d {
            Denied::Paused(_) => return not_running("`kaizen resume` lets it act"),
            Denied::Stopped(_) => return not_running("`kaizen stop --release` lifts the stop"),
            Denied::Disabled => return not_running("nothing is attempted until it is enabled again"),
            Denied::TargetDisabled(t) => Some(format!("safety.targets.{t}.enabled")),
            Denied::CycleLimit(..) => Some("safety.limits.improvements_per_cycle".into()),
            Denied::RolloutLimit(..) | Denied::Busy(_) => Some("safety.limits.concurrent_rollouts".into()),
            Denied::TooLarge(..) => Some("safety.limits.max_change_bytes".into()),
            Denied::TooFewExecutions(..) => Some("safety.limits.min_executions".into()),
            Denied::NoRollout(_) => None,
            Denied::OutsideWindow(_) => Some("safety.schedule.windows".into()),
            Denied::ChangeFreeze(_) => Some("safety.schedule.freezes".into()),
            Denied::TooLittleTraffic(_) => Some("safety.limits.judge.min_samples".into()),
            Denied::NoRecordedRequests(_) => Some("safety.limits.required_proof".into()),
        };
        NoAttempt::Denied { limit, why }
    }
}

impl std::fmt::Display for NoAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAttempt::NotHosted => f.write_str(
                "not a hosted unit (telemetry only): the loop can change only units it hosts; fix it where it \
                 runs, then acknowledge or close the finding",
            ),
            NoAttempt::NotAUnit { kind } => write!(
                f,
                "not a unit but a {kind} plugin: the loop improves units only; deploy a fixed version yourself \
                 (`kaizen deploy FILE`)"
            ),
            NoAttempt::NoCandidate { watch_dir } => {
                f.write_str("no candidate: ")?;
                if let Some(dir) = watch_dir {
                    write!(f, "drop a module into {dir}, ")?;
                }
                f.write_str(
                    "POST /api/v1/plugins?mode=candidate (`kaizen deploy FILE`), or configure a generator \
                     ([loop.generator])",
                )
            }
            NoAttempt::Denied { limit: Some(limit), why } => write!(f, "denied by limit {limit}: {why}"),
            NoAttempt::Denied { limit: None, why } => write!(f, "denied: {why}"),
            NoAttempt::NotRunning { why, remedy } => write!(f, "{why}: {remedy}"),
            NoAttempt::Addressed => {
                f.write_str("an improvement for it is under way: its rollout decides (`kaizen status` lists it)")
            }
            NoAttempt::Waiting { improvement, why } => write!(
                f,
                "improvement {improvement} for this target is proven and waits to roll out ({why}); nothing else \
                 is tried on it meanwhile"
            ),
            NoAttempt::OtherFindingFirst { finding, kind } => write!(
                f,
                "one attempt per target per cycle: finding {finding} ({kind}) on the same target went first; \
                 this one waits for a later cycle"
            ),
            NoAttempt::Snoozed { until } => write!(
                f,
                "snoozed by an operator until {}: the loop leaves it alone until then",
                crate::store::format_time(*until)
            ),
            NoAttempt::Closed => {
                f.write_str("closed by an operator: the loop leaves it alone until it clears and recurs")
            }
        }
    }
}

/// A finding of the cycle that led to no attempt, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotAttempted {
    pub finding_id: i64,
    pub target: String,
    pub kind: String,
    /// The reason, for programs.
    pub why: NoAttempt,
    /// The reason in words (what `why` says to a person).
    pub reason: String,
}

impl NotAttempted {
    pub fn new(finding_id: i64, target: &str, kind: &str, why: NoAttempt) -> NotAttempted {
        NotAttempted { finding_id, target: target.into(), kind: kind.into(), reason: why.to_string(), why }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_say_what_to_do() {
        let none = NoAttempt::NoCandidate { watch_dir: Some("/srv/kaizen/watch".into()) };
        assert_eq!(
            none.to_string(),
            "no candidate: drop a module into /srv/kaizen/watch, POST /api/v1/plugins?mode=candidate (`kaizen \
             deploy FILE`), or configure a generator ([loop.generator])"
        );
        assert!(NoAttempt::NotHosted.to_string().starts_with("not a hosted unit (telemetry only)"));
        let d = NoAttempt::denied(&Denied::CycleLimit(2, 2));
        assert_eq!(
            d.to_string(),
            "denied by limit safety.limits.improvements_per_cycle: 2 improvement(s) already started this cycle \
             (limit 2)"
        );
        let paused = NoAttempt::denied(&Denied::Paused("maintenance".into()));
        assert_eq!(paused.to_string(), "the loop is paused: maintenance: `kaizen resume` lets it act");
        let n = NotAttempted::new(3, "calc", "slow", NoAttempt::Closed);
        let back: NotAttempted = serde_json::from_value(serde_json::to_value(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }
}
