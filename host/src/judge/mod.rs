//! The statistical judge: candidate against baseline, from calls routed side
//! by side in the same period. Pure statistics, no I/O.
//!
//! The default method is **sequential** ([`sequential`]): anytime-valid
//! confidence sequences for each objective — latency quantiles, the rate of
//! every outcome class, and the split of calls between the arms (sample
//! ratio mismatch) — so the judge may look after every batch of calls, stop
//! as soon as the evidence suffices, and is never worn down by looking again
//! or by waiting through a pause. The previous fixed-level tests stay
//! available as `method = "fixed"` ([`fixed`]) for side-by-side trials.

pub mod duel;
pub mod fixed;
#[cfg(test)]
mod properties;
pub mod sequence;
pub mod sequential;
pub mod sketch;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::sequence::{increase_bounds, increase_shown, rate_bounds};
pub use self::sketch::Sketch;

/// How the judge tests.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Anytime-valid confidence sequences (the default).
    #[default]
    Sequential,
    /// Mann-Whitney / two-proportion / Poisson tests at a fixed level per
    /// look (the judge before sequential testing; kept for comparison).
    Fixed,
}

/// Settings of the judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeConfig {
    pub method: Method,
    /// Slowdown of the candidate's calls (the median ratio of candidate to
    /// baseline latency) it must be shown to stay under before it passes:
    /// 0.10 = 10 %. Tail quantiles without their own threshold use it too.
    pub threshold: f64,
    /// Slowdown a failure must show besides significance: a candidate is
    /// failed on latency only when a slowdown is shown at level alpha and
    /// its estimate is at least this. Smaller slowdowns are never held
    /// against a candidate (two builds of the same code differ by a few
    /// percent on a busy machine). Less than `threshold`; default half of it.
    pub tolerance: Option<f64>,
    /// Slowdown in milliseconds a failure must show besides `tolerance`
    /// (at the baseline's median for the shift, at its quantile for a
    /// tail): under ~50 µs, which instance slot and cache a call lands in
    /// matters more than the code, and a version given a small share of
    /// the calls runs that much colder. Not applied against a matched
    /// control (`matched_control_below_ms`), which runs as cold.
    pub min_shift_ms: f64,
    /// The tail quantiles judged besides the shift of the whole
    /// distribution (the shift is the p50 objective: the median ratio).
    /// `0.95` guards p95: a slowdown of twice the tolerance shown in the
    /// tail fails the candidate, and a pass waits until the tail is shown
    /// under twice the threshold at level √alpha — or, once each arm has
    /// had 1 500 calls, until no slowdown of it is shown at level √alpha
    /// and the step's p95 ratio is under twice the threshold. `{ p = 0.99,
    /// threshold = 0.3 }` holds p99 to its own threshold at level alpha,
    /// like the shift (the tolerance is scaled alike).
    pub quantiles: Vec<Quantile>,
    /// Probability of failing a candidate no worse than its baseline, for
    /// the whole rollout, and of passing a step whose candidate breaks an
    /// objective's limit (sequential; √alpha for a guarded tail, see
    /// `quantiles`); each test's level (fixed).
    pub alpha: f64,
    /// Increase of an outcome class's rate, in percentage points, that a
    /// candidate must be shown to stay under before it passes.
    pub error_points: f64,
    /// Increase of an outcome class's rate, in percentage points, that a
    /// failure must show besides significance (its estimate). Less than
    /// `error_points`.
    pub error_tolerance_points: f64,
    /// No pass before each arm has this many calls.
    pub min_samples: usize,
    /// Candidate calls a step may use: past this without a verdict the step
    /// is inconclusive (sequential); with no evidence of harm it passes
    /// (fixed).
    pub max_samples: usize,
    /// Judge a rollout against a matched control when the serving version's
    /// median call over the last minute is under this many milliseconds
    /// (0: never; a large value: always). A matched control is a second,
    /// separately loaded copy of the version the candidate is compared with,
    /// given the candidate's share. A version serving a small share runs
    /// slower per call than the one serving the rest, whatever its code — a
    /// few to 60 µs per call, as the host's per-module state goes cold
    /// between its calls: on a sub-millisecond unit, enough to fail an
    /// identical candidate. With a control both judged arms run equally
    /// seldom, and `min_shift_ms` is not applied. The price: the candidate
    /// is compared with as many calls as it has rather than with the rest,
    /// so a verdict takes more of its calls (a heavy tail may run out of
    /// step). Slower units, where those microseconds are noise, are judged
    /// against the serving version's own calls.
    pub matched_control_below_ms: f64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            method: Method::Sequential,
            threshold: 0.10,
            tolerance: None,
            min_shift_ms: 0.05,
            quantiles: vec![Quantile::P(0.95)],
            alpha: 0.01,
            error_points: 2.0,
            error_tolerance_points: 1.0,
            min_samples: 50,
            max_samples: 100_000,
            matched_control_below_ms: 1.0,
        }
    }
}

/// A latency quantile the judge holds a candidate to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantile {
    /// The quantile's level in (0, 1): a guard, at twice the judge's
    /// threshold and tolerance, passed at level √alpha (or, after 1 500
    /// calls of each arm, on no slowdown shown).
    P(f64),
    /// The level with its own threshold (a fraction: 0.2 = 20 %).
    With { p: f64, threshold: f64 },
}

impl Quantile {
    pub fn p(&self) -> f64 {
        match *self {
            Quantile::P(p) | Quantile::With { p, .. } => p,
        }
    }

    /// (threshold, tolerance) for this quantile: its own threshold, or twice
    /// the judge's, with the tolerance scaled in proportion.
    pub fn limits(&self, cfg: &JudgeConfig) -> (f64, f64) {
        match *self {
            Quantile::P(_) => (2.0 * cfg.threshold, 2.0 * cfg.tolerance()),
            Quantile::With { threshold, .. } => (threshold, threshold * cfg.tolerance() / cfg.threshold),
        }
    }

    /// The level at which this quantile must be shown under its threshold
    /// before a pass: a guard's at √alpha (0.1 for the default 0.01), whose
    /// bound at alpha takes thousands of calls on a heavy tail; one with a
    /// threshold at alpha.
    pub fn pass_alpha(&self, cfg: &JudgeConfig) -> f64 {
        match self {
            Quantile::P(_) => cfg.alpha.sqrt(),
            Quantile::With { .. } => cfg.alpha,
        }
    }
}

impl JudgeConfig {
    /// The slowdown a failure must show: `tolerance`, or half the
    /// threshold.
    pub fn tolerance(&self) -> f64 {
        self.tolerance.unwrap_or(self.threshold / 2.0)
    }
}

/// Name of the outcome of a call that answered.
pub const OK: &str = "ok";

/// Calls of one arm (candidate or baseline) in the analysis period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arm {
    /// Latency of each call, milliseconds (for the fixed method's rank test).
    pub latencies_ms: Vec<f64>,
    /// The same latencies, bucketed for order statistics at every look.
    pub sketch: Sketch,
    /// Calls per outcome class other than [`OK`] (`invalid-input`,
    /// `dependency`, `timeout`, `trap`, …).
    pub outcomes: BTreeMap<String, u64>,
    /// Calls that failed for the unit's own reasons (every class but
    /// `invalid-input`): the fixed method's error count.
    pub errors: u64,
    /// Share of traffic routed to this arm, 0..1.
    pub share: f64,
}

impl Arm {
    pub fn new(share: f64) -> Arm {
        Arm { share, ..Default::default() }
    }

    /// Record one call: its latency and its outcome class ([`OK`] when it
    /// answered).
    pub fn record(&mut self, latency_ms: f64, class: &str) {
        self.latencies_ms.push(latency_ms);
        self.sketch.record(latency_ms);
        if class != OK {
            *self.outcomes.entry(class.to_string()).or_default() += 1;
            self.errors += u64::from(class != "invalid-input");
        }
    }

    pub fn calls(&self) -> usize {
        self.latencies_ms.len()
    }
}

/// Outcome classes the improvement is meant to move calls between, judged
/// as one: a fix for a class of failures may refuse those requests as
/// `invalid-input` instead, and that is the fix, not a regression. Calls
/// ending in any member are counted under `label`, so a candidate that
/// refuses more than the failures it removed still shows a rise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub members: Vec<String>,
    pub label: String,
}

impl Pool {
    /// The pool for a finding about failures of `class` (`None`: about
    /// every failure class): the finding's failures and refusals.
    pub fn for_failures(class: Option<&str>) -> Option<Pool> {
        match class {
            Some("invalid-input") => None,
            Some(c) => {
                Some(Pool { members: vec![c.into(), "invalid-input".into()], label: format!("{c}+invalid-input") })
            }
            None => Some(Pool { members: vec![], label: "failed+invalid-input".into() }),
        }
    }

    fn label_of<'a>(&'a self, class: &'a str) -> &'a str {
        // No members: every class but an answer.
        if self.members.is_empty() || self.members.iter().any(|m| m == class) { &self.label } else { class }
    }
}

/// Everything one step has seen: both arms' calls, and the call-by-call
/// comparison of the candidate with the baseline calls of the same moment.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub candidate: Arm,
    pub baseline: Arm,
    pub duel: duel::Duel,
    pub pool: Option<Pool>,
}

impl Comparison {
    /// A step giving the candidate `share` (0..1) of the calls, judged by
    /// `cfg`'s objectives.
    pub fn new(share: f64, cfg: &JudgeConfig) -> Comparison {
        let shift = [1.0 + cfg.threshold, 1.0 + cfg.tolerance()];
        let tails: Vec<(f64, Vec<f64>)> = cfg
            .quantiles
            .iter()
            .map(|q| {
                let (t, tol) = q.limits(cfg);
                (q.p(), vec![1.0 + t, 1.0 + tol])
            })
            .collect();
        Comparison {
            candidate: Arm::new(share),
            baseline: Arm::new(1.0 - share),
            duel: duel::Duel::new(share, &shift, &tails),
            pool: None,
        }
    }

    /// The same, judging the classes of `pool` as one.
    pub fn pooled(mut self, pool: Option<Pool>) -> Comparison {
        self.pool = pool;
        self
    }

    /// One call, in the order calls end: which arm, its latency, and its
    /// outcome class ([`OK`] when it answered).
    pub fn record(&mut self, candidate: bool, latency_ms: f64, class: &str) {
        let class = match &self.pool {
            Some(p) if class != OK => p.label_of(class),
            _ => class,
        };
        let arm = if candidate { &mut self.candidate } else { &mut self.baseline };
        arm.record(latency_ms, class);
        self.duel.record(candidate, latency_ms, (class != OK).then_some(class));
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The step's budget ran out without a verdict: evidence was missing,
    /// not evidence of harm.
    Inconclusive,
    /// Still collecting calls (never the verdict a step ends with).
    Pending,
}

/// What one objective is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// The shift of the whole latency distribution or a tail quantile;
    /// figures are milliseconds, the estimate a ratio.
    Latency,
    /// The rate of one outcome class; figures are rates, the estimate an
    /// increase (a fraction: 0.01 = one point).
    Outcome,
    /// The candidate's share of the calls (sample ratio and throughput per
    /// share); figures are shares.
    SampleRatio,
}

/// Where an objective stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Shown to be within its limit.
    Within,
    /// Harm shown.
    Harm,
    /// Neither yet.
    Undecided,
}

/// One objective's comparison, with the bounds behind it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// `shift`, `p95`, `outcome:invalid-input`, `sample-ratio`, …
    pub name: String,
    pub kind: ObjectiveKind,
    /// The baseline's figure (ms for latency, a rate or share otherwise).
    pub baseline: f64,
    /// The candidate's figure, same unit.
    pub candidate: f64,
    /// Latency: the ratio candidate / baseline. Outcome: the increase of the
    /// rate (fraction). Sample ratio: the candidate's observed share.
    pub estimate: f64,
    /// Confidence bounds on the estimate, holding at every look at once
    /// (sequential; latency bounds are read off a ladder of ratios) or at
    /// this look (fixed).
    pub low: f64,
    pub high: f64,
    /// The bound a pass needs `high` under (sample ratio: the configured
    /// share, which must stay inside the bounds).
    pub limit: f64,
    /// The bound a failure needs `low` over.
    pub tolerance: f64,
    /// Level of `low` and of the failure test: the step's level split over
    /// every objective, since any of them can fail a good candidate.
    pub alpha: f64,
    /// Level of `high` and of the pass test (sequential): the chance of
    /// showing this objective within its limit when it is not. Not split:
    /// a candidate passes only if every objective is shown within, so the
    /// one it breaks must be wrongly shown within for it to pass; except a
    /// guarded tail within on its `fallback`, which has no level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_alpha: Option<f64>,
    /// Within on a guarded tail's fallback: no slowdown shown after 1 500
    /// calls of the sparser arm, `high` still at or over `limit`. A pass
    /// with no level of its own (its cost is measured in the judge's
    /// trials, not bounded). Absent when false, and in judgements stored
    /// before the field existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// A p-value, for the fixed method's tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The e-value against "no harm" (the sequential method's failure test:
    /// harm is shown when it reaches 1 / alpha).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_value: Option<f64>,
    pub standing: Standing,
    /// The comparison in words.
    pub words: String,
}

/// A verdict with every statistic behind it, stored so that an operator can
/// see why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    #[serde(default)]
    pub method: Method,
    /// The objective that decided (for a pass, the last to come within).
    #[serde(default)]
    pub decided_by: Option<String>,
    pub candidate_samples: usize,
    pub baseline_samples: usize,
    /// How many times the judge had looked in this step, this look included.
    #[serde(default)]
    pub looks: u64,
    pub threshold: f64,
    /// The level spent on this step (sequential) or each test (fixed).
    pub alpha: f64,
    #[serde(default)]
    pub objectives: Vec<Objective>,
}

/// What the judge needs to know about the step it judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The candidate's configured share of calls, 0..1.
    pub share: f64,
    /// The level this step may spend ([`step_alpha`]).
    pub alpha: f64,
    /// Looks so far in this step, this one included.
    pub looks: u64,
    /// Which calls the candidate's are compared with: the words say so.
    pub against: Against,
}

/// Which calls a step compares the candidate's with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Against {
    /// The serving version's own calls.
    #[default]
    Baseline,
    /// A matched control: a copy of the serving version given the
    /// candidate's share of calls.
    MatchedControl,
    /// The bake's holdback: the previous version kept on a share of calls,
    /// judged against a copy of the promoted candidate given the same share.
    Holdback,
}

impl Against {
    /// The other arm's calls, as a reason names them.
    pub fn calls(self) -> &'static str {
        match self {
            Against::Baseline => "baseline",
            Against::MatchedControl => "matched-control",
            Against::Holdback => "holdback",
        }
    }
}

/// The level one step of a rollout may spend: the rollout's `alpha` split
/// equally over its judged steps (the canary steps below 100 % and, with a
/// holdback, the bake). Bonferroni over steps keeps the rollout's chance of
/// failing a candidate no worse than its baseline under `alpha`.
pub fn step_alpha(alpha: f64, judged_steps: usize) -> f64 {
    alpha / judged_steps.max(1) as f64
}

/// Judge the step's candidate against its baseline at this look.
pub fn judge(cmp: &Comparison, cfg: &JudgeConfig, step: &Step) -> Judgement {
    match cfg.method {
        Method::Sequential => sequential::judge(cmp, cfg, step),
        Method::Fixed => fixed::judge(&cmp.candidate, &cmp.baseline, cfg, step.looks),
    }
}

/// `x` as a signed percentage with one decimal: `+2.9 %`.
pub(crate) fn signed_pct(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "+∞".into() } else { "−∞".into() };
    }
    format!("{:+.1} %", x * 100.0)
}

/// A ratio as a change in words: `1.8 % faster`, `12.0 % slower`, `no change`.
pub(crate) fn change_words(ratio: f64) -> String {
    let d = ratio - 1.0;
    if d.abs() < 0.0005 {
        "no change".into()
    } else if d > 0.0 {
        format!("{:.1} % slower", d * 100.0)
    } else {
        format!("{:.1} % faster", -d * 100.0)
    }
}
