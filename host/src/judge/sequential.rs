//! The sequential judge: every objective is a time-uniform confidence
//! sequence ([`super::sequence`]), so a verdict's error guarantee holds
//! however often and whenever the judge looks.
//!
//! **Objectives.**
//! - *Sample ratio* (Fabijan et al., "Diagnosing Sample Ratio Mismatch in
//!   Online Controlled Experiments", KDD 2019): the candidate's share of the
//!   step's calls must match its configured share. Conditioning the two
//!   arms' Poisson call counts on their total makes the candidate's count
//!   binomial with the configured share (Lindon & Malek, "Anytime-valid
//!   inference for multinomial count data", NeurIPS 2022), so one rate
//!   confidence sequence tests both the routing and the throughput per share
//!   — a candidate that loses calls (hangs, dies before answering) shows as a
//!   mismatch. A mismatch fails the step and nothing else is judged: the
//!   samples are biased.
//! - *Latency quantiles* (default p50 and p95): each arm's quantile has a
//!   confidence sequence of order statistics (Howard & Ramdas, Bernoulli
//!   2022); the ratio candidate / baseline is bounded by the ratio of the
//!   bounds. Quantiles need no model of the latency distribution: heavy
//!   tails, ties of a millisecond clock and bimodal latencies are all fine,
//!   and the ratio does not depend on the unit of time.
//! - *Outcomes*: every outcome class (each typed error class of the unit,
//!   timeout, memory, trap, circuit-open, …, `invalid-input` included — a
//!   candidate refusing what the baseline accepted is a regression) has a
//!   rate confidence sequence per arm; the increase is bounded by their
//!   difference.
//!
//! **Verdicts.** Fail as soon as any objective shows harm: the sample ratio
//! excludes the configured share, a quantile's ratio is above 1 +
//! `tolerance`, or a class's increase is above `error_tolerance_points`.
//! Pass once each arm has `min_samples` calls and every quantile's ratio is
//! shown under 1 + `threshold` and every class's increase under
//! `error_points`. Inconclusive when the candidate has had `max_samples`
//! calls without either (the rollout also ends a step inconclusive when its
//! running time is spent).
//!
//! **Spending α.** The step's level ([`super::step_alpha`]) is split equally
//! over three families — sample ratio, latency, outcomes; the latency share
//! equally over the quantiles and, for each, over the two arms; the
//! outcomes' share over [`CLASSES`] classes (each split over the two arms by
//! [`increase_bounds`]). A union bound over all of them keeps the chance of
//! failing a candidate no worse than its baseline under the step's level,
//! whatever the number of looks.

use super::sequence::{increase_bounds, quantile_ranks, rate_bounds};
use super::{Arm, JudgeConfig, Judgement, Method, Objective, ObjectiveKind, Standing, Step, Verdict};
use super::{change_words, signed_pct};

/// Outcome classes the outcomes' share of α is split over: the contract's
/// seven error classes and one for any other name.
pub const CLASSES: usize = 8;

/// Families the step's α is split over: sample ratio, latency, outcomes.
const FAMILIES: f64 = 3.0;

pub fn judge(c: &Arm, b: &Arm, cfg: &JudgeConfig, step: &Step) -> Judgement {
    let (nc, nb) = (c.calls(), b.calls());
    let family_alpha = step.alpha / FAMILIES;
    let mut objectives = vec![sample_ratio(nc as u64, nb as u64, step.share, family_alpha)];
    let per_quantile = family_alpha / cfg.quantiles.len().max(1) as f64 / 2.0;
    for q in &cfg.quantiles {
        objectives.push(quantile(c, b, q.p(), q.limits(cfg), per_quantile));
    }
    let per_class = family_alpha / CLASSES as f64;
    let classes: std::collections::BTreeSet<&String> = c.outcomes.keys().chain(b.outcomes.keys()).collect();
    for class in classes {
        let (hc, hb) = (c.outcomes.get(class).copied().unwrap_or(0), b.outcomes.get(class).copied().unwrap_or(0));
        objectives.push(outcome(class, (hc, nc as u64), (hb, nb as u64), cfg, per_class));
    }

    let mut j = Judgement {
        verdict: Verdict::Pending,
        reason: String::new(),
        method: Method::Sequential,
        decided_by: None,
        candidate_samples: nc,
        baseline_samples: nb,
        looks: step.looks,
        threshold: cfg.threshold,
        alpha: step.alpha,
        objectives,
    };
    let calls = format!("after {nc} candidate and {nb} baseline calls ({} looks)", step.looks);
    if let Some(harm) = j.objectives.iter().find(|o| o.standing == Standing::Harm) {
        j.verdict = Verdict::Fail;
        j.decided_by = Some(harm.name.clone());
        j.reason = format!("{} {calls}", harm.words);
        return j;
    }
    let open = j.objectives.iter().filter(|o| o.kind != ObjectiveKind::SampleRatio && o.standing != Standing::Within);
    // The objective furthest from its limit decides when the rest are in.
    let furthest = open.max_by(|x, y| (x.high / x.limit).total_cmp(&(y.high / y.limit)));
    let judged: Vec<String> = j
        .objectives
        .iter()
        .filter(|o| o.kind != ObjectiveKind::SampleRatio)
        .map(|o| o.words.clone())
        .collect::<Vec<_>>();
    match furthest {
        None if nc.min(nb) >= cfg.min_samples => {
            j.verdict = Verdict::Pass;
            j.decided_by = j
                .objectives
                .iter()
                .filter(|o| o.kind != ObjectiveKind::SampleRatio)
                .max_by(|x, y| (x.high / x.limit).total_cmp(&(y.high / y.limit)))
                .map(|o| o.name.clone());
            j.reason = format!("every objective within its limit {calls}: {}", judged.join("; "));
        }
        None => {
            j.reason = format!(
                "every objective within its limit; {} of {} calls per arm before a pass",
                nc.min(nb),
                cfg.min_samples
            );
        }
        Some(o) if nc >= cfg.max_samples => {
            j.verdict = Verdict::Inconclusive;
            j.decided_by = Some(o.name.clone());
            j.reason = format!("no verdict within {} candidate calls: {}", cfg.max_samples, o.words);
        }
        Some(o) => {
            j.decided_by = Some(o.name.clone());
            j.reason = format!("collecting {calls}: {}", o.words);
        }
    }
    j
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn sample_ratio(nc: u64, nb: u64, share: f64, alpha: f64) -> Objective {
    let n = nc + nb;
    let (low, high) = rate_bounds(nc, n, alpha);
    let observed = if n == 0 { share } else { nc as f64 / n as f64 };
    let mismatch = share < low || share > high;
    let words = if mismatch {
        format!(
            "sample ratio mismatch: the candidate got {} of the calls, configured {} (bounds {}–{}); \
             the samples are biased, so nothing else was judged",
            pct(observed),
            pct(share),
            pct(low),
            pct(high)
        )
    } else {
        format!("the candidate got {} of the calls, configured {}", pct(observed), pct(share))
    };
    Objective {
        name: "sample-ratio".into(),
        kind: ObjectiveKind::SampleRatio,
        baseline: 1.0 - share,
        candidate: share,
        estimate: observed,
        low,
        high,
        limit: share,
        tolerance: share,
        alpha,
        p_value: None,
        standing: if mismatch { Standing::Harm } else { Standing::Within },
        words,
    }
}

/// `p` as a name: `p50`, `p95`, `p99.9`.
fn quantile_name(p: f64) -> String {
    let x = p * 100.0;
    if (x - x.round()).abs() < 1e-9 { format!("p{}", x.round()) } else { format!("p{x}") }
}

fn quantile(c: &Arm, b: &Arm, p: f64, (threshold, tol): (f64, f64), alpha: f64) -> Objective {
    let bounds = |arm: &Arm| {
        let (lo, hi) = quantile_ranks(p, arm.sketch.count(), alpha);
        let low = lo.map(|r| arm.sketch.at_least(r)).unwrap_or(0.0);
        let high = hi.map(|r| arm.sketch.at_most(r)).unwrap_or(f64::INFINITY);
        (low, high)
    };
    let ((cl, ch), (bl, bh)) = (bounds(c), bounds(b));
    let (qc, qb) = (c.sketch.quantile(p), b.sketch.quantile(p));
    let estimate = if qb > 0.0 { qc / qb } else { 1.0 };
    let low = if bh.is_finite() && bh > 0.0 { cl / bh } else { 0.0 };
    let high = if bl > 0.0 { ch / bl } else { f64::INFINITY };
    let (limit, tolerance) = (1.0 + threshold, 1.0 + tol);
    let name = quantile_name(p);
    let figures = format!("{qb:.3} → {qc:.3} ms");
    let (standing, words) = if low > tolerance {
        let w = format!(
            "{name} {} ({figures}): at least {} slower, over the {} tolerance",
            change_words(estimate),
            pct(low - 1.0),
            pct(tol)
        );
        (Standing::Harm, w)
    } else if high < limit {
        let w = format!(
            "{name} {} ({figures}), bound {} < {} threshold",
            change_words(estimate),
            signed_pct(high - 1.0),
            pct(threshold)
        );
        (Standing::Within, w)
    } else {
        let w = format!(
            "{name} {} ({figures}), bound {} not yet under the {} threshold",
            change_words(estimate),
            signed_pct(high - 1.0),
            pct(threshold)
        );
        (Standing::Undecided, w)
    };
    Objective {
        name,
        kind: ObjectiveKind::Latency,
        baseline: qb,
        candidate: qc,
        estimate,
        low,
        high,
        limit,
        tolerance,
        alpha,
        p_value: None,
        standing,
        words,
    }
}

fn outcome(class: &str, cand: (u64, u64), base: (u64, u64), cfg: &JudgeConfig, alpha: f64) -> Objective {
    let rate = |(h, n): (u64, u64)| if n == 0 { 0.0 } else { h as f64 / n as f64 };
    let (rc, rb) = (rate(cand), rate(base));
    let (low, high) = increase_bounds(cand, base, alpha);
    let (limit, tolerance) = (cfg.error_points / 100.0, cfg.error_tolerance_points / 100.0);
    let points = |x: f64| format!("{:+.1} points", x * 100.0);
    let figures = format!("{class} {} against {}", pct(rc), pct(rb));
    let (standing, words) = if low > tolerance {
        let w =
            format!("{figures}: at least {}, over the {:.1}-point tolerance", points(low), cfg.error_tolerance_points);
        (Standing::Harm, w)
    } else if high < limit {
        (Standing::Within, format!("{figures}, bound {} < {} points", points(high), cfg.error_points))
    } else {
        let w = format!("{figures}, bound {} not yet under {} points", points(high), cfg.error_points);
        (Standing::Undecided, w)
    };
    Objective {
        name: format!("outcome:{class}"),
        kind: ObjectiveKind::Outcome,
        baseline: rb,
        candidate: rc,
        estimate: rc - rb,
        low,
        high,
        limit,
        tolerance,
        alpha,
        p_value: None,
        standing,
        words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn arm(rng: &mut StdRng, n: usize, share: f64, scale: f64, errors: f64, class: &str) -> Arm {
        let mut a = Arm::new(share);
        for _ in 0..n {
            let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
            let cls = if rng.random::<f64>() < errors { class } else { super::super::OK };
            a.record(scale * (0.3 * z).exp(), cls);
        }
        a
    }

    fn step(share: f64) -> Step {
        Step { share, alpha: 0.01 / 3.0, looks: 1 }
    }

    #[test]
    fn identical_arms_pass_and_say_so_in_words() {
        let mut rng = StdRng::seed_from_u64(1);
        let (c, b) =
            (arm(&mut rng, 5000, 0.5, 1.0, 0.01, "dependency"), arm(&mut rng, 5000, 0.5, 1.0, 0.01, "dependency"));
        let cfg = JudgeConfig { threshold: 0.2, ..Default::default() };
        let j = judge(&c, &b, &cfg, &step(0.5));
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert!(j.reason.contains("p95") && j.reason.contains("threshold"), "{}", j.reason);
    }

    #[test]
    fn a_candidate_refusing_everything_fails_on_its_outcome() {
        let mut rng = StdRng::seed_from_u64(2);
        let b = arm(&mut rng, 450, 0.9, 1.0, 0.0, "x");
        let c = arm(&mut rng, 50, 0.1, 1.0, 1.0, "invalid-input");
        let j = judge(&c, &b, &JudgeConfig::default(), &step(0.1));
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(j.decided_by.as_deref(), Some("outcome:invalid-input"));
        assert!(j.reason.contains("invalid-input 100.0 % against 0.0 %"), "{}", j.reason);
    }

    #[test]
    fn a_slower_candidate_fails_on_latency_and_never_reads_better() {
        let mut rng = StdRng::seed_from_u64(3);
        let b = arm(&mut rng, 9000, 0.9, 1.0, 0.0, "x");
        let c = arm(&mut rng, 1000, 0.1, 1.5, 0.0, "x");
        let j = judge(&c, &b, &JudgeConfig::default(), &step(0.1));
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert!(j.reason.contains("slower") && !j.reason.contains("faster"), "{}", j.reason);
    }

    #[test]
    fn a_split_off_its_share_is_a_sample_ratio_mismatch() {
        let mut rng = StdRng::seed_from_u64(4);
        let b = arm(&mut rng, 9300, 0.9, 1.0, 0.0, "x");
        let c = arm(&mut rng, 700, 0.1, 1.0, 0.0, "x");
        let j = judge(&c, &b, &JudgeConfig::default(), &step(0.1));
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(j.decided_by.as_deref(), Some("sample-ratio"));
        assert!(j.reason.contains("7.0 %") && j.reason.contains("10.0 %"), "{}", j.reason);
    }
}
