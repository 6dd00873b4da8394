//! Proving a candidate before it gets live traffic, in order, stopping at
//! the first failure: validation, synthetic cases shipped with it, replay
//! of recorded requests, shadow traffic. Every step's result is kept.
//! Replay and shadow compare how both versions end each request, class by
//! class, and tolerate units that are nondeterministic ([`outcomes`]).

pub mod outcomes;
mod replay;
mod shadow;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use self::outcomes::{About, RateTest, ctx, decoded};
use crate::invoke::Invoker;
use crate::runtime::{CallError, Plugin, class_name};
use crate::safety::Limits;
use crate::store::Db;
use crate::store::findings::FindingRecord;
pub use crate::store::improvements::ProofStep;

/// Settings of replay and shadow proving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProveConfig {
    /// Recorded requests replayed at most.
    pub replay_max: i64,
    /// Findings of these kinds are about wrong outputs: replay then accepts
    /// different outputs and only compares how requests end.
    pub output_change_kinds: Vec<String>,
    /// Findings of these kinds are about the unit's failures of any class
    /// (not its refusals of bad input): replay and shadow let a candidate end
    /// otherwise a request the serving version failed, as long as it is no
    /// worse for the caller. A finding with an `error_class` in its evidence
    /// is about that class alone.
    pub failure_kinds: Vec<String>,
    /// Times a request that ended differently on the two versions is run
    /// again on both. Units may be nondeterministic: only a difference that
    /// holds on every run fails the proof at once; the others are counted,
    /// and fail it only when the candidate's rate of a class is shown higher
    /// than the serving version's by the judge's anytime-valid test.
    pub reruns: u32,
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
            failure_kinds: vec!["low-success-rate".into(), "error-rate-spike".into(), "failure-burst".into()],
            reruns: 3,
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

async fn call(p: &Arc<Plugin>, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
    p.invoke(&ctx(), &request).await
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

/// Prove `candidate` against `current`, for `finding` when it was made for
/// one. Returns every step run; the proof failed if the last one failed, or
/// a required step was skipped.
pub async fn prove(
    db: &Db,
    invoker: &Arc<Invoker>,
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    limits: &Limits,
    cfg: &ProveConfig,
    finding: Option<&FindingRecord>,
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
    } else if candidate.id() == current.id() {
        ProofStep::new("validation", "failed", "candidate is the version already serving")
    } else {
        ProofStep::new(
            "validation",
            "passed",
            format!("component of the unit world, {} bytes, sha256 {}", candidate.size(), &candidate.id()[..12]),
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
    let kind = finding.map(|f| f.kind.as_str()).unwrap_or("");
    let compare = !cfg.output_change_kinds.iter().any(|k| k == kind);
    let (about, test) = (About::of(finding, cfg), RateTest::of(limits));
    if !push(replay::replay(db, current, candidate, cfg, test, &about, compare).await, &mut steps) {
        return steps;
    }

    // 4. Shadow traffic.
    push(shadow::shadow(db, invoker, current, candidate, cfg, test, &about).await, &mut steps);
    steps
}
