//! The improvement loop, one cycle as the steps of the design: sample →
//! detect → prioritize → improve (take a candidate, prove it, deploy it
//! stepwise under the judge, promote or roll back) → learn → report. Each
//! step is a function in its own file; every action asks the safety
//! controller first.

pub mod attempt;
pub mod candidates;
mod ctx;
pub mod detect;
pub mod hours;
pub mod improve;
pub mod improvers;
pub mod inaction;
pub mod knowledge;
pub mod learn;
pub mod lifecycle;
pub mod predict;
pub mod prioritize;
pub mod prove;
pub mod queue;
pub mod report;
pub mod resume;
pub mod rollout;
pub mod sample;
pub mod tune;
pub mod waiting;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use self::attempt::{Attempt, AttemptResult};
use self::candidates::{Candidate, CandidateQueue, GeneratorConfig};
pub use self::ctx::{Ctx, Parts, module_record, record_module};
use self::prove::ProveConfig;
pub use self::report::CycleReport;
pub use self::resume::Resumed;
use crate::events::Event;
use crate::runtime::Plugin;
use crate::store;
use crate::tasks::Tasks;

/// Settings of the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopConfig {
    /// Base time between cycles.
    pub interval_secs: f64,
    pub min_interval_secs: f64,
    pub max_interval_secs: f64,
    /// Detection window, and the baseline window before it.
    pub window_secs: u64,
    pub baseline_secs: u64,
    /// How often a rollout step asks the judge.
    pub analysis_ms: u64,
    /// Findings kept from one detector in one pass; the excess is counted
    /// and reported as one finding about the detector.
    pub max_findings_per_detector: usize,
    /// A finding resolves itself (`condition cleared`) once its detector
    /// ran this many cycles in a row without reporting it; a closed one
    /// stops being current then, so the next report opens a new occurrence.
    pub resolve_after_cycles: u32,
    /// How much a finding of each category counts in its impact.
    pub category_weights: prioritize::CategoryWeights,
    /// What may be tuned on each unit, by unit name (`[loop.tuning.NAME]`).
    pub tuning: std::collections::HashMap<String, tune::TuningPolicy>,
    /// Improvers' trials in a row, against the version that serves, that
    /// may end without a promotion before improvers stop being asked about
    /// that version (a new version serving, by promotion or deploy, starts
    /// a new budget). Exploration is bounded here, not by the self-watch.
    pub max_improver_trials: u32,
    /// With no rollout window configured, move each cycle of an hour's
    /// interval or more to the quiet hour of day (the hosted units'
    /// fewest calls, by their history), when one starts between half and
    /// one and a half intervals from now.
    pub quiet_hours: bool,
    pub prove: ProveConfig,
    pub generator: Option<GeneratorConfig>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            interval_secs: 30.0,
            min_interval_secs: 5.0,
            max_interval_secs: 300.0,
            window_secs: 300,
            baseline_secs: 1800,
            analysis_ms: 200,
            max_findings_per_detector: 100,
            resolve_after_cycles: 3,
            category_weights: prioritize::CategoryWeights::default(),
            tuning: std::collections::HashMap::new(),
            max_improver_trials: 12,
            quiet_hours: true,
            prove: ProveConfig::default(),
            generator: None,
        }
    }
}

/// Why a config candidate was not queued.
#[derive(Debug, thiserror::Error)]
pub enum TuneFailed {
    #[error(transparent)]
    Refused(#[from] tune::TuneError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// What handing a candidate to the loop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Queued,
    /// The same bytes are already queued, being proven or rolling out.
    AlreadyPending(String),
    /// On a fleet's follower: queued for the leader's loop (what it says).
    Forwarded(String),
}

/// Counters of the loop's work.
#[derive(Debug, Default)]
pub struct Stats {
    pub cycles: AtomicU64,
    pub opportunities: AtomicU64,
    pub attempted: AtomicU64,
    pub deployed: AtomicU64,
    pub rolled_back: AtomicU64,
    /// Rollouts whose step ran out of running time without a verdict.
    pub inconclusive: AtomicU64,
    /// Rollouts ended by an operator or a recovery strategy's request.
    pub aborted: AtomicU64,
    pub failed: AtomicU64,
    pub last_cycle_at: AtomicU64,
}

/// A snapshot of the loop's counters, counted since this start of the
/// host (the store's history holds every improvement ever made).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopStats {
    pub cycles_completed: u64,
    pub opportunities_detected: u64,
    pub improvements_attempted: u64,
    pub improvements_deployed: u64,
    pub improvements_rolled_back: u64,
    pub improvements_inconclusive: u64,
    pub improvements_aborted: u64,
    pub improvements_failed: u64,
    pub uptime_secs: u64,
    pub last_cycle_at: Option<i64>,
    pub next_interval_secs: f64,
    /// When the next scheduled cycle runs (Unix ms).
    pub next_cycle_at: Option<i64>,
    /// The quiet hour of day (UTC) the next cycle was moved to, if it was.
    pub quiet_hour: Option<u8>,
    pub rollouts_in_flight: usize,
    pub candidates_queued: usize,
}

/// The loop.
pub struct Loop {
    ctx: Arc<Ctx>,
    started: Instant,
    wake: Notify,
    next_interval: Mutex<f64>,
    /// When the next scheduled cycle runs, and the quiet hour it was moved
    /// to.
    next_cycle: Mutex<(Option<i64>, Option<u8>)>,
    rollouts: Mutex<Vec<JoinHandle<rollout::End>>>,
    cycle_lock: tokio::sync::Mutex<()>,
}

impl Loop {
    pub fn new(parts: Parts, config: LoopConfig) -> Arc<Loop> {
        let interval = config.interval_secs;
        Arc::new(Loop {
            ctx: Arc::new(Ctx {
                parts,
                config,
                stats: Stats::default(),
                candidates: CandidateQueue::default(),
                queue_lock: tokio::sync::Mutex::new(()),
                requeues: Mutex::default(),
                watch_dir: Mutex::default(),
                weights: Mutex::default(),
                improvers_spent: Mutex::default(),
                refusals_told: Mutex::default(),
                abort_requests: Mutex::default(),
                proving: Mutex::default(),
                waiting: Mutex::default(),
                predictor: Mutex::default(),
            }),
            started: Instant::now(),
            wake: Notify::new(),
            next_interval: Mutex::new(interval),
            next_cycle: Mutex::default(),
            rollouts: Mutex::default(),
            cycle_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Queue a new version of a unit as a candidate. It is recorded in the
    /// module table and the queue on disk ([`queue`]) before this returns;
    /// the loop proves and rolls it out. The same bytes already queued,
    /// being proven or rolling out are not queued again.
    pub async fn submit(&self, plugin: Arc<Plugin>, source: &str) -> store::Result<Submitted> {
        let _queue = self.ctx.queue_lock.lock().await;
        if let Some(why) = self.pending(&plugin).await? {
            return Ok(Submitted::AlreadyPending(why));
        }
        record_module(&self.ctx.db, &plugin).await?;
        let candidate = Candidate { plugin, source: source.into() };
        // On disk before the caller hears "queued": a restart finds it.
        store::candidate_queue::enqueue(&self.ctx.db, &ctx::queued(&candidate)).await?;
        let plugin = &candidate.plugin;
        let event = Event::Candidate { version: plugin.version().into(), sha256: plugin.id().into() };
        self.ctx.audit.record_event(source, "candidate", plugin.name(), event).await;
        self.ctx.candidates.push(candidate);
        Ok(Submitted::Queued)
    }

    /// Propose `changes` to unit `target`'s tunables as a config candidate
    /// of the module it serves: checked ([`tune::candidate`]), then queued
    /// like any candidate, to be proven, canaried and judged.
    pub async fn tune(
        &self,
        target: &str,
        changes: &[crate::runtime::types::Setting],
        source: &str,
    ) -> Result<(Arc<Plugin>, Submitted), TuneFailed> {
        let slot = self.ctx.runtime.unit_slot(target).map_err(|_| tune::TuneError::NoSuchUnit(target.into()))?;
        let serving = slot.current();
        let candidate = tune::candidate(&self.ctx.runtime, &serving, changes, self.ctx.config.tuning.get(target))?;
        let submitted = self.submit(candidate.clone(), source).await?;
        Ok((candidate, submitted))
    }

    /// Where these exact bytes already are in the loop, if anywhere.
    async fn pending(&self, plugin: &Plugin) -> store::Result<Option<String>> {
        let (name, sha) = (plugin.name(), plugin.id());
        if self.ctx.candidates.contains(name, sha) {
            return Ok(Some(format!("{} {} is already queued", name, plugin.version())));
        }
        let open = store::improvements::unsettled(&self.ctx.db).await?;
        Ok(open
            .iter()
            .find(|i| i.target == name && i.candidate_sha == sha)
            .map(|i| format!("{} {} is already in improvement {} ({})", name, plugin.version(), i.id, i.state)))
    }

    /// Where operators drop candidates (named in the reason a finding
    /// had no candidate); `None` when the watch folder is off.
    pub fn set_watch_dir(&self, dir: Option<&std::path::Path>) {
        *self.ctx.watch_dir.lock() = dir.map(|d| d.display().to_string());
    }

    /// Run a cycle now (after the one in progress, if any).
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    pub fn stats(&self) -> LoopStats {
        let s = &self.ctx.stats;
        let last = s.last_cycle_at.load(Ordering::Relaxed);
        let (next_cycle_at, quiet_hour) = *self.next_cycle.lock();
        LoopStats {
            cycles_completed: s.cycles.load(Ordering::Relaxed),
            opportunities_detected: s.opportunities.load(Ordering::Relaxed),
            improvements_attempted: s.attempted.load(Ordering::Relaxed),
            improvements_deployed: s.deployed.load(Ordering::Relaxed),
            improvements_rolled_back: s.rolled_back.load(Ordering::Relaxed),
            improvements_inconclusive: s.inconclusive.load(Ordering::Relaxed),
            improvements_aborted: s.aborted.load(Ordering::Relaxed),
            improvements_failed: s.failed.load(Ordering::Relaxed),
            uptime_secs: self.started.elapsed().as_secs(),
            last_cycle_at: (last > 0).then_some(last as i64),
            next_interval_secs: *self.next_interval.lock(),
            next_cycle_at,
            quiet_hour,
            rollouts_in_flight: self.ctx.safety.rollouts_in_flight(),
            candidates_queued: self.ctx.candidates.len(),
        }
    }

    /// Wait until every rollout started so far has ended.
    pub async fn wait_rollouts(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(&mut *self.rollouts.lock());
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }

    /// Run a rollout in the background. A panic in it cannot leave its
    /// slot split with nobody driving it: it is logged, and the improvement
    /// is settled `failed` with the checkpoint serving.
    fn spawn_rollout(&self, improvement: i64, run: impl Future<Output = rollout::End> + Send + 'static) {
        let ctx = self.ctx.clone();
        let handle = tokio::spawn(async move {
            match AssertUnwindSafe(run).catch_unwind().await {
                Ok(end) => end,
                Err(payload) => {
                    let message = crate::tasks::panic_message(payload.as_ref());
                    tracing::error!(improvement, "rollout panicked: {message}");
                    let why = format!("its rollout panicked: {message}");
                    ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
                    if let Some(Some(imp)) = ctx.check(
                        "improvement",
                        "panicked rollout",
                        store::improvements::get(&ctx.db, improvement).await,
                    ) {
                        resume::settle_unowned(&ctx, imp, &why, store::improvements::ImprovementState::Failed).await;
                    }
                    ctx.record_outcome(crate::safety::Outcome::Failed).await;
                    rollout::End::Failed(why)
                }
            }
        });
        self.rollouts.lock().push(handle);
    }

    /// Stop every rollout where it stands, as a restart would: their
    /// records stay as written, and the next start resumes them.
    pub fn shutdown(&self) {
        for h in std::mem::take(&mut *self.rollouts.lock()) {
            h.abort();
        }
    }

    /// Run cycles forever: at the computed interval, at once when triggered,
    /// and again at once after a cycle that found something critical.
    /// Supervised in `tasks` as `loop`: a panic inside a cycle releases the
    /// cycle lock as it unwinds, and a rollout runs in a task of its own, so
    /// starting the loop again after its backoff is safe — it goes on with
    /// a scheduled cycle.
    pub fn spawn(self: &Arc<Self>, tasks: &Tasks) -> JoinHandle<()> {
        let me = self.clone();
        tasks.spawn("loop", move || {
            let me = me.clone();
            async move {
                let mut kind = "scheduled";
                loop {
                    let report = me.run_cycle(kind).await;
                    kind = if report.critical_findings > 0 && kind != "emergency" { "emergency" } else { "scheduled" };
                    if kind == "emergency" {
                        continue;
                    }
                    let mut wait = Duration::from_secs_f64(*me.next_interval.lock());
                    let mut quiet = None;
                    if let Some((hour, at)) = me.quiet_cycle(wait) {
                        (wait, quiet) = (Duration::from_millis((at - store::now_ms()).max(0) as u64), Some(hour));
                    }
                    *me.next_cycle.lock() = (Some(store::now_ms() + wait.as_millis() as i64), quiet);
                    // A candidate waiting for its window, the end of a freeze
                    // or an hour with traffic starts then, not an interval later.
                    if let Some(opens) = me.until_gate_opens() {
                        wait = wait.min(opens + Duration::from_millis(50));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = me.wake.notified() => kind = "manual",
                    }
                }
            }
        })
    }

    /// The quiet hour and when the next cycle starts in it, when quiet-hour
    /// scheduling applies ([`LoopConfig::quiet_hours`], no rollout window).
    fn quiet_cycle(&self, wait: Duration) -> Option<(u8, i64)> {
        let ctx = &self.ctx;
        if !ctx.config.quiet_hours || !ctx.safety.config().schedule.windows.is_empty() {
            return None;
        }
        let units: Vec<String> = ctx
            .runtime
            .slots_of(crate::runtime::types::PluginKind::Unit)
            .iter()
            .map(|s| s.name().to_string())
            .collect();
        let (hour, _) = hours::quiet_hour(ctx, units.iter().map(String::as_str))?;
        Some((hour as u8, hours::quiet_cycle_at(hour, store::now_ms(), wait)?))
    }

    /// Run one cycle of `kind` (`scheduled`, `manual`, `emergency`).
    pub async fn run_cycle(&self, kind: &str) -> CycleReport {
        let _one_at_a_time = self.cycle_lock.lock().await;
        let ctx = &self.ctx;
        let t0 = Instant::now();
        let mut r = CycleReport { kind: kind.into(), started_at: store::now_ms(), ..Default::default() };
        let mut lap = Instant::now();
        let mut mark = |r: &mut CycleReport, step: &str| {
            r.durations_ms.insert(step.into(), lap.elapsed().as_millis() as u64);
            lap = Instant::now();
        };
        // In a fleet only the leader runs cycles; a follower's cycle is
        // skipped whole, with nothing written (the leader reports its own).
        if let Err(follower) = ctx.leadership.check() {
            // Rollbacks the recovery strategies asked for here are the
            // leader's to decide: following the fleet passes them on.
            r.skipped = Some(follower.to_string());
            r.durations_ms.insert("total".into(), t0.elapsed().as_millis() as u64);
            return r;
        }
        let running = ctx.safety.check_running();
        rollout::requested_rollbacks(ctx, running.as_ref().err()).await;
        if running.is_ok() {
            rollout::settle_holdbacks(ctx).await;
        }
        match running {
            Err(denied) => r.skipped = Some(denied.to_string()),
            Ok(()) => {
                let order = match queue::refill(ctx).await {
                    Ok(refilled) => {
                        refilled.errors.iter().for_each(|e| tracing::warn!("candidate queue: {e}"));
                        refilled.units
                    }
                    Err(e) => {
                        tracing::warn!("candidate queue: cannot read it, memory's queue stands: {e}");
                        Vec::new()
                    }
                };
                let seen = sample::sample(ctx).await;
                r.targets_sampled = seen.input.targets.len();
                mark(&mut r, "sample");
                let detected = detect::detect(ctx, &seen).await;
                r.detector_errors = detected.errors;
                mark(&mut r, "detect");
                let mut findings = prioritize::prioritize(ctx, detected.findings, &seen, &mut r).await;
                lifecycle::sweep(ctx, &mut findings, &detected.failed, &mut r).await;
                mark(&mut r, "prioritize");
                improve::improve(self, &findings, &seen, &order, &mut r).await;
                mark(&mut r, "improve");
                *self.next_interval.lock() = learn::learn(ctx, &seen, &mut r).await;
                mark(&mut r, "learn");
            }
        }
        r.durations_ms.insert("total".into(), t0.elapsed().as_millis() as u64);
        report::report(ctx, &mut r).await;
        r
    }
}
