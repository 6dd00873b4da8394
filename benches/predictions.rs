//! Calibration of predicted success on replayed attempt histories
//! (synthetic, seeded). Each history has 60 keys (target, finding kind,
//! source), each with a true success probability — most good (Beta(4, 2),
//! mean 0.67), some bad (Beta(1, 4), mean 0.2) — and 3 000 attempts, each
//! on a key drawn with Zipf-like weights (a few keys get most attempts, as
//! in practice). Before each attempt every predictor predicts; then the
//! outcome is drawn and every predictor learns it.
//!
//! Predictors: the loop's (Beta posterior with the empirical-Bayes prior,
//! [`kaizen_host::r#loop::predict`]); the same per key with a uniform
//! Beta(1, 1) prior (Laplace's rule); the overall running rate (no per-key
//! record); and a constant 0.5. Prints the Brier score of each (mean
//! squared error of the predicted probability; lower is better, 0.25 for a
//! constant 0.5 on a fair coin) with its ratio to the constant baseline,
//! the coverage of the loop's 90 % credible interval, and the loop's
//! reliability table (predicted vs observed success per bin).
//!
//! Run with `cargo bench --bench predictions` (`-- --histories N`, default
//! 20).

use kaizen_host::r#loop::predict::{Ended, Predictor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: usize = 60;
const ATTEMPTS: usize = 3000;

/// A draw from Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b),
/// for whole a and b: sums of exponentials.
fn beta(rng: &mut StdRng, a: u32, b: u32) -> f64 {
    let gamma = |rng: &mut StdRng, k: u32| (0..k).map(|_| -(1.0 - rng.random::<f64>()).ln()).sum::<f64>();
    let (x, y) = (gamma(rng, a), gamma(rng, b));
    x / (x + y)
}

struct Scores {
    brier: [f64; 4],
    n: usize,
    covered: usize,
    /// Per tenth of predicted probability: (count, sum predicted, sum observed).
    bins: [(usize, f64, f64); 10],
}

fn history(seed: u64, s: &mut Scores) {
    let mut rng = StdRng::seed_from_u64(seed);
    let truth: Vec<f64> = (0..KEYS)
        .map(|_| if rng.random::<f64>() < 0.7 { beta(&mut rng, 4, 2) } else { beta(&mut rng, 1, 4) })
        .collect();
    let weights: Vec<f64> = (0..KEYS).map(|k| 1.0 / (k as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let names: Vec<(String, String, String)> = (0..KEYS)
        .map(|k| (format!("unit-{}", k % 12), format!("kind-{}", k % 5), format!("source-{}", k % 3)))
        .collect();
    let mut loop_predictor = Predictor::default();
    let mut laplace = vec![(0u32, 0u32); KEYS];
    let (mut overall_s, mut overall_n) = (0u32, 0u32);
    for _ in 0..ATTEMPTS {
        let mut u = rng.random::<f64>() * total;
        let k = weights.iter().position(|w| {
            u -= w;
            u <= 0.0
        });
        let k = k.unwrap_or(KEYS - 1);
        let (t, kind, src) = &names[k];
        let ours = loop_predictor.predict(t, kind, Some(src));
        let lap = (laplace[k].0 as f64 + 1.0) / ((laplace[k].0 + laplace[k].1) as f64 + 2.0);
        let overall = (overall_s as f64 + 1.0) / (overall_n as f64 + 2.0);
        let success = rng.random::<f64>() < truth[k];
        let y = if success { 1.0 } else { 0.0 };
        for (i, p) in [ours.p, lap, overall, 0.5].into_iter().enumerate() {
            s.brier[i] += (p - y) * (p - y);
        }
        s.n += 1;
        s.covered += usize::from(ours.low <= truth[k] && truth[k] <= ours.high);
        let bin = ((ours.p * 10.0) as usize).min(9);
        s.bins[bin].0 += 1;
        s.bins[bin].1 += ours.p;
        s.bins[bin].2 += y;
        loop_predictor.add(t, kind, src, if success { Ended::Success } else { Ended::Failure });
        if success {
            laplace[k].0 += 1;
            overall_s += 1;
        } else {
            laplace[k].1 += 1;
        }
        overall_n += 1;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let histories = args
        .iter()
        .position(|a| a == "--histories")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20usize);
    let mut s = Scores { brier: [0.0; 4], n: 0, covered: 0, bins: [(0, 0.0, 0.0); 10] };
    for seed in 0..histories as u64 {
        history(seed, &mut s);
    }
    let n = s.n as f64;
    println!("predicted success: {histories} histories × {ATTEMPTS} attempts on {KEYS} keys (seeds 0..{histories})");
    println!();
    println!("| predictor | Brier score | / constant 0.5 |");
    println!("|---|---|---|");
    let constant = s.brier[3] / n;
    for (name, b) in [
        ("the loop's (Beta posterior, empirical-Bayes prior)", s.brier[0]),
        ("per key, uniform prior (Laplace)", s.brier[1]),
        ("overall running rate", s.brier[2]),
        ("constant 0.5", s.brier[3]),
    ] {
        println!("| {name} | {:.4} | {:.3}× |", b / n, b / n / constant);
    }
    println!();
    println!("90 % credible interval held the true probability in {:.1} % of attempts", s.covered as f64 / n * 100.0);
    println!();
    println!("reliability of the loop's prediction:");
    println!();
    println!("| predicted | attempts | mean predicted | observed success |");
    println!("|---|---|---|---|");
    for (i, (count, sum_p, sum_y)) in s.bins.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        println!(
            "| {:.1}–{:.1} | {count} | {:.3} | {:.3} |",
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            sum_p / *count as f64,
            sum_y / *count as f64
        );
    }
}
