//! The judge's trials: many simulated rollout steps per scenario, the judge
//! looking after every 10 calls of the candidate, and five judges on the
//! same streams — the sequential judge as the product runs it (against a
//! matched control, a copy of the baseline given the candidate's share, for
//! a unit whose median call is under `matched_control_below_ms`, 1 ms;
//! against the rest of the calls otherwise), the sequential judge the
//! other way, today's fixed-level judge (`method = "fixed"` at its former
//! α = 0.0002), a fixed-sample Mann-Whitney test at the sequential judge's
//! α looking once, and the seed rule (roll back when p95, error rate or
//! throughput per share is more than 10 % worse, from 50 calls on). The
//! judges without a control compare the candidate with every other call.
//! Prints one table: false rollbacks in the A/A scenarios, regressions
//! caught in the others, inconclusive steps, and the median and p90
//! candidate calls to the verdict.
//!
//! Run with `cargo bench --bench judge` (`-- --trials N` for another number
//! of trials per scenario, default 500; `-- --only TEXT` for the scenarios
//! whose name contains TEXT).

use std::sync::atomic::{AtomicUsize, Ordering};

use kaizen_host::judge::{self, Against, Arm, Comparison, JudgeConfig, Method, Step, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal};

/// The rollout's α and its judged steps (10 %, 50 %, the bake).
const ALPHA: f64 = 0.01;
const JUDGED_STEPS: usize = 3;
/// Look after this many candidate calls.
const LOOK_EVERY: usize = 10;
/// Candidate calls of the fixed-sample Mann-Whitney test's one look.
const FIXED_N: usize = 1000;
/// The judges, in the order of `trial`'s endings: the default sequential
/// judge, today's, Mann-Whitney, the seed rule, and the sequential judge
/// the other way (with a matched control where the default has none, and
/// the reverse). Printed with the last second.
const JUDGES: usize = 5;
const PRINTED: [usize; JUDGES] = [0, 4, 1, 2, 3];

#[derive(Clone, Copy)]
enum Moment {
    Random,
    /// At the start of the judged period: for the bake, the promotion.
    Start,
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    regression: bool,
    /// The candidate's configured share, and the share it really gets.
    share: f64,
    actual_share: f64,
    /// Calls per second, all arms.
    rate: f64,
    /// Running time the step may take, seconds.
    budget_s: f64,
    sigma: f64,
    /// Candidate latency factor (every call).
    cand_scale: f64,
    /// Bimodal latency: share of calls in the slow mode, its factor over the
    /// fast mode, and the candidate's extra factor on the slow mode only.
    slow_mode: Option<(f64, f64, f64)>,
    /// Latencies read by a millisecond clock.
    ties: bool,
    /// Both arms slow down steadily, by half over the step.
    drift: bool,
    /// Both arms 3× slower for 3 s.
    slowdown: Option<Moment>,
    /// A busy machine: its speed wanders (±30 %, over about a second) and it
    /// stalls, 4× slower for 50–300 ms, about twice a second — what a
    /// 2-core machine running other tests beside the host does.
    busy: bool,
    /// A pause of this many seconds mid-step: traffic flows, no pass counts.
    pause_s: f64,
    /// Extra error points for the candidate, and their class.
    extra_errors: Option<(&'static str, f64)>,
    /// Median latency of the baseline's calls, ms.
    median_ms: f64,
    /// The host's sparse-arm effect: a version given a small share of the
    /// calls runs colder, whatever its code. Each call of an arm with less
    /// than half the calls takes this much longer on average (ms,
    /// exponential): on a 0.1 ms unit, 8 µs is +5.5 % at the median and
    /// about +15 % at p95, what the debug host measures for identical echo
    /// units at a 5 % share (`cargo bench --bench arms` measures the
    /// release host; it pays less).
    sparse_colder_ms: f64,
    /// Held to the goals; the default step at low traffic is shown for
    /// what it does, not held: it is too short for any verdict.
    goal: bool,
}

const BASE_ERRORS: f64 = 0.005;

fn base(name: &'static str) -> Scenario {
    Scenario {
        name,
        regression: false,
        share: 0.10,
        actual_share: 0.10,
        rate: 250.0,
        budget_s: 120.0,
        sigma: 0.3,
        cand_scale: 1.0,
        slow_mode: None,
        ties: false,
        drift: false,
        slowdown: None,
        busy: false,
        pause_s: 0.0,
        extra_errors: None,
        median_ms: 2.0,
        sparse_colder_ms: 0.0,
        goal: true,
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        base("A/A, lognormal σ = 0.3"),
        Scenario { sigma: 1.0, ..base("A/A, lognormal σ = 1.0") },
        Scenario { drift: true, ..base("A/A, slow drift shared by both arms") },
        Scenario { ties: true, ..base("A/A, 1 ms clock (ties)") },
        Scenario { pause_s: 600.0, rate: 50.0, ..base("A/A, 10-minute pause mid-step (50 calls/s)") },
        Scenario { slowdown: Some(Moment::Random), ..base("A/A, machine 3× slower for 3 s, random moment") },
        Scenario {
            slowdown: Some(Moment::Random),
            share: 0.5,
            actual_share: 0.5,
            ..base("A/A, machine 3× slower for 3 s, random moment of the 50 % step")
        },
        Scenario {
            slowdown: Some(Moment::Start),
            share: 0.95,
            actual_share: 0.95,
            ..base("A/A, machine 3× slower for 3 s at promotion (bake, 5 % holdback)")
        },
        Scenario { busy: true, ..base("A/A, busy machine: speed wanders, 4× stalls twice a second") },
        Scenario { busy: true, share: 0.5, actual_share: 0.5, ..base("A/A, busy machine, 50 % step") },
        Scenario {
            median_ms: 0.1,
            sparse_colder_ms: 0.008,
            ..base("A/A, 0.1 ms unit, a small share runs colder (+8 µs per call)")
        },
        // The default's floor (`min_shift_ms`, 50 µs) keeps the host's effect
        // from failing identical candidates, and hides this regression: shown,
        // not held to the goals.
        Scenario {
            regression: true,
            median_ms: 0.1,
            sparse_colder_ms: 0.008,
            cand_scale: 1.2,
            goal: false,
            ..base("+20 % latency on a 0.1 ms unit (+20 µs), a small share runs colder")
        },
        Scenario { regression: true, cand_scale: 1.10, ..base("+10 % latency") },
        Scenario { regression: true, busy: true, cand_scale: 1.10, ..base("+10 % latency, busy machine") },
        Scenario {
            regression: true,
            slow_mode: Some((0.10, 4.0, 1.30)),
            ..base("+30 % slow mode only (90 % fast / 10 % slow)")
        },
        Scenario { regression: true, extra_errors: Some(("dependency", 0.02)), ..base("+2 points dependency errors") },
        Scenario { regression: true, extra_errors: Some(("invalid-input", 0.02)), ..base("+2 points invalid-input") },
        Scenario { regression: true, actual_share: 0.07, ..base("candidate gets 7 % of calls, configured 10 % (SRM)") },
        // A step is sized in calls: at 2 calls/s to the candidate, the
        // ~3 000 candidate calls the default 120 s step sees at 250 calls/s
        // take 25 minutes (`step_timeout_secs = 1500`). The default step at
        // this traffic is the last pair: it sees 240 candidate calls.
        Scenario {
            regression: true,
            cand_scale: 1.10,
            rate: 20.0,
            budget_s: 1500.0,
            ..base("+10 % latency, low traffic (2 calls/s to the candidate), 25-minute step")
        },
        Scenario {
            rate: 20.0,
            budget_s: 1500.0,
            ..base("A/A, low traffic (2 calls/s to the candidate), 25-minute step")
        },
        Scenario {
            regression: true,
            cand_scale: 1.10,
            rate: 20.0,
            goal: false,
            ..base("+10 % latency, low traffic, default 120 s step (240 candidate calls)")
        },
        Scenario { rate: 20.0, goal: false, ..base("A/A, low traffic, default 120 s step (240 candidate calls)") },
    ]
}

/// One judge's end of one trial: (verdict, candidate calls at the verdict).
type Ending = (Verdict, usize);

fn normal(rng: &mut StdRng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

struct Call {
    /// Served by the candidate (or its control): the candidate's code.
    candidate: bool,
    /// The arm the default judge takes the call for, with a matched
    /// control: `Some(true)` the candidate's arm, `Some(false)` the
    /// baseline's, `None` not judged (the rest of the calls).
    matched: Option<bool>,
    latency_ms: f64,
    class: &'static str,
}

/// The speed of a busy machine over time: log-speed and the end of the
/// current stall.
#[derive(Default)]
struct Machine {
    level: f64,
    stall_until: f64,
    at: f64,
}

impl Machine {
    /// The factor calls ending at `t` are slowed by.
    fn factor(&mut self, rng: &mut StdRng, t: f64) -> f64 {
        let dt = (t - self.at).max(0.0);
        self.at = t;
        // Ornstein-Uhlenbeck on the log scale: 1 s time constant, sd 0.3.
        let keep = (-dt).exp();
        self.level = keep * self.level + 0.3 * (1.0 - keep * keep).sqrt() * normal(rng);
        if t >= self.stall_until && rng.random::<f64>() < 2.0 * dt {
            self.stall_until = t + rng.random_range(0.05..0.3);
        }
        self.level.exp() * if t < self.stall_until { 4.0 } else { 1.0 }
    }
}

/// One call, routed as the slot routes it: the candidate its (actual)
/// share; with a canary of at most half the calls, a matched control of the
/// baseline as many as the canary is configured for; in the bake (a
/// candidate share above half), a control of the candidate as many as the
/// holdback has.
fn call(s: &Scenario, rng: &mut StdRng, t: f64, slowdown_at: f64, machine: &mut Machine) -> Call {
    let u = rng.random::<f64>();
    let candidate = u < s.actual_share;
    let control = s.share.min(1.0 - s.share);
    let (matched, sparse) = if s.share <= 0.5 {
        match u {
            _ if candidate => (Some(true), s.share < 0.5),
            _ if u < s.actual_share + control => (Some(false), s.share < 0.5),
            _ => (None, false),
        }
    } else {
        match u {
            _ if u < control => (Some(true), true),
            _ if candidate => (None, false),
            _ => (Some(false), true),
        }
    };
    let mut ms = s.median_ms * (s.sigma * normal(rng)).exp();
    if s.sparse_colder_ms > 0.0 && sparse {
        ms -= s.sparse_colder_ms * rng.random_range(f64::EPSILON..1.0).ln();
    }
    if s.busy {
        ms *= machine.factor(rng, t);
    }
    if let Some((share, factor, extra)) = s.slow_mode
        && rng.random::<f64>() < share
    {
        ms *= factor * if candidate { extra } else { 1.0 };
    }
    if candidate {
        ms *= s.cand_scale;
    }
    if s.drift {
        ms *= 1.0 + 0.5 * t / s.budget_s;
    }
    if (slowdown_at..slowdown_at + 3.0).contains(&t) {
        ms *= 3.0;
    }
    if s.ties {
        ms = ms.ceil();
    }
    let mut class = judge::OK;
    let u: f64 = rng.random();
    if u < BASE_ERRORS {
        class = "dependency";
    } else if let Some((extra, points)) = s.extra_errors
        && candidate
        && u < BASE_ERRORS + points
    {
        class = extra;
    }
    Call { candidate, matched, latency_ms: ms, class }
}

/// The seed rule at one look: roll back when p95, error rate or throughput
/// per share is more than 10 % worse.
fn seed_rule(c: &Arm, b: &Arm) -> bool {
    let p95 = |a: &Arm| a.sketch.quantile(0.95);
    let rate = |a: &Arm| a.outcomes.values().sum::<u64>() as f64 / a.calls().max(1) as f64;
    let per_share = |a: &Arm| a.calls() as f64 / a.share;
    p95(c) > 1.1 * p95(b) || rate(c) > 1.1 * rate(b) && rate(c) > 0.0 || per_share(c) < 0.9 * per_share(b)
}

fn trial(s: &Scenario, seed: u64, cfg: &JudgeConfig, today: &JudgeConfig) -> [Ending; JUDGES] {
    let mut rng = StdRng::seed_from_u64(seed);
    let run_s = s.budget_s;
    let slowdown_at = match s.slowdown {
        None => f64::INFINITY,
        Some(Moment::Start) => 0.0,
        Some(Moment::Random) => rng.random_range(0.0..run_s),
    };
    let pause_at = if s.pause_s > 0.0 { rng.random_range(5.0..run_s / 2.0) } else { f64::INFINITY };
    let mut cmp = Comparison::new(s.share, cfg);
    // The default judge's arms: the candidate's (or, in the bake, its
    // control's) calls against the baseline's control's (or the holdback's),
    // each configured for the same share.
    let matched_share = 0.5;
    // Against a control the product does not apply the absolute floor.
    let matched_cfg = JudgeConfig { min_shift_ms: 0.0, ..cfg.clone() };
    let mut matched = Comparison::new(matched_share, &matched_cfg);
    let by_default = s.median_ms < cfg.matched_control_below_ms;
    let mut machine = Machine::default();
    let mut ends: [Option<Ending>; JUDGES] = [None; JUDGES];
    let (mut looks, mut next_look) = (0u64, LOOK_EVERY);
    let step_alpha = judge::step_alpha(ALPHA, JUDGED_STEPS);
    let total_s = run_s + s.pause_s;
    let mut i = 0u64;
    loop {
        // Wall time; running time does not count the pause.
        let t = i as f64 / s.rate;
        i += 1;
        if t >= total_s {
            break;
        }
        let paused = (pause_at..pause_at + s.pause_s).contains(&t);
        let x = call(s, &mut rng, t, slowdown_at, &mut machine);
        cmp.record(x.candidate, x.latency_ms, x.class);
        if let Some(arm) = x.matched {
            matched.record(arm, x.latency_ms, x.class);
        }
        if cmp.candidate.calls() < next_look {
            continue;
        }
        next_look += LOOK_EVERY;
        looks += 1;
        let n = cmp.candidate.calls();
        let settle = |end: &mut Option<Ending>, v: Verdict| {
            if end.is_none() && (v == Verdict::Fail || v == Verdict::Inconclusive || v == Verdict::Pass && !paused) {
                *end = Some((v, n));
            }
        };
        for (k, control) in [(0, by_default), (4, !by_default)] {
            if ends[k].is_some() {
                continue;
            }
            let v = if control {
                let step = Step { share: matched_share, alpha: step_alpha, looks, against: Against::MatchedControl };
                judge::judge(&matched, &matched_cfg, &step).verdict
            } else {
                judge::judge(&cmp, cfg, &Step { share: s.share, alpha: step_alpha, looks, against: Against::Baseline })
                    .verdict
            };
            settle(&mut ends[k], v);
        }
        if ends[1].is_none() {
            // Sorted in place: the fixed judge's sorts then see one long run.
            cmp.candidate.latencies_ms.sort_by(f64::total_cmp);
            cmp.baseline.latencies_ms.sort_by(f64::total_cmp);
            let step = Step { share: s.share, alpha: today.alpha, looks, against: Against::Baseline };
            settle(&mut ends[1], judge::judge(&cmp, today, &step).verdict);
        }
        if ends[2].is_none() && n >= FIXED_N {
            let mw = JudgeConfig { alpha: step_alpha, min_samples: 1, ..today.clone() };
            let j = judge::fixed::judge(&cmp.candidate, &cmp.baseline, &mw, looks);
            let latency_p = j.objectives[0].p_value.unwrap_or(1.0);
            settle(&mut ends[2], if latency_p < step_alpha { Verdict::Fail } else { Verdict::Pass });
        }
        if ends[3].is_none() && n >= 50 && seed_rule(&cmp.candidate, &cmp.baseline) {
            ends[3] = Some((Verdict::Fail, n));
        }
        if ends.iter().all(Option::is_some) {
            break;
        }
    }
    let n = cmp.candidate.calls();
    // Out of running time: inconclusive for the sequential judge; the
    // fixed-level judge and the seed rule pass with no evidence of harm.
    [
        ends[0].unwrap_or((Verdict::Inconclusive, n)),
        ends[1].unwrap_or((Verdict::Pass, n)),
        ends[2].unwrap_or((Verdict::Inconclusive, n)),
        ends[3].unwrap_or((Verdict::Pass, n)),
        ends[4].unwrap_or((Verdict::Inconclusive, n)),
    ]
}

struct Row {
    name: &'static str,
    regression: bool,
    goal: bool,
    cells: Vec<(f64, f64, usize, usize)>,
}

fn quantile(v: &mut [usize], q: f64) -> usize {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn run(s: &Scenario, trials: usize, cfg: &JudgeConfig, today: &JudgeConfig) -> Row {
    let mut per_judge: Vec<Vec<Ending>> = vec![Vec::new(); JUDGES];
    for t in 0..trials {
        let ends = trial(s, 0x5eed_0000 + t as u64, cfg, today);
        for (k, e) in ends.into_iter().enumerate() {
            per_judge[k].push(e);
        }
    }
    let cells = per_judge
        .into_iter()
        .map(|ends| {
            let fails = ends.iter().filter(|e| e.0 == Verdict::Fail).count() as f64 / trials as f64;
            let inconclusive = ends.iter().filter(|e| e.0 == Verdict::Inconclusive).count() as f64 / trials as f64;
            let mut calls: Vec<usize> = ends.iter().map(|e| e.1).collect();
            (fails * 100.0, inconclusive * 100.0, quantile(&mut calls, 0.5), quantile(&mut calls, 0.9))
        })
        .collect();
    Row { name: s.name, regression: s.regression, goal: s.goal, cells }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(500usize);
    let cfg = JudgeConfig::default();
    let today = JudgeConfig { method: Method::Fixed, alpha: 0.0002, max_samples: 4000, ..JudgeConfig::default() };
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
    let all: Vec<Scenario> =
        scenarios().into_iter().filter(|s| only.is_none_or(|o| s.name.contains(o.as_str()))).collect();
    let next = AtomicUsize::new(0);
    let rows = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = all.get(i) else { break };
                    let row = run(s, trials, &cfg, &today);
                    rows.lock().unwrap().push((i, row));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|r| r.0);
    println!(
        "{trials} simulated steps per scenario; looks after every {LOOK_EVERY} candidate calls; \
         α = {ALPHA} per rollout over {JUDGED_STEPS} judged steps"
    );
    println!(
        "cells: rolled back % (false in A/A, caught in regressions) / inconclusive % / median, p90 candidate calls to verdict"
    );
    println!();
    println!(
        "| scenario | sequential (default) | sequential, the other way | today's fixed-level judge | fixed-sample Mann-Whitney (n = {FIXED_N}) | seed rule |"
    );
    println!("|---|---|---|---|---|---|");
    let mut goals = Vec::new();
    for (_, r) in &rows {
        let cells: Vec<String> =
            PRINTED.iter().map(|&k| r.cells[k]).map(|(f, i, m, p)| format!("{f:.1} % / {i:.1} % / {m}, {p}")).collect();
        println!("| {} | {} |", r.name, cells.join(" | "));
        let (f, ..) = r.cells[0];
        if !r.goal {
            continue;
        }
        if r.regression && f < 99.0 {
            goals.push(format!("{}: caught {f:.1} % < 99 %", r.name));
        }
        if !r.regression && f > 1.0 {
            goals.push(format!("{}: false rollbacks {f:.1} % > 1 %", r.name));
        }
    }
    if let Some((_, r)) = rows.iter().find(|(_, r)| r.name == "+10 % latency") {
        let (new, old) = (r.cells[0].2 as f64, r.cells[1].2 as f64);
        println!();
        println!(
            "+10 % latency: median calls to verdict {new} against today's {old} (ratio {:.2}; goal ≤ 0.5)",
            new / old
        );
        // Floors for this stream, a 10 % lognormal shift at σ = 0.3, with the
        // baseline's calls known exactly (the judge's own baseline is a
        // sample, so it can only do worse), at the level of each of the
        // judge's latency tests (shift, p95), at the step's (any objective
        // failing) and at the whole rollout's α:
        // - the median, for any test, sequential or not: "failed by call n"
        //   is an event of the first n calls with chance at most α when
        //   nothing changed, so its chance under the shift is at most the
        //   power of the Neyman-Pearson test at level α with n calls, which
        //   reaches ½ at n = (z₁₋α · σ / ln 1.1)²;
        // - the median of Wald's SPRT for exactly this shift, the
        //   anytime-valid test that knows the answer, simulated;
        // - the mean, for a test that fails nearly every such step (Wald's
        //   bound): ln(1/α) over the information per call, the
        //   Kullback-Leibler divergence of the shift.
        let s = base("");
        let shift = 1.1f64.ln();
        let kl = shift.powi(2) / (2.0 * s.sigma * s.sigma);
        let level = judge::step_alpha(ALPHA, JUDGED_STEPS) / 3.0 / (1 + cfg.quantiles.len()) as f64;
        let z = |a: f64| Normal::standard().inverse_cdf(1.0 - a);
        let np = |a: f64| (z(a) * s.sigma / shift).powi(2).ceil();
        let sprt = |a: f64| {
            let mut rng = StdRng::seed_from_u64(7);
            let mut n: Vec<usize> = (0..20_000)
                .map(|_| {
                    let (mut llr, mut i) = (0.0, 0);
                    while llr < (1.0 / a).ln() {
                        let x = shift + s.sigma * normal(&mut rng);
                        llr += shift / (s.sigma * s.sigma) * (x - shift / 2.0);
                        i += 1;
                    }
                    i
                })
                .collect();
            n.sort_unstable();
            n[n.len() / 2]
        };
        let step = judge::step_alpha(ALPHA, JUDGED_STEPS);
        for (what, a) in
            [("each latency test's level", level), ("the step's level", step), ("the whole rollout's α", ALPHA)]
        {
            println!(
                "floors at {what} ({a:.1e}), σ = {}, the baseline known exactly: median ≥ {} for any test \
                 (Neyman-Pearson); median {} for Wald's SPRT knowing the shift; mean ≥ {:.0} for a test that fails nearly every such step (Wald)",
                s.sigma,
                np(a),
                sprt(a),
                (1.0 / a).ln() / kl,
            );
        }
        println!("the goal (0.5× today's): {:.0}", 0.5 * old);
        if new / old > 0.5 {
            goals.push(format!("+10 % latency: {:.2}× today's calls to verdict > 0.5×", new / old));
        }
    }
    println!();
    if goals.is_empty() {
        println!("every goal met");
    } else {
        println!("goals missed:");
        for g in goals {
            println!("- {g}");
        }
    }
}
