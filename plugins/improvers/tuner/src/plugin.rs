//! The tuner as an `improver` plugin (contract 0.2): the host's finding,
//! tunables and trial history in, the next config to canary out.
//!
//! It acts on findings about performance (the objective is the p95 latency
//! both arms of each past trial measured) and on reliability findings (the
//! objective is the error rate, floored so it stays positive). Only
//! canary-safe tunables are searched; integer and float ranges spanning
//! more than a factor of 16 are searched on a log scale. Trials that brought
//! back a module version, or that measured no objective, are left out.

use kaizen_sdk::{
    Category, Change, Config as HostConfig, ImprovementInput, Improver, PluginInfo, PluginKind, Proposal, Setting,
    Trial, TunableType, TunableValue, Verdict,
};

use crate::{Config, Domain, Knob, Problem, Value, propose};

pub struct Tuner;

/// The metric a finding's category is about: `p95-ms` or `error-rate`.
fn objective(category: Category) -> Option<&'static str> {
    match category {
        Category::Performance => Some("p95-ms"),
        Category::Reliability => Some("error-rate"),
        _ => None,
    }
}

fn domain(ty: &TunableType) -> Domain {
    let wide = |min: f64, max: f64| max - min > 0.0 && (max - min + 1.0) / (min.max(0.0) + 1.0) > 16.0;
    match ty {
        TunableType::Integer(r) => Domain::Int { min: r.min, max: r.max, log: wide(r.min as f64, r.max as f64) },
        TunableType::Float(r) => Domain::Float { min: r.min, max: r.max, log: r.min > 0.0 && r.max / r.min > 16.0 },
        TunableType::Boolean => Domain::Bool,
        TunableType::Choice(names) => Domain::Choice(names.clone()),
    }
}

fn value(v: &TunableValue) -> Value {
    match v {
        TunableValue::Integer(x) => Value::Int(*x),
        TunableValue::Float(x) => Value::Float(*x),
        TunableValue::Boolean(x) => Value::Bool(*x),
        TunableValue::Choice(x) => Value::Choice(x.clone()),
    }
}

fn tunable_value(v: &Value) -> TunableValue {
    match v {
        Value::Int(x) => TunableValue::Integer(*x),
        Value::Float(x) => TunableValue::Float(*x),
        Value::Bool(x) => TunableValue::Boolean(*x),
        Value::Choice(x) => TunableValue::Choice(x.clone()),
    }
}

fn config(settings: &[Setting]) -> Config {
    settings.iter().map(|s| (s.name.clone(), value(&s.value))).collect()
}

/// One past trial as the tuner reads it, when it changed the config and
/// measured `metric` on both arms.
fn trial(t: &Trial, metric: &str) -> Option<crate::Trial> {
    let Change::Config(changes) = &t.change else { return None };
    let effect = t.effects.iter().find(|e| e.metric == metric)?;
    let floor = |x: f64| if metric == "error-rate" { x.max(0.0) + 1e-4 } else { x };
    let (candidate_estimate, baseline_estimate) = (floor(effect.candidate), floor(effect.baseline));
    if !(candidate_estimate > 0.0 && baseline_estimate > 0.0) {
        return None;
    }
    let baseline = config(&t.baseline_config);
    let mut candidate = baseline.clone();
    candidate.extend(config(changes));
    let verdict = match t.verdict {
        Verdict::Promoted => crate::Verdict::Promoted,
        Verdict::RolledBack => crate::Verdict::RolledBack,
        Verdict::Inconclusive => crate::Verdict::Inconclusive,
    };
    Some(crate::Trial { candidate, baseline, candidate_estimate, baseline_estimate, verdict })
}

/// The proposals for `input` (at most one).
pub fn improve(input: &ImprovementInput) -> Vec<Proposal> {
    let Some(metric) = objective(input.finding.category) else { return Vec::new() };
    let tunables: Vec<_> = input.tunables.iter().filter(|t| t.tunable.canary_safe).collect();
    if tunables.is_empty() {
        return Vec::new();
    }
    let knobs =
        tunables.iter().map(|t| Knob { name: t.tunable.name.clone(), domain: domain(&t.tunable.type_) }).collect();
    let incumbent: Config = input.tunables.iter().map(|t| (t.tunable.name.clone(), value(&t.current))).collect();
    let history = input.trials.iter().filter_map(|t| trial(t, metric)).collect();
    let problem = Problem { knobs, incumbent: incumbent.clone(), history, seed: input.seed };
    match propose(&problem) {
        Ok(p) => {
            let settings: Vec<Setting> = p
                .config
                .iter()
                .filter(|(name, v)| incumbent.get(*name) != Some(*v))
                .map(|(name, v)| Setting { name: name.clone(), value: tunable_value(v) })
                .collect();
            if settings.is_empty() {
                return Vec::new();
            }
            vec![Proposal {
                change: Change::Config(settings),
                rationale: format!("{} for {} ({}): {}", metric, input.finding.target, input.finding.kind, p.rationale),
                expected_gain_pct: p.expected_gain_pct,
            }]
        }
        Err(why) => {
            kaizen_sdk::log::info(&format!("tuner: nothing to propose for {}: {why}", input.finding.target));
            Vec::new()
        }
    }
}

impl Improver for Tuner {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "tuner",
            PluginKind::Improver,
            env!("CARGO_PKG_VERSION"),
            "Bayesian optimisation of a unit's tunables over its canary history",
        )
    }

    fn improve(input: &ImprovementInput, _config: &HostConfig) -> Vec<Proposal> {
        improve(input)
    }
}

// Exported in the component only: natively the crate is a library the
// bench links beside the batcher unit, whose own exports share these names.
#[cfg(target_arch = "wasm32")]
kaizen_sdk::export_improver!(Tuner);
