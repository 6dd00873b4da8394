//! The fix library: when a finding recurs on a target, propose what fixed
//! that kind of finding on that target before — the module version or the
//! config a trial promoted after a finding of the same kind, and that no
//! later trial rolled back from — with the evidence of how well it worked
//! (the judge's measured effect, how many times it was promoted for that
//! kind). It proposes nothing new: only what the target's own history
//! shows worked — the newest such fix, so that two fixes that replaced each
//! other are never proposed in turn.

use kaizen_sdk::{
    Change, Config, Effect, ImprovementInput, Improver, PluginInfo, PluginKind, Proposal, Trial, Verdict,
};

pub struct FixLibrary;

/// A past fix for the input's finding kind, newest first: the trials that
/// promoted a change after a finding of that kind, without a later trial
/// of the same change ending rolled back.
pub fn known_fixes(input: &ImprovementInput) -> Vec<&Trial> {
    let kind = &input.finding.kind;
    let mut fixes: Vec<&Trial> = Vec::new();
    for (i, t) in input.trials.iter().enumerate().rev() {
        if &t.finding_kind != kind || t.verdict != Verdict::Promoted {
            continue;
        }
        let undone =
            input.trials[i + 1..].iter().any(|later| later.change == t.change && later.verdict == Verdict::RolledBack);
        if !undone && !fixes.iter().any(|f| f.change == t.change) {
            fixes.push(t);
        }
    }
    fixes
}

/// What the judge measured, in words: `p95-ms -23.1 % [-30.2, -15.9]`.
fn evidence(effects: &[Effect]) -> String {
    let words: Vec<String> = effects
        .iter()
        .map(|e| format!("{} {:+.1} % [{:+.1}, {:+.1}]", e.metric, e.change * 100.0, e.lower * 100.0, e.upper * 100.0))
        .collect();
    if words.is_empty() { "no canary measurement kept".into() } else { words.join(", ") }
}

/// Whether `change` is what serves already.
fn serving(input: &ImprovementInput, change: &Change) -> bool {
    match change {
        Change::Module(id) => input.modules.iter().any(|m| &m.sha256 == id && m.state == "serving"),
        Change::Config(settings) => {
            settings.iter().all(|s| input.tunables.iter().any(|t| t.tunable.name == s.name && t.current == s.value))
        }
    }
}

/// The proposal for `input`: the newest known fix, unless it serves
/// already (then the finding recurred in spite of it, and an older fix,
/// superseded by it, is no answer either).
pub fn improve(input: &ImprovementInput) -> Vec<Proposal> {
    known_fixes(input)
        .into_iter()
        .take(1)
        .filter(|t| !serving(input, &t.change))
        .map(|t| {
            let times = input
                .trials
                .iter()
                .filter(|o| o.change == t.change && o.finding_kind == t.finding_kind && o.verdict == Verdict::Promoted)
                .count();
            let gain = t
                .effects
                .iter()
                .find(|e| e.metric == "p95-ms" || e.metric == "error-rate")
                .map_or(0.0, |e| (-e.change * 100.0).max(0.0));
            Proposal {
                change: t.change.clone(),
                rationale: format!(
                    "{} recurred on {}: this fixed it before ({} time(s); {})",
                    input.finding.kind,
                    input.finding.target,
                    times,
                    evidence(&t.effects)
                ),
                expected_gain_pct: gain,
            }
        })
        .collect()
}

impl Improver for FixLibrary {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "fix-library",
            PluginKind::Improver,
            env!("CARGO_PKG_VERSION"),
            "Proposes what fixed a recurring finding on its target before",
        )
    }

    fn improve(input: &ImprovementInput, _config: &Config) -> Vec<Proposal> {
        improve(input)
    }
}

kaizen_sdk::export_improver!(FixLibrary);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::{Category, Finding, ModuleVersion, Risk, Setting, Severity, TunableValue};

    fn input(trials: Vec<Trial>) -> ImprovementInput {
        ImprovementInput {
            now_ms: 0,
            finding: Finding {
                target: "batcher".into(),
                kind: "latency-over-budget".into(),
                severity: Severity::Medium,
                confidence: 1.0,
                summary: String::new(),
                evidence: vec![],
                expected_gain_pct: 10.0,
                risk: Risk::Low,
                category: Category::Performance,
            },
            tunables: vec![],
            modules: vec![ModuleVersion {
                sha256: "serving".into(),
                version: "1.0.0".into(),
                state: "serving".into(),
                changed_at_ms: 0,
                reason: String::new(),
            }],
            trials,
            seed: 1,
        }
    }

    fn trial(change: Change, kind: &str, verdict: Verdict) -> Trial {
        Trial {
            change,
            baseline_config: vec![],
            verdict,
            effects: vec![Effect {
                metric: "p95-ms".into(),
                candidate: 0.8,
                baseline: 1.0,
                change: -0.2,
                lower: -0.3,
                upper: -0.1,
            }],
            finding_kind: kind.into(),
            ended_at_ms: 0,
            reason: String::new(),
        }
    }

    fn config(v: i64) -> Change {
        Change::Config(vec![Setting { name: "chunk_size".into(), value: TunableValue::Integer(v) }])
    }

    #[test]
    fn re_proposes_what_fixed_the_same_kind_before_with_its_evidence() {
        let trials = vec![
            trial(config(64), "latency-over-budget", Verdict::Promoted),
            trial(config(2), "latency-over-budget", Verdict::RolledBack),
            trial(Change::Module("other".into()), "low-success-rate", Verdict::Promoted),
        ];
        let out = improve(&input(trials));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].change, config(64));
        assert!(out[0].rationale.contains("p95-ms -20.0 % [-30.0, -10.0]"), "{}", out[0].rationale);
        assert!((out[0].expected_gain_pct - 20.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_newest_fix_is_proposed_never_one_it_superseded() {
        let trials = vec![
            trial(config(64), "latency-over-budget", Verdict::Promoted),
            trial(config(128), "latency-over-budget", Verdict::Promoted),
        ];
        let out = improve(&input(trials));
        assert_eq!(out.iter().map(|p| p.change.clone()).collect::<Vec<_>>(), vec![config(128)]);
    }

    #[test]
    fn a_fix_rolled_back_since_or_serving_already_is_not_proposed() {
        let undone = vec![
            trial(config(64), "latency-over-budget", Verdict::Promoted),
            trial(config(64), "latency-over-budget", Verdict::RolledBack),
        ];
        assert!(improve(&input(undone)).is_empty());
        let serving = vec![trial(Change::Module("serving".into()), "latency-over-budget", Verdict::Promoted)];
        assert!(improve(&input(serving)).is_empty());
        assert!(improve(&input(vec![])).is_empty(), "no history, no proposal");
    }
}
