//! The tuner against random and grid search on the batcher unit's real
//! response surface.
//!
//! 1. **The surface.** The batcher's work (`unit_batcher::work::process` on
//!    1 024 keys over 512 distinct) is timed natively, in this run, on a grid
//!    of its two knobs spaced by √2 in `chunk_size` (1 to 1 024; a chunk
//!    larger than the batch is one chunk, the same work) and by 2 in
//!    `cache_entries` (0, then 1 to 65 536). The grid is visited in passes,
//!    each in a shuffled order, and every call is paired with a call of the
//!    default config made just before it: a point's latency is the default's
//!    median times the median ratio of its pairs, so that the machine's load
//!    (other builds on this shared machine) cancels as a canary's shared
//!    period does. The 24 lowest points are measured again with four times
//!    the passes (the optimum is a minimum of noisy medians, which favours a
//!    lucky one). A point's per-call dispersion is the σ of its calls'
//!    logarithms, from the median absolute deviation (a call descheduled by
//!    another process must not make a point look noisy).
//!    Between grid points the surface is interpolated in log space; the known
//!    optimum is the grid's minimum.
//! 2. **The loop.** Per seed and method, from the unit's default
//!    (`Knobs::DEFAULT`), each trial canaries a proposed config against the
//!    serving one: `--calls` calls per arm (default 300), each call lognormal
//!    around the arm's true latency with the measured dispersion, both arms
//!    multiplied by one shared period effect (lognormal, σ = 0.05). The
//!    simulated judge promotes the candidate only when the one-sided 95 %
//!    upper bound of the ratio of geometric means (Welch, on logs) is below
//!    1; otherwise it rolls it back. Every method sees the same judge.
//! 3. **Methods.** The tuner (`improver_tuner::propose`, its history being
//!    the trials so far), with its default plug-in EI and with noisy EI (the
//!    acquisition's alternative); random search (uniform in the tuner's normalised,
//!    log-scaled space, no config twice); grid search (a ⌈√budget⌉² grid in
//!    that space at cell centres, row by row).
//!
//! Printed: the serving config's true latency relative to the optimum after
//! 5, 10, 15 and 20 trials (median and quartiles over seeds), the median
//! trials until it is within 5 % of the optimum (and the seeds that never
//! got there), and the promotions of a config truly more than 5 % worse than
//! the one it replaced.
//!
//! The loop is run in two scenarios: the per-call dispersion as measured
//! (a native loop: a few percent), and at least σ = 0.3, what a service's
//! calls show (the judge's trials assume as much).
//!
//! `cargo bench -p improver-tuner --bench tuner [-- --seeds N --budget N
//! --calls N --passes N --trace SEED]` (`--trace` prints every trial of one
//! seed and the trials to within 5 % of every seed).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use improver_tuner::{
    Config, Domain, Knob, Method as Acquisition, NoProposal, Problem, Space, Trial, Value, Verdict, propose_with,
};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;
use unit_batcher::work::{Knobs, keys, process};

/// The shared period effect's σ (log scale), hitting both arms alike.
const PERIOD_SIGMA: f64 = 0.05;
/// The judge's one-sided 95 % normal quantile.
const Z95: f64 = 1.6449;
/// The judge's threshold for a bad promotion, and the goal's "within".
const WITHIN: f64 = 1.05;
/// A normal's standard deviation per median absolute deviation.
const MAD_TO_SD: f64 = 1.4826;
/// The trials to within 5 % are counted up to this many budgets (a method
/// that gets there later than the budget still has a number).
const REACH_FACTOR: usize = 3;
/// The heavier scenario's per-call σ of ln latency.
const HEAVY_SIGMA: f64 = 0.3;
/// Grid points measured again (the lowest), with four times the passes.
const REFINED_POINTS: usize = 24;
/// Calls timed at each grid point per pass.
const CALLS_PER_VISIT: usize = 2;

struct Args {
    seeds: u64,
    budget: usize,
    calls: usize,
    passes: usize,
    /// Print every trial of this seed (all methods).
    trace: Option<u64>,
}

fn args() -> Args {
    let mut args = Args { seeds: 25, budget: 20, calls: 300, passes: 8, trace: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--seeds" => args.seeds = value("--seeds") as u64,
            "--budget" => args.budget = value("--budget"),
            "--calls" => args.calls = value("--calls"),
            "--passes" => args.passes = value("--passes"),
            "--trace" => args.trace = Some(value("--trace") as u64),
            // cargo bench passes `--bench`.
            _ => {}
        }
    }
    assert!(args.seeds > 0 && args.budget > 0 && args.calls > 1 && args.passes > 0, "every option must be positive");
    args
}

/// The measured surface: ln latency (ms) and per-call σ of ln latency on a
/// grid of (ln chunk, ln(cache + 1)).
struct Surface {
    chunks: Vec<usize>,
    caches: Vec<usize>,
    /// `[chunk index][cache index]`.
    log_ms: Vec<Vec<f64>>,
    sigma: Vec<Vec<f64>>,
    samples: usize,
}

fn chunk_grid() -> Vec<usize> {
    let mut grid: Vec<usize> = (0..=20).map(|k| 2f64.powf(k as f64 / 2.0).round() as usize).collect();
    grid.dedup();
    grid
}

fn cache_grid() -> Vec<usize> {
    std::iter::once(0).chain((0..=16).map(|k| 1 << k)).collect()
}

fn measure(passes: usize) -> Surface {
    let batch = keys(1024, 512, 1);
    let (chunks, caches) = (chunk_grid(), cache_grid());
    let points: Vec<(usize, usize)> = (0..chunks.len()).flat_map(|i| (0..caches.len()).map(move |j| (i, j))).collect();
    let knobs_at = |p: usize| Knobs { chunk_size: chunks[points[p].0], cache_entries: caches[points[p].1] };
    let time = |knobs: Knobs| {
        let start = Instant::now();
        std::hint::black_box(process(std::hint::black_box(&batch), knobs));
        (start.elapsed().as_secs_f64() * 1e3).ln()
    };
    // Per point: ln latency of its calls, and each call's ln ratio to the
    // reference call made just before it.
    let mut logs: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
    let mut reference: Vec<f64> = Vec::new();
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed);
    let visit = |subset: &[usize],
                 passes: usize,
                 keep_from: usize,
                 rng: &mut Pcg64Mcg,
                 logs: &mut Vec<Vec<f64>>,
                 ratios: &mut Vec<Vec<f64>>,
                 reference: &mut Vec<f64>| {
        for pass in 0..passes {
            let mut order = subset.to_vec();
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            for p in order {
                for _ in 0..CALLS_PER_VISIT {
                    let (r, t) = (time(Knobs::DEFAULT), time(knobs_at(p)));
                    if pass >= keep_from {
                        reference.push(r);
                        logs[p].push(t);
                        ratios[p].push(t - r);
                    }
                }
            }
        }
    };
    let all: Vec<usize> = (0..points.len()).collect();
    // Pass 0 warms up and is not kept.
    visit(&all, passes + 1, 1, &mut rng, &mut logs, &mut ratios, &mut reference);
    let median = |xs: &[f64]| {
        let mut xs = xs.to_vec();
        xs.sort_by(f64::total_cmp);
        quantile(&xs, 0.5)
    };
    // The lowest points again, four times as often: the optimum is the
    // minimum of many noisy medians, which would favour a lucky one.
    let mut by_ratio: Vec<usize> = all.clone();
    by_ratio.sort_by(|&a, &b| median(&ratios[a]).total_cmp(&median(&ratios[b])));
    visit(&by_ratio[..REFINED_POINTS], 4 * passes, 0, &mut rng, &mut logs, &mut ratios, &mut reference);
    let reference_log = median(&reference);
    let mut log_ms = vec![vec![0.0; caches.len()]; chunks.len()];
    let mut sigma = vec![vec![0.0; caches.len()]; chunks.len()];
    for (p, &(i, j)) in points.iter().enumerate() {
        let own = median(&logs[p]);
        let deviations: Vec<f64> = logs[p].iter().map(|l| (l - own).abs()).collect();
        log_ms[i][j] = reference_log + median(&ratios[p]);
        sigma[i][j] = MAD_TO_SD * median(&deviations);
    }
    Surface { chunks, caches, log_ms, sigma, samples: passes * CALLS_PER_VISIT }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Where `v` falls on a grid of (transformed) values: the lower index and
/// the fraction towards the next.
fn locate(grid: &[f64], v: f64) -> (usize, f64) {
    let v = v.clamp(grid[0], grid[grid.len() - 1]);
    let i = grid.windows(2).position(|w| v <= w[1]).unwrap_or(grid.len() - 2);
    (i, (v - grid[i]) / (grid[i + 1] - grid[i]))
}

impl Surface {
    /// Bilinear interpolation of `table` in (ln chunk, ln(cache + 1)).
    fn at(&self, table: &[Vec<f64>], knobs: Knobs) -> f64 {
        let cx: Vec<f64> = self.chunks.iter().map(|&c| (c as f64).ln()).collect();
        let cy: Vec<f64> = self.caches.iter().map(|&c| (c as f64 + 1.0).ln()).collect();
        let (i, fx) = locate(&cx, (knobs.chunk_size.min(1024) as f64).ln());
        let (j, fy) = locate(&cy, (knobs.cache_entries as f64 + 1.0).ln());
        let lerp = |a: f64, b: f64, f: f64| a + (b - a) * f;
        lerp(lerp(table[i][j], table[i][j + 1], fy), lerp(table[i + 1][j], table[i + 1][j + 1], fy), fx)
    }

    fn latency_ms(&self, knobs: Knobs) -> f64 {
        self.at(&self.log_ms, knobs).exp()
    }

    fn sigma(&self, knobs: Knobs) -> f64 {
        self.at(&self.sigma, knobs)
    }

    fn optimum(&self) -> (Knobs, f64) {
        let mut best = (Knobs::DEFAULT, f64::INFINITY);
        for (i, &chunk_size) in self.chunks.iter().enumerate() {
            for (j, &cache_entries) in self.caches.iter().enumerate() {
                if self.log_ms[i][j].exp() < best.1 {
                    best = (Knobs { chunk_size, cache_entries }, self.log_ms[i][j].exp());
                }
            }
        }
        best
    }
}

fn knobs_decl() -> Vec<Knob> {
    let (chunk, cache) = (Knobs::CHUNK_BOUNDS, Knobs::CACHE_BOUNDS);
    vec![
        Knob { name: "chunk_size".into(), domain: Domain::Int { min: chunk.0 as i64, max: chunk.1 as i64, log: true } },
        Knob {
            name: "cache_entries".into(),
            domain: Domain::Int { min: cache.0 as i64, max: cache.1 as i64, log: true },
        },
    ]
}

fn to_config(knobs: Knobs) -> Config {
    BTreeMap::from([
        ("chunk_size".to_string(), Value::Int(knobs.chunk_size as i64)),
        ("cache_entries".to_string(), Value::Int(knobs.cache_entries as i64)),
    ])
}

fn to_knobs(config: &Config) -> Knobs {
    let int = |k: &str| match config[k] {
        Value::Int(v) => v as usize,
        ref other => panic!("{k} = {other:?}"),
    };
    Knobs { chunk_size: int("chunk_size"), cache_entries: int("cache_entries") }
}

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Tuner,
    TunerNoisy,
    Random,
    Grid,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Tuner => "tuner (plug-in EI, the default)",
            Method::TunerNoisy => "tuner with noisy EI",
            Method::Random => "random search",
            Method::Grid => "grid search",
        }
    }
}

/// What one seed's loop gave.
struct Run {
    /// The serving config's true latency after each trial (index 0: before any).
    serving_ms: Vec<f64>,
    /// Cumulative counts after each trial (index 0: before any): promotions
    /// of a config truly more than 5 % worse than the serving one,
    /// promotions, and trials the method declined (nothing worth trying or
    /// nothing left).
    bad_promotions_by: Vec<usize>,
    promotions_by: Vec<usize>,
    declined_by: Vec<usize>,
    propose_time: Duration,
    proposals: usize,
}

fn uniform(rng: &mut Pcg64Mcg) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut Pcg64Mcg) -> f64 {
    let u = 1.0 - uniform(rng);
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform(rng)).cos()
}

/// One arm's calls in a period: their logs' mean and variance.
fn arm(surface: &Surface, knobs: Knobs, period: f64, scenario: &Scenario, rng: &mut Pcg64Mcg) -> (f64, f64) {
    let (mu, sigma) = (surface.latency_ms(knobs).ln() + period, surface.sigma(knobs).max(scenario.sigma_floor));
    let calls = scenario.calls;
    let logs: Vec<f64> = (0..calls).map(|_| mu + sigma * normal(rng)).collect();
    let (mean, sd) = mean_sd(&logs);
    (mean, sd * sd)
}

/// The canary's noise.
struct Scenario {
    name: String,
    calls: usize,
    /// Per-call σ of ln latency at least this (0: as measured).
    sigma_floor: f64,
}

/// One seed's loop: `trials` trials of `method`.
fn run(surface: &Surface, method: Method, seed: u64, args: &Args, scenario: &Scenario, trials: usize) -> Run {
    let knobs = knobs_decl();
    let space = Space::new(&knobs).expect("the batcher's knobs are valid");
    let mut noise = Pcg64Mcg::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ method as u64);
    let mut search = Pcg64Mcg::seed_from_u64(seed ^ 0xa5a5);
    let mut problem = Problem { knobs, incumbent: to_config(Knobs::DEFAULT), history: Vec::new(), seed };
    let mut tried: Vec<Vec<f64>> = vec![space.encode(&problem.incumbent, "default").unwrap()];
    let levels = (args.budget as f64).sqrt().ceil() as usize;
    let mut grid = (0..levels * levels).map(|k| {
        let at = |i: usize| (i as f64 + 0.5) / levels as f64;
        vec![at(k / levels), at(k % levels)]
    });
    let mut out = Run {
        serving_ms: vec![surface.latency_ms(Knobs::DEFAULT)],
        bad_promotions_by: vec![0],
        promotions_by: vec![0],
        declined_by: vec![0],
        propose_time: Duration::ZERO,
        proposals: 0,
    };
    for _ in 0..trials {
        let mut rationale = String::new();
        let candidate = match method {
            Method::Tuner | Method::TunerNoisy => {
                let acquisition = if method == Method::Tuner { Acquisition::PlugInEi } else { Acquisition::NoisyEi };
                let start = Instant::now();
                let proposal = propose_with(&problem, acquisition);
                out.propose_time += start.elapsed();
                out.proposals += 1;
                match proposal {
                    Ok(p) => {
                        rationale = p.rationale;
                        Some(p.config)
                    }
                    Err(NoProposal::Invalid(e)) => panic!("the tuner refused the problem: {e}"),
                    Err(_) => None,
                }
            }
            Method::Random => (0..10_000)
                .map(|_| space.round(&space.sample(|| uniform(&mut search))))
                .find(|x| !tried.iter().any(|t| space.same(t, x)))
                .map(|x| space.decode(&x)),
            Method::Grid => grid
                .by_ref()
                .map(|x| space.round(&x))
                .find(|x| !tried.iter().any(|t| space.same(t, x)))
                .map(|x| space.decode(&x)),
        };
        let (mut bad, mut promotions, declined) = (
            *out.bad_promotions_by.last().unwrap(),
            *out.promotions_by.last().unwrap(),
            *out.declined_by.last().unwrap(),
        );
        let Some(candidate) = candidate else {
            out.serving_ms.push(*out.serving_ms.last().unwrap());
            out.bad_promotions_by.push(bad);
            out.promotions_by.push(promotions);
            out.declined_by.push(declined + 1);
            continue;
        };
        tried.push(space.encode(&candidate, "candidate").unwrap());
        let (cand, base) = (to_knobs(&candidate), to_knobs(&problem.incumbent));
        let period = PERIOD_SIGMA * normal(&mut noise);
        let (mc, vc) = arm(surface, cand, period, scenario, &mut noise);
        let (mb, vb) = arm(surface, base, period, scenario, &mut noise);
        let upper = (mc - mb) + Z95 * ((vc + vb) / scenario.calls as f64).sqrt();
        let verdict = if upper < 0.0 { Verdict::Promoted } else { Verdict::RolledBack };
        problem.history.push(Trial {
            candidate: candidate.clone(),
            baseline: problem.incumbent.clone(),
            candidate_estimate: mc.exp(),
            baseline_estimate: mb.exp(),
            verdict,
        });
        if args.trace == Some(seed) {
            println!(
                "{}: {} seed {seed} trial {}: chunk_size {:>4} cache_entries {:>5}: true {:.3}× the optimum, measured {:+.1} % vs serving: {verdict:?} {rationale}",
                scenario.name,
                method.name(),
                problem.history.len(),
                cand.chunk_size,
                cand.cache_entries,
                surface.latency_ms(cand) / surface.optimum().1,
                100.0 * ((mc - mb).exp() - 1.0),
            );
        }
        if verdict == Verdict::Promoted {
            promotions += 1;
            if surface.latency_ms(cand) > WITHIN * surface.latency_ms(base) {
                bad += 1;
            }
            problem.incumbent = candidate;
        }
        out.serving_ms.push(surface.latency_ms(to_knobs(&problem.incumbent)));
        out.bad_promotions_by.push(bad);
        out.promotions_by.push(promotions);
        out.declined_by.push(declined);
    }
    out
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn main() {
    let args = args();
    let started = Instant::now();
    let surface = measure(args.passes);
    let measured_in = started.elapsed();
    let (best, optimum_ms) = surface.optimum();
    let default_ms = surface.latency_ms(Knobs::DEFAULT);
    let sigmas: Vec<f64> = surface.sigma.iter().flatten().copied().collect();
    let mut sorted_sigmas = sigmas.clone();
    sorted_sigmas.sort_by(f64::total_cmp);
    println!(
        "surface: {} × {} grid points, {} calls each (the {REFINED_POINTS} lowest: 5×), each paired with a call of the default, measured in {:.1} s",
        surface.chunks.len(),
        surface.caches.len(),
        surface.samples,
        measured_in.as_secs_f64()
    );
    println!(
        "optimum: chunk_size {} cache_entries {} at {:.3} ms; default (chunk_size {}, cache_entries {}) {:.3} ms = {:.2}× the optimum",
        best.chunk_size,
        best.cache_entries,
        optimum_ms,
        Knobs::DEFAULT.chunk_size,
        Knobs::DEFAULT.cache_entries,
        default_ms,
        default_ms / optimum_ms
    );
    println!(
        "per-call dispersion (σ of ln latency): median {:.3}, max {:.3}; at the optimum {:.3}: its median is known to ±{:.1} % (1 se)",
        quantile(&sorted_sigmas, 0.5),
        sorted_sigmas[sorted_sigmas.len() - 1],
        surface.sigma(best),
        100.0 * surface.sigma(best) / (5.0 * surface.samples as f64).sqrt()
    );
    let mut near: Vec<(f64, usize, usize)> = Vec::new();
    for (i, &c) in surface.chunks.iter().enumerate() {
        for (j, &e) in surface.caches.iter().enumerate() {
            near.push((surface.log_ms[i][j].exp() / optimum_ms, c, e));
        }
    }
    near.sort_by(|a, b| a.0.total_cmp(&b.0));
    let within = near.iter().filter(|n| n.0 <= WITHIN).count();
    println!(
        "grid points within 5 % of the optimum: {within} of {}; the worst is {:.1}× the optimum",
        near.len(),
        near[near.len() - 1].0
    );
    println!(
        "loop: {} seeds, budget {} trials ({} for the trials to within 5 %), {} calls per arm, shared period effect σ = {PERIOD_SIGMA}",
        args.seeds,
        args.budget,
        REACH_FACTOR * args.budget,
        args.calls
    );
    let scenarios = [
        Scenario { name: "per-call dispersion as measured".into(), calls: args.calls, sigma_floor: 0.0 },
        Scenario {
            name: format!("per-call σ at least {HEAVY_SIGMA} (a service's calls, as in the judge's trials)"),
            calls: args.calls,
            sigma_floor: HEAVY_SIGMA,
        },
    ];
    let mut tuner_time = (Duration::ZERO, 0);
    for scenario in &scenarios {
        table(&surface, optimum_ms, &args, scenario, &mut tuner_time);
    }
    println!(
        "tuner: {:.1} ms per proposal (native, release; {} proposals, histories of 0 to {} trials)",
        tuner_time.0.as_secs_f64() * 1e3 / tuner_time.1.max(1) as f64,
        tuner_time.1,
        REACH_FACTOR * args.budget - 1
    );
}

/// Runs every method on every seed in `scenario` and prints their table.
fn table(surface: &Surface, optimum_ms: f64, args: &Args, scenario: &Scenario, tuner_time: &mut (Duration, usize)) {
    println!("\n{}:\n", scenario.name);
    let checkpoints: Vec<usize> = [5, 10, 15, 20].into_iter().filter(|&c| c <= args.budget).collect();
    let mut header = String::from("| method |");
    for c in &checkpoints {
        header += &format!(" after {c} trials |");
    }
    header += " trials to ≤ 5 % (median; seeds never) | bad promotions (> 5 % worse) | promotions |";
    println!("{header}");
    println!("|{}", "---|".repeat(checkpoints.len() + 4));
    let reach_budget = REACH_FACTOR * args.budget;
    let mut medians = Vec::new();
    let mut traces = Vec::new();
    for method in [Method::Tuner, Method::TunerNoisy, Method::Random, Method::Grid] {
        let runs: Vec<Run> =
            (0..args.seeds).map(|seed| run(surface, method, seed, args, scenario, reach_budget)).collect();
        let mut row = format!("| {} |", method.name());
        for &c in &checkpoints {
            let mut ratios: Vec<f64> = runs.iter().map(|r| r.serving_ms[c] / optimum_ms).collect();
            ratios.sort_by(f64::total_cmp);
            row += &format!(
                " {:.3} ({:.3}–{:.3}) |",
                quantile(&ratios, 0.5),
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.75)
            );
        }
        let per_seed: Vec<f64> = runs
            .iter()
            .map(|r| r.serving_ms.iter().position(|&ms| ms <= WITHIN * optimum_ms).map_or(f64::INFINITY, |t| t as f64))
            .collect();
        traces.push(format!("{}: trials to ≤ 5 % per seed {per_seed:?}", method.name()));
        let mut reached = per_seed;
        reached.sort_by(f64::total_cmp);
        let never = reached.iter().filter(|t| t.is_infinite()).count();
        let median = quantile_or_inf(&reached);
        medians.push(median);
        let median_text = if median.is_finite() { format!("{median}") } else { format!("> {reach_budget}") };
        // Promotions within the budget.
        let bad: usize = runs.iter().map(|r| r.bad_promotions_by[args.budget]).sum();
        let promotions: usize = runs.iter().map(|r| r.promotions_by[args.budget]).sum();
        let declined: usize = runs.iter().map(|r| r.declined_by[args.budget]).sum();
        row += &format!(" {median_text}; {never} of {} never |", args.seeds);
        row += &format!(" {bad} |");
        row += &format!(
            " {promotions}{} |",
            if declined > 0 { format!(" ({declined} trials declined)") } else { String::new() }
        );
        println!("{row}");
        if method == Method::Tuner {
            tuner_time.0 += runs.iter().map(|r| r.propose_time).sum::<Duration>();
            tuner_time.1 += runs.iter().map(|r| r.proposals).sum::<usize>();
        }
    }
    println!();
    if args.trace.is_some() {
        for trace in traces {
            println!("{trace}");
        }
    }
    let ratio = |other: f64| {
        if medians[0].is_finite() && other.is_finite() {
            format!("{:.2}×", other / medians[0])
        } else if medians[0].is_finite() {
            format!("> {:.2}× (past {reach_budget} trials)", reach_budget as f64 / medians[0])
        } else {
            format!("n/a (the tuner's median is past {reach_budget} trials)")
        }
    };
    println!(
        "median trials to within 5 %: random search / tuner = {}, grid search / tuner = {}, tuner with noisy EI / tuner = {}",
        ratio(medians[2]),
        ratio(medians[3]),
        ratio(medians[1])
    );
}

/// The median of sorted values that may be infinite (a seed that never got
/// there): infinite when half or more are.
fn quantile_or_inf(sorted: &[f64]) -> f64 {
    let mid = (sorted.len() - 1) as f64 / 2.0;
    let (lo, hi) = (sorted[mid.floor() as usize], sorted[mid.ceil() as usize]);
    if hi.is_infinite() { hi } else { (lo + hi) / 2.0 }
}
