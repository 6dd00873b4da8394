//! The call path: route through the slot, call the unit, record the
//! execution, and tell whoever listens (the loop's rollout watch, shadow
//! comparisons) what happened. Listeners are generic hooks, so nothing here
//! knows the loop exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::recovery::breaker::Admit;
use crate::recovery::{Force, Healer, describe_action};
use crate::runtime::types::{CallContext, ErrorClass, Failure, RecoveryAction};
use crate::runtime::{CallError, Plugin, Runtime, class_name};
use crate::store::executions::{Attempts, Outcome};
use crate::store::now_ms;
use crate::telemetry::{Measured, Telemetry};

/// What a listener learns about one call: one record per caller's call,
/// with the outcome the caller got, however many attempts it took.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub slot: String,
    pub sha256: String,
    pub version: String,
    pub outcome: Outcome,
    pub error_class: Option<String>,
    pub latency_ms: f64,
    /// When the call started (and its version was chosen), milliseconds
    /// since the Unix epoch: a call belongs to the period it was routed in.
    pub started_at: i64,
    /// Attempts made for the call, the first included.
    pub attempts: u32,
    /// The call failed at first and recovery made it answer.
    pub recovered: bool,
    /// The call was served by a rollout's matched control, a copy of the
    /// version `sha256` names ([`crate::runtime::Slot::route`]).
    pub control: bool,
}

impl CallRecord {
    /// The call's outcome class as the judge compares them: `None` for a
    /// call that answered, else its error class (`other` when it has none).
    pub fn class(&self) -> Option<String> {
        match self.outcome {
            Outcome::Ok => None,
            _ => Some(self.error_class.clone().unwrap_or_else(|| "other".into())),
        }
    }
}

/// Something that wants to see every call of a slot.
pub trait CallListener: Send + Sync {
    fn on_call(&self, record: &CallRecord);
}

/// Something that wants a copy of live requests to try on another version
/// (shadow traffic). It must not block: it is called on the call path after
/// the caller has been answered.
pub trait Mirror: Send + Sync {
    /// Offered the request and what the live version answered.
    fn offer(&self, request: &[u8], live: &Result<Vec<u8>, CallError>);
}

/// The result of a call, with the version that gave it.
#[derive(Debug)]
pub struct Answer {
    pub output: Vec<u8>,
    pub plugin: Arc<Plugin>,
    pub latency: Duration,
}

/// One attempt of a call on `plugin`, recorded by nobody: the call it
/// belongs to is recorded once, when it ends.
async fn attempt(
    plugin: &Plugin,
    context: &CallContext,
    request: &[u8],
    within: Option<Duration>,
) -> Result<Vec<u8>, CallError> {
    plugin.invoke_within(context, request, within).await.map_err(|e| e.of_version(plugin.version()))
}

/// A fallback's answer, and the version of the fallback unit that gave it
/// (none when that unit could not be found).
type FallbackAnswer = (Result<Vec<u8>, CallError>, Option<Arc<Plugin>>);

/// How a healed call went.
struct Healed {
    /// What the routed version last answered.
    own: Result<Vec<u8>, CallError>,
    /// What answered the caller instead (a fallback) and its version; `None`
    /// when the routed version's own answer stands.
    answer: Option<FallbackAnswer>,
    /// Attempts made, the first included.
    attempts: u32,
}

/// Classify a unit call's result for telemetry.
pub fn outcome_of(result: &Result<Vec<u8>, CallError>) -> (Outcome, Option<String>, Option<String>) {
    match result {
        Ok(_) => (Outcome::Ok, None, None),
        Err(e) if e.class == ErrorClass::InvalidInput => {
            (Outcome::Rejected, Some("invalid-input".into()), Some(e.message.clone()))
        }
        Err(e) => (Outcome::Error, Some(class_name(&e.class).to_string()), Some(e.to_string())),
    }
}

/// The host's unit call path.
pub struct Invoker {
    runtime: Arc<Runtime>,
    telemetry: Arc<Telemetry>,
    healer: Option<Arc<Healer>>,
    listeners: RwLock<HashMap<String, Vec<Arc<dyn CallListener>>>>,
    mirrors: RwLock<HashMap<String, Arc<dyn Mirror>>>,
}

impl Invoker {
    /// A call path without recovery: failures go straight to the caller.
    pub fn new(runtime: Arc<Runtime>, telemetry: Arc<Telemetry>) -> Arc<Invoker> {
        Arc::new(Invoker { runtime, telemetry, healer: None, listeners: RwLock::default(), mirrors: RwLock::default() })
    }

    /// A call path whose failed calls are healed by recovery strategies.
    pub fn with_healer(runtime: Arc<Runtime>, telemetry: Arc<Telemetry>, healer: Arc<Healer>) -> Arc<Invoker> {
        Arc::new(Invoker {
            runtime,
            telemetry,
            healer: Some(healer),
            listeners: RwLock::default(),
            mirrors: RwLock::default(),
        })
    }

    pub fn healer(&self) -> Option<&Arc<Healer>> {
        self.healer.as_ref()
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Listen to every call of `slot` until [`Invoker::unlisten`].
    pub fn listen(&self, slot: &str, listener: Arc<dyn CallListener>) {
        self.listeners.write().entry(slot.to_string()).or_default().push(listener);
    }

    /// Stop every listener of `slot` that is `listener`.
    pub fn unlisten(&self, slot: &str, listener: &Arc<dyn CallListener>) {
        if let Some(v) = self.listeners.write().get_mut(slot) {
            v.retain(|l| !Arc::ptr_eq(l, listener));
        }
    }

    /// Mirror live requests of `slot` to `mirror` (one mirror per slot).
    pub fn set_mirror(&self, slot: &str, mirror: Option<Arc<dyn Mirror>>) {
        let mut m = self.mirrors.write();
        match mirror {
            Some(x) => m.insert(slot.to_string(), x),
            None => m.remove(slot),
        };
    }

    /// Call unit `name` once, recording the execution.
    pub async fn call_once(
        &self,
        name: &str,
        context: &CallContext,
        request: &[u8],
    ) -> (Result<Vec<u8>, CallError>, Option<Arc<Plugin>>, Duration) {
        self.call_once_within(name, context, request, None).await
    }

    /// [`Invoker::call_once`] with at most `within` of wall-clock time.
    pub async fn call_once_within(
        &self,
        name: &str,
        context: &CallContext,
        request: &[u8],
        within: Option<Duration>,
    ) -> (Result<Vec<u8>, CallError>, Option<Arc<Plugin>>, Duration) {
        let started_at = now_ms();
        let t = Instant::now();
        let slot = match self.runtime.unit_slot(name) {
            Ok(s) => s,
            Err(err) => return (Err(err), None, t.elapsed()),
        };
        let plugin = slot.route();
        let result = attempt(&plugin, context, request, within).await;
        let latency = t.elapsed();
        self.record(name, &plugin, started_at, latency, &result, &result, request, Attempts::ONCE);
        (result, Some(plugin), latency)
    }

    /// Record a finished call, once however many attempts it took:
    /// telemetry, listeners, mirror. `result` is what the caller got;
    /// `own` what the routed version itself last answered (the same, unless
    /// a fallback answered), which is what a mirror compares against.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        name: &str,
        plugin: &Plugin,
        started_at: i64,
        latency: Duration,
        result: &Result<Vec<u8>, CallError>,
        own: &Result<Vec<u8>, CallError>,
        request: &[u8],
        attempts: Attempts,
    ) {
        let (outcome, class, message) = outcome_of(result);
        let latency_ms = latency.as_secs_f64() * 1e3;
        let error_class = class.as_deref();
        let message = message.as_deref();
        let measured = Measured { started_at, latency, outcome, error_class, message, request, attempts };
        // The mirror is read before the call is recorded: a call mirrored to
        // a shadow is then recorded after the shadow began, so its row lies
        // after the row mark the shadow looks its sample id up from.
        let mirror = self.mirrors.read().get(name).cloned();
        self.telemetry.record(name, plugin.version(), measured);
        let listeners = self.listeners.read().get(name).cloned();
        if let Some(ls) = listeners {
            let rec = CallRecord {
                slot: name.to_string(),
                sha256: plugin.id().to_string(),
                version: plugin.version().to_string(),
                outcome,
                error_class: class,
                latency_ms,
                started_at,
                attempts: attempts.attempts,
                recovered: attempts.recovered,
                control: plugin.is_control(),
            };
            for l in ls {
                l.on_call(&rec);
            }
        }
        if let Some(m) = mirror {
            m.offer(request, own);
        }
    }

    /// Call unit `name`, healing a failure with the recovery strategies when
    /// recovery is on. The guest runs on the awaiting task's worker.
    pub async fn call(&self, name: &str, context: &CallContext, request: &[u8]) -> Result<Answer, CallError> {
        match &self.healer {
            Some(h) if h.config().enabled => self.call_healing(h, name, context, request).await,
            _ => {
                let (result, plugin, latency) = self.call_once(name, context, request).await;
                let output = result?;
                Ok(Answer { output, plugin: plugin.expect("a successful call has a plugin"), latency })
            }
        }
    }

    /// The healing call path: circuit breaker first, then the call, then
    /// strategies until the call succeeds or its budget (attempts, added
    /// latency, the caller's deadline) is spent. Every action is logged
    /// with its outcome.
    ///
    /// The call is routed once: its retries run on the version it was routed
    /// to, so the call, its attempts and its outcome belong to one version.
    /// It is recorded once, when it ends, with the outcome its caller got,
    /// the time its caller waited and the attempts it took; the breaker and
    /// the strategies' recent outcomes count it once too, by what the
    /// routed version last answered.
    async fn call_healing(
        &self,
        h: &Healer,
        name: &str,
        context: &CallContext,
        request: &[u8],
    ) -> Result<Answer, CallError> {
        let started_at = now_ms();
        let started = Instant::now();
        let deadline = Duration::from_millis(context.deadline_ms.max(1));
        let remaining = |started: Instant| deadline.saturating_sub(started.elapsed());
        // A unit that is not hosted is answered before the breaker: it
        // gets no breaker, so calls to names that serve nothing cannot
        // grow the breakers' list.
        let slot = self.runtime.unit_slot(name)?;
        let ticket = match h.admit(name) {
            Admit::Yes(ticket) => ticket,
            Admit::No(open_for) => {
                // Counted on the version serving, apart from its calls: no
                // version was called, so no listener (the judge) hears of it.
                self.telemetry.refused(name, slot.current().version(), started_at);
                if let Some(fb) = h.config().circuit_fallbacks.get(name) {
                    let (r, p, latency) = self.call_once_within(fb, context, request, Some(remaining(started))).await;
                    return r.map(|output| Answer { output, plugin: p.expect("answered"), latency });
                }
                return Err(CallError::new(
                    ErrorClass::CircuitOpen,
                    format!("circuit of `{name}` is open for {} ms more; the call was not made", open_for.as_millis()),
                ));
            }
        };
        let plugin = slot.route();
        let healed = self.heal(h, name, &plugin, context, request, started).await;
        let latency = started.elapsed();
        h.observe(name, ticket, &healed.own, latency);
        let Healed { own, answer, attempts } = healed;
        let attempts = |answered: bool| Attempts { attempts, recovered: attempts > 1 && answered };
        match answer {
            None => {
                self.record(name, &plugin, started_at, latency, &own, &own, request, attempts(own.is_ok()));
                own.map(|output| Answer { output, plugin, latency })
            }
            Some((result, by)) => {
                self.record(name, &plugin, started_at, latency, &result, &own, request, attempts(result.is_ok()));
                match (result, by) {
                    (Ok(output), Some(p)) => Ok(Answer { output, plugin: p, latency }),
                    (Ok(_), None) => unreachable!("a fallback that answered has a version"),
                    (Err(e), _) => Err(e),
                }
            }
        }
    }

    /// Attempt the call on `plugin` and heal its failures while the
    /// strategies and the budget allow.
    async fn heal(
        &self,
        h: &Healer,
        name: &str,
        plugin: &Arc<Plugin>,
        context: &CallContext,
        request: &[u8],
        started: Instant,
    ) -> Healed {
        let deadline = Duration::from_millis(context.deadline_ms.max(1));
        let remaining = |started: Instant| deadline.saturating_sub(started.elapsed());
        let cfg = h.config();
        let max_added = Duration::from_millis(cfg.max_added_ms);
        let mut ctx = *context;
        let mut added = Duration::ZERO;
        let mut attempts = 0u32;
        let mut episode: Option<(Failure, String, String, Instant)> = None;
        loop {
            attempts += 1;
            let own = attempt(plugin, &ctx, request, Some(remaining(started))).await;
            let ok = match &own {
                Ok(_) => true,
                Err(e) => e.class == ErrorClass::InvalidInput,
            };
            if let Some((f, strategy, action, since)) = episode.take() {
                let outcome = if ok { "recovered" } else { "failed" };
                h.log(&f, &strategy, &action, outcome, since.elapsed().as_secs_f64() * 1e3);
            }
            let ended = |own| Healed { own, answer: None, attempts };
            let err = match &own {
                Err(e) if !ok => e.clone(),
                _ => return ended(own),
            };
            if ctx.attempt >= cfg.max_attempts {
                return ended(own);
            }
            let failure = Failure {
                target: name.to_string(),
                version: plugin.version().to_string(),
                error_class: err.class.clone(),
                message: err.message.clone(),
                attempt: ctx.attempt,
                elapsed_ms: started.elapsed().as_millis() as u64,
                remaining_ms: remaining(started).as_millis() as u64,
                recent: vec![],
            };
            let Some(d) = h.decide(&failure).await else { return ended(own) };
            let action = describe_action(&d.action);
            let since = Instant::now();
            let delay = match &d.action {
                RecoveryAction::Retry(ms) | RecoveryAction::ClearCacheRetry(ms) => Some(Duration::from_millis(*ms)),
                RecoveryAction::RetryReducedScope(r) => Some(Duration::from_millis(r.delay_ms)),
                _ => None,
            };
            if let Some(delay) = delay {
                // The retry must fit the added-latency budget and leave time
                // for the call itself before the caller's deadline.
                if added + delay > max_added || delay >= remaining(started) {
                    h.log(&failure, &d.strategy, &action, "budget-exhausted", 0.0);
                    return ended(own);
                }
                match &d.action {
                    RecoveryAction::ClearCacheRetry(_) => {
                        plugin.clear_warm();
                        if let Some(slot) = self.runtime.slot(name) {
                            slot.current().clear_warm();
                        }
                    }
                    RecoveryAction::RetryReducedScope(r) => ctx.scope_pct = Some(r.scope_pct.clamp(1, 99)),
                    _ => {}
                }
                tokio::time::sleep(delay).await;
                added += delay;
                ctx.attempt += 1;
                episode = Some((failure, d.strategy, action, since));
                continue;
            }
            // The caller's deadline is spent (the last attempt used it up):
            // the log says the budget, not the strategy, ended the episode.
            if remaining(started).is_zero() {
                h.log(&failure, &d.strategy, &action, "budget-exhausted", 0.0);
                return ended(own);
            }
            match d.action {
                RecoveryAction::Fallback(units) => {
                    // A strategy may name several units: they are tried in
                    // the order of their record for this target and class,
                    // each an attempt of this call (not a call of the
                    // fallback unit's own), until one answers.
                    let listed: Vec<&str> =
                        units.split(',').map(str::trim).filter(|u| !u.is_empty() && *u != name).collect();
                    let order = h.ordered_fallbacks(name, &failure.error_class, &listed);
                    let ranked = |k: usize| {
                        if order.len() < 2 {
                            return String::new();
                        }
                        let record: Vec<String> =
                            order.iter().map(|(u, rate, n)| format!("{u} {:.0} % of {n}", rate * 100.0)).collect();
                        format!(" {} of {} by record ({})", k + 1, order.len(), record.join(", "))
                    };
                    let mut last = None;
                    let mut tries = 0;
                    for (k, (unit, _, _)) in order.iter().enumerate() {
                        let action = format!("fallback({unit}){}", ranked(k));
                        if remaining(started).is_zero() {
                            h.log(&failure, &d.strategy, &action, "budget-exhausted", 0.0);
                            break;
                        }
                        let since = Instant::now();
                        let fb_ctx = CallContext {
                            attempt: 1,
                            scope_pct: None,
                            deadline_ms: remaining(started).as_millis() as u64,
                        };
                        let (r, p) = match self.runtime.unit_slot(unit) {
                            Ok(slot) => {
                                let p = slot.route();
                                (attempt(&p, &fb_ctx, request, Some(remaining(started))).await, Some(p))
                            }
                            Err(e) => (Err(e), None),
                        };
                        tries += 1;
                        let outcome = if r.is_ok() { "recovered" } else { "failed" };
                        h.log(&failure, &d.strategy, &action, outcome, since.elapsed().as_secs_f64() * 1e3);
                        let r = r.map_err(|e| {
                            let err = CallError::new(e.class, format!("fallback `{unit}` failed too: {}", e.message));
                            match &p {
                                Some(p) => err.of_version(p.version()),
                                None => err,
                            }
                        });
                        let answered = r.is_ok();
                        last = Some((r, p));
                        if answered {
                            break;
                        }
                    }
                    let Some(answer) = last else { return ended(own) };
                    return Healed { own, answer: Some(answer), attempts: attempts + tries };
                }
                RecoveryAction::OpenCircuit(ms) => {
                    let max = cfg.max_open_ms;
                    let (ms, action) = if ms > max {
                        (max, format!("{action}, capped at {max}ms by recovery.max_open_ms"))
                    } else {
                        (ms, action)
                    };
                    let (failed, calls) = d.seen;
                    let why = format!(
                        "opened by strategy {} for {} s after a {} failure: {failed} of the last {calls} calls failed",
                        d.strategy,
                        ms as f64 / 1000.0,
                        class_name(&failure.error_class)
                    );
                    h.force(name, Force::Open { ms }, &why);
                    h.log(&failure, &d.strategy, &action, "circuit-opened", 0.0);
                }
                RecoveryAction::GiveUp(_) => h.log(&failure, &d.strategy, &action, "gave-up", 0.0),
                RecoveryAction::RequestRollback(why) => {
                    h.request_rollback(name, &why);
                    h.log(&failure, &d.strategy, &action, "rollback-requested", 0.0);
                }
                _ => {}
            }
            return ended(own);
        }
    }

    /// Call unit `name` from async code (an HTTP invoke): the guest runs on
    /// this task's worker, yielding every epoch slice, never on the
    /// blocking pool.
    pub async fn invoke(&self, name: &str, request: Vec<u8>, deadline: Option<Duration>) -> Result<Answer, CallError> {
        let deadline_ms = deadline.unwrap_or(self.runtime.config().limits.deadline).as_millis() as u64;
        let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms };
        self.call(name, &ctx, &request).await
    }
}
