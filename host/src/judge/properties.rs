//! Properties of the sequential judge's statistics: the confidence
//! sequences cover at their stated level on simulated streams, looked at
//! after every observation; swapping the arms flips every direction; the
//! verdict does not depend on the unit of time.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sequence::rate_bounds;
use super::{Against, Comparison, JudgeConfig, OK, Step, judge};

fn lognormal(rng: &mut StdRng, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (sigma * z).exp()
}

/// Of 400 streams of 2 000 Bernoulli draws, looked at after every draw,
/// the share whose rate sequence ever excludes the true rate stays under
/// α = 0.05 (plus three standard errors of the count).
#[test]
fn rate_sequences_cover_at_every_look() {
    let (alpha, streams) = (0.05, 400);
    let mut rng = StdRng::seed_from_u64(7);
    let mut missed = 0;
    for s in 0..streams {
        let theta = [0.01, 0.1, 0.5][s % 3];
        let mut hits = 0;
        for n in 1..=2000u64 {
            hits += u64::from(rng.random::<f64>() < theta);
            let (lo, hi) = rate_bounds(hits, n, alpha);
            if theta < lo || theta > hi {
                missed += 1;
                break;
            }
        }
    }
    let allowed = alpha * streams as f64 + 3.0 * (alpha * (1.0 - alpha) * streams as f64).sqrt();
    assert!(f64::from(missed) <= allowed, "{missed} of {streams} streams missed the true rate at some look");
}

/// One stream of calls, recorded twice: as (candidate, baseline) and with
/// the roles swapped, latencies in units of `scale` ms.
fn streams(seed: u64, n: usize, share: f64, scale: f64, factor: f64, errors: f64) -> (Comparison, Comparison) {
    let cfg = JudgeConfig::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ab, mut ba) = (Comparison::new(share, &cfg), Comparison::new(1.0 - share, &cfg));
    for _ in 0..n {
        let cand = rng.random::<f64>() < share;
        let ms = scale * lognormal(&mut rng, 0.4) * if cand { factor } else { 1.0 };
        let class = if rng.random::<f64>() < errors { "dependency" } else { OK };
        ab.record(cand, ms, class);
        ba.record(!cand, ms, class);
    }
    (ab, ba)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Swapping candidate and baseline flips every direction: a clearly
    /// slower candidate reads faster once the arms are swapped, its bounds
    /// fall on the other side of 1, and every outcome's increase is negated.
    #[test]
    fn swapping_the_arms_flips_the_direction(
        seed in 0u64..1000,
        factor in prop_oneof![0.6f64..0.85, 1.2f64..1.6],
        share in 0.3f64..0.7,
    ) {
        let (ab, ba) = streams(seed, 4000, share, 1.0, factor, 0.02);
        let cfg = JudgeConfig::default();
        let x = judge(&ab, &cfg, &Step { share, alpha: 0.003, looks: 1, against: Against::Baseline });
        let y = judge(&ba, &cfg, &Step { share: 1.0 - share, alpha: 0.003, looks: 1, against: Against::Baseline });
        for (o, p) in x.objectives.iter().zip(&y.objectives) {
            prop_assert_eq!(&o.name, &p.name);
            match o.kind {
                super::ObjectiveKind::Latency => {
                    prop_assert!((o.estimate - 1.0) * (p.estimate - 1.0) < 0.0, "{}: {} vs {}", o.name, o.estimate, p.estimate);
                    if o.low > 1.0 { prop_assert!(p.high < 1.0, "{}: {:?} vs {:?}", o.name, (o.low, o.high), (p.low, p.high)); }
                    // `low` is at the failure's level, `high` at the pass's
                    // (wider α, tighter): a failure bound past 1 on one side
                    // implies a pass bound past 1 on the other, not the
                    // reverse.
                    if p.low > 1.0 { prop_assert!(o.high < 1.0, "{}: {:?} vs {:?}", o.name, (o.low, o.high), (p.low, p.high)); }
                }
                super::ObjectiveKind::Outcome => {
                    prop_assert!((o.estimate + p.estimate).abs() < 1e-12);
                    // `low` is at the failure's level, `high` at the
                    // pass's (wider α, so a tighter bound): swapped, each
                    // pass bound lies inside the other's failure bound.
                    prop_assert!(p.high <= -o.low + 1e-12 && o.high <= -p.low + 1e-12);
                    let (c, b) = ((o.candidate * 1000.0) as u64, (o.baseline * 1000.0) as u64);
                    let (l, h) = super::increase_bounds((c, 1000), (b, 1000), o.alpha);
                    let (l2, h2) = super::increase_bounds((b, 1000), (c, 1000), o.alpha);
                    prop_assert!((l + h2).abs() < 1e-12 && (h + l2).abs() < 1e-12);
                }
                super::ObjectiveKind::SampleRatio => {
                    prop_assert!((o.estimate + p.estimate - 1.0).abs() < 1e-12);
                }
            }
        }
    }

    /// Milliseconds or microseconds: the same verdict and the same ratios and
    /// bounds, to the latency sketch's resolution (two buckets of 0.25 %).
    #[test]
    fn the_unit_of_time_changes_nothing(seed in 0u64..1000, factor in 0.8f64..1.3) {
        let cfg = JudgeConfig::default();
        let step = Step { share: 0.3, alpha: 0.003, looks: 1, against: Against::Baseline };
        let (ms, _) = streams(seed, 4000, 0.3, 1.0, factor, 0.0);
        let (us, _) = streams(seed, 4000, 0.3, 1000.0, factor, 0.0);
        let (x, y) = (judge(&ms, &cfg, &step), judge(&us, &cfg, &step));
        prop_assert_eq!(x.verdict, y.verdict);
        for (o, p) in x.objectives.iter().zip(&y.objectives) {
            for (a, b) in [(o.estimate, p.estimate), (o.low, p.low), (o.high, p.high)] {
                prop_assert!(a == b || (a / b - 1.0).abs() < 0.0051, "{}: {} vs {}", o.name, a, b);
            }
        }
    }
}
