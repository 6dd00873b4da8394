//! How the serving version and a candidate end the same request, compared
//! class by class over repeated runs. Each run ends `ok` or in an error class
//! (`invalid-input` included: a candidate refusing what the serving version
//! answers is a regression, not the caller's fault). Units may be
//! nondeterministic, so a request that ends differently is run again on both
//! versions, and a difference fails a proof only when it holds on every run,
//! or when the candidate's rate of a class is shown higher than the serving
//! version's by the judge's anytime-valid test.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;

use crate::judge::sequential::CLASSES;
use crate::judge::{OK, increase_bounds, increase_shown};
use crate::runtime::types::{CallContext, ErrorClass};
use crate::runtime::{CallError, Plugin, class_name};
use crate::store::findings::FindingRecord;

use super::ProveConfig;

/// The class of a refusal of the caller's input.
const REFUSED: &str = "invalid-input";

/// How one run of a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Answered, with this output.
    Answered(Vec<u8>),
    /// Failed or refused, in this error class (`dependency`, `invalid-input`, …).
    Failed(String),
}

impl Ending {
    pub fn of(result: &Result<Vec<u8>, CallError>) -> Ending {
        match result {
            Ok(out) => Ending::Answered(out.clone()),
            Err(e) => Ending::Failed(class_name(&e.class).to_string()),
        }
    }

    /// `ok` or the error class.
    pub fn class(&self) -> &str {
        match self {
            Ending::Answered(_) => OK,
            Ending::Failed(class) => class,
        }
    }

    fn answered(&self) -> bool {
        matches!(self, Ending::Answered(_))
    }

    /// How bad an ending is for the caller: answered (0), refused as the
    /// caller's bad input (1), failed for the unit's own reasons (2).
    fn grade(&self) -> u8 {
        match self {
            Ending::Answered(_) => 0,
            Ending::Failed(c) if c == REFUSED => 1,
            Ending::Failed(_) => 2,
        }
    }

    /// The ending in words, the output shown when `output` is set.
    fn words(&self, output: bool) -> String {
        match self {
            Ending::Answered(out) if output => format!("answered `{}`", shown(out)),
            Ending::Answered(_) => "answered".into(),
            Ending::Failed(c) if c == REFUSED => format!("refused it ({c})"),
            Ending::Failed(c) => format!("failed it ({c})"),
        }
    }
}

/// The first characters of a request or output, as text.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(120).collect();
    if text.chars().nth(120).is_some() {
        s.push('…');
    }
    s
}

pub fn same_output(a: &[u8], b: &[u8]) -> bool {
    a == b || decoded(a).is_some_and(|x| decoded(b).is_some_and(|y| x == y))
}

pub fn decoded(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(bytes).ok().or_else(|| rmp_serde::from_slice(bytes).ok())
}

/// What the finding being fixed is about, as endings of the serving version:
/// the candidate is meant to change how those requests end, so such a
/// change is not held against it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum About {
    /// No finding, or one about something other than outcomes.
    #[default]
    Nothing,
    /// Failures of one error class: a finding carrying `error_class` in its
    /// evidence (`recurring-error`).
    Class(String),
    /// The unit's failures of every class, not its refusals of bad input:
    /// findings of the kinds in [`ProveConfig::failure_kinds`] (low success
    /// rate, error-rate spike, failure burst).
    Failures,
}

impl About {
    pub fn of(finding: Option<&FindingRecord>, cfg: &ProveConfig) -> About {
        let Some(f) = finding else { return About::Nothing };
        if let Some((_, class)) = f.evidence.iter().find(|(k, v)| k == "error_class" && !v.is_empty()) {
            return About::Class(class.clone());
        }
        if cfg.failure_kinds.iter().any(|k| k == &f.kind) {
            return About::Failures;
        }
        About::Nothing
    }

    /// Whether a run the serving version ended as `serving` and the
    /// candidate as `candidate` is one the finding asks to change: the
    /// serving version ended it in the finding's class, and the candidate
    /// ends it no worse for the caller (answers it, refuses it instead of
    /// failing it, or fails it another way). A refusal the finding is about
    /// never becomes a failure, and a request the serving version answered
    /// is never one the finding is about.
    fn allows(&self, serving: &Ending, candidate: &Ending) -> bool {
        let Ending::Failed(s) = serving else { return false };
        let covered = match self {
            About::Nothing => false,
            About::Class(c) => c == s,
            About::Failures => s != REFUSED,
        };
        covered && candidate.grade() <= serving.grade()
    }

    fn words(&self, serving_version: &str) -> String {
        match self {
            About::Nothing => String::new(),
            About::Class(c) => format!("that {serving_version} failed with `{c}`"),
            About::Failures => format!("that {serving_version} failed"),
        }
    }
}

/// The call context of proof runs: a first attempt, the whole unit, 5 s.
pub fn ctx() -> CallContext {
    CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 }
}

/// One run of `request` on a version.
pub async fn run(p: &Plugin, request: &[u8]) -> Ending {
    let r = std::panic::AssertUnwindSafe(p.invoke(&ctx(), request))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(CallError::new(ErrorClass::Internal, "the call panicked")));
    Ending::of(&r)
}

/// Both versions' endings of one run: (serving, candidate).
pub type Pair = (Ending, Ending);

/// Whether a run ended differently on the two versions: in class, or (when
/// outputs are compared) in output.
fn differs((s, c): &Pair, compare_outputs: bool) -> bool {
    match (s, c) {
        (Ending::Answered(a), Ending::Answered(b)) => compare_outputs && !same_output(a, b),
        _ => s.class() != c.class(),
    }
}

/// Every run of one request on both versions, the first one first.
#[derive(Debug, Clone)]
pub struct Runs {
    pub pairs: Vec<Pair>,
}

/// Run `request` on both versions again, `reruns` more times, when its
/// `first` run ended differently; blocking (call it off the async runtime).
pub async fn settle(
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    request: &[u8],
    first: Pair,
    reruns: u32,
    compare_outputs: bool,
) -> Runs {
    let mut pairs = vec![first];
    if differs(&pairs[0], compare_outputs) {
        for _ in 0..reruns {
            pairs.push((run(current, request).await, run(candidate, request).await));
        }
    }
    Runs { pairs }
}

impl Runs {
    /// The serving version answered on every run and the candidate failed or
    /// refused on every run.
    fn fails_every_time(&self) -> bool {
        self.pairs.iter().all(|(s, c)| s.answered() && !c.answered())
    }

    /// Both answered on every run, the serving version always the same, the
    /// candidate always something else. A serving version whose own output
    /// varies from run to run cannot tell a candidate's output wrong.
    fn outputs_differ_every_time(&self) -> bool {
        let Some((Ending::Answered(first), _)) = self.pairs.first() else { return false };
        self.pairs.iter().all(|p| match p {
            (Ending::Answered(s), Ending::Answered(c)) => same_output(s, first) && !same_output(s, c),
            _ => false,
        })
    }
}

/// A request that ended differently, kept to name it in a reason.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its sample id: the execution's row in the store, when known.
    pub id: Option<i64>,
    pub request: Vec<u8>,
    /// How each version ended it on the first run that differed.
    pub serving: Ending,
    pub candidate: Ending,
    /// Runs that differed so, of all runs of the request.
    pub times: usize,
    pub runs: usize,
    /// Every class the candidate ended it in on those runs, with counts,
    /// when it was more than one.
    pub classes: BTreeMap<String, usize>,
}

impl Example {
    fn of(request: &[u8], id: Option<i64>, runs: &Runs, like: impl Fn(&Pair) -> bool) -> Option<Example> {
        let (serving, candidate) = runs.pairs.iter().find(|p| like(p))?.clone();
        let mut classes = BTreeMap::new();
        for (_, c) in runs.pairs.iter().filter(|p| like(p)) {
            *classes.entry(c.class().to_string()).or_default() += 1;
        }
        let times = classes.values().sum();
        Some(Example { id, request: request.to_vec(), serving, candidate, times, runs: runs.pairs.len(), classes })
    }

    /// `request #1234 (`{"a":1}`): 1.0.0 answered, 3.0.0 refused it
    /// (invalid-input) on 4 of 4 runs`.
    pub fn words(&self, serving_version: &str, candidate_version: &str) -> String {
        let output = self.serving.answered() && self.candidate.answered();
        let request = match self.id {
            Some(id) => format!("request #{id} (`{}`)", shown(&self.request)),
            None => format!("request (`{}`, not kept in the store)", shown(&self.request)),
        };
        let candidate = if self.classes.len() > 1 {
            let all: Vec<String> = self.classes.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            format!("failed it ({})", all.join(", "))
        } else {
            self.candidate.words(output)
        };
        format!(
            "{request}: {serving_version} {}, {candidate_version} {candidate} on {} of {} runs",
            self.serving.words(output),
            self.times,
            self.runs
        )
    }
}

/// Everything compared so far, request by request.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub requests: u64,
    /// Requests whose first run ended differently (so were re-run).
    pub differed: u64,
    /// First runs the serving version answered and the candidate failed or
    /// refused: what a one-run comparison would have failed the proof on.
    pub failed_first: u64,
    /// First runs the serving version failed (not refused) and the
    /// candidate answered.
    pub answered_first: u64,
    /// Requests that ended differently in what the finding is about.
    pub as_asked: u64,
    /// Requests whose outputs differed on some runs only.
    pub outputs_varied: u64,
    /// Runs counted in the class rates, per version (runs the finding asks
    /// to change are left out).
    pub runs: u64,
    /// Per error class: runs the candidate ended in it, runs the serving
    /// version did.
    pub hits: BTreeMap<String, (u64, u64)>,
    /// Per error class: the first request the candidate ended in it on a
    /// run the serving version did not.
    pub first: BTreeMap<String, Example>,
}

/// Why a comparison fails a proof.
#[derive(Debug, Clone)]
pub enum Difference {
    /// One request ended differently on every run.
    Consistent(Example),
    /// The candidate's rate of a class is shown higher than the serving
    /// version's; the words, and the first request it happened on.
    Rate(String, Option<Example>),
}

impl Difference {
    pub fn example_mut(&mut self) -> Option<&mut Example> {
        match self {
            Difference::Consistent(e) => Some(e),
            Difference::Rate(_, e) => e.as_mut(),
        }
    }

    pub fn words(&self, serving_version: &str, candidate_version: &str) -> String {
        match self {
            Difference::Consistent(e) => e.words(serving_version, candidate_version),
            Difference::Rate(words, Some(e)) => {
                format!("{words}; first: {}", e.words(serving_version, candidate_version))
            }
            Difference::Rate(words, None) => words.clone(),
        }
    }
}

/// The level and margin of the rate test: the judge's, per class.
#[derive(Debug, Clone, Copy)]
pub struct RateTest {
    /// Increase a failure must show (a fraction: 0.01 = one point).
    pub margin: f64,
    /// Level per class: the judge's α split over the classes, as the judge
    /// splits it.
    pub alpha: f64,
}

impl RateTest {
    pub fn of(limits: &crate::safety::Limits) -> RateTest {
        let j = &limits.judge;
        RateTest { margin: j.error_tolerance_points / 100.0, alpha: j.alpha / CLASSES as f64 }
    }
}

impl Tally {
    /// Count one request's runs. A difference that held on every run is
    /// returned: it fails the proof at once.
    pub fn add(
        &mut self,
        id: Option<i64>,
        request: &[u8],
        runs: &Runs,
        about: &About,
        compare_outputs: bool,
    ) -> Option<Difference> {
        self.requests += 1;
        let first = &runs.pairs[0];
        if !differs(first, compare_outputs) {
            self.count(first, about);
            return None;
        }
        self.differed += 1;
        match first {
            (s, c) if s.answered() && !c.answered() => self.failed_first += 1,
            (s, c) if s.grade() == 2 && c.answered() => self.answered_first += 1,
            _ => {}
        }
        if runs.fails_every_time() {
            return Example::of(request, id, runs, |(s, c)| s.answered() && !c.answered()).map(Difference::Consistent);
        }
        if compare_outputs && runs.outputs_differ_every_time() {
            return Example::of(request, id, runs, |p| differs(p, true)).map(Difference::Consistent);
        }
        if runs.pairs.iter().all(|p| p.0.answered() && p.1.answered()) {
            self.outputs_varied += 1;
        }
        if runs.pairs.iter().any(|(s, c)| about.allows(s, c) && s.class() != c.class()) {
            self.as_asked += 1;
        }
        for p in &runs.pairs {
            self.count(p, about);
        }
        for (s, c) in &runs.pairs {
            if let Ending::Failed(class) = c
                && s.class() != class
                && !about.allows(s, c)
                && !self.first.contains_key(class)
            {
                let like = |(s2, c2): &Pair| c2.class() == class && s2.class() != class && !about.allows(s2, c2);
                if let Some(e) = Example::of(request, id, runs, like) {
                    self.first.insert(class.clone(), e);
                }
            }
        }
        None
    }

    fn count(&mut self, (s, c): &Pair, about: &About) {
        if about.allows(s, c) {
            return;
        }
        self.runs += 1;
        if let Ending::Failed(class) = c {
            self.hits.entry(class.clone()).or_default().0 += 1;
        }
        if let Ending::Failed(class) = s {
            self.hits.entry(class.clone()).or_default().1 += 1;
        }
    }

    /// The class whose rate on the candidate is shown higher than on the
    /// serving version by more than the test's margin, anytime-valid (so it
    /// may be asked after every request), with the first request it
    /// happened on.
    pub fn increase(&self, test: RateTest, serving_version: &str, candidate_version: &str) -> Option<Difference> {
        let n = self.runs;
        let (class, &(hc, hb), low) = self
            .hits
            .iter()
            .filter(|(_, (hc, hb))| increase_shown((*hc, n), (*hb, n), test.margin, test.alpha))
            .map(|(class, h)| (class, h, increase_bounds((h.0, n), (h.1, n), test.alpha).0))
            .max_by(|a, b| a.2.total_cmp(&b.2))?;
        let words = format!(
            "{class} on {hc} of {n} runs of {candidate_version} against {hb} of {n} of {serving_version}: \
             at least {:+.1} points, over the {:.1}-point tolerance",
            low * 100.0,
            test.margin * 100.0
        );
        Some(Difference::Rate(words, self.first.get(class).cloned()))
    }

    /// What was compared, in words, after the opening that says on what.
    pub fn words(&self, reruns: u32, about: &About, serving_version: &str, candidate_version: &str) -> String {
        let (sv, cv) = (serving_version, candidate_version);
        let mut s = String::new();
        if self.differed == 0 {
            s.push_str("; none ended differently");
        } else {
            s.push_str(&format!(
                "; {} ended differently and {} re-run {reruns} more time(s) on both, none differing on every run \
                 ({} failed on {cv} where {sv} answered at the first run, {} answered on {cv} where {sv} failed)",
                self.differed,
                if self.differed == 1 { "was" } else { "were" },
                self.failed_first,
                self.answered_first,
            ));
        }
        let pct = |h: u64| if self.runs == 0 { 0.0 } else { h as f64 / self.runs as f64 * 100.0 };
        if !self.hits.is_empty() {
            let rates: Vec<String> = self
                .hits
                .iter()
                .map(|(class, &(hc, hb))| format!("{class} {:.1} % on {cv} against {:.1} % on {sv}", pct(hc), pct(hb)))
                .collect();
            s.push_str(&format!(
                "; over {} run(s) each: {}, no class shown higher on {cv}",
                self.runs,
                rates.join(", ")
            ));
        }
        if self.as_asked > 0 {
            s.push_str(&format!(
                "; {} request(s) {} ended otherwise on {cv}, as the finding asks",
                self.as_asked,
                about.words(sv)
            ));
        }
        if self.outputs_varied > 0 {
            s.push_str(&format!("; {} output(s) differed on some runs only", self.outputs_varied));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Ending {
        Ending::Answered(s.as_bytes().to_vec())
    }

    fn err(c: &str) -> Ending {
        Ending::Failed(c.into())
    }

    fn runs(pairs: &[(Ending, Ending)]) -> Runs {
        Runs { pairs: pairs.to_vec() }
    }

    const TEST: RateTest = RateTest { margin: 0.01, alpha: 0.01 / CLASSES as f64 };

    #[test]
    fn a_refusal_on_every_run_is_named_with_its_sample_id() {
        let mut t = Tally::default();
        let r = runs(&vec![(ok("{}"), err("invalid-input")); 4]);
        let d = t.add(Some(1234), br#"{"a":1}"#, &r, &About::Nothing, true).expect("consistent");
        assert_eq!(
            d.words("1.0.0", "3.0.0"),
            "request #1234 (`{\"a\":1}`): 1.0.0 answered, 3.0.0 refused it (invalid-input) on 4 of 4 runs"
        );
    }

    #[test]
    fn a_difference_that_comes_and_goes_is_counted_not_failed() {
        let mut t = Tally::default();
        let r = runs(&[(ok("x"), err("dependency")), (ok("x"), ok("x")), (ok("x"), ok("x")), (ok("x"), ok("x"))]);
        assert!(t.add(Some(1), b"x", &r, &About::Nothing, true).is_none());
        assert_eq!((t.differed, t.failed_first, t.runs), (1, 1, 4));
        assert_eq!(t.hits["dependency"], (1, 0));
        assert!(t.increase(TEST, "1.0.0", "2.0.0").is_none());
    }

    #[test]
    fn a_class_the_candidate_ends_in_far_more_often_is_shown() {
        let mut t = Tally::default();
        for i in 0..60 {
            let r = if i % 3 == 0 {
                runs(&vec![(err("trap"), err("invalid-input")); 4])
            } else {
                runs(&[(ok("y"), ok("y"))])
            };
            assert!(t.add(Some(i), b"r", &r, &About::Nothing, true).is_none(), "never consistent: 1.0.0 failed too");
        }
        let d = t.increase(TEST, "1.0.0", "2.0.0").expect("invalid-input shown higher");
        let words = d.words("1.0.0", "2.0.0");
        assert!(words.starts_with("invalid-input on 80 of 120 runs of 2.0.0 against 0 of 120 of 1.0.0"), "{words}");
        assert!(
            words.contains("request #0 (`r`): 1.0.0 failed it (trap), 2.0.0 refused it (invalid-input)"),
            "{words}"
        );
    }

    #[test]
    fn what_the_finding_is_about_may_change_but_never_for_the_worse() {
        let trap = About::Class("trap".into());
        assert!(trap.allows(&err("trap"), &err("invalid-input")));
        assert!(trap.allows(&err("trap"), &ok("")));
        assert!(!trap.allows(&err("dependency"), &err("invalid-input")));
        assert!(!trap.allows(&ok(""), &err("trap")), "an answered request is never what the finding is about");
        let refusals = About::Class("invalid-input".into());
        assert!(!refusals.allows(&err("invalid-input"), &err("trap")), "a refusal never becomes a crash");
        assert!(About::Failures.allows(&err("timeout"), &err("invalid-input")));
        assert!(!About::Failures.allows(&err("invalid-input"), &err("trap")));

        let mut t = Tally::default();
        for i in 0..60 {
            let r = runs(&vec![(err("trap"), err("invalid-input")); 4]);
            assert!(t.add(Some(i), b"r", &r, &trap, true).is_none());
        }
        assert!(t.increase(TEST, "1.0.0", "2.0.0").is_none());
        assert_eq!((t.as_asked, t.runs), (60, 0));
    }

    #[test]
    fn outputs_differ_only_when_they_differ_every_time_from_a_steady_serving_version() {
        let mut t = Tally::default();
        let steady = runs(&vec![(ok("1"), ok("2")); 4]);
        let d = t.add(Some(7), b"q", &steady, &About::Nothing, true).expect("consistent");
        assert_eq!(
            d.words("1.0.0", "2.0.0"),
            "request #7 (`q`): 1.0.0 answered `1`, 2.0.0 answered `2` on 4 of 4 runs"
        );
        let wandering = runs(&[(ok("1"), ok("2")), (ok("3"), ok("3")), (ok("1"), ok("2")), (ok("1"), ok("2"))]);
        assert!(t.add(Some(8), b"q", &wandering, &About::Nothing, true).is_none());
        assert_eq!(t.outputs_varied, 1);
        assert!(t.add(Some(9), b"q", &steady, &About::Nothing, false).is_none(), "outputs not compared");
    }

    #[test]
    fn findings_map_to_what_they_are_about() {
        let cfg = ProveConfig::default();
        let mut f = FindingRecord {
            id: 1,
            target: "t".into(),
            kind: "recurring-error".into(),
            detector: "d".into(),
            severity: "high".into(),
            confidence: 1.0,
            summary: String::new(),
            evidence: vec![("error_class".into(), "dependency".into())],
            expected_gain_pct: 0.0,
            risk: "low".into(),
            category: "reliability".into(),
            impact: 0.0,
            priority: "low".into(),
            status: crate::store::findings::FindingStatus::Open,
            occurrences: 1,
            first_seen: 0,
            last_seen: 0,
            version: None,
            reason: String::new(),
            previous: None,
            missed: 0,
            snoozed_until: None,
            changed_at: 0,
            inaction: None,
            prediction: None,
        };
        assert_eq!(About::of(Some(&f), &cfg), About::Class("dependency".into()));
        f.evidence.clear();
        f.kind = "low-success-rate".into();
        assert_eq!(About::of(Some(&f), &cfg), About::Failures);
        f.kind = "latency-regression".into();
        assert_eq!(About::of(Some(&f), &cfg), About::Nothing);
        assert_eq!(About::of(None, &cfg), About::Nothing);
    }
}
