//! The judge in simulation: 200 A/A trials (same version, noisy latency)
//! must roll back at most 1 %; a 10 % p95 regression and a +2 point error
//! rate must each be caught in at least 99 % of 200 trials. The seed's plain
//! threshold rule runs on the same trials for comparison; both are printed.

use kaizen_host::judge::{Arm, JudgeConfig, Verdict, judge};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Looks the judge takes during one rollout step, in calls per arm.
const LOOKS: [usize; 8] = [50, 100, 200, 400, 800, 1600, 3200, 4000];
const TRIALS: usize = 200;

/// Log-normal latency around 2 ms with σ = 0.5 (a coefficient of variation
/// over 50 %: noisy), times `scale`.
fn latency(rng: &mut StdRng, scale: f64) -> f64 {
    // Box-Muller.
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    2.0 * (0.5 * z).exp() * scale
}

struct Scenario {
    name: &'static str,
    latency_scale: f64,
    error_rate: f64,
}

#[derive(Default)]
struct Tally {
    rolled_back: usize,
    samples_at_decision: Vec<usize>,
}

/// The seed-004 rule: after 50 calls, roll back when the candidate's p95 or
/// error rate is more than 10 % above the baseline's.
fn plain_rule(c: &Arm, b: &Arm) -> bool {
    let p95 = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[((s.len() - 1) as f64 * 0.95) as usize]
    };
    let rate = |a: &Arm| a.errors as f64 / a.calls() as f64;
    p95(&c.latencies_ms) > p95(&b.latencies_ms) * 1.10 || rate(c) > rate(b) * 1.10 + 1e-12
}

fn run(s: &Scenario, seed: u64) -> (Tally, Tally) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cfg = JudgeConfig::default();
    let (mut judged, mut plain) = (Tally::default(), Tally::default());
    for _ in 0..TRIALS {
        let (mut c, mut b) = (Arm { share: 0.5, ..Default::default() }, Arm { share: 0.5, ..Default::default() });
        let (mut judge_done, mut plain_done) = (false, false);
        for &n in &LOOKS {
            while c.calls() < n {
                c.latencies_ms.push(latency(&mut rng, s.latency_scale));
                c.errors += u64::from(rng.random::<f64>() < s.error_rate);
                b.latencies_ms.push(latency(&mut rng, 1.0));
                b.errors += u64::from(rng.random::<f64>() < 0.01);
            }
            if !plain_done && plain_rule(&c, &b) {
                plain.rolled_back += 1;
                plain.samples_at_decision.push(n);
                plain_done = true;
            }
            if !judge_done {
                match judge(&c, &b, &cfg).verdict {
                    Verdict::Fail => {
                        judged.rolled_back += 1;
                        judged.samples_at_decision.push(n);
                        judge_done = true;
                    }
                    Verdict::Pass => {
                        judged.samples_at_decision.push(n);
                        judge_done = true;
                    }
                    Verdict::Inconclusive => {}
                }
            }
            if judge_done && plain_done {
                break;
            }
        }
        if !plain_done {
            plain.samples_at_decision.push(*LOOKS.last().unwrap());
        }
    }
    (judged, plain)
}

fn median(v: &mut [usize]) -> usize {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[test]
fn judge_against_the_plain_threshold_rule_over_200_trials() {
    let scenarios = [
        Scenario { name: "A/A (same version)", latency_scale: 1.0, error_rate: 0.01 },
        Scenario { name: "p95 +10 %", latency_scale: 1.10, error_rate: 0.01 },
        Scenario { name: "error rate +2 points", latency_scale: 1.0, error_rate: 0.03 },
    ];
    println!(
        "\n{:<22} {:>16} {:>14} {:>18} {:>14}",
        "scenario", "judge rollbacks", "judge median n", "plain-rule rollb.", "plain median n"
    );
    let mut results = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let (mut j, mut p) = run(s, 42 + i as u64);
        println!(
            "{:<22} {:>11}/{TRIALS} {:>14} {:>13}/{TRIALS} {:>14}",
            s.name,
            j.rolled_back,
            median(&mut j.samples_at_decision),
            p.rolled_back,
            median(&mut p.samples_at_decision)
        );
        results.push((j.rolled_back, p.rolled_back));
    }
    let (aa, _) = results[0];
    assert!(aa * 100 <= TRIALS, "A/A false rollbacks {aa}/{TRIALS} exceed 1 %");
    assert!(results[1].0 * 100 >= 99 * TRIALS, "p95 +10 % caught only {}/{TRIALS}", results[1].0);
    assert!(results[2].0 * 100 >= 99 * TRIALS, "+2 points caught only {}/{TRIALS}", results[2].0);
}
