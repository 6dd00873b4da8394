//! Proving a candidate before it gets live traffic, in order, stopping at
//! the first failure: validation, synthetic cases shipped with it, replay
//! of recorded requests, shadow traffic. Every step's result is kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::invoke::{Invoker, Mirror};
use crate::runtime::types::{CallContext, ErrorClass};
use crate::runtime::{CallError, Plugin, class_name};
use crate::safety::Limits;
pub use crate::store::improvements::ProofStep;
use crate::store::{Db, executions};

/// Settings of replay and shadow proving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProveConfig {
    /// Recorded requests replayed at most.
    pub replay_max: i64,
    /// Findings of these kinds are about wrong outputs: replay then accepts
    /// different outputs and only checks that nothing new fails.
    pub output_change_kinds: Vec<String>,
    /// Share of live calls mirrored to the candidate, percent.
    pub shadow_percent: f64,
    /// Comparisons wanted before the shadow step passes.
    pub shadow_min_calls: u64,
    /// Longest shadow period.
    pub shadow_secs: u64,
    /// Mirrored calls running at once at most (more are not mirrored).
    pub shadow_concurrency: u64,
}

impl Default for ProveConfig {
    fn default() -> Self {
        ProveConfig {
            replay_max: 200,
            output_change_kinds: vec!["wrong-output".into()],
            shadow_percent: 10.0,
            shadow_min_calls: 20,
            shadow_secs: 10,
            shadow_concurrency: 2,
        }
    }
}

/// A synthetic case shipped in a candidate's `kaizen:cases` section.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub input: serde_json::Value,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Output(serde_json::Value),
    Error(String),
}

/// A `kaizen:cases` section that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("kaizen:cases is not valid: {0}")]
pub struct BadCases(#[from] serde_json::Error);

/// The cases a component ships, if any (the first `kaizen:cases` custom
/// section, in the component or a module nested in it).
pub fn shipped_cases(bytes: &[u8]) -> Result<Option<Vec<Case>>, BadCases> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        if let wasmparser::Payload::CustomSection(reader) = payload
            && reader.name() == "kaizen:cases"
        {
            return Ok(Some(serde_json::from_slice(reader.data())?));
        }
    }
    Ok(None)
}

fn ctx() -> CallContext {
    CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 }
}

async fn call(p: &Arc<Plugin>, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || p.invoke(&ctx(), &request))
        .await
        .unwrap_or_else(|e| Err(CallError::new(ErrorClass::Internal, e.to_string())))
}

fn same_output(a: &[u8], b: &[u8]) -> bool {
    a == b || decoded(a).is_some_and(|x| decoded(b).is_some_and(|y| x == y))
}

fn decoded(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(bytes).ok().or_else(|| rmp_serde::from_slice(bytes).ok())
}

/// Is `r` a failure of the unit (not the caller's bad input)?
fn is_failure(r: &Result<Vec<u8>, CallError>) -> bool {
    matches!(r, Err(e) if e.class != ErrorClass::InvalidInput)
}

fn synthetic(candidate_bytes: &[u8]) -> Result<Option<Vec<Case>>, ProofStep> {
    shipped_cases(candidate_bytes).map_err(|e| ProofStep::new("synthetic", "failed", e.to_string()))
}

async fn run_cases(candidate: &Arc<Plugin>, cases: Vec<Case>) -> ProofStep {
    let n = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        let got = call(candidate, case.input.to_string().into_bytes()).await;
        let ok = match (&case.expect, &got) {
            (Expect::Output(want), Ok(out)) => decoded(out).as_ref() == Some(want),
            (Expect::Error(class), Err(e)) => class_name(&e.class) == class,
            _ => false,
        };
        if !ok {
            let got = match got {
                Ok(out) => String::from_utf8_lossy(&out).into_owned(),
                Err(e) => e.to_string(),
            };
            return ProofStep::new(
                "synthetic",
                "failed",
                format!("case {i} ({}) expected {:?}, got {got}", case.input, case.expect),
            );
        }
    }
    ProofStep::new("synthetic", "passed", format!("{n} shipped case(s) passed"))
}

async fn replay(
    db: &Db,
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    cfg: &ProveConfig,
    compare_outputs: bool,
) -> ProofStep {
    let recorded = match executions::replayable(db, candidate.name(), cfg.replay_max).await {
        Ok(r) => r,
        Err(e) => return ProofStep::new("replay", "failed", format!("cannot read recorded requests: {e}")),
    };
    let mut seen = HashSet::new();
    let (mut compared, mut fixed) = (0, 0);
    for r in recorded {
        let Some(req) = r.execution.request else { continue };
        if !seen.insert(req.clone()) {
            continue;
        }
        let (now, next) = (call(current, req.clone()).await, call(candidate, req.clone()).await);
        compared += 1;
        let shown = String::from_utf8_lossy(&req).chars().take(120).collect::<String>();
        match (&now, &next) {
            (_, n) if is_failure(n) && !is_failure(&now) => {
                let e = n.as_ref().unwrap_err();
                return ProofStep::new(
                    "replay",
                    "failed",
                    format!("candidate fails where {} succeeded: request {shown}: {e}", current.version()),
                );
            }
            (Ok(a), Ok(b)) if compare_outputs && !same_output(a, b) => {
                return ProofStep::new(
                    "replay",
                    "failed",
                    format!(
                        "output differs on request {shown}: {} vs {}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    ),
                );
            }
            (n, c) if is_failure(n) && !is_failure(c) => fixed += 1,
            _ => {}
        }
    }
    if compared == 0 {
        return ProofStep::new("replay", "skipped", "no recorded requests to replay");
    }
    ProofStep::new(
        "replay",
        "passed",
        format!("{compared} recorded request(s) replayed; {fixed} that failed on {} now succeed", current.version()),
    )
}

/// Mirrors live calls to a candidate on tokio's blocking pool and tallies
/// the comparison; never answers a caller, never slows one down.
struct Shadow {
    candidate: Arc<Plugin>,
    handle: tokio::runtime::Handle,
    percent: f64,
    concurrency: u64,
    offered: AtomicU64,
    running: Arc<AtomicU64>,
    compared: Arc<AtomicU64>,
    regressions: Arc<AtomicU64>,
    first_regression: Arc<parking_lot::Mutex<Option<String>>>,
}

impl Mirror for Shadow {
    fn offer(&self, request: &[u8], live: &Result<Vec<u8>, CallError>) {
        let n = self.offered.fetch_add(1, Ordering::Relaxed);
        let every = (100.0 / self.percent.clamp(0.01, 100.0)).round() as u64;
        if !n.is_multiple_of(every.max(1)) || self.running.load(Ordering::Relaxed) >= self.concurrency {
            return;
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let (cand, req, live_failed) = (self.candidate.clone(), request.to_vec(), is_failure(live));
        let (running, compared, regressions, first) =
            (self.running.clone(), self.compared.clone(), self.regressions.clone(), self.first_regression.clone());
        self.handle.spawn_blocking(move || {
            let got = cand.invoke(&ctx(), &req);
            if is_failure(&got) && !live_failed {
                regressions.fetch_add(1, Ordering::Relaxed);
                first.lock().get_or_insert_with(|| format!("{}", got.unwrap_err()));
            }
            compared.fetch_add(1, Ordering::Relaxed);
            running.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn shadow(invoker: &Arc<Invoker>, candidate: &Arc<Plugin>, cfg: &ProveConfig) -> ProofStep {
    let s = Arc::new(Shadow {
        candidate: candidate.clone(),
        handle: tokio::runtime::Handle::current(),
        percent: cfg.shadow_percent,
        concurrency: cfg.shadow_concurrency.max(1),
        offered: AtomicU64::new(0),
        running: Arc::new(AtomicU64::new(0)),
        compared: Arc::new(AtomicU64::new(0)),
        regressions: Arc::new(AtomicU64::new(0)),
        first_regression: Arc::default(),
    });
    invoker.set_mirror(candidate.name(), Some(s.clone()));
    let until = Instant::now() + Duration::from_secs(cfg.shadow_secs);
    while Instant::now() < until
        && s.compared.load(Ordering::Relaxed) < cfg.shadow_min_calls
        && s.regressions.load(Ordering::Relaxed) == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    invoker.set_mirror(candidate.name(), None);
    let (compared, regressions) = (s.compared.load(Ordering::Relaxed), s.regressions.load(Ordering::Relaxed));
    if regressions > 0 {
        let first = s.first_regression.lock().clone().unwrap_or_default();
        return ProofStep::new(
            "shadow",
            "failed",
            format!(
                "{regressions} of {compared} mirrored calls failed where the live version succeeded; first: {first}"
            ),
        );
    }
    if compared == 0 {
        return ProofStep::new("shadow", "skipped", format!("no live traffic within {} s", cfg.shadow_secs));
    }
    ProofStep::new("shadow", "passed", format!("{compared} mirrored call(s), none failed where live succeeded"))
}

/// Prove `candidate` against `current`. Returns every step run; the proof
/// failed if the last one failed, or a required step was skipped.
pub async fn prove(
    db: &Db,
    invoker: &Arc<Invoker>,
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    limits: &Limits,
    cfg: &ProveConfig,
    finding_kind: &str,
) -> Vec<ProofStep> {
    let mut steps = Vec::new();
    let required = |s: &str| limits.required_proof.iter().any(|r| r == s);
    let push = |step: ProofStep, steps: &mut Vec<ProofStep>| -> bool {
        let stop = step.failed() || (step.result == "skipped" && required(&step.step));
        let mut step = step;
        if step.result == "skipped" && required(&step.step) {
            step.result = "failed".into();
            step.detail = format!("required step skipped: {}", step.detail);
        }
        steps.push(step);
        !stop
    };

    // 1. Validation: loading already checked the component; the loop checks
    //    it fits the slot and the change-size limit.
    let v = if candidate.kind() != current.kind() || candidate.name() != current.name() {
        ProofStep::new(
            "validation",
            "failed",
            format!("{} {} cannot replace {}", candidate.name(), candidate.version(), current.name()),
        )
    } else if candidate.size() > limits.max_change_bytes {
        ProofStep::new(
            "validation",
            "failed",
            format!("{} bytes exceeds the {}-byte change limit", candidate.size(), limits.max_change_bytes),
        )
    } else if candidate.sha256() == current.sha256() {
        ProofStep::new("validation", "failed", "candidate is the version already serving")
    } else {
        ProofStep::new(
            "validation",
            "passed",
            format!("component of the unit world, {} bytes, sha256 {}", candidate.size(), &candidate.sha256()[..12]),
        )
    };
    if !push(v, &mut steps) {
        return steps;
    }

    // 2. Synthetic cases shipped with the candidate.
    let s = match candidate
        .bytes()
        .map_err(|e| ProofStep::new("synthetic", "failed", format!("cannot read the module: {e}")))
        .and_then(|b| synthetic(&b))
    {
        Err(step) => step,
        Ok(None) => ProofStep::new("synthetic", "skipped", "candidate ships no kaizen:cases"),
        Ok(Some(cases)) => run_cases(candidate, cases).await,
    };
    if !push(s, &mut steps) {
        return steps;
    }

    // 3. Replay of recorded requests against both versions.
    let compare = !cfg.output_change_kinds.iter().any(|k| k == finding_kind);
    if !push(replay(db, current, candidate, cfg, compare).await, &mut steps) {
        return steps;
    }

    // 4. Shadow traffic.
    push(shadow(invoker, candidate, cfg).await, &mut steps);
    steps
}
