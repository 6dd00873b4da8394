//! The improvement loop: sample → detect → prioritize → take a candidate →
//! prove → deploy stepwise → judge → promote or roll back → learn → report.
//! Every action asks the safety controller first.

pub mod candidates;
pub mod learn;
pub mod prioritize;
pub mod prove;
pub mod rollout;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use self::candidates::{Candidate, CandidateQueue, GeneratorConfig};
use self::prove::{ProofStep, ProveConfig};
use crate::events::{Event, Events};
use crate::invoke::Invoker;
use crate::runtime::types::{PluginKind, Severity};
use crate::runtime::{Plugin, Runtime};
use crate::safety::{Outcome, Safety};
use crate::store::audit::AuditEvent;
use crate::store::cycles::CycleRecord;
use crate::store::findings::FindingRecord;
use crate::store::improvements::Improvement;
use crate::store::modules::ModuleRecord;
use crate::store::{self, Db, now_ms};
use crate::telemetry::Telemetry;

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
            prove: ProveConfig::default(),
            generator: None,
        }
    }
}

/// Counters of the loop's work.
#[derive(Debug, Default)]
pub struct Stats {
    pub cycles: AtomicU64,
    pub opportunities: AtomicU64,
    pub attempted: AtomicU64,
    pub deployed: AtomicU64,
    pub rolled_back: AtomicU64,
    pub failed: AtomicU64,
    pub last_cycle_at: AtomicU64,
}

/// A snapshot of the loop's counters.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopStats {
    pub cycles_completed: u64,
    pub opportunities_detected: u64,
    pub improvements_attempted: u64,
    pub improvements_deployed: u64,
    pub improvements_rolled_back: u64,
    pub improvements_failed: u64,
    pub uptime_secs: u64,
    pub last_cycle_at: Option<i64>,
    pub next_interval_secs: f64,
    pub rollouts_in_flight: usize,
    pub candidates_queued: usize,
}

/// What the loop's parts share.
pub struct Ctx {
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub invoker: Arc<Invoker>,
    pub telemetry: Arc<Telemetry>,
    pub safety: Arc<Safety>,
    pub events: Events,
    pub config: LoopConfig,
    pub stats: Stats,
    pub candidates: CandidateQueue,
    /// Detector weights learned last cycle.
    weights: Mutex<HashMap<String, f64>>,
}

impl Ctx {
    /// Write an audit event and publish it.
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let e = AuditEvent {
            id: 0,
            at: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.clone(),
        };
        if let Err(err) = store::audit::append(&self.db, &e).await {
            tracing::error!("cannot write audit event {action} on {target}: {err}");
        }
        self.event(action, target, detail);
    }

    /// Record a rollback that happened in the runtime: the slot's deployment
    /// row and history, then the audit event (`detail` adds to it).
    pub async fn record_rollback(
        &self,
        target: &str,
        rb: &crate::runtime::Rollback,
        actor: &str,
        action: &str,
        reason: &str,
        mut detail: serde_json::Value,
    ) -> store::Result<()> {
        let d = crate::store::deployments::Deployment {
            slot: target.into(),
            kind: crate::runtime::validate::world_name(rb.to.kind()).into(),
            current_sha: rb.to.sha256().into(),
            previous_sha: None,
            candidate_sha: None,
            canary_percent: 0.0,
            state: crate::store::deployments::DeployState::RolledBack,
            reason: reason.into(),
            updated_at: now_ms(),
        };
        store::deployments::record(&self.db, &d, rb.from.sha256(), Some(rb.from.sha256())).await?;
        if let Some(m) = detail.as_object_mut() {
            m.insert("reason".into(), reason.into());
            m.insert("from".into(), rb.from.version().into());
            m.insert("to".into(), rb.to.version().into());
            m.insert("to_sha256".into(), rb.to.sha256().into());
        }
        self.audit(actor, action, target, detail).await;
        Ok(())
    }

    pub fn event(&self, kind: &str, target: &str, detail: serde_json::Value) {
        self.events.publish(Event { at: now_ms(), kind: kind.into(), target: target.into(), detail });
    }
}

/// The loop.
pub struct Loop {
    ctx: Arc<Ctx>,
    started: Instant,
    wake: Notify,
    next_interval: Mutex<f64>,
    rollouts: Mutex<Vec<JoinHandle<rollout::End>>>,
    cycle_lock: tokio::sync::Mutex<()>,
}

/// One attempt in a cycle report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub target: String,
    pub finding_id: Option<i64>,
    pub candidate: Option<String>,
    pub improvement_id: Option<i64>,
    pub result: String,
    pub proof: Vec<ProofStep>,
}

/// The report of one cycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CycleReport {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub skipped: Option<String>,
    pub targets_sampled: usize,
    pub findings_total: usize,
    pub findings_new: usize,
    pub by_priority: BTreeMap<String, usize>,
    pub impact_total: f64,
    pub detector_errors: Vec<String>,
    pub attempts: Vec<Attempt>,
    pub denied: Vec<String>,
    pub durations_ms: BTreeMap<String, u64>,
    pub next_interval_secs: f64,
    pub scale: String,
    pub critical_findings: usize,
}

impl Loop {
    pub fn new(
        db: Db,
        runtime: Arc<Runtime>,
        invoker: Arc<Invoker>,
        telemetry: Arc<Telemetry>,
        safety: Arc<Safety>,
        events: Events,
        config: LoopConfig,
    ) -> Arc<Loop> {
        let interval = config.interval_secs;
        Arc::new(Loop {
            ctx: Arc::new(Ctx {
                db,
                runtime,
                invoker,
                telemetry,
                safety,
                events,
                config,
                stats: Stats::default(),
                candidates: CandidateQueue::default(),
                weights: Mutex::default(),
            }),
            started: Instant::now(),
            wake: Notify::new(),
            next_interval: Mutex::new(interval),
            rollouts: Mutex::default(),
            cycle_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Queue a new version of a unit as a candidate. It is recorded in the
    /// module table at once; the loop proves and rolls it out.
    pub async fn submit(&self, plugin: Arc<Plugin>, source: &str) -> store::Result<()> {
        record_module(&self.ctx.db, &plugin).await?;
        self.ctx
            .audit(
                source,
                "candidate",
                plugin.name(),
                serde_json::json!({"version": plugin.version(), "sha256": plugin.sha256()}),
            )
            .await;
        self.ctx.candidates.push(Candidate { plugin, source: source.into() });
        Ok(())
    }

    /// Run a cycle now (after the one in progress, if any).
    pub fn trigger(&self) {
        self.wake.notify_one();
    }

    pub fn stats(&self) -> LoopStats {
        let s = &self.ctx.stats;
        let last = s.last_cycle_at.load(Ordering::Relaxed);
        LoopStats {
            cycles_completed: s.cycles.load(Ordering::Relaxed),
            opportunities_detected: s.opportunities.load(Ordering::Relaxed),
            improvements_attempted: s.attempted.load(Ordering::Relaxed),
            improvements_deployed: s.deployed.load(Ordering::Relaxed),
            improvements_rolled_back: s.rolled_back.load(Ordering::Relaxed),
            improvements_failed: s.failed.load(Ordering::Relaxed),
            uptime_secs: self.started.elapsed().as_secs(),
            last_cycle_at: (last > 0).then_some(last as i64),
            next_interval_secs: *self.next_interval.lock(),
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

    /// Run cycles forever: at the computed interval, at once when triggered,
    /// and again at once after a cycle that found something critical.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut kind = "scheduled";
            loop {
                let report = me.run_cycle(kind).await;
                kind = if report.critical_findings > 0 && kind != "emergency" { "emergency" } else { "scheduled" };
                if kind == "emergency" {
                    continue;
                }
                let wait = Duration::from_secs_f64(*me.next_interval.lock());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = me.wake.notified() => kind = "manual",
                }
            }
        })
    }

    /// Run one cycle of `kind` (`scheduled`, `manual`, `emergency`).
    pub async fn run_cycle(&self, kind: &str) -> CycleReport {
        let _one_at_a_time = self.cycle_lock.lock().await;
        let ctx = &self.ctx;
        let t0 = Instant::now();
        let mut r = CycleReport { kind: kind.into(), started_at: now_ms(), ..Default::default() };
        let mut lap = Instant::now();
        let mut mark = |r: &mut CycleReport, phase: &str| {
            r.durations_ms.insert(phase.into(), lap.elapsed().as_millis() as u64);
            lap = Instant::now();
        };

        if let Err(denied) = ctx.safety.check_running() {
            r.skipped = Some(denied.to_string());
            for (target, why) in ctx.invoker.healer().map(|h| h.take_rollback_requests()).unwrap_or_default() {
                ctx.audit(
                    "safety",
                    "rollback-request-denied",
                    &target,
                    serde_json::json!({"reason": why, "denied": denied.to_string()}),
                )
                .await;
            }
        } else {
            // Rollbacks that recovery strategies asked for: the controller
            // allows them only while the loop may act.
            for (target, why) in ctx.invoker.healer().map(|h| h.take_rollback_requests()).unwrap_or_default() {
                match ctx.runtime.rollback(&target) {
                    Ok(rb) => {
                        let detail = serde_json::json!({"requested_by": "recovery"});
                        if let Err(e) = ctx.record_rollback(&target, &rb, "safety", "rolled-back", &why, detail).await {
                            tracing::error!("cannot record the rollback of {target}: {e}");
                        }
                    }
                    Err(e) => {
                        ctx.audit(
                            "safety",
                            "rollback-request-failed",
                            &target,
                            serde_json::json!({"reason": why, "error": e.to_string()}),
                        )
                        .await
                    }
                }
            }
            // 1. Sample.
            let now = now_ms();
            let window_ms = ctx.config.window_secs as i64 * 1000;
            let metrics = store::metrics::since(&ctx.db, now - window_ms, 10_000).await.unwrap_or_default();
            let metric_points = metrics
                .into_iter()
                .map(|m| crate::runtime::types::MetricPoint {
                    name: m.name,
                    value: m.value,
                    timestamp_ms: m.at,
                    tags: m.tags.into_iter().collect(),
                })
                .collect();
            let input = ctx.telemetry.aggregates().detection_input(
                now,
                window_ms,
                ctx.config.baseline_secs as i64 * 1000,
                metric_points,
            );
            r.targets_sampled = input.targets.len();
            let load: HashMap<String, u64> = input.targets.iter().fold(HashMap::new(), |mut m, t| {
                *m.entry(t.target.clone()).or_default() += t.current.executions;
                m
            });
            let (calls, failures): (u64, u64) = input
                .targets
                .iter()
                .map(|t| (t.current.executions, t.current.failures))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            mark(&mut r, "sample");

            // 2. Detect.
            let mut raw = Vec::new();
            let input = Arc::new(input);
            for slot in ctx.runtime.slots_of(PluginKind::Detector) {
                let det = slot.current();
                let inp = input.clone();
                let res = tokio::task::spawn_blocking(move || det.detect(&inp)).await;
                match res {
                    Ok(Ok(found)) => raw.extend(found.into_iter().map(|f| (slot.name().to_string(), f))),
                    Ok(Err(e)) => r.detector_errors.push(format!("{}: {e}", slot.name())),
                    Err(e) => r.detector_errors.push(format!("{}: {e}", slot.name())),
                }
            }
            mark(&mut r, "detect");

            // 3. Prioritize and record (deduplicated against open findings).
            let weights = ctx.weights.lock().clone();
            let mut scored: Vec<FindingRecord> = Vec::new();
            for (detector, f) in raw {
                let weight = weights.get(&detector).copied().unwrap_or(1.0);
                let target_load = load.get(&f.target).copied().unwrap_or(0) as f64;
                let impact = prioritize::impact(&f, target_load, 1.0, weight);
                let rec = FindingRecord {
                    id: 0,
                    target: f.target.clone(),
                    kind: f.kind.clone(),
                    detector,
                    severity: prioritize::severity_name(f.severity).into(),
                    confidence: f.confidence,
                    summary: f.summary.clone(),
                    evidence: f.evidence.iter().map(|e| (e.key.clone(), e.value.clone())).collect(),
                    expected_gain_pct: f.expected_gain_pct,
                    risk: prioritize::risk_name(f.risk).into(),
                    impact,
                    priority: prioritize::bucket(impact).into(),
                    status: "open".into(),
                    occurrences: 1,
                    first_seen: now,
                    last_seen: now,
                };
                match store::findings::upsert_open(&ctx.db, &rec).await {
                    Ok((id, new)) => {
                        r.findings_new += usize::from(new);
                        if new && f.severity == Severity::Critical {
                            r.critical_findings += 1;
                        }
                        ctx.event("finding", &rec.target, serde_json::json!({"id": id, "kind": rec.kind, "severity": rec.severity, "priority": rec.priority, "summary": rec.summary, "new": new}));
                        scored.push(FindingRecord { id, ..rec });
                    }
                    Err(e) => r.detector_errors.push(format!("cannot store finding: {e}")),
                }
            }
            scored.sort_by(|a, b| b.impact.total_cmp(&a.impact));
            r.findings_total = scored.len();
            r.impact_total = scored.iter().map(|f| f.impact).sum();
            for f in &scored {
                *r.by_priority.entry(f.priority.clone()).or_default() += 1;
            }
            ctx.stats.opportunities.fetch_add(r.findings_new as u64, Ordering::Relaxed);
            mark(&mut r, "prioritize");

            // 4-6. Improve: the top finding of each target, then candidates
            //      queued for targets with no finding.
            let mut order: Vec<(String, Option<FindingRecord>)> = Vec::new();
            for f in &scored {
                if !order.iter().any(|(t, _)| t == &f.target) {
                    order.push((f.target.clone(), Some(f.clone())));
                }
            }
            for slot in ctx.runtime.slots_of(PluginKind::Unit) {
                if ctx.candidates.has(slot.name()) && !order.iter().any(|(t, _)| t == slot.name()) {
                    order.push((slot.name().to_string(), None));
                }
            }
            let mut started = 0;
            for (target, finding) in order {
                let attempt =
                    self.attempt(&target, finding.as_ref(), started, load.get(&target).copied().unwrap_or(0)).await;
                if let Some(a) = attempt {
                    if a.improvement_id.is_some() {
                        started += 1;
                    }
                    if a.result.starts_with("denied") {
                        r.denied.push(format!("{target}: {}", a.result));
                    }
                    r.attempts.push(a);
                }
            }
            mark(&mut r, "improve");

            // 8. Learn.
            let learned = learn::learn(&ctx.db).await.unwrap_or_default();
            *ctx.weights.lock() = learned.weights.clone();
            let backlog = store::findings::list(&ctx.db, Some("open"), 1000).await.map(|v| v.len()).unwrap_or(0)
                + ctx.candidates.len();
            let pace = learn::Pace {
                load: calls as f64 / ctx.config.window_secs.max(1) as f64,
                trust: learned.trust,
                error_rate: if calls > 0 { failures as f64 / calls as f64 } else { 0.0 },
                backlog,
            };
            let next = learn::next_interval(
                ctx.config.interval_secs,
                ctx.config.min_interval_secs,
                ctx.config.max_interval_secs,
                &pace,
            );
            *self.next_interval.lock() = next;
            r.next_interval_secs = next;
            let limits = &ctx.safety.config().limits;
            r.scale = learn::scale_decision(backlog, limits.concurrent_rollouts, ctx.safety.rollouts_in_flight(), true)
                .into();
            mark(&mut r, "learn");
        }

        // 9. Report.
        r.finished_at = now_ms();
        r.durations_ms.insert("total".into(), t0.elapsed().as_millis() as u64);
        let report = serde_json::to_value(&r).unwrap_or_default();
        match store::cycles::insert(
            &ctx.db,
            &CycleRecord { id: 0, kind: kind.into(), started_at: r.started_at, finished_at: r.finished_at, report },
        )
        .await
        {
            Ok(id) => r.id = id,
            Err(e) => tracing::error!("cannot store cycle report: {e}"),
        }
        ctx.stats.cycles.fetch_add(1, Ordering::Relaxed);
        ctx.stats.last_cycle_at.store(r.finished_at as u64, Ordering::Relaxed);
        // A cycle "failed" when part of the loop itself broke (a detector or
        // a candidate generator erred), not when safety turned a change down.
        let errors: Vec<&str> = r
            .detector_errors
            .iter()
            .map(String::as_str)
            .chain(r.attempts.iter().map(|a| a.result.as_str()).filter(|x| x.starts_with("generator failed")))
            .collect();
        ctx.event(
            "cycle",
            "",
            serde_json::json!({"id": r.id, "kind": kind, "findings": r.findings_total, "attempts": r.attempts.len(),
                "skipped": r.skipped, "failed": !errors.is_empty(), "errors": errors}),
        );
        r
    }

    /// Try to improve `target`: take a candidate, prove it, start a rollout.
    async fn attempt(
        &self,
        target: &str,
        finding: Option<&FindingRecord>,
        started: usize,
        executions: u64,
    ) -> Option<Attempt> {
        let ctx = &self.ctx;
        let slot = ctx.runtime.slot(target).filter(|s| s.kind() == PluginKind::Unit)?;
        let mut a = Attempt {
            target: target.into(),
            finding_id: finding.map(|f| f.id),
            candidate: None,
            improvement_id: None,
            result: String::new(),
            proof: vec![],
        };
        if finding.is_some_and(|f| f.status == "addressed") {
            return None;
        }
        // Operators' candidates are acted on regardless of load; a finding
        // needs enough calls behind it.
        let needed_calls = if finding.is_some() { executions } else { u64::MAX };
        let size = 0;
        if let Err(d) = ctx.safety.may_attempt(target, started, size, needed_calls) {
            a.result = format!("denied: {d}");
            return Some(a);
        }
        let candidate = match ctx.candidates.pop(target) {
            Some(c) => c,
            None => match (finding, &ctx.config.generator) {
                (Some(f), Some(g)) => match self.generate(f, g, &slot.current()).await {
                    Ok(c) => c,
                    Err(e) => {
                        a.result = format!("generator failed: {e}");
                        ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
                        ctx.audit("loop", "generator-failed", target, serde_json::json!({"finding": f.id, "error": e}))
                            .await;
                        return Some(a);
                    }
                },
                _ => {
                    a.result = "no candidate".into();
                    return Some(a);
                }
            },
        };
        let plugin = candidate.plugin.clone();
        a.candidate = Some(format!("{} {}", plugin.version(), &plugin.sha256()[..12]));
        if let Err(d) = ctx.safety.may_attempt(target, started, plugin.size(), needed_calls) {
            a.result = format!("denied: {d}");
            ctx.candidates.push(candidate);
            return Some(a);
        }
        ctx.stats.attempted.fetch_add(1, Ordering::Relaxed);
        let current = slot.current();
        let mut imp = Improvement {
            id: 0,
            finding_id: finding.map(|f| f.id),
            target: target.into(),
            candidate_sha: plugin.sha256().into(),
            baseline_sha: Some(current.sha256().into()),
            source: candidate.source.clone(),
            state: "proving".into(),
            reason: String::new(),
            proof: serde_json::json!([]),
            verdicts: serde_json::json!([]),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        imp.id = store::improvements::insert(&ctx.db, &imp).await.ok()?;
        a.improvement_id = Some(imp.id);
        if let Some(f) = finding {
            let _ = store::findings::set_status(&ctx.db, f.id, "addressed").await;
        }

        // 5. Prove.
        let limits = ctx.safety.limits_for(target).clone();
        let steps = prove::prove(
            &ctx.db,
            &ctx.invoker,
            &current,
            &plugin,
            &limits,
            &ctx.config.prove,
            finding.map(|f| f.kind.as_str()).unwrap_or(""),
        )
        .await;
        imp.proof = serde_json::to_value(&steps).unwrap_or_default();
        a.proof = steps.clone();
        ctx.audit(
            "loop",
            "proof",
            target,
            serde_json::json!({"improvement": imp.id, "candidate_version": plugin.version(), "steps": steps}),
        )
        .await;
        if let Some(bad) = steps.iter().find(|s| s.failed()) {
            imp.state = "rejected".into();
            imp.reason = format!("{} failed: {}", bad.step, bad.detail);
            imp.updated_at = now_ms();
            let _ = store::improvements::update(&ctx.db, &imp).await;
            if let Some(f) = finding {
                let _ = store::findings::set_status(&ctx.db, f.id, "open").await;
            }
            ctx.stats.failed.fetch_add(1, Ordering::Relaxed);
            let _ = ctx.safety.record_outcome(Outcome::Rejected).await;
            a.result = format!("rejected: {}", imp.reason);
            return Some(a);
        }

        // 6-7. Deploy stepwise under the judge, in the background.
        let permit = match ctx.safety.begin_rollout(target) {
            Ok(p) => p,
            Err(d) => {
                a.result = format!("denied: {d}");
                imp.state = "proposed".into();
                imp.reason = d.to_string();
                let _ = store::improvements::update(&ctx.db, &imp).await;
                ctx.candidates.push(candidate);
                return Some(a);
            }
        };
        imp.state = "canary".into();
        let _ = store::improvements::update(&ctx.db, &imp).await;
        let handle = tokio::spawn(rollout::run(ctx.clone(), permit, imp, plugin, current));
        self.rollouts.lock().push(handle);
        a.result = "rolling out".into();
        Some(a)
    }

    async fn generate(
        &self,
        f: &FindingRecord,
        g: &GeneratorConfig,
        current: &Arc<Plugin>,
    ) -> Result<Candidate, String> {
        let scratch = self.ctx.runtime.data_dir().join("generated");
        let bytes = candidates::generate(g, f, current.module_path(), &scratch).await.map_err(|e| e.to_string())?;
        let plugin = self.ctx.runtime.load("generated.wasm", &bytes).map_err(|e| e.to_string())?;
        record_module(&self.ctx.db, &plugin).await.map_err(|e| e.to_string())?;
        Ok(Candidate { plugin, source: "generator".into() })
    }
}

/// Record a module in the `modules` table.
pub async fn record_module(db: &Db, p: &Plugin) -> store::Result<()> {
    let info = p.info();
    store::modules::put(
        db,
        &ModuleRecord {
            sha256: p.sha256().into(),
            name: info.name.clone(),
            kind: crate::runtime::validate::world_name(info.kind).into(),
            version: info.version.clone(),
            description: info.description.clone(),
            size: p.size() as i64,
            path: p.module_path().display().to_string(),
            added_at: now_ms(),
        },
    )
    .await
}
