//! Stepwise rollout: checkpoint, canary steps through the slot's weighted
//! split with the judge between steps, promotion, a bake period, and a
//! rollback to the checkpoint's exact bytes the moment the judge fails the
//! candidate. Every comparison is between arms of the same period: the
//! canary steps judge candidate against baseline calls routed side by side,
//! and the bake judges the promoted version against a concurrent holdback
//! of the previous one (`holdback_percent` of the calls). A call belongs to
//! the step in which it was routed, not the one in which it finished.
//!
//! The rollout is the one owner of its slot: it holds the slot's [`Claim`]
//! (direct deploys and rollbacks are refused while it runs) and its entry in
//! the safety controller's registry (through which an operator aborts it).
//! Every transition is written to the store before it takes effect, so a
//! restart finds each rollout at its last recorded step (see
//! [`super::resume`]). Its time budgets count running time only: a pause,
//! a change freeze or an emergency stop holds the rollout where it stands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Ctx;
use crate::events::{Event, Phase};
use crate::invoke::{CallListener, CallRecord};
use crate::judge::{self, Comparison, JudgeConfig, Judgement, Pool, Step, Verdict, judge};
use crate::runtime::{Claim, Plugin, SlotError};
use crate::safety::{AbortRequest, Denied, Limits, Outcome, RolloutInfo, RolloutPermit};
use crate::schedule::Gate;
use crate::store::deployments::{DeployState, Deployment};
use crate::store::findings::FindingStatus;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::{self, now_ms};

/// Collects the calls of the candidate and the baseline routed since the
/// step began.
struct Collector {
    candidate: String,
    baseline: String,
    /// Whether the step's candidate arm is the calls of the candidate's
    /// matched control (the bake) rather than of the candidate itself.
    candidate_control: AtomicBool,
    /// Whether the step's baseline arm is the calls of the baseline's
    /// matched control (a canary step) rather than of the baseline itself.
    baseline_control: AtomicBool,
    /// Start of the step, milliseconds since the Unix epoch.
    since: AtomicI64,
    /// Calls of the step not yet judged, in the order they ended: the call
    /// path only appends; the rollout's task scores them at its next look.
    pending: Mutex<Vec<(bool, f64, Option<String>)>>,
    step: Mutex<Option<Comparison>>,
    /// In a fleet: this host's id, and the step's calls by the host that
    /// served them (this host's own and those its followers shipped).
    me: String,
    by_host: Mutex<BTreeMap<String, u64>>,
}

impl CallListener for Collector {
    fn on_call(&self, r: &CallRecord) {
        self.take(&r.sha256, r.control, r.started_at, r.latency_ms, r.class(), &self.me);
    }
}

impl Collector {
    /// Take a call served by `host` into the step when it is one of the
    /// step's arms and started in it.
    fn take(&self, sha: &str, control: bool, started_at: i64, latency_ms: f64, class: Option<String>, host: &str) {
        // Under the lock a step's reset also takes: a call either started
        // in this step or is dropped, never slipped into the next one.
        let mut pending = self.pending.lock();
        if started_at < self.since.load(Ordering::Relaxed) {
            return;
        }
        let arm = |id: &str, arm_control: &AtomicBool| sha == id && control == arm_control.load(Ordering::Relaxed);
        let candidate = if arm(&self.candidate, &self.candidate_control) {
            true
        } else if arm(&self.baseline, &self.baseline_control) {
            false
        } else {
            return;
        };
        pending.push((candidate, latency_ms, class));
        if !self.me.is_empty() {
            *self.by_host.lock().entry(host.to_string()).or_default() += 1;
        }
    }

    fn calls_by_host(&self) -> BTreeMap<String, u64> {
        self.by_host.lock().clone()
    }
}

/// Feed the calls followers shipped for `slot` to `collector`, every
/// [`POOL_EVERY`], for as long as the rollout runs (the task is aborted at
/// its end). Every host splits a step's calls by the same shares, each by
/// a coin of its own, so the pooled calls are one randomized comparison.
async fn pool_shipped(pool: sqlx::PgPool, slot: String, collector: Arc<Collector>) {
    use crate::store::fleet as rows;
    // Ids are drawn at insert and concurrent inserts commit out of order:
    // each read goes back REREAD ids below the highest taken, and skips the
    // ids already taken.
    const REREAD: i64 = 1000;
    let start = rows::last_arm_call(&pool).await.unwrap_or(0);
    let mut taken = std::collections::BTreeSet::new();
    let mut failing = false;
    loop {
        tokio::time::sleep(POOL_EVERY).await;
        let floor = taken.last().map_or(start, |top: &i64| (top - REREAD).max(start));
        match rows::arm_calls_after(&pool, &slot, &collector.me, floor).await {
            Ok(calls) => {
                failing = false;
                for (id, c) in calls {
                    if taken.insert(id) {
                        collector.take(&c.sha256, c.control, c.started_at, c.latency_ms, c.class, &c.host);
                    }
                }
                let floor = taken.last().map_or(start, |top| (top - REREAD).max(start));
                taken.retain(|id| *id > floor);
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(slot, "fleet: cannot read the followers' calls (judging this host's only): {e}");
            }
            Err(_) => {}
        }
    }
}

/// A rollout's watch on its slot's calls: its collector among the slot's
/// listeners and, in a fleet, the task pooling the followers' calls. Ended
/// when dropped, so a rollout stopped where it stands (a task aborted at a
/// shutdown, or when its host stops leading) leaves neither behind.
struct Watching {
    invoker: Arc<crate::invoke::Invoker>,
    target: String,
    listener: Arc<dyn CallListener>,
    pooled: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.invoker.unlisten(&self.target, &self.listener);
        if let Some(task) = self.pooled.take() {
            task.abort();
        }
    }
}

/// How often the leader reads the calls its followers shipped.
const POOL_EVERY: Duration = Duration::from_millis(100);

/// Which arm of a step is a matched control's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controlled {
    /// No control: the candidate's calls against the baseline's.
    Neither,
    /// A canary step: the candidate against a copy of the baseline.
    Baseline,
    /// The bake: a copy of the candidate against the holdback.
    Candidate,
}

impl Collector {
    fn reset(&self, share: f64, controlled: Controlled, cfg: &JudgeConfig, pool: Option<Pool>) {
        let mut step = self.step.lock();
        let mut pending = self.pending.lock();
        self.since.store(now_ms(), Ordering::Relaxed);
        self.candidate_control.store(controlled == Controlled::Candidate, Ordering::Relaxed);
        self.baseline_control.store(controlled == Controlled::Baseline, Ordering::Relaxed);
        pending.clear();
        self.by_host.lock().clear();
        *step = Some(Comparison::new(share, cfg).pooled(pool));
    }

    /// Score the calls that ended since the last look, then judge them all.
    fn judge(&self, cfg: &JudgeConfig, step: &Step) -> Option<Judgement> {
        let mut cmp = self.step.lock();
        let calls = std::mem::take(&mut *self.pending.lock());
        let cmp = cmp.as_mut()?;
        for (candidate, latency_ms, class) in calls {
            cmp.record(candidate, latency_ms, class.as_deref().unwrap_or(judge::OK));
        }
        Some(judge(cmp, cfg, step))
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Promoted,
    /// The judge failed the candidate.
    RolledBack,
    /// A step ran out of running time without a verdict.
    Inconclusive,
    /// An operator (or a recovery strategy's rollback request) ended it.
    Aborted(AbortRequest),
    /// The rollout could not go on: a transition could not be recorded
    /// before taking effect, or the slot refused it.
    Failed(String),
}

/// Where a rollout starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A new rollout: checkpoint, then the first canary step.
    Fresh,
    /// A rollout found unfinished at start, at canary step `step` (an index
    /// into the steps below 100 %; their number means the promotion and its
    /// bake).
    Resume { step: usize },
}

/// What a rollout holds while it runs: its registry entry and its slot.
pub struct Owned {
    pub permit: RolloutPermit,
    pub claim: Claim,
}

/// Why a rollout could not take its slot.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error("slot `{0}` disappeared")]
    NoSlot(String),
}

/// Take the registry entry and the slot for `imp`'s rollout. The slot must
/// serve one of `accept` (the checkpoint for a new rollout; the checkpoint
/// or the candidate for a resumed one). A resumed rollout was admitted
/// before the restart, so the concurrency limit does not apply to it.
pub fn begin(
    ctx: &Ctx,
    imp: &Improvement,
    candidate: &Plugin,
    baseline: &Plugin,
    accept: &[&str],
    resumed: bool,
) -> Result<Owned, BeginError> {
    let info = RolloutInfo {
        target: imp.target.clone(),
        improvement: imp.id,
        candidate_version: candidate.version().into(),
        candidate_sha256: candidate.id().into(),
        started_at: now_ms(),
    };
    let permit = if resumed { ctx.safety.resume_rollout(info)? } else { ctx.safety.begin_rollout(info)? };
    let slot = ctx.runtime.slot(&imp.target).ok_or_else(|| BeginError::NoSlot(imp.target.clone()))?;
    let holder = format!(
        "the rollout of improvement {} ({} {} → {})",
        imp.id,
        imp.target,
        baseline.version(),
        candidate.version()
    );
    let claim = slot.claim(holder, accept)?;
    Ok(Owned { permit, claim })
}

/// What keeps a rollout from moving on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Running,
    Paused,
    /// A change freeze: like a pause, nothing advances and the clock
    /// stands still; a failure still rolls back.
    Freeze,
    /// An emergency stop: nothing moves, nothing is judged.
    Frozen,
}

/// Time a step or bake has run, not counting while it was held.
struct RunningClock {
    ran: Duration,
    last: Instant,
}

impl RunningClock {
    fn start() -> RunningClock {
        RunningClock { ran: Duration::ZERO, last: Instant::now() }
    }

    /// Count the time since the last look if the rollout was running; the
    /// running time so far.
    fn advance(&mut self, hold: Hold) -> Duration {
        let now = Instant::now();
        if hold == Hold::Running {
            self.ran += now - self.last;
        }
        self.last = now;
        self.ran
    }
}

/// One rollout in progress: what it moves, where, and what it has seen.
struct Rollout {
    ctx: Arc<Ctx>,
    owned: Owned,
    target: String,
    limits: Limits,
    imp: Improvement,
    candidate: Arc<Plugin>,
    baseline: Arc<Plugin>,
    collector: Arc<Collector>,
    verdicts: Vec<serde_json::Value>,
    /// The share the candidate has now, percent.
    percent: f64,
    /// The candidate arm's share of the calls the judge compares now (of
    /// the two arms' calls), 0 to 1.
    judged_share: f64,
    /// The matched controls ([`crate::runtime::Runtime::control_of`]): a copy of the
    /// baseline for the canary steps, of the candidate for the bake; each
    /// loaded when first needed.
    baseline_control: Option<Arc<Plugin>>,
    candidate_control: Option<Arc<Plugin>>,
    /// Whether this rollout is judged against matched controls, decided at
    /// its first step (`judge.matched_control_below_ms`).
    matched: Option<bool>,
    /// Which judged arm is a control in the step now judged, and the
    /// judge's settings for it (no `min_shift_ms` against a control).
    controlled: Controlled,
    judge_cfg: JudgeConfig,
    /// The state the improvement has while running (canary or baking).
    running_state: ImprovementState,
    /// What held the rollout at the last look (recorded when it changes).
    held: Hold,
    /// The verdict that ended the rollout, with its phase.
    last_verdict: Option<(Phase, Judgement)>,
    /// Outcome classes the improvement's finding is about, judged as one.
    pool: Option<Pool>,
    /// Whether its finding is critical: an emergency fix, which a freeze
    /// does not hold when `safety.schedule.critical_in_freezes` is on.
    critical: bool,
}

/// Run one rollout to its end. `imp` is already stored; `owned` is what
/// [`begin`] returned for it.
pub async fn run(
    ctx: Arc<Ctx>,
    owned: Owned,
    imp: Improvement,
    candidate: Arc<Plugin>,
    baseline: Arc<Plugin>,
    start: Start,
) -> End {
    let collector = Arc::new(Collector {
        candidate: candidate.id().into(),
        baseline: baseline.id().into(),
        candidate_control: AtomicBool::new(false),
        baseline_control: AtomicBool::new(false),
        since: AtomicI64::new(0),
        pending: Mutex::default(),
        step: Mutex::default(),
        me: if ctx.leadership.in_fleet() { ctx.leadership.host_id().to_string() } else { String::new() },
        by_host: Mutex::default(),
    });
    let target = imp.target.clone();
    // A resumed rollout keeps the verdicts of the steps it passed.
    let verdicts = imp.verdicts.as_array().cloned().unwrap_or_default();
    let limits = ctx.safety.limits_for(&target).clone();
    let mut r = Rollout {
        ctx,
        owned,
        target,
        limits,
        imp,
        candidate,
        baseline,
        collector,
        verdicts,
        percent: 0.0,
        judged_share: 0.0,
        baseline_control: None,
        candidate_control: None,
        matched: None,
        controlled: Controlled::Neither,
        judge_cfg: JudgeConfig::default(),
        running_state: ImprovementState::Canary,
        held: Hold::Running,
        last_verdict: None,
        pool: None,
        critical: false,
    };
    (r.pool, r.critical) = r.finding_pool().await;
    let from = match start {
        Start::Fresh => {
            r.checkpoint().await;
            0
        }
        Start::Resume { step } => {
            let pct = r.canary_steps().get(step).copied().unwrap_or(100.0);
            let event = Event::RolloutResumed {
                improvement: r.imp.id,
                percent: pct,
                candidate_version: r.candidate.version().into(),
                reason: "host restarted; the step starts again with fresh samples".into(),
            };
            r.ctx.audit.record_event("loop", "rollout-resumed", &r.target, event).await;
            step
        }
    };
    let listener: Arc<dyn CallListener> = r.collector.clone();
    r.ctx.invoker.listen(&r.target, listener.clone());
    let pooled = match &r.ctx.db {
        crate::store::Db::Postgres(pool) if r.ctx.leadership.in_fleet() => {
            Some(tokio::spawn(pool_shipped(pool.clone(), r.target.clone(), r.collector.clone())))
        }
        _ => None,
    };
    let watching = Watching { invoker: r.ctx.invoker.clone(), target: r.target.clone(), listener, pooled };
    let resumed = start != Start::Fresh;
    let bake_resumed = resumed && from >= r.canary_steps().len();
    let end = match r.canary(from, resumed).await {
        Ok(()) => match r.promote_and_bake(bake_resumed).await {
            Ok(()) => End::Promoted,
            Err(end) => end,
        },
        Err(end) => end,
    };
    drop(watching);
    if end != End::Promoted {
        r.take_back(&end).await;
    }
    r.finish(end.clone()).await;
    end
}

impl Rollout {
    /// The slot's deployment as this rollout leaves it.
    fn deployment(&self, current: &Plugin, candidate: bool, pct: f64, state: DeployState, reason: &str) -> Deployment {
        Deployment {
            slot: self.target.clone(),
            kind: "unit".into(),
            current_sha: current.id().to_string(),
            previous_sha: Some(self.baseline.id().to_string()),
            candidate_sha: candidate.then(|| self.candidate.id().to_string()),
            canary_percent: pct,
            control_percent: 0.0,
            holdback_percent: 0.0,
            rollback_chain: self.owned.claim.slot().rollback_chain(current.id()),
            state,
            reason: reason.to_string(),
            updated_at: now_ms(),
        }
    }

    /// Write the slot's deployment record; `false` when it could not be.
    async fn record(&self, d: Deployment) -> bool {
        let written = store::deployments::record(&self.ctx.db, &d, self.candidate.id(), Some(self.baseline.id()));
        self.ctx.write("deployment", &self.target, written).await.is_some()
    }

    /// Keep a step's verdict on the improvement's record at once, so that a
    /// restart loses no step's evidence (a write that fails is reported by
    /// `save`, and the verdict is written again with the next state).
    async fn keep_verdict(&mut self, verdict: serde_json::Value) {
        self.verdicts.push(verdict);
        self.imp.verdicts = serde_json::Value::Array(self.verdicts.clone());
        self.ctx.save(&self.imp).await;
    }

    /// Write the improvement's state and reason; `false` when it could not be.
    async fn set_state(&mut self, state: ImprovementState, reason: String) -> bool {
        (self.imp.state, self.imp.reason, self.imp.updated_at) = (state, reason, now_ms());
        self.ctx.save(&self.imp).await
    }

    /// The version serving now, recorded before anything moves.
    async fn checkpoint(&self) {
        let d = self.deployment(&self.baseline, true, 0.0, DeployState::Testing, "checkpoint before rollout");
        self.record(d).await;
        let event = Event::Checkpoint {
            baseline: self.baseline.id().into(),
            baseline_version: self.baseline.version().into(),
            candidate: self.candidate.id().into(),
            candidate_version: self.candidate.version().into(),
        };
        self.ctx.audit.record_event("loop", "checkpoint", &self.target, event).await;
    }

    fn canary_steps(&self) -> Vec<f64> {
        self.limits.canary_steps.iter().copied().filter(|p| *p < 100.0).collect()
    }

    /// The canary steps below 100 % from step `from`, the judge between
    /// them; `Err` ends the rollout early. The first step of a resumed
    /// rollout is re-entered at once, even while held: its split was in
    /// force before the restart.
    async fn canary(&mut self, from: usize, resumed: bool) -> Result<(), End> {
        for (i, pct) in self.canary_steps().into_iter().enumerate().skip(from) {
            if !(resumed && i == from) {
                self.until_running().await?;
            }
            self.enter_step(pct, resumed && i == from).await?;
            crate::tasks::inject_fault("rollout");
            let verdict = self.await_verdict(pct).await?;
            self.keep_verdict(verdict_json(Phase::Canary, pct, &verdict, &self.collector.calls_by_host())).await;
            let event = Event::Verdict {
                phase: Phase::Canary,
                percent: pct,
                judgement: verdict.clone(),
                calls_by_host: self.collector.calls_by_host(),
            };
            self.ctx.publish(&self.target, event);
            let end = match verdict.verdict {
                Verdict::Pass => continue,
                Verdict::Fail => End::RolledBack,
                Verdict::Inconclusive | Verdict::Pending => End::Inconclusive,
            };
            self.last_verdict = Some((Phase::Canary, verdict));
            return Err(end);
        }
        Ok(())
    }

    /// Record the step, then move `pct` % of the calls to the candidate.
    /// A step taken again by a resumed rollout (after a restart, or by a
    /// fleet's next leader) says so, so the history does not
    /// read as two steps to the same share.
    async fn enter_step(&mut self, pct: f64, again: bool) -> Result<(), End> {
        let reason = if again { format!("canary at {pct}%, resumed") } else { format!("canary at {pct}%") };
        // Loaded before the step is recorded: a control that cannot be
        // loaded ends the rollout with the previous split in place.
        let control = self.control(Controlled::Baseline).await?;
        if !self.set_state(ImprovementState::Canary, reason.clone()).await
            || !self
                .record(Deployment {
                    control_percent: if control.is_some() { pct.min(100.0 - pct) } else { 0.0 },
                    ..self.deployment(&self.baseline, true, pct, DeployState::Canary, &reason)
                })
                .await
        {
            return Err(End::Failed(format!("cannot record the step to {pct}% before taking it")));
        }
        let claim = &self.owned.claim;
        claim.split(&self.baseline, &self.candidate, pct, control.as_ref()).map_err(|e| End::Failed(e.to_string()))?;
        // The record now says "running"; a hold in force is noted again.
        (self.percent, self.held) = (pct, Hold::Running);
        let (share, controlled) = judged(pct, control.is_some(), Controlled::Baseline);
        self.judge_against(share, controlled);
        let event = Event::CanaryStep {
            percent: pct,
            candidate_version: self.candidate.version().into(),
            control_percent: control.is_some().then(|| pct.min(100.0 - pct)),
        };
        self.ctx.audit.record_event("loop", "canary-step", &self.target, event).await;
        Ok(())
    }

    fn hold(&self) -> Hold {
        let s = self.ctx.safety.state();
        if s.stopped {
            Hold::Frozen
        } else if s.paused {
            Hold::Paused
        } else if matches!(self.ctx.safety.gate(&self.target, self.critical), Gate::Frozen { .. }) {
            Hold::Freeze
        } else {
            Hold::Running
        }
    }

    /// Wait one analysis interval; an abort ends the rollout. Says what
    /// holds the rollout now, recording a change of hold as it happens.
    async fn tick(&mut self) -> Result<Hold, End> {
        let interval = Duration::from_millis(self.ctx.config.analysis_ms);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            abort = self.owned.permit.aborted() => return Err(End::Aborted(abort)),
        }
        let hold = self.hold();
        self.note_hold(hold).await;
        Ok(hold)
    }

    /// Record that a pause or an emergency stop holds the rollout at its
    /// step, or that it carries on.
    async fn note_hold(&mut self, hold: Hold) {
        if hold == self.held {
            return;
        }
        let was = std::mem::replace(&mut self.held, hold);
        let (id, pct, state) = (self.imp.id, self.percent, self.running_state);
        let step = if state == ImprovementState::Baking { "the bake".to_string() } else { format!("{pct}%") };
        match hold {
            Hold::Frozen => {
                self.set_state(ImprovementState::Frozen, format!("emergency stop: frozen at {step}")).await;
                let event = Event::RolloutFrozen { improvement: id, percent: pct };
                self.ctx.audit.record_event("safety", "rollout-frozen", &self.target, event).await;
            }
            Hold::Paused => {
                self.set_state(state, format!("loop paused: holding at {step}")).await;
            }
            Hold::Freeze => {
                let why = self.ctx.safety.gate(&self.target, self.critical).describe(jiff::Timestamp::now());
                self.set_state(state, format!("{why}: holding at {step}")).await;
                let event = Event::RolloutHeld { improvement: id, percent: pct, reason: why };
                self.ctx.audit.record_event("safety", "rollout-held", &self.target, event).await;
            }
            Hold::Running => {
                let reason =
                    if state == ImprovementState::Baking { "baking".into() } else { format!("canary at {pct}%") };
                self.set_state(state, reason).await;
            }
        }
        let resumed = match was {
            Hold::Frozen => "emergency stop released",
            Hold::Freeze if hold == Hold::Running => "change freeze ended",
            _ => return,
        };
        let event = Event::RolloutResumed {
            improvement: id,
            percent: pct,
            candidate_version: self.candidate.version().into(),
            reason: resumed.into(),
        };
        self.ctx.audit.record_event("safety", "rollout-resumed", &self.target, event).await;
    }

    /// Hold while the loop is paused or stopped.
    async fn until_running(&mut self) -> Result<(), End> {
        if let Some(abort) = self.owned.permit.abort_requested() {
            return Err(End::Aborted(abort));
        }
        self.note_hold(self.hold()).await;
        while self.hold() != Hold::Running {
            self.tick().await?;
        }
        Ok(())
    }

    /// Ask the judge until it passes or fails the candidate at `pct`. The
    /// step's time budget counts running time only; when it runs out the
    /// verdict is inconclusive. A pass waits while the loop is paused; a
    /// failure rolls back even then; under an emergency stop nothing is
    /// judged.
    async fn await_verdict(&mut self, pct: f64) -> Result<Judgement, End> {
        let budget = Duration::from_secs(self.limits.step_timeout_secs);
        let mut clock = RunningClock::start();
        let mut looks = 0;
        loop {
            let hold = self.tick().await?;
            let ran = clock.advance(hold);
            if hold == Hold::Frozen {
                continue;
            }
            looks += 1;
            let Some(mut j) = self.collector.judge(&self.judge_cfg, &self.step(looks)) else { continue };
            match j.verdict {
                Verdict::Fail | Verdict::Inconclusive => return Ok(j),
                Verdict::Pass if hold == Hold::Running => return Ok(j),
                _ if ran >= budget => {
                    j.verdict = Verdict::Inconclusive;
                    j.reason = format!(
                        "no verdict within {} s of running time at {pct}%: {}{}",
                        self.limits.step_timeout_secs,
                        j.reason,
                        too_few_calls(j.candidate_samples, ran)
                    );
                    return Ok(j);
                }
                _ => {}
            }
        }
    }

    /// Record the promotion, promote the candidate, then watch it through
    /// the bake period against the holdback. A rollout resumed in its bake
    /// (`resumed`) was promoted before the restart: the bake starts again,
    /// recorded as resumed, and the promotion is not announced twice.
    async fn promote_and_bake(&mut self, resumed: bool) -> Result<(), End> {
        if !resumed {
            self.until_running().await?;
        }
        self.running_state = ImprovementState::Baking;
        let (bake, hold) = (self.limits.bake_secs, self.limits.holdback_percent);
        let reason = if hold > 0.0 {
            format!("promoted; baking for {bake} s against a {hold}% holdback")
        } else {
            "promoted; no holdback, so no bake verdict".to_string()
        };
        // Loaded before anything is recorded: a control that cannot be
        // loaded ends the rollout with the canary still in place.
        let control = if hold > 0.0 { self.control(Controlled::Candidate).await? } else { None };
        // The holdback is in the desired state, so that every host of a
        // fleet holds back alike and the bake is judged on all their calls.
        let d = Deployment {
            holdback_percent: hold,
            control_percent: if control.is_some() { hold.min(100.0 - hold) } else { 0.0 },
            ..self.deployment(
                &self.candidate,
                false,
                0.0,
                DeployState::Active,
                if resumed { "promoted; baking, resumed" } else { "promoted; baking" },
            )
        };
        if !self.set_state(ImprovementState::Baking, reason).await || !self.record(d).await {
            return Err(End::Failed("cannot record the promotion before making it".into()));
        }
        let claim = &self.owned.claim;
        claim.split(&self.baseline, &self.candidate, 100.0, None).map_err(|e| End::Failed(e.to_string()))?;
        claim.promote().map_err(|e| End::Failed(e.to_string()))?;
        let with = control.as_ref();
        claim.holdback(&self.candidate, &self.baseline, hold, with).map_err(|e| End::Failed(e.to_string()))?;
        (self.percent, self.held) = (100.0 - hold, Hold::Running);
        // The bake's candidate arm is the candidate's control, when there
        // is one: it runs as seldom as the holdback.
        let (share, controlled) = judged(hold, control.is_some(), Controlled::Candidate);
        (self.judged_share, self.controlled) = (1.0 - share, controlled);
        if !resumed {
            let event =
                Event::Promoted { version: self.candidate.version().into(), sha256: self.candidate.id().into() };
            self.ctx.audit.record_event("loop", "promoted", &self.target, event).await;
        }
        if hold == 0.0 {
            return Ok(());
        }
        let verdict = self.bake().await?;
        self.keep_verdict(verdict_json(Phase::Bake, self.percent, &verdict, &self.collector.calls_by_host())).await;
        let event = Event::Verdict {
            phase: Phase::Bake,
            percent: self.percent,
            judgement: verdict.clone(),
            calls_by_host: self.collector.calls_by_host(),
        };
        self.ctx.publish(&self.target, event);
        if verdict.verdict == Verdict::Fail {
            self.last_verdict = Some((Phase::Bake, verdict));
            return Err(End::RolledBack);
        }
        // The bake is over: every call goes to the promoted version, here
        // and (through the desired state) on every host of a fleet.
        self.owned
            .claim
            .holdback(&self.candidate, &self.baseline, 0.0, None)
            .map_err(|e| End::Failed(e.to_string()))?;
        self.percent = 100.0;
        let ended =
            store::deployments::end_holdback(&self.ctx.db, &self.target, self.candidate.id(), "promoted; baked");
        self.ctx.write("deployment", &self.target, ended).await;
        Ok(())
    }

    /// The bake: the promoted version against the holdback's calls of the
    /// same period, for `bake_secs` of running time. Only a failure ends it
    /// early. At its end it passes when every objective was shown within
    /// its threshold; otherwise it is inconclusive (too few holdback calls
    /// to compare, say), which keeps the promotion — no evidence of harm —
    /// but does not read as a pass.
    async fn bake(&mut self) -> Result<Judgement, End> {
        self.judge_against(self.judged_share, self.controlled);
        let budget = Duration::from_secs(self.limits.bake_secs);
        let mut clock = RunningClock::start();
        let mut looks = 0;
        // The latest look that showed every objective within: anytime-valid,
        // a pass shown at any look holds, whatever later looks still collect.
        let mut passed: Option<Judgement> = None;
        loop {
            let hold = self.tick().await?;
            let ran = clock.advance(hold);
            if hold == Hold::Frozen {
                continue;
            }
            looks += 1;
            let Some(mut j) = self.collector.judge(&self.judge_cfg, &self.step(looks)) else { continue };
            if j.verdict == Verdict::Fail {
                return Ok(j);
            }
            if j.verdict == Verdict::Pass {
                passed = Some(j.clone());
            } else if let Some(p) = passed.as_ref().filter(|_| ran >= budget || j.verdict == Verdict::Inconclusive) {
                j = p.clone();
            }
            if ran >= budget || j.verdict == Verdict::Inconclusive {
                // The bake watches for harm; none shown keeps the promotion,
                // a pass only if the judge showed every objective within.
                let secs = self.limits.bake_secs;
                j.reason = if j.verdict == Verdict::Pass {
                    format!("no harm in {secs} s of bake against the holdback: {}", j.reason)
                } else {
                    j.verdict = Verdict::Inconclusive;
                    format!(
                        "no harm shown in {secs} s of bake against the holdback, so the promotion stands, but not \
                         every objective could be shown within its threshold: {}",
                        j.reason
                    )
                };
                return Ok(j);
            }
        }
    }

    /// The classes the improvement's finding asks to change, as replay and
    /// shadow read it ([`super::prove::outcomes::About`]): the judge then counts the
    /// finding's failures and the refusals that replace them as one class.
    /// Also whether the finding is critical.
    async fn finding_pool(&self) -> (Option<Pool>, bool) {
        let Some(id) = self.imp.finding_id else { return (None, false) };
        let Some(finding) = store::findings::get(&self.ctx.db, id).await.ok().flatten() else { return (None, false) };
        let pool = match super::prove::outcomes::About::of(Some(&finding), &self.ctx.config.prove) {
            super::prove::outcomes::About::Nothing => None,
            super::prove::outcomes::About::Class(c) => Pool::for_failures(Some(&c)),
            super::prove::outcomes::About::Failures => Pool::for_failures(None),
        };
        (pool, finding.severity == "critical")
    }

    /// What the judge is told about the step now judged: the candidate's
    /// configured share and the level this step may spend (the rollout's
    /// alpha over its canary steps and, with a holdback, the bake).
    fn step(&self, looks: u64) -> Step {
        let judged = self.canary_steps().len() + usize::from(self.limits.holdback_percent > 0.0);
        // In the bake the other arm is the holdback, with or without a
        // control of the candidate beside it.
        let against = match self.controlled {
            _ if self.running_state == ImprovementState::Baking => judge::Against::Holdback,
            Controlled::Baseline => judge::Against::MatchedControl,
            Controlled::Neither | Controlled::Candidate => judge::Against::Baseline,
        };
        Step { share: self.judged_share, alpha: judge::step_alpha(self.limits.judge.alpha, judged), looks, against }
    }

    /// Start judging a step afresh: the candidate arm's share of the
    /// judged calls and which arm is a control. Against a control the
    /// absolute floor (`min_shift_ms`) is not applied: it exists for the
    /// sparse arm's own slowness, which the control shares.
    fn judge_against(&mut self, share: f64, controlled: Controlled) {
        self.judge_cfg = self.limits.judge.clone();
        if controlled != Controlled::Neither {
            self.judge_cfg.min_shift_ms = 0.0;
        }
        (self.judged_share, self.controlled) = (share, controlled);
        self.collector.reset(share, controlled, &self.judge_cfg, self.pool.clone());
    }

    /// Whether this rollout is judged against matched controls: when the
    /// candidate has a module of its own and the baseline's median call
    /// over the last minute is under `judge.matched_control_below_ms`.
    /// Decided once, at the first step, so that every step and the bake are
    /// judged alike; a baseline without calls in that minute is judged
    /// without one. A config candidate runs on the module the serving
    /// version keeps warm, so it pays no sparse arm's penalty and is judged
    /// against the rest, as before.
    fn matched(&mut self) -> bool {
        if let Some(m) = self.matched {
            return m;
        }
        if self.candidate.sha256() == self.baseline.sha256() {
            self.matched = Some(false);
            return false;
        }
        let below = self.limits.judge.matched_control_below_ms;
        let now = now_ms();
        let aggregates = self.ctx.telemetry.aggregates();
        let window = aggregates.window(&self.target, Some(self.baseline.version()), now - 60_000, now);
        let m = below > 0.0 && window.is_some_and(|w| w.executions > 0 && w.latency.p50_ms < below);
        self.matched = Some(m);
        m
    }

    /// The matched control of the baseline (for the canary steps) or of
    /// the candidate (for the bake), loaded the first time it is needed
    /// and kept for the rollout; `None` when `judge.matched_control` is
    /// off. Loading it from the module store runs off the async workers.
    async fn control(&mut self, of: Controlled) -> Result<Option<Arc<Plugin>>, End> {
        if !self.matched() {
            return Ok(None);
        }
        let (copied, sparse) = match of {
            Controlled::Baseline => (&self.baseline, &self.candidate),
            Controlled::Candidate => (&self.candidate, &self.baseline),
            Controlled::Neither => return Ok(None),
        };
        let kept = if of == Controlled::Baseline { &self.baseline_control } else { &self.candidate_control };
        if let Some(c) = kept {
            return Ok(Some(c.clone()));
        }
        let (runtime, copied, sparse) = (self.ctx.runtime.clone(), copied.clone(), sparse.clone());
        let version = copied.version().to_string();
        let loaded = tokio::task::spawn_blocking(move || runtime.control_of(&copied, &sparse))
            .await
            .map_err(|e| End::Failed(format!("loading a matched control of {version} failed: {e}")))?
            .map_err(|e| End::Failed(format!("cannot load a matched control of {version}: {e}")))?;
        let kept = if of == Controlled::Baseline { &mut self.baseline_control } else { &mut self.candidate_control };
        *kept = Some(loaded.clone());
        Ok(Some(loaded))
    }

    /// Put the checkpoint back, taking back only what this rollout
    /// installed (its canary, or its promoted candidate).
    async fn take_back(&self, end: &End) {
        let (ctx, target) = (&self.ctx, self.target.as_str());
        let judgement = self.last_verdict.as_ref();
        let reason = match end {
            End::Aborted(a) => format!("rollout aborted by {}: {}", a.by, a.reason),
            End::Failed(why) => format!("rollout failed: {why}"),
            _ => judgement.map(|(_, j)| j.reason.clone()).unwrap_or_default(),
        };
        match self.owned.claim.withdraw(&self.candidate, &self.baseline) {
            Ok(rb) => {
                let (to, from) = (rb.to.id(), rb.from.id());
                let written =
                    store::deployments::record_rollback(&ctx.db, target, "unit", to, from, rb.chain.clone(), &reason);
                ctx.write("deployment", target, written).await;
                let event = Event::Rollback {
                    from: self.candidate.version().into(),
                    to: rb.to.version().into(),
                    to_sha256: to.into(),
                    reason,
                    phase: judgement.map(|(p, _)| *p),
                    judgement: judgement.map(|(_, j)| j.clone()),
                    requested_by: match end {
                        End::Aborted(a) => Some(a.by.clone()),
                        _ => None,
                    },
                };
                ctx.audit.record_event("loop", "rolled-back", target, event).await;
            }
            // Ended before its first step: nothing of it serves.
            Err(SlotError::NotInstalled { .. }) => {}
            Err(e) => {
                let event = Event::RollbackFailed { error: e.to_string() };
                ctx.audit.record_event("loop", "rollback-failed", target, event).await;
            }
        }
        if let End::Aborted(a) = end {
            let event = Event::RolloutAborted {
                improvement: self.imp.id,
                candidate_version: self.candidate.version().into(),
                by: a.by.clone(),
                reason: a.reason.clone(),
            };
            ctx.audit.record_event(&a.by, "rollout-aborted", target, event).await;
        }
    }

    /// Settle the improvement: its final state, its finding, the counters
    /// and the safety controller's record.
    async fn finish(mut self, end: End) {
        let ctx = self.ctx.clone();
        self.imp.verdicts = serde_json::Value::Array(std::mem::take(&mut self.verdicts));
        let version = self.candidate.version().to_string();
        let steps = self.limits.canary_steps.len();
        let judged = self.last_verdict.as_ref().map(|(_, j)| j.reason.clone()).unwrap_or_default();
        let (state, reason, finding, outcome) = match &end {
            End::Promoted => {
                ctx.stats.deployed.fetch_add(1, Ordering::Relaxed);
                let why = format!("{version} promoted after {steps} step(s) and the bake period");
                (ImprovementState::Promoted, why, FindingStatus::Resolved, Some(Outcome::Promoted))
            }
            End::RolledBack => {
                ctx.stats.rolled_back.fetch_add(1, Ordering::Relaxed);
                let why = format!("the judge failed the candidate ({judged}); the checkpoint serves again");
                // An improver's trial failed by the judge is the exploration
                // the judge exists to guard, not the loop misjudging: it is
                // bounded by `loop.max_improver_trials`, and the self-watch
                // counts only candidates someone claimed were better.
                let exploration = super::improvers::by_improver(&self.imp.source);
                (ImprovementState::RolledBack, why, FindingStatus::Open, (!exploration).then_some(Outcome::RolledBack))
            }
            End::Inconclusive => {
                ctx.stats.inconclusive.fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "inconclusive: {judged}; evidence was missing, not evidence of harm; rolled back by policy, \
                     the checkpoint serves again"
                );
                (ImprovementState::Inconclusive, why, FindingStatus::Open, None)
            }
            End::Aborted(a) => {
                ctx.stats.aborted.fetch_add(1, Ordering::Relaxed);
                let why = format!("aborted by {}: {}; the checkpoint serves again", a.by, a.reason);
                (ImprovementState::Aborted, why, FindingStatus::Open, None)
            }
            End::Failed(e) => {
                ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
                let why = format!("{e}; the checkpoint serves again");
                (ImprovementState::Failed, why, FindingStatus::Open, Some(Outcome::Failed))
            }
        };
        self.set_state(state, reason).await;
        if let Some(fid) = self.imp.finding_id {
            ctx.set_finding(fid, finding).await;
        }
        ctx.end(&self.imp, &version).await;
        if let Some(o) = outcome {
            ctx.record_outcome(o).await;
        }
    }
}

/// The candidate arm's share of the judged calls when `sparse` percent of
/// the calls go to the sparse arm (the canary, or the bake's holdback),
/// with or without a matched control of the other side, and which arm is
/// the control. A control takes as many calls as the sparse arm, or what
/// is left beside it when that is less ([`crate::runtime::Canary::control_percent`]).
fn judged(sparse: f64, control: bool, side: Controlled) -> (f64, Controlled) {
    let p = sparse / 100.0;
    if !control {
        return (p, Controlled::Neither);
    }
    let c = p.min(1.0 - p);
    (p / (p + c), side)
}

/// A verdict as the improvement's record keeps it; in a fleet with the
/// judged calls by the host that served them.
fn verdict_json(phase: Phase, pct: f64, j: &Judgement, by_host: &BTreeMap<String, u64>) -> serde_json::Value {
    let mut v = serde_json::json!({ "phase": phase, "percent": pct, "judgement": j });
    if !by_host.is_empty() {
        v["calls_by_host"] = serde_json::json!(by_host);
    }
    v
}

/// Carry out the rollbacks recovery strategies asked for: only while the
/// loop may act (`denied` says why not otherwise). A slot with a rollout in
/// flight belongs to it: the request aborts the rollout, which takes back
/// its candidate.
pub async fn requested_rollbacks(ctx: &Ctx, denied: Option<&Denied>) {
    let requests = ctx.invoker.healer().map(|h| h.take_rollback_requests()).unwrap_or_default();
    // A failing unit asks once per failed call: one rollback per target
    // per cycle, not one step back in its history per request.
    let mut handled = std::collections::BTreeSet::new();
    for (target, why) in requests {
        if !handled.insert(target.clone()) {
            continue;
        }
        if let Some(denied) = denied {
            let event = Event::RollbackRequestDenied { reason: why, denied: denied.to_string() };
            ctx.audit.record_event("safety", "rollback-request-denied", &target, event).await;
            continue;
        }
        if ctx.safety.abort_rollout(&target, "recovery", &why).is_ok() {
            continue;
        }
        match ctx.runtime.rollback(&target) {
            Ok(rb) => {
                let kind = crate::runtime::validate::world_name(rb.to.kind());
                let written = store::deployments::record_rollback(
                    &ctx.db,
                    &target,
                    kind,
                    rb.to.id(),
                    rb.from.id(),
                    rb.chain.clone(),
                    &why,
                );
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

/// End every bake holdback the desired state still holds with no rollout
/// in flight on its slot: one whose end could not be written (the rollout
/// ended promoted all the same), or one a new leader took up from the
/// desired state after its rollout had ended. Here and, through the
/// desired state, on every host of a fleet, all calls go to the promoted
/// version again.
pub async fn settle_holdbacks(ctx: &Ctx) {
    let Some(all) = ctx.check("deployment", "holdbacks", store::deployments::all(&ctx.db).await) else { return };
    for d in all.into_iter().filter(|d| d.holdback_percent > 0.0 && ctx.safety.rollout(&d.slot).is_none()) {
        if let Some(slot) = ctx.runtime.slot(&d.slot) {
            let serving = slot.serving();
            let held_back = serving.canary.as_ref().is_some_and(|c| Some(c.plugin.id()) == d.previous_sha.as_deref());
            if serving.current.id() == d.current_sha && held_back {
                let _ = slot.swap(serving.current.clone());
            }
        }
        let why = "promoted; its holdback ended after the rollout";
        let ended = store::deployments::end_holdback(&ctx.db, &d.slot, &d.current_sha, why);
        if ctx.write("deployment", &d.slot, ended).await.is_some() {
            tracing::info!(slot = %d.slot, "a bake's holdback outlived its rollout: ended");
        }
    }
}

/// Candidate calls a step typically needs for a verdict on identical code
/// (a pass), at the default objectives: `cargo bench --bench judge` shows
/// medians of 790–1 500 and p90s of 1 270–2 630.
const CALLS_FOR_A_VERDICT: usize = 3000;

/// When a step ran out of time with fewer candidate calls than a verdict
/// needs, what to do about it, in words: the step is sized in time, but the
/// judge needs calls.
fn too_few_calls(candidate_calls: usize, ran: Duration) -> String {
    let secs = ran.as_secs_f64();
    if candidate_calls >= CALLS_FOR_A_VERDICT || secs <= 0.0 || candidate_calls == 0 {
        return String::new();
    }
    let rate = candidate_calls as f64 / secs;
    format!(
        " — the candidate had only {candidate_calls} calls ({rate:.1}/s); a verdict usually needs up to \
         {CALLS_FOR_A_VERDICT}: at this traffic give the step about {:.0} s (safety.limits.step_timeout_secs, or \
         safety.targets.NAME.limits.step_timeout_secs for this target alone)",
        CALLS_FOR_A_VERDICT as f64 / rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_too_short_for_its_traffic_says_how_long_it_needs() {
        let words = too_few_calls(240, Duration::from_secs(120));
        assert!(words.contains("only 240 calls (2.0/s)") && words.contains("about 1500 s"), "{words}");
        assert_eq!(too_few_calls(3500, Duration::from_secs(120)), "");
    }
}
