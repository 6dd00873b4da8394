//! Candidates the loop makes itself: when a finding's target has no queued
//! candidate, each improver plugin (in name order) is asked for proposals
//! about it, and the first proposal that passes the host's checks becomes
//! the candidate, proven, canaried and judged like any other.
//!
//! An improver only proposes. Its input is what the host knows of the
//! target (the finding, the tunables with their current values, the module
//! versions the slot keeps, the past trials with what the judge measured on
//! both arms); its output is checked here — a config change by
//! [`tune::candidate`] (declared, canary-safe, allowed, within bounds), a
//! module version by the slot's own history — and every call that fails
//! and every proposal refused is audited with its reason. An improver runs
//! in the same sandbox, under the same limits, as every plugin: one that
//! loops or traps costs its own call and nothing else.

use std::sync::Arc;

use super::candidates::Candidate;
use super::ctx::Ctx;
use super::tune;
use crate::events::Event;
use crate::runtime::types::{
    Category, Change, Effect, Evidence, Finding, ImprovementInput, IntegerRange, ModuleVersion, PluginKind, Proposal,
    Risk, Setting, Severity, Trial, TunableState, TunableType, TunableValue, Verdict,
};
use crate::runtime::{Plugin, Slot};
use crate::store::findings::FindingRecord;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::now_ms;

/// Proposals read from one improver call at most.
const MAX_PROPOSALS: usize = 8;

/// Past trials an improver is shown at most (the newest).
const MAX_TRIALS: i64 = 200;

/// An improvement's `source` when improver `name` proposed it.
fn source_of(name: &str) -> String {
    format!("improver {name}")
}

/// Whether an improvement with this `source` was proposed by an improver.
pub(super) fn by_improver(source: &str) -> bool {
    source.starts_with("improver ")
}

/// Whether the loop made this candidate for the finding it addressed (an
/// improver or the generator). An operator's candidate is the operator's
/// change even when a cycle took it up while a finding was open: the
/// contract's `trial.finding-kind` is empty for it, so that no improver
/// takes it for a fix of that finding.
pub(super) fn made_for_finding(source: &str) -> bool {
    by_improver(source) || source == "generator"
}

/// Whether an improvement ended `aborted` because an operator aborted it
/// (`kaizen abort`, the API), as its reason says — not because its slot
/// changed, a restart interrupted it or a recovery strategy stopped it.
fn aborted_by_operator(reason: &str) -> bool {
    reason.starts_with("aborted by api")
}

/// The first acceptable proposal of any improver for finding `f` on `slot`,
/// whose version `serving` the improvers are shown (the proof's baseline).
pub async fn propose(ctx: &Arc<Ctx>, f: &FindingRecord, slot: &Slot, serving: &Arc<Plugin>) -> Option<Candidate> {
    let improvers = ctx.runtime.slots_of(PluginKind::Improver);
    if improvers.is_empty() {
        return None;
    }
    let (input, rolled_back, streak) = input(ctx, f, slot, serving).await;
    if streak >= ctx.config.max_improver_trials {
        if ctx.improvers_spent.lock().insert(serving.id().to_string()) {
            let event = Event::ImproversSpent { finding: f.id, version: serving.version().to_string(), trials: streak };
            ctx.audit.record_event("loop", "improvers-spent", &f.target, event).await;
        }
        return None;
    }
    for improver in improvers.iter().map(|s| s.current()) {
        let proposals = match improver.improve(&input).await {
            Ok(p) => p,
            Err(e) => {
                let event =
                    Event::ImproverFailed { improver: improver.name().into(), finding: f.id, error: e.to_string() };
                ctx.audit.record_event(improver.name(), "improver-failed", &f.target, event).await;
                continue;
            }
        };
        for p in proposals.into_iter().take(MAX_PROPOSALS) {
            let checked =
                check(ctx, slot, serving, &p).and_then(|c| match rolled_back.iter().find(|(id, _)| id == c.id()) {
                    Some((_, what)) => Err(format!("{} {what} on `{}` before", c.version(), f.target)),
                    None => Ok(c),
                });
            let accepted = checked.as_ref().is_ok_and(|c| !ctx.candidates.contains(&f.target, c.id()));
            let reason = match &checked {
                Ok(c) if accepted => format!("candidate {}", c.version()),
                Ok(c) => format!("{} is already queued", c.version()),
                Err(why) => why.clone(),
            };
            let action = if accepted { "proposal" } else { "proposal-refused" };
            let told = !accepted && {
                let key = format!("{}\n{}\n{}\n{reason}", improver.name(), serving.id(), describe(&p.change));
                let mut told = ctx.refusals_told.lock();
                // Bounded: forgetting them all costs one more row each.
                if told.len() >= 10_000 {
                    told.clear();
                }
                !told.insert(key)
            };
            let event = Event::Proposal {
                improver: improver.name().into(),
                finding: f.id,
                change: describe(&p.change),
                accepted,
                rationale: p.rationale.clone(),
                expected_gain_pct: p.expected_gain_pct,
                reason,
            };
            if !told {
                ctx.audit.record_event(improver.name(), action, &f.target, event).await;
            }
            if let (true, Ok(plugin)) = (accepted, checked) {
                return Some(Candidate { plugin, source: source_of(improver.name()) });
            }
        }
    }
    None
}

/// A proposal in words, for the audit trail: `chunk_size=64, cache_entries=512`
/// or `module 3f2a…`.
fn describe(change: &Change) -> String {
    match change {
        Change::Config(settings) => settings
            .iter()
            .map(|s| format!("{}={}", s.name, crate::runtime::validate::value_text(&s.value)))
            .collect::<Vec<_>>()
            .join(", "),
        Change::Module(id) => format!("module {}", &id[..id.len().min(16)]),
    }
}

/// The candidate a proposal stands for, or why it is refused.
fn check(ctx: &Ctx, slot: &Slot, serving: &Arc<Plugin>, p: &Proposal) -> Result<Arc<Plugin>, String> {
    if !p.expected_gain_pct.is_finite() || p.rationale.len() > 4096 {
        return Err("a proposal needs a finite expected gain and a rationale of at most 4096 bytes".into());
    }
    match &p.change {
        Change::Config(settings) => {
            tune::candidate(&ctx.runtime, serving, settings, ctx.config.tuning.get(slot.name()))
                .map_err(|e| e.to_string())
        }
        Change::Module(id) if id == serving.id() => Err(format!("{} already serves", serving.version())),
        Change::Module(id) => slot
            .history()
            .into_iter()
            .find(|p| p.id() == id)
            .ok_or_else(|| format!("module version {id:?} is not one `{}` keeps", slot.name())),
    }
}

/// What the host tells an improver about finding `f` on `slot`, the ids
/// of the candidates rolled back on it (never tried again), and how many
/// improvers' trials in a row, the newest, ended without a promotion
/// against the version that serves.
async fn input(
    ctx: &Ctx,
    f: &FindingRecord,
    slot: &Slot,
    serving: &Plugin,
) -> (ImprovementInput, Vec<(String, &'static str)>, u32) {
    let policy = ctx.config.tuning.get(slot.name());
    let tunables = tune::current_values(serving)
        .into_iter()
        .filter(|(t, _)| policy.and_then(|p| p.allow.as_ref()).is_none_or(|allow| allow.contains(&t.name)))
        .map(|(mut tunable, current)| {
            // The operator's tighter bounds are the improver's bounds.
            if let (TunableType::Integer(r), Some([min, max])) =
                (&tunable.type_, policy.and_then(|p| p.bounds.get(&tunable.name)))
            {
                tunable.type_ = TunableType::Integer(IntegerRange {
                    min: r.min.max(min.ceil() as i64),
                    max: r.max.min(max.floor() as i64),
                });
            }
            if let (TunableType::Float(r), Some([min, max])) =
                (&tunable.type_, policy.and_then(|p| p.bounds.get(&tunable.name)))
            {
                tunable.type_ = TunableType::Float(crate::runtime::types::FloatRange {
                    min: r.min.max(*min),
                    max: r.max.min(*max),
                });
            }
            TunableState { tunable, current }
        })
        .collect();
    let mut modules = vec![module(serving, "serving")];
    if let Some(c) = &slot.serving().canary {
        modules.push(module(&c.plugin, "canary"));
    }
    modules.extend(slot.history().iter().rev().map(|p| module(p, "previous")));
    let past = crate::store::improvements::list(&ctx.db, Some(slot.name()), MAX_TRIALS).await.unwrap_or_default();
    let mut kinds: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    for id in past.iter().filter_map(|i| i.finding_id) {
        if let std::collections::hash_map::Entry::Vacant(e) = kinds.entry(id)
            && let Ok(Some(found)) = crate::store::findings::get(&ctx.db, id).await
        {
            e.insert(found.kind);
        }
    }
    // A trial whose baseline had no config version ran the module's own
    // values: the improver needs them to know what the baseline arm was.
    let module_settings: Vec<Setting> =
        tune::module_values(serving).into_iter().map(|(t, v)| Setting { name: t.name, value: v }).collect();
    let mut trials: Vec<Trial> = past
        .iter()
        .filter_map(|i| {
            let kind = (i.finding_id.filter(|_| made_for_finding(&i.source)))
                .and_then(|id| kinds.get(&id))
                .cloned()
                .unwrap_or_default();
            trial(ctx, i, kind, &module_settings)
        })
        .collect();
    trials.reverse();
    let streak = past
        .iter()
        .take_while(|i| {
            by_improver(&i.source)
                && i.baseline_sha.as_deref() == Some(serving.id())
                && matches!(
                    i.state,
                    ImprovementState::RolledBack
                        | ImprovementState::Inconclusive
                        | ImprovementState::Rejected
                        | ImprovementState::Failed
                )
        })
        .count() as u32;
    // Never proposed again: what the judge rolled back, what its proof
    // rejected, and what an operator turned down — an abort, or a
    // rollback of the slot (the loop's own rollbacks are in its history
    // too). Each with what happened to it, for the refusal's words.
    let mut rolled_back: Vec<(String, &'static str)> = past
        .iter()
        .filter_map(|i| {
            let what = match i.state {
                ImprovementState::RolledBack => "was rolled back",
                ImprovementState::Rejected => "was rejected by its proof",
                ImprovementState::Aborted if aborted_by_operator(&i.reason) => "was aborted by an operator",
                _ => return None,
            };
            Some((i.candidate_sha.clone(), what))
        })
        .collect();
    let history = crate::store::deployments::history(&ctx.db, slot.name(), MAX_TRIALS).await.unwrap_or_default();
    rolled_back.extend(
        history
            .into_iter()
            .filter(|h| h.state == crate::store::deployments::DeployState::RolledBack)
            .filter_map(|h| h.from_sha)
            .map(|sha| (sha, "was rolled back")),
    );
    let input = ImprovementInput {
        now_ms: now_ms(),
        finding: finding(f),
        tunables,
        modules,
        trials,
        seed: f.id as u64 ^ (now_ms() as u64).rotate_left(17),
    };
    (input, rolled_back, streak)
}

fn module(p: &Plugin, state: &str) -> ModuleVersion {
    ModuleVersion {
        sha256: p.id().into(),
        version: p.version().into(),
        state: state.into(),
        changed_at_ms: 0,
        reason: String::new(),
    }
}

/// A recorded finding in the contract's shape.
pub fn finding(f: &FindingRecord) -> Finding {
    let severity = match f.severity.as_str() {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "low" => Severity::Low,
        _ => Severity::Medium,
    };
    let risk = match f.risk.as_str() {
        "high" => Risk::High,
        "medium" => Risk::Medium,
        _ => Risk::Low,
    };
    let category = match f.category.as_str() {
        "security" => Category::Security,
        "performance" => Category::Performance,
        "quality" => Category::Quality,
        "coverage" => Category::Coverage,
        _ => Category::Reliability,
    };
    Finding {
        target: f.target.clone(),
        kind: f.kind.clone(),
        severity,
        confidence: f.confidence,
        summary: f.summary.clone(),
        evidence: f.evidence.iter().map(|(k, v)| Evidence { key: k.clone(), value: v.clone() }).collect(),
        expected_gain_pct: f.expected_gain_pct,
        risk,
        category,
    }
}

/// A settled improvement as a trial: what it changed, against what, how it
/// ended and what the judge last measured on both arms. Improvements that
/// never reached a canary (rejected at proof) are trials without effects.
fn trial(ctx: &Ctx, i: &Improvement, finding_kind: String, module_settings: &[Setting]) -> Option<Trial> {
    let verdict = match i.state {
        ImprovementState::Promoted => Verdict::Promoted,
        ImprovementState::RolledBack | ImprovementState::Rejected => Verdict::RolledBack,
        ImprovementState::Inconclusive | ImprovementState::Aborted | ImprovementState::Failed => Verdict::Inconclusive,
        _ => return None,
    };
    let settings_of = |id: &str| -> Option<Vec<Setting>> {
        let (_, config) = id.split_once('+')?;
        let version = ctx.runtime.stored_config(config).ok()?;
        Some(version.settings.iter().map(|(k, v)| Setting { name: k.clone(), value: text_value(v) }).collect())
    };
    let same_module =
        |a: &str, b: &str| a.split('+').next() == b.split('+').next() && (a.contains('+') || b.contains('+'));
    let baseline = i.baseline_sha.clone().unwrap_or_default();
    let change = if same_module(&i.candidate_sha, &baseline) {
        Change::Config(settings_of(&i.candidate_sha).unwrap_or_default())
    } else {
        Change::Module(i.candidate_sha.clone())
    };
    Some(Trial {
        change,
        baseline_config: settings_of(&baseline).unwrap_or_else(|| module_settings.to_vec()),
        verdict,
        effects: effects(&i.verdicts),
        finding_kind,
        ended_at_ms: i.updated_at,
        reason: i.reason.clone(),
    })
}

/// A setting's text as the most specific value it reads as: the improver
/// knows the declared types and reads them back by name.
fn text_value(text: &str) -> TunableValue {
    if let Ok(v) = text.parse::<i64>() {
        TunableValue::Integer(v)
    } else if let Ok(v) = text.parse::<f64>() {
        TunableValue::Float(v)
    } else if let Ok(v) = text.parse::<bool>() {
        TunableValue::Boolean(v)
    } else {
        TunableValue::Choice(text.into())
    }
}

/// A rollout's verdicts as effects: `p95-ms` from the p95 objective,
/// `error-rate` from the sum of the outcome-class rates, each from the
/// last verdict that measured it (a bound reached), else from the last
/// verdict — a bake whose holdback had too few calls to compare measures
/// nothing, and the canary step before it did. Read from the stored JSON
/// field by field: a bound the judge had not reached is stored as `null`
/// (infinite), which is read back as such.
pub(super) fn effects(verdicts: &serde_json::Value) -> Vec<Effect> {
    let Some(all) = verdicts.as_array().filter(|v| !v.is_empty()) else { return Vec::new() };
    let objectives = |v: &serde_json::Value| v["judgement"]["objectives"].as_array().cloned().unwrap_or_default();
    // A latency ratio's lower bound of 0 is no bound (a ratio is never
    // below it): the judge stores it so before it has one.
    let measured = |o: &serde_json::Value| {
        o["high"].is_number() || o["low"].as_f64().is_some_and(|low| o["kind"] != "latency" || low > 0.0)
    };
    // The objectives `pick` takes from the last verdict where one of them
    // was measured, else from the last verdict.
    let latest = |pick: &dyn Fn(&serde_json::Value) -> bool| -> Vec<serde_json::Value> {
        let of = |v: &serde_json::Value| objectives(v).into_iter().filter(|o| pick(o)).collect::<Vec<_>>();
        all.iter().rev().map(of).find(|os| os.iter().any(measured)).unwrap_or_else(|| of(all.last().unwrap()))
    };
    let num = |v: &serde_json::Value, key: &str, missing: f64| v[key].as_f64().unwrap_or(missing);
    let mut out = Vec::new();
    if let Some(o) = latest(&|o| o["name"] == "p95").first() {
        let (candidate, baseline) = (num(o, "candidate", f64::NAN), num(o, "baseline", f64::NAN));
        if candidate.is_finite() && baseline.is_finite() {
            out.push(Effect {
                metric: "p95-ms".into(),
                candidate,
                baseline,
                change: num(o, "estimate", candidate / baseline) - 1.0,
                lower: num(o, "low", 0.0) - 1.0,
                upper: num(o, "high", f64::INFINITY) - 1.0,
            });
        }
    }
    let outcomes = latest(&|o| o["kind"] == "outcome");
    if !outcomes.is_empty() {
        let sum = |key: &str, missing: f64| outcomes.iter().map(|o| num(o, key, missing)).sum::<f64>();
        let (candidate, baseline) = (sum("candidate", 0.0), sum("baseline", 0.0));
        out.push(Effect {
            metric: "error-rate".into(),
            candidate,
            baseline,
            change: candidate - baseline,
            lower: sum("low", f64::NEG_INFINITY),
            upper: sum("high", f64::INFINITY),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict as a rollout stores it: a bound the judge had not reached
    /// is `null`. The p95 and the outcome rates still become effects.
    #[test]
    fn effects_are_read_from_stored_verdicts_with_unreached_bounds() {
        let verdicts = serde_json::json!([{"phase": "canary", "percent": 10.0, "judgement": {"objectives": [
            {"name": "shift", "kind": "latency", "baseline": 2.0, "candidate": 2.9, "estimate": 1.23, "low": 0.0, "high": null},
            {"name": "p95", "kind": "latency", "baseline": 2.336, "candidate": 3.414, "estimate": 1.4616, "low": 1.03, "high": null},
            {"name": "outcome:internal", "kind": "outcome", "baseline": 0.01, "candidate": 0.03, "estimate": 0.02, "low": 0.0, "high": 0.05}
        ]}}]);
        let e = effects(&verdicts);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!((e[0].metric.as_str(), e[0].candidate, e[0].baseline), ("p95-ms", 3.414, 2.336));
        assert!((e[0].change - 0.4616).abs() < 1e-9 && e[0].upper.is_infinite());
        assert_eq!((e[1].metric.as_str(), e[1].candidate, e[1].baseline), ("error-rate", 0.03, 0.01));
        assert!(effects(&serde_json::json!([])).is_empty());
    }

    /// A bake that compared nothing (no bound reached) does not hide the
    /// canary step's measured p95.
    #[test]
    fn effects_come_from_the_last_verdict_that_measured_them() {
        let verdicts = serde_json::json!([
            {"phase": "canary", "percent": 50.0, "judgement": {"objectives": [
                {"name": "p95", "kind": "latency", "baseline": 8.0, "candidate": 0.8, "estimate": 0.1, "low": 0.05, "high": 1.04}
            ]}},
            {"phase": "bake", "percent": 95.0, "judgement": {"objectives": [
                {"name": "p95", "kind": "latency", "baseline": 7.0, "candidate": 0.75, "estimate": 0.107, "low": null, "high": null}
            ]}}
        ]);
        let e = effects(&verdicts);
        assert_eq!((e[0].candidate, e[0].baseline), (0.8, 8.0), "{e:?}");
        assert!((e[0].upper - 0.04).abs() < 1e-9 && (e[0].lower + 0.95).abs() < 1e-9, "{e:?}");
        // Nor does one whose lower bound is the trivial 0 (as the judge
        // stores a latency ratio it has not bounded yet): its raw p95s,
        // 53 % apart on a handful of holdback calls, are no measurement.
        let mut verdicts = verdicts;
        verdicts[1]["judgement"]["objectives"][0] = serde_json::json!({"name": "p95", "kind": "latency", "baseline": 14.53, "candidate": 22.21, "estimate": 1.529, "low": 0.0, "high": null});
        let e = effects(&verdicts);
        assert_eq!((e[0].candidate, e[0].baseline), (0.8, 8.0), "{e:?}");
    }
}
