//! The safety controller: the only authority on whether the loop may act.
//!
//! It holds the global switch, per-target enablement and limit overrides,
//! pause/resume and the emergency stop (persisted, so a stop survives a
//! restart), counts what is in flight, and watches the loop's own record:
//! when too many recent improvements were rolled back or failed, it pauses
//! the loop and says why.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::judge::JudgeConfig;
use crate::schedule::{Freeze, Gate, ScheduleConfig, TargetSchedule};
use crate::store::audit::AuditEvent;
use crate::store::control::{ControlState, Hold};
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
    /// Share of calls, percent, kept on the previous version during the
    /// bake: the bake judges the promoted version against this concurrent
    /// holdback. 0 turns the bake's verdict off (the detectors keep
    /// watching).
    pub holdback_percent: f64,
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
            holdback_percent: 5.0,
        }
    }
}

/// A target's own policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetPolicy {
    /// `false` keeps the loop's hands off this target.
    pub enabled: Option<bool>,
    /// A preset for this target's limits, over the global limits; applied
    /// when the configuration is loaded (see [`crate::presets`]), keys in
    /// `limits` win over it.
    pub preset: Option<crate::presets::Preset>,
    /// Limits replacing the global ones for this target.
    pub limits: Option<Limits>,
    /// Rollout windows replacing the global ones, and freezes added to
    /// them, for this target.
    pub schedule: TargetSchedule,
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
    /// The preset the limits and the loop's pace start from; applied when
    /// the configuration is loaded (see [`crate::presets`]).
    pub preset: Option<crate::presets::Preset>,
    pub limits: Limits,
    pub targets: HashMap<String, TargetPolicy>,
    pub self_watch: SelfWatch,
    /// When rollouts may start and move: windows and freezes.
    pub schedule: ScheduleConfig,
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
    #[error("no rollout of `{0}` is in flight, and no proven candidate of it waits to roll out")]
    NoRollout(String),
    #[error("candidate of {0} bytes exceeds the {1}-byte change limit")]
    TooLarge(usize, usize),
    #[error("`{0}` had {1} calls in the window; at least {2} are needed before acting")]
    TooFewExecutions(String, u64, u64),
    /// No rollout starts outside the rollout windows (in words, with when
    /// the next opens).
    #[error("{0}")]
    OutsideWindow(String),
    /// No rollout starts or moves in a change freeze.
    #[error("{0}")]
    ChangeFreeze(String),
    /// No canary starts in an hour of the day that historically brings it
    /// too few calls to reach a verdict.
    #[error("{0}")]
    TooLittleTraffic(String),
    /// Replay is required proof and no call of the unit has its request
    /// recorded yet: a candidate taken up now could only be rejected for
    /// want of requests to replay, so it waits in its queue.
    #[error(
        "no request of `{0}` is recorded yet, and replay is required proof: its candidates wait until calls are \
         recorded (one call in `telemetry.sample_requests_every` keeps its request)"
    )]
    NoRecordedRequests(String),
}

/// How an improvement ended, for the self-watch. Inconclusive and aborted
/// rollouts are not outcomes: missing evidence and an operator's choice say
/// nothing about the loop's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    Rejected,
    Failed,
}

/// A rollout in flight, as operators see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutInfo {
    pub target: String,
    pub improvement: i64,
    pub candidate_version: String,
    pub candidate_sha256: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
}

/// Who asked a rollout to end, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortRequest {
    pub by: String,
    pub reason: String,
}

struct InFlight {
    info: RolloutInfo,
    abort: tokio::sync::watch::Sender<Option<AbortRequest>>,
}

/// The controller.
pub struct Safety {
    db: Db,
    config: SafetyConfig,
    state: Mutex<ControlState>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    outcomes: Mutex<VecDeque<Outcome>>,
}

/// Held while a rollout runs: its entry in the in-flight registry, and the
/// channel an abort arrives on. Dropping it ends the entry.
pub struct RolloutPermit {
    safety: Arc<Safety>,
    target: String,
    abort: tokio::sync::watch::Receiver<Option<AbortRequest>>,
}

impl RolloutPermit {
    /// The abort asked for, if any.
    pub fn abort_requested(&self) -> Option<AbortRequest> {
        self.abort.borrow().clone()
    }

    /// Wait until an abort is asked for.
    pub async fn aborted(&self) -> AbortRequest {
        let mut rx = self.abort.clone();
        loop {
            if let Some(a) = rx.borrow_and_update().clone() {
                return a;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
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
            in_flight: Mutex::new(HashMap::new()),
            outcomes: Mutex::new(VecDeque::new()),
        }))
    }

    pub fn config(&self) -> &SafetyConfig {
        &self.config
    }

    pub fn state(&self) -> ControlState {
        self.state.lock().clone()
    }

    /// Take the control state another host of the fleet wrote (an
    /// emergency stop, a pause set there) as this host's. Returns whether
    /// it differed.
    pub fn adopt(&self, state: ControlState) -> bool {
        let mut s = self.state.lock();
        let changed = *s != state;
        if changed {
            tracing::warn!(by = %state.by_whom, reason = %state.reason, "control state changed on another host");
            *s = state;
        }
        changed
    }

    /// The limits that apply to `target`.
    pub fn limits_for(&self, target: &str) -> &Limits {
        self.config.targets.get(target).and_then(|p| p.limits.as_ref()).unwrap_or(&self.config.limits)
    }

    /// May a rollout of `target` start, or move on, now? Its windows (its
    /// own, else the global ones) and every freeze in force — configured,
    /// or declared by an operator (`kaizen freeze`). A rollout for a
    /// critical finding passes where `safety.schedule` lets it.
    pub fn gate(&self, target: &str, critical: bool) -> Gate {
        let s = &self.config.schedule;
        let own = self.config.targets.get(target).map(|p| &p.schedule);
        let windows = own.and_then(|o| o.windows.as_deref()).unwrap_or(&s.windows);
        let declared = self.declared_freeze();
        let freezes = s.freezes.iter().chain(own.into_iter().flat_map(|o| &o.freezes)).chain(declared.as_ref());
        let now = jiff::Timestamp::now();
        // A critical fix let through a freeze still meets the windows,
        // unless it is let through those too.
        let gate = match Gate::at(windows, freezes, now) {
            Gate::Frozen { .. } if critical && s.critical_in_freezes => Gate::at(windows, [], now),
            gate => gate,
        };
        match gate {
            Gate::OutsideWindow { .. } if critical && s.critical_outside_windows => Gate::Open,
            gate => gate,
        }
    }

    /// Targets with a schedule of their own (windows or freezes), by name.
    pub fn scheduled_targets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .config
            .targets
            .iter()
            .filter(|(_, p)| p.schedule.windows.is_some() || !p.schedule.freezes.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        v.sort();
        v
    }

    /// [`Safety::gate`] as a denial: `Ok` when a rollout may start now.
    pub fn may_start_rollout(&self, target: &str, critical: bool) -> Result<(), Denied> {
        let gate = self.gate(target, critical);
        let why = gate.describe(jiff::Timestamp::now());
        match gate {
            Gate::Open => Ok(()),
            Gate::OutsideWindow { .. } => Err(Denied::OutsideWindow(why)),
            Gate::Frozen { .. } => Err(Denied::ChangeFreeze(why)),
        }
    }

    /// The freeze an operator declared, while it lasts.
    fn declared_freeze(&self) -> Option<Freeze> {
        let s = self.state.lock();
        let until = s.freeze_until.filter(|u| *u > now_ms())?;
        let to = jiff::Timestamp::from_millisecond(until).ok()?;
        Some(Freeze {
            from: Some(jiff::Timestamp::MIN),
            to: Some(to),
            every: None,
            reason: s.freeze_reason.clone().unwrap_or_default(),
        })
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
        if in_flight.contains_key(target) {
            return Err(Denied::Busy(target.into()));
        }
        if in_flight.len() >= l.concurrent_rollouts {
            return Err(Denied::RolloutLimit(in_flight.len(), l.concurrent_rollouts));
        }
        Ok(())
    }

    /// Reserve a rollout (after [`Safety::may_attempt`]), within the limit
    /// on concurrent rollouts.
    pub fn begin_rollout(self: &Arc<Self>, info: RolloutInfo) -> Result<RolloutPermit, Denied> {
        let limit = self.limits_for(&info.target).concurrent_rollouts;
        self.register(info, Some(limit))
    }

    /// Re-register a rollout that was in flight before a restart: it was
    /// admitted then, so the concurrency limit does not turn it away now.
    pub fn resume_rollout(self: &Arc<Self>, info: RolloutInfo) -> Result<RolloutPermit, Denied> {
        self.register(info, None)
    }

    fn register(self: &Arc<Self>, info: RolloutInfo, limit: Option<usize>) -> Result<RolloutPermit, Denied> {
        let mut in_flight = self.in_flight.lock();
        if in_flight.contains_key(&info.target) {
            return Err(Denied::Busy(info.target));
        }
        if let Some(limit) = limit
            && in_flight.len() >= limit
        {
            return Err(Denied::RolloutLimit(in_flight.len(), limit));
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        let target = info.target.clone();
        in_flight.insert(target.clone(), InFlight { info, abort: tx });
        Ok(RolloutPermit { safety: self.clone(), target, abort: rx })
    }

    pub fn rollouts_in_flight(&self) -> usize {
        self.in_flight.lock().len()
    }

    /// The rollout of `target` in flight, if any.
    pub fn rollout(&self, target: &str) -> Option<RolloutInfo> {
        self.in_flight.lock().get(target).map(|f| f.info.clone())
    }

    /// Every rollout in flight, by target.
    pub fn rollouts(&self) -> Vec<RolloutInfo> {
        let mut v: Vec<RolloutInfo> = self.in_flight.lock().values().map(|f| f.info.clone()).collect();
        v.sort_by(|a, b| a.target.cmp(&b.target));
        v
    }

    /// Ask the rollout of `target` to end: it takes back its candidate, the
    /// checkpoint serves, and its improvement ends `aborted`. Returns at once;
    /// the rollout leaves the registry when it has done so.
    pub fn abort_rollout(&self, target: &str, by: &str, reason: &str) -> Result<RolloutInfo, Denied> {
        let in_flight = self.in_flight.lock();
        let f = in_flight.get(target).ok_or_else(|| Denied::NoRollout(target.into()))?;
        f.abort.send_replace(Some(AbortRequest { by: by.into(), reason: reason.into() }));
        Ok(f.info.clone())
    }

    async fn set(
        &self,
        edit: impl Fn(&mut ControlState),
        by: &str,
        action: &str,
        why: &str,
    ) -> store::Result<ControlState> {
        // What the edit changes is stamped: the switches with who and why
        // (a second pause keeps the first one's reason), a freeze with its
        // own reason only; an edit that changes nothing writes nothing.
        let changed = std::sync::atomic::AtomicBool::new(false);
        let stamped = |s: &mut ControlState| {
            let before = s.clone();
            edit(s);
            let now = now_ms();
            if (s.enabled, s.paused, s.stopped) != (before.enabled, before.paused, before.stopped) {
                let stamp = Hold { reason: why.to_string(), by_whom: by.to_string(), at: now };
                // A switch turned on takes this change's hold, one turned
                // off drops its own; one left as it was keeps its own.
                for (on, was, hold) in [
                    (s.paused, before.paused, &mut s.pause_hold),
                    (s.stopped, before.stopped, &mut s.stop_hold),
                    (!s.enabled, !before.enabled, &mut s.disable_hold),
                ] {
                    if on != was {
                        *hold = on.then(|| stamp.clone());
                    }
                }
                // Shown: the hold of the switch that decides the state
                // (stopped, then disabled, then paused, as `status` reads
                // them), or this change's when none holds any more. A
                // switch on from before its hold was recorded shows this
                // change's.
                let shown = [(s.stopped, &s.stop_hold), (!s.enabled, &s.disable_hold), (s.paused, &s.pause_hold)]
                    .into_iter()
                    .find(|(on, _)| *on)
                    .and_then(|(_, h)| h.clone())
                    .unwrap_or(stamp);
                (s.reason, s.by_whom, s.state_changed_at) = (shown.reason, shown.by_whom, shown.at);
            }
            if *s != before {
                s.updated_at = now;
                changed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        // The edit applies to the stored state, read in the same
        // transaction: another host's change this host has not adopted yet
        // is kept, not overwritten by this host's older copy.
        let next = match store::control::update(&self.db, &stamped).await {
            Ok(next) => next,
            Err(e) => {
                // Unstored, it still holds here: a stop must stop this host.
                stamped(&mut self.state.lock());
                return Err(e);
            }
        };
        *self.state.lock() = next.clone();
        if !changed.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(next);
        }
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

    /// Declare a change freeze until `until` (Unix ms): no rollout starts,
    /// and rollouts in progress hold at their step. Persisted; it lapses
    /// by itself at `until`.
    pub async fn freeze(&self, until: i64, by: &str, why: &str) -> store::Result<ControlState> {
        let reason = why.to_string();
        self.set(|s| (s.freeze_until, s.freeze_reason) = (Some(until), Some(reason.clone())), by, "freeze", why).await
    }

    /// Lift a declared change freeze before it lapses.
    pub async fn lift_freeze(&self, by: &str, why: &str) -> store::Result<ControlState> {
        self.set(|s| (s.freeze_until, s.freeze_reason) = (None, None), by, "lift-freeze", why).await
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
