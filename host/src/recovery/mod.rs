//! Self-healing calls: what to do when a unit call fails. Strategies are
//! recovery plugins; they are asked in the order of what has actually worked
//! for this target and error class (success rates measured from the recovery
//! log), and the first that has an opinion decides. The call path
//! (`invoke`) carries the decision out within the call's budget.

pub mod breaker;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use self::breaker::{Admit, Breaker, BreakerConfig, BreakerState, Ticket};
use crate::runtime::types::{ErrorClass, Failure, PluginKind, RecentOutcome, RecoveryAction};
use crate::runtime::{CallError, Plugin, Runtime, class_name};
use crate::store::breaker_forces;
use crate::store::recovery_log::{self, RecoveryEntry};
use crate::store::{Db, now_ms};
use crate::tasks::Tasks;

/// Settings of recovery on the call path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    pub enabled: bool,
    /// Attempts of one call at most (the first included).
    pub max_attempts: u32,
    /// Latency recovery may add to one call at most.
    pub max_added_ms: u64,
    pub breaker: BreakerConfig,
    /// Per target: the unit that answers while its circuit is open.
    pub circuit_fallbacks: HashMap<String, String>,
    /// Recent outcomes of a target shown to strategies.
    pub recent_outcomes: usize,
    /// Longest a recovery strategy may open a circuit for; a longer
    /// request is cut to this and the recovery log says so.
    pub max_open_ms: u64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: true,
            max_attempts: 4,
            max_added_ms: 10_000,
            breaker: BreakerConfig::default(),
            circuit_fallbacks: HashMap::new(),
            recent_outcomes: 50,
            max_open_ms: 300_000,
        }
    }
}

/// A strategy's decision.
#[derive(Debug, Clone)]
pub struct Decision {
    pub strategy: String,
    pub action: RecoveryAction,
    /// What the strategy was shown, the failure it decided on included:
    /// (failed, calls) since the evidence was last fresh.
    pub seen: (usize, usize),
}

/// What an operator can force on a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Force {
    Open { ms: u64 },
    Closed,
    Reset,
}

/// A short, stable text for an action, as logged.
pub fn describe_action(a: &RecoveryAction) -> String {
    match a {
        RecoveryAction::Retry(ms) => format!("retry({ms}ms)"),
        RecoveryAction::RetryReducedScope(r) => format!("retry-reduced-scope({}%, {}ms)", r.scope_pct, r.delay_ms),
        RecoveryAction::ClearCacheRetry(ms) => format!("clear-cache-retry({ms}ms)"),
        RecoveryAction::Fallback(u) => format!("fallback({u})"),
        RecoveryAction::OpenCircuit(ms) => format!("open-circuit({ms}ms)"),
        RecoveryAction::GiveUp(why) => format!("give-up({why})"),
        RecoveryAction::RequestRollback(why) => format!("request-rollback({why})"),
        RecoveryAction::Pass => "pass".into(),
    }
}

/// (target, error class, strategy), counted as (episodes, recovered).
type StatKey = (String, String, String);

#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    ok: bool,
    class: Option<ErrorClass>,
    latency_ms: f64,
}

/// Recovery's state: breakers, what worked, the recent outcomes per target,
/// and rollback requests waiting for the safety controller.
pub struct Healer {
    runtime: Arc<Runtime>,
    config: RecoveryConfig,
    /// Where an operator's forced opening is kept, and under which host
    /// (the fleet host id, empty on a lone host).
    db: Db,
    host_id: String,
    breakers: Mutex<HashMap<String, Breaker>>,
    stats: Mutex<HashMap<StatKey, (u64, u64)>>,
    /// (target, error class, fallback unit), counted as (tries, recovered).
    fallback_stats: Mutex<HashMap<StatKey, (u64, u64)>>,
    recent: Mutex<HashMap<String, VecDeque<Seen>>>,
    handles_cache: Mutex<HashMap<String, Vec<ErrorClass>>>,
    rollback_requests: Mutex<Vec<(String, String)>>,
    /// Log entries in the order they happened, to one writer task.
    log_tx: mpsc::UnboundedSender<LogMsg>,
}

enum LogMsg {
    Entry(RecoveryEntry),
    Flush(oneshot::Sender<()>),
}

/// Appends log entries in order. Supervised as `recovery-log` and started
/// again after a panic on the same queue (it outlives each run), so only the
/// entry in hand when it panicked can be lost.
async fn log_writer(db: Db, rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<LogMsg>>>) {
    let mut rx = rx.lock().await;
    while let Some(m) = rx.recv().await {
        match m {
            LogMsg::Entry(e) => {
                if let Err(err) = recovery_log::append(&db, &e).await {
                    tracing::error!("cannot write the recovery log: {err}");
                }
            }
            LogMsg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl Healer {
    /// Must be created inside a tokio runtime (the log writer runs on it).
    /// An operator's forced openings of this host's breakers that have not
    /// lapsed are restored, with their remaining time and reason.
    pub async fn new(
        runtime: Arc<Runtime>,
        db: Db,
        host_id: &str,
        config: RecoveryConfig,
        tasks: &Tasks,
    ) -> crate::store::Result<Arc<Healer>> {
        let mut stats = HashMap::new();
        for (t, c, s, n, ok) in recovery_log::all_success_counts(&db).await? {
            stats.insert((t, c, s), (n as u64, ok as u64));
        }
        let mut fallback_stats = HashMap::new();
        for (t, c, u, n, ok) in recovery_log::fallback_success_counts(&db).await? {
            fallback_stats.insert((t, c, u), (n as u64, ok as u64));
        }
        let (now, at) = (now_ms(), Instant::now());
        let mut breakers = HashMap::new();
        for f in breaker_forces::current(&db, host_id, now).await? {
            let mut b = Breaker::new(config.breaker);
            b.force_open(at, (f.until_ms - now) as u64, &f.reason);
            breakers.insert(f.target, b);
        }
        let (log_tx, rx) = mpsc::unbounded_channel();
        let (log_db, rx) = (db.clone(), Arc::new(tokio::sync::Mutex::new(rx)));
        tasks.spawn("recovery-log", move || log_writer(log_db.clone(), rx.clone()));
        Ok(Arc::new(Healer {
            runtime,
            config,
            db,
            host_id: host_id.to_string(),
            breakers: Mutex::new(breakers),
            stats: Mutex::new(stats),
            fallback_stats: Mutex::new(fallback_stats),
            recent: Mutex::default(),
            handles_cache: Mutex::default(),
            rollback_requests: Mutex::default(),
            log_tx,
        }))
    }

    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// May a call of `target` go through?
    pub fn admit(&self, target: &str) -> Admit {
        self.with_breaker(target, |b| b.admit(Instant::now()))
    }

    /// Run `f` on `target`'s breaker, creating it on first use. The lookup
    /// borrows the name: the call path allocates only for a new target.
    fn with_breaker<R>(&self, target: &str, f: impl FnOnce(&mut Breaker) -> R) -> R {
        let mut map = self.breakers.lock();
        if let Some(b) = map.get_mut(target) {
            return f(b);
        }
        f(map.entry(target.to_string()).or_insert_with(|| Breaker::new(self.config.breaker)))
    }

    /// Record the outcome of a real invocation of `target`, admitted with
    /// `ticket`: it moves the breaker only if the breaker is still in the
    /// state that admitted it; it always counts in the recent outcomes.
    pub fn observe(&self, target: &str, ticket: Ticket, result: &Result<Vec<u8>, CallError>, latency: Duration) {
        let ok = match result {
            Ok(_) => true,
            Err(e) => e.class == ErrorClass::InvalidInput,
        };
        let now = Instant::now();
        self.with_breaker(target, |b| b.record(ticket, ok, now));
        let mut recent = self.recent.lock();
        if !recent.contains_key(target) {
            recent.insert(target.to_string(), VecDeque::new());
        }
        let q = recent.get_mut(target).expect("inserted above");
        q.push_back(Seen {
            at: now,
            ok,
            class: result.as_ref().err().map(|e| e.class.clone()),
            latency_ms: latency.as_secs_f64() * 1e3,
        });
        while q.len() > self.config.recent_outcomes.max(1) {
            q.pop_front();
        }
    }

    /// Force a breaker as an operator asks, kept across restarts: an
    /// opening is stored (until when, why) before it applies, and forcing
    /// closed or reset forgets it. A store that refuses the write changes
    /// nothing.
    ///
    /// Errors: the store's, when the force cannot be kept.
    pub async fn force_kept(&self, target: &str, force: Force, reason: &str) -> crate::store::Result<()> {
        match force {
            Force::Open { ms } => {
                let now = now_ms();
                let until_ms = now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
                let f = breaker_forces::Forced { target: target.into(), until_ms, reason: reason.into() };
                breaker_forces::set(&self.db, &self.host_id, &f, now).await?;
            }
            Force::Closed | Force::Reset => breaker_forces::clear(&self.db, &self.host_id, target).await?,
        }
        self.force(target, force, reason);
        Ok(())
    }

    /// Force a breaker for now (a strategy's decision: not kept).
    pub fn force(&self, target: &str, force: Force, reason: &str) {
        self.with_breaker(target, |b| match force {
            Force::Open { ms } => b.force_open(Instant::now(), ms, reason),
            Force::Closed | Force::Reset => b.reset(Instant::now()),
        })
    }

    /// Every breaker's state.
    pub fn breakers(&self) -> Vec<(String, BreakerState)> {
        let now = Instant::now();
        let mut v: Vec<_> = self.breakers.lock().iter().map(|(k, b)| (k.clone(), b.state(now))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    async fn handles(&self, p: &Plugin) -> Vec<ErrorClass> {
        let cached = self.handles_cache.lock().get(p.id()).cloned();
        if let Some(h) = cached {
            return h;
        }
        // A strategy that cannot say what it handles is asked about nothing.
        let h = p.handles().await.unwrap_or_else(|_| vec![ErrorClass::Other("<unavailable>".into())]);
        self.handles_cache.lock().insert(p.id().to_string(), h.clone());
        h
    }

    /// Strategies that handle `class`, best measured success rate for
    /// (`target`, `class`) first (Laplace-smoothed, so an untried strategy
    /// sits at 50 %), then by name.
    pub async fn ordered_strategies(&self, target: &str, class: &ErrorClass) -> Vec<(Arc<Plugin>, f64)> {
        let cname = class_name(class).to_string();
        let mut handling = Vec::new();
        for p in self.runtime.slots_of(PluginKind::Recovery).into_iter().map(|s| s.current()) {
            let h = self.handles(&p).await;
            if h.is_empty() || h.iter().any(|c| class_name(c) == cname) {
                handling.push(p);
            }
        }
        let stats = self.stats.lock().clone();
        let mut v: Vec<(Arc<Plugin>, f64)> = handling
            .into_iter()
            .map(|p| {
                let (n, ok) =
                    stats.get(&(target.to_string(), cname.clone(), p.name().to_string())).copied().unwrap_or((0, 0));
                let rate = (ok as f64 + 1.0) / (n as f64 + 2.0);
                (p, rate)
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.name().cmp(b.0.name())));
        v
    }

    /// The fallback units `units` (as a strategy listed them) for
    /// (`target`, `class`), best measured success first — Laplace-smoothed
    /// like the strategies, so an untried unit sits at 50 % — and in the
    /// listed order among equals: (unit, success rate, tries).
    pub fn ordered_fallbacks(&self, target: &str, class: &ErrorClass, units: &[&str]) -> Vec<(String, f64, u64)> {
        let cname = class_name(class);
        let stats = self.fallback_stats.lock();
        let mut v: Vec<(String, f64, u64)> = units
            .iter()
            .map(|u| {
                let (n, ok) =
                    stats.get(&(target.to_string(), cname.to_string(), u.to_string())).copied().unwrap_or((0, 0));
                (u.to_string(), (ok as f64 + 1.0) / (n as f64 + 2.0), n)
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    /// Ask the strategies about a failure, in order; the first with an
    /// opinion decides. A strategy that traps or loops costs its own call
    /// (logged) and the next one is asked.
    ///
    /// The recent outcomes a strategy sees start after the circuit last
    /// opened: those before it are what opened it, and counting them again
    /// once it closes would reopen it on the first failure, on evidence
    /// already acted upon (resilience4j likewise resets its window on each
    /// change of state).
    pub async fn decide(&self, failure: &Failure) -> Option<Decision> {
        let now = Instant::now();
        let since = self.breakers.lock().get(&failure.target).and_then(Breaker::fresh_since);
        let recent: Vec<RecentOutcome> = self
            .recent
            .lock()
            .get(&failure.target)
            .map(|q| {
                q.iter()
                    .filter(|s| since.is_none_or(|opened| s.at > opened))
                    .map(|s| RecentOutcome {
                        age_ms: now.duration_since(s.at).as_millis() as u64,
                        ok: s.ok,
                        error_class: s.class.clone(),
                        latency_ms: s.latency_ms,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seen = (recent.iter().filter(|o| !o.ok).count() + 1, recent.len() + 1);
        let failure = Failure { recent, ..failure.clone() };
        for (p, _) in self.ordered_strategies(&failure.target, &failure.error_class).await {
            match p.decide(&failure).await {
                Ok(RecoveryAction::Pass) => continue,
                Ok(action) => return Some(Decision { strategy: p.name().to_string(), action, seen }),
                Err(e) => {
                    tracing::warn!(strategy = p.name(), "recovery strategy failed: {e}");
                    self.log(&failure, p.name(), "decide", &format!("strategy-error: {e}"), 0.0);
                }
            }
        }
        None
    }

    /// Append an episode to the recovery log (written in the background)
    /// and count it for the strategy ordering.
    pub fn log(&self, failure: &Failure, strategy: &str, action: &str, outcome: &str, added_ms: f64) {
        let key = (failure.target.clone(), class_name(&failure.error_class).to_string(), strategy.to_string());
        {
            let mut s = self.stats.lock();
            let e = s.entry(key).or_default();
            e.0 += 1;
            e.1 += u64::from(outcome == "recovered");
        }
        if let Some(unit) = recovery_log::fallback_unit(action) {
            let key = (failure.target.clone(), class_name(&failure.error_class).to_string(), unit.to_string());
            let mut s = self.fallback_stats.lock();
            let e = s.entry(key).or_default();
            e.0 += 1;
            e.1 += u64::from(outcome == "recovered");
        }
        let entry = RecoveryEntry {
            id: 0,
            target: failure.target.clone(),
            version: failure.version.clone(),
            error_class: class_name(&failure.error_class).to_string(),
            strategy: strategy.into(),
            action: action.into(),
            attempt: failure.attempt as i64,
            outcome: outcome.into(),
            added_ms,
            at: now_ms(),
        };
        let _ = self.log_tx.send(LogMsg::Entry(entry));
    }

    /// Wait until every logged episode is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.log_tx.send(LogMsg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// A strategy asked for a rollback: queued for the safety controller.
    pub fn request_rollback(&self, target: &str, reason: &str) {
        self.rollback_requests.lock().push((target.to_string(), reason.to_string()));
    }

    /// Rollback requests not yet handled (taken by the loop).
    pub fn take_rollback_requests(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.rollback_requests.lock())
    }

    /// Measured success rates: (target, class, strategy, episodes, recovered).
    pub fn success_rates(&self) -> Vec<(String, String, String, u64, u64)> {
        let mut v: Vec<_> =
            self.stats.lock().iter().map(|((t, c, s), (n, ok))| (t.clone(), c.clone(), s.clone(), *n, *ok)).collect();
        v.sort();
        v
    }
}
