//! The safety controller: the only authority on whether the loop may act.
//!
//! It holds the global switch, per-target enablement and limit overrides,
//! pause/resume and the emergency stop (persisted, so a stop survives a
//! restart), counts what is in flight, and watches the loop's own record:
//! when too many recent improvements were rolled back or failed, it pauses
//! the loop and says why.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::judge::JudgeConfig;
use crate::store::audit::AuditEvent;
use crate::store::control::ControlState;
use crate::store::{self, Db, now_ms};

/// Limits on what the loop may do, globally or for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Improvements started per cycle at most.
    pub improvements_per_cycle: usize,
    /// Rollouts in flight at once at most (across targets).
    pub concurrent_rollouts: usize,
    /// Largest candidate module accepted, in bytes.
    pub max_change_bytes: usize,
    /// Calls a target must have had in the detection window before any of its
    /// findings is acted on.
    pub min_executions: u64,
    /// Proof steps a candidate must pass; `validation` always runs.
    pub required_proof: Vec<String>,
    /// Canary shares, percent; the last step (100) is the promotion.
    pub canary_steps: Vec<f64>,
    /// The judge, including the rollback threshold.
    pub judge: JudgeConfig,
    /// Longest wait for a verdict at one canary step before rolling back.
    pub step_timeout_secs: u64,
    /// How long a promoted version keeps being watched.
    pub bake_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            improvements_per_cycle: 2,
            concurrent_rollouts: 1,
            max_change_bytes: 32 << 20,
            min_executions: 50,
            required_proof: vec!["validation".into(), "replay".into()],
            canary_steps: vec![10.0, 50.0, 100.0],
            judge: JudgeConfig::default(),
            step_timeout_secs: 120,
            bake_secs: 30,
        }
    }
}

/// A target's own policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetPolicy {
    /// `false` keeps the loop's hands off this target.
    pub enabled: Option<bool>,
    /// Limits replacing the global ones for this target.
    pub limits: Option<Limits>,
}

/// When the loop must pause itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfWatch {
    /// How many recent improvement outcomes are considered.
    pub window: usize,
    /// Do not judge the loop on fewer outcomes than this.
    pub min_outcomes: usize,
    /// Pause when the share of rolled-back outcomes exceeds this.
    pub max_rollback_rate: f64,
    /// Pause when the share of failed outcomes (errors of the loop itself)
    /// exceeds this.
    pub max_failure_rate: f64,
}

impl Default for SelfWatch {
    fn default() -> Self {
        SelfWatch { window: 10, min_outcomes: 4, max_rollback_rate: 0.5, max_failure_rate: 0.5 }
    }
}

/// Settings of the controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    pub limits: Limits,
    pub targets: HashMap<String, TargetPolicy>,
    pub self_watch: SelfWatch,
}

/// Why the controller said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum Denied {
    #[error("the loop is disabled")]
    Disabled,
    #[error("the loop is paused: {0}")]
    Paused(String),
    #[error("emergency stop in force: {0}")]
    Stopped(String),
    #[error("target `{0}` is not enabled for improvement")]
    TargetDisabled(String),
    #[error("{0} improvement(s) already started this cycle (limit {1})")]
    CycleLimit(usize, usize),
    #[error("{0} rollout(s) in flight (limit {1})")]
    RolloutLimit(usize, usize),
    #[error("a rollout of `{0}` is already in flight")]
    Busy(String),
    #[error("candidate of {0} bytes exceeds the {1}-byte change limit")]
    TooLarge(usize, usize),
    #[error("`{0}` had {1} calls in the window; at least {2} are needed before acting")]
    TooFewExecutions(String, u64, u64),
}

/// How an improvement ended, for the self-watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    Rejected,
    Failed,
}

/// The controller.
pub struct Safety {
    db: Db,
    config: SafetyConfig,
    state: Mutex<ControlState>,
    in_flight: Mutex<HashSet<String>>,
    outcomes: Mutex<VecDeque<Outcome>>,
}

/// Held while a rollout runs; releases its slot in the in-flight set.
pub struct RolloutPermit {
    safety: Arc<Safety>,
    target: String,
}

impl Drop for RolloutPermit {
    fn drop(&mut self) {
        self.safety.in_flight.lock().remove(&self.target);
    }
}

impl Safety {
    /// Load the persisted control state.
    pub async fn load(db: Db, config: SafetyConfig) -> store::Result<Arc<Safety>> {
        let state = store::control::get(&db).await?;
        Ok(Arc::new(Safety {
            db,
            config,
            state: Mutex::new(state),
            in_flight: Mutex::new(HashSet::new()),
            outcomes: Mutex::new(VecDeque::new()),
        }))
    }

    pub fn config(&self) -> &SafetyConfig {
        &self.config
    }

    pub fn state(&self) -> ControlState {
        self.state.lock().clone()
    }

    /// The limits that apply to `target`.
    pub fn limits_for(&self, target: &str) -> &Limits {
        self.config.targets.get(target).and_then(|p| p.limits.as_ref()).unwrap_or(&self.config.limits)
    }

    /// May the loop act at all now?
    pub fn check_running(&self) -> Result<(), Denied> {
        let s = self.state.lock();
        if s.stopped {
            return Err(Denied::Stopped(s.reason.clone()));
        }
        if !s.enabled {
            return Err(Denied::Disabled);
        }
        if s.paused {
            return Err(Denied::Paused(s.reason.clone()));
        }
        Ok(())
    }

    /// Is the emergency stop in force? Rollouts freeze where they stand.
    pub fn stopped(&self) -> bool {
        self.state.lock().stopped
    }

    /// May the loop start improving `target`, the `started`-th this cycle,
    /// with a candidate of `size` bytes, given `executions` in the window?
    pub fn may_attempt(&self, target: &str, started: usize, size: usize, executions: u64) -> Result<(), Denied> {
        self.check_running()?;
        if self.config.targets.get(target).and_then(|p| p.enabled) == Some(false) {
            return Err(Denied::TargetDisabled(target.into()));
        }
        let l = self.limits_for(target);
        if started >= l.improvements_per_cycle {
            return Err(Denied::CycleLimit(started, l.improvements_per_cycle));
        }
        if size > l.max_change_bytes {
            return Err(Denied::TooLarge(size, l.max_change_bytes));
        }
        if executions < l.min_executions {
            return Err(Denied::TooFewExecutions(target.into(), executions, l.min_executions));
        }
        let in_flight = self.in_flight.lock();
        if in_flight.contains(target) {
            return Err(Denied::Busy(target.into()));
        }
        if in_flight.len() >= l.concurrent_rollouts {
            return Err(Denied::RolloutLimit(in_flight.len(), l.concurrent_rollouts));
        }
        Ok(())
    }

    /// Reserve a rollout of `target` (after [`Safety::may_attempt`]).
    pub fn begin_rollout(self: &Arc<Self>, target: &str) -> Result<RolloutPermit, Denied> {
        let mut in_flight = self.in_flight.lock();
        let limit = self.limits_for(target).concurrent_rollouts;
        if in_flight.contains(target) {
            return Err(Denied::Busy(target.into()));
        }
        if in_flight.len() >= limit {
            return Err(Denied::RolloutLimit(in_flight.len(), limit));
        }
        in_flight.insert(target.to_string());
        Ok(RolloutPermit { safety: self.clone(), target: target.to_string() })
    }

    pub fn rollouts_in_flight(&self) -> usize {
        self.in_flight.lock().len()
    }

    async fn set(
        &self,
        edit: impl FnOnce(&mut ControlState),
        by: &str,
        action: &str,
        why: &str,
    ) -> store::Result<ControlState> {
        let next = {
            let mut s = self.state.lock();
            edit(&mut s);
            s.reason = why.to_string();
            s.by_whom = by.to_string();
            s.updated_at = now_ms();
            s.clone()
        };
        store::control::set(&self.db, &next).await?;
        store::audit::append(
            &self.db,
            &AuditEvent {
                id: 0,
                at: next.updated_at,
                actor: by.to_string(),
                action: action.to_string(),
                target: String::new(),
                detail: serde_json::json!({ "reason": why, "state": next }),
            },
        )
        .await?;
        tracing::warn!(by, action, why, "control state changed");
        Ok(next)
    }

    pub async fn pause(&self, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| s.paused = true, by, "pause", why).await
    }

    pub async fn resume(&self, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| s.paused = false, by, "resume", why).await
    }

    /// Freeze every rollout where it stands; persisted.
    pub async fn emergency_stop(&self, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| s.stopped = true, by, "emergency-stop", why).await
    }

    /// Lift the emergency stop.
    pub async fn release_stop(&self, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| s.stopped = false, by, "release-stop", why).await
    }

    pub async fn set_enabled(&self, on: bool, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| s.enabled = on, by, if on { "enable" } else { "disable" }, why).await
    }

    /// Record how an improvement ended; pauses the loop when its own record
    /// crosses the self-watch thresholds. Returns the reason when it paused.
    pub async fn record_outcome(&self, outcome: Outcome) -> store::Result<Option<String>> {
        let w = self.config.self_watch;
        let reason = {
            let mut o = self.outcomes.lock();
            o.push_back(outcome);
            while o.len() > w.window.max(1) {
                o.pop_front();
            }
            let n = o.len();
            let rolled = o.iter().filter(|x| **x == Outcome::RolledBack).count();
            let failed = o.iter().filter(|x| **x == Outcome::Failed).count();
            if n < w.min_outcomes {
                None
            } else if rolled as f64 / n as f64 > w.max_rollback_rate {
                Some(format!(
                    "self-watch: {rolled} of the last {n} improvements were rolled back (limit {:.0}%)",
                    w.max_rollback_rate * 100.0
                ))
            } else if failed as f64 / n as f64 > w.max_failure_rate {
                Some(format!(
                    "self-watch: {failed} of the last {n} improvements failed (limit {:.0}%)",
                    w.max_failure_rate * 100.0
                ))
            } else {
                None
            }
        };
        match reason {
            Some(why) if !self.state.lock().paused => {
                self.pause("safety", &why).await?;
                self.outcomes.lock().clear();
                Ok(Some(why))
            }
            _ => Ok(None),
        }
    }
}
