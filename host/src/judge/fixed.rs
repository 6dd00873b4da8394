//! The fixed-level judge (`judge.method = "fixed"`), the judge before
//! sequential testing, kept for side-by-side trials: each look runs tests at
//! a fixed level, so looking again and again wears its guarantee down.
//!
//! Latency is compared with a Mann-Whitney U rank test and a Hodges-Lehmann
//! estimate of the shift (on log latency, so the shift is a ratio) with its
//! confidence interval, as Kayenta's judge does; error rates with a
//! two-proportion z-test; throughput per share of traffic with a Poisson
//! z-test. A metric fails the candidate when it is significantly worse (one
//! sided, p < alpha) and its estimated degradation is at least half the
//! threshold; the candidate passes when no metric is significantly worse and
//! the latency ratio's upper bound is under the threshold, or when the
//! sample budget is spent without evidence of harm. `invalid-input` answers
//! are not counted as errors here: the blind spot the sequential judge's
//! per-class outcomes close.

use super::{Arm, JudgeConfig, Judgement, Method, Objective, ObjectiveKind, Standing, Verdict, change_words};

/// Latency comparison.
#[derive(Debug, Clone, Default, PartialEq)]
struct LatencyTest {
    p_value: f64,
    /// Hodges-Lehmann shift of log latency, as a ratio (1.10 = 10 % slower).
    ratio: f64,
    ratio_ci_low: f64,
    ratio_ci_high: f64,
    baseline_median_ms: f64,
    candidate_median_ms: f64,
    /// ratio - 1.
    degradation: f64,
}

/// Error-rate comparison.
#[derive(Debug, Clone, Default, PartialEq)]
struct ErrorTest {
    baseline_rate: f64,
    candidate_rate: f64,
    p_value: f64,
    /// Relative increase, with a one-point floor under the baseline rate so
    /// that 0 % → 2 % is a 200 % degradation rather than infinite.
    degradation: f64,
    /// Lower and upper confidence bounds of the increase (fractions,
    /// Agresti-Caffo), at the judge's confidence.
    increase_low: f64,
    increase_high: f64,
}

/// Throughput comparison, per share of traffic.
#[derive(Debug, Clone, Default, PartialEq)]
struct ThroughputTest {
    baseline_per_share: f64,
    candidate_per_share: f64,
    p_value: f64,
    degradation: f64,
}

/// Judge `candidate` against `baseline` with fixed-level tests at this look.
pub fn judge(candidate: &Arm, baseline: &Arm, cfg: &JudgeConfig, looks: u64) -> Judgement {
    let (nc, nb) = (candidate.calls(), baseline.calls());
    let alpha = cfg.alpha;
    let latency = latency_test(&candidate.latencies_ms, &baseline.latencies_ms, alpha);
    let errors = error_test(candidate.errors, nc, baseline.errors, nb, alpha);
    let throughput = throughput_test(nc, candidate.share, nb, baseline.share);
    let half = cfg.threshold / 2.0;
    let lat_fail = latency.p_value < alpha && latency.degradation >= half;
    let err_fail = errors.p_value < alpha && errors.degradation >= half;
    let thr_fail = throughput.p_value < alpha && throughput.degradation >= half;
    let lat_within = latency.ratio_ci_high - 1.0 < cfg.threshold;
    let err_within = errors.increase_high * 100.0 < cfg.error_points;
    let standing = |fail: bool, within: bool| {
        if fail {
            Standing::Harm
        } else if within {
            Standing::Within
        } else {
            Standing::Undecided
        }
    };
    let objectives = vec![
        Objective {
            name: "latency".into(),
            kind: ObjectiveKind::Latency,
            baseline: latency.baseline_median_ms,
            candidate: latency.candidate_median_ms,
            estimate: latency.ratio,
            low: latency.ratio_ci_low,
            high: latency.ratio_ci_high,
            limit: 1.0 + cfg.threshold,
            tolerance: 1.0 + half,
            alpha,
            pass_alpha: None,
            fallback: false,
            p_value: Some(latency.p_value),
            e_value: None,
            standing: standing(lat_fail, lat_within),
            words: format!(
                "latency {} (Hodges-Lehmann ratio {:.3}, CI {:.3}..{:.3}, Mann-Whitney p={:.2e})",
                change_words(latency.ratio),
                latency.ratio,
                latency.ratio_ci_low,
                latency.ratio_ci_high,
                latency.p_value
            ),
        },
        Objective {
            name: "errors".into(),
            kind: ObjectiveKind::Outcome,
            baseline: errors.baseline_rate,
            candidate: errors.candidate_rate,
            estimate: errors.candidate_rate - errors.baseline_rate,
            low: errors.increase_low,
            high: errors.increase_high,
            limit: cfg.error_points / 100.0,
            tolerance: 0.0,
            alpha,
            pass_alpha: None,
            fallback: false,
            p_value: Some(errors.p_value),
            e_value: None,
            standing: standing(err_fail, err_within),
            words: format!(
                "error rate {:.2} % against {:.2} % (p={:.2e})",
                errors.candidate_rate * 100.0,
                errors.baseline_rate * 100.0,
                errors.p_value
            ),
        },
        Objective {
            name: "throughput".into(),
            kind: ObjectiveKind::SampleRatio,
            baseline: throughput.baseline_per_share,
            candidate: throughput.candidate_per_share,
            estimate: candidate.share,
            low: 0.0,
            high: 1.0,
            limit: candidate.share,
            tolerance: candidate.share,
            alpha,
            pass_alpha: None,
            fallback: false,
            p_value: Some(throughput.p_value),
            e_value: None,
            standing: standing(thr_fail, true),
            words: format!(
                "throughput per share {:.1} against {:.1} (p={:.2e})",
                throughput.candidate_per_share, throughput.baseline_per_share, throughput.p_value
            ),
        },
    ];
    let mut j = Judgement {
        verdict: Verdict::Pending,
        reason: String::new(),
        method: Method::Fixed,
        decided_by: None,
        candidate_samples: nc,
        baseline_samples: nb,
        looks,
        threshold: cfg.threshold,
        alpha,
        objectives,
    };
    if nc.min(nb) < cfg.min_samples {
        j.reason = format!("{} of {} samples per arm needed before a verdict", nc.min(nb), cfg.min_samples);
        return j;
    }
    if let Some(o) = j.objectives.iter().find(|o| o.standing == Standing::Harm) {
        (j.verdict, j.decided_by, j.reason) = (Verdict::Fail, Some(o.name.clone()), o.words.clone());
    } else if lat_within && err_within {
        j.verdict = Verdict::Pass;
        j.reason = format!(
            "no significant degradation; at {:.2}% confidence latency ratio ≤ {:.3} and error-rate change ≤ {:+.2} points",
            100.0 * (1.0 - alpha),
            latency.ratio_ci_high,
            errors.increase_high * 100.0
        );
    } else if nc.min(nb) >= cfg.max_samples {
        j.verdict = Verdict::Pass;
        j.reason = format!("{} samples per arm without significant degradation", nc.min(nb));
    } else {
        j.reason = "not yet conclusive; collecting more calls".into();
    }
    j
}

/// Standard normal upper tail.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Quantile of the standard normal (Acklam's rational approximation).
pub fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let a = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    let b =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    let c = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    let d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let lo = 0.02425;
    if p < lo {
        let q = (-2.0 * p.ln()).sqrt();
        (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    } else if p <= 1.0 - lo {
        let q = p - 0.5;
        let r = q * q;
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * q).floor() as usize]
}

/// At most this many values per arm enter the O(n·m) Hodges-Lehmann
/// estimate; larger arms are thinned evenly (the U test uses all values).
const HL_MAX: usize = 400;

fn thin(sorted: &[f64]) -> Vec<f64> {
    if sorted.len() <= HL_MAX {
        return sorted.to_vec();
    }
    (0..HL_MAX).map(|i| sorted[i * sorted.len() / HL_MAX]).collect()
}

fn latency_test(cand: &[f64], base: &[f64], alpha: f64) -> LatencyTest {
    let (n1, n2) = (cand.len(), base.len());
    if n1 == 0 || n2 == 0 {
        return LatencyTest {
            p_value: 1.0,
            ratio: 1.0,
            ratio_ci_low: 0.0,
            ratio_ci_high: f64::INFINITY,
            ..Default::default()
        };
    }
    let log = |v: &[f64]| {
        let mut l: Vec<f64> = v.iter().map(|x| x.max(1e-6).ln()).collect();
        l.sort_by(f64::total_cmp);
        l
    };
    let (lc, lb) = (log(cand), log(base));

    // Mann-Whitney U of the candidate, with mid-ranks for ties.
    let mut all: Vec<(f64, bool)> = lc.iter().map(|&x| (x, true)).chain(lb.iter().map(|&x| (x, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut tie_term, mut i) = (0.0, 0.0, 0);
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_sum += all[i..=j].iter().filter(|x| x.1).count() as f64 * mid;
        i = j + 1;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_sum - f1 * (f1 + 1.0) / 2.0;
    let n = f1 + f2;
    let var = f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)).max(1.0));
    let z = if var > 0.0 { (u - f1 * f2 / 2.0 - 0.5) / var.sqrt() } else { 0.0 };
    let p_value = normal_sf(z);

    // Hodges-Lehmann: median of pairwise differences, with the distribution-
    // free confidence interval from the same normal approximation.
    let (tc, tb) = (thin(&lc), thin(&lb));
    let mut diffs: Vec<f64> = Vec::with_capacity(tc.len() * tb.len());
    for x in &tc {
        for y in &tb {
            diffs.push(x - y);
        }
    }
    let m = diffs.len();
    // The interval's rank among all n1·n2 differences, as a fraction, applied
    // to the (possibly thinned) differences: thinning keeps the shape of
    // their distribution, the full sample sizes set the interval's width.
    let zc = normal_quantile(1.0 - alpha);
    let pairs = f1 * f2;
    let kfrac = ((pairs / 2.0 - zc * (pairs * (f1 + f2 + 1.0) / 12.0).sqrt()) / pairs).max(0.0);
    let k = (kfrac * m as f64).floor() as usize;
    // Three order statistics by selection: O(m) instead of a full sort.
    let mut nth = |i: usize| *diffs.select_nth_unstable_by(i.min(m - 1), f64::total_cmp).1;
    let shift = nth((m - 1) / 2);
    let lo = nth(k);
    let hi = nth((m - 1).saturating_sub(k));
    let (sc, sb) = (sorted_copy(cand), sorted_copy(base));
    let base_median = quantile_sorted(&sb, 0.5);
    LatencyTest {
        p_value,
        ratio: shift.exp(),
        ratio_ci_low: lo.exp(),
        ratio_ci_high: hi.exp(),
        baseline_median_ms: base_median,
        candidate_median_ms: quantile_sorted(&sc, 0.5),
        degradation: shift.exp() - 1.0,
    }
}

fn sorted_copy(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

fn error_test(ec: u64, nc: usize, eb: u64, nb: usize, alpha: f64) -> ErrorTest {
    if nc == 0 || nb == 0 {
        return ErrorTest {
            p_value: 1.0,
            increase_low: f64::NEG_INFINITY,
            increase_high: f64::INFINITY,
            ..Default::default()
        };
    }
    // Agresti-Caffo: one success and one failure added to each arm keeps the
    // interval honest when either arm has seen no error yet.
    let (ac, ab) = ((ec as f64 + 1.0) / (nc as f64 + 2.0), (eb as f64 + 1.0) / (nb as f64 + 2.0));
    let se_ac = (ac * (1.0 - ac) / (nc as f64 + 2.0) + ab * (1.0 - ab) / (nb as f64 + 2.0)).sqrt();
    let zq = normal_quantile(1.0 - alpha);
    let (increase_low, increase_high) = ((ac - ab) - zq * se_ac, (ac - ab) + zq * se_ac);
    let (pc, pb) = (ec as f64 / nc as f64, eb as f64 / nb as f64);
    let pooled = (ec + eb) as f64 / (nc + nb) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / nc as f64 + 1.0 / nb as f64)).sqrt();
    let z = if se > 0.0 { (pc - pb) / se } else { 0.0 };
    ErrorTest {
        baseline_rate: pb,
        candidate_rate: pc,
        p_value: if se > 0.0 { normal_sf(z) } else { 1.0 },
        degradation: ((pc - pb) / pb.max(0.01)).max(0.0),
        increase_low,
        increase_high,
    }
}

fn throughput_test(nc: usize, share_c: f64, nb: usize, share_b: f64) -> ThroughputTest {
    if share_c <= 0.0 || share_b <= 0.0 || nc + nb == 0 {
        return ThroughputTest { p_value: 1.0, ..Default::default() };
    }
    let (rc, rb) = (nc as f64 / share_c, nb as f64 / share_b);
    // Under H0 the candidate's count is binomial with p = its share.
    let total = (nc + nb) as f64;
    let p = share_c / (share_c + share_b);
    let sd = (total * p * (1.0 - p)).sqrt();
    let z = if sd > 0.0 { (total * p - nc as f64) / sd } else { 0.0 };
    ThroughputTest {
        baseline_per_share: rb,
        candidate_per_share: rc,
        p_value: if sd > 0.0 { normal_sf(z) } else { 1.0 },
        degradation: if rb > 0.0 { ((rb - rc) / rb).max(0.0) } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(latencies: impl IntoIterator<Item = f64>, errors: u64, share: f64) -> Arm {
        let mut a = Arm::new(share);
        let lat: Vec<f64> = latencies.into_iter().collect();
        for (i, l) in lat.iter().enumerate() {
            a.record(*l, if (i as u64) < errors { "internal" } else { super::super::OK });
        }
        a
    }

    fn cfg() -> JudgeConfig {
        JudgeConfig { method: Method::Fixed, alpha: 0.0002, max_samples: 4000, ..Default::default() }
    }

    #[test]
    fn normal_functions() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-4);
    }

    #[test]
    fn too_few_samples_is_pending() {
        let a = arm(vec![1.0; 10], 0, 0.5);
        let j = judge(&a, &a, &cfg(), 1);
        assert_eq!(j.verdict, Verdict::Pending);
        assert!(j.reason.contains("needed"));
    }

    #[test]
    fn a_threefold_slowdown_fails_and_says_why() {
        let base = arm((0..200).map(|i| 1.0 + (i % 10) as f64 * 0.01), 0, 0.9);
        let cand = arm((0..60).map(|i| 3.0 + (i % 10) as f64 * 0.03), 0, 0.1);
        let j = judge(&cand, &base, &cfg(), 1);
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        let lat = &j.objectives[0];
        assert!(lat.estimate > 2.5 && lat.low > 2.0, "{lat:?}");
        assert!(j.reason.contains("latency"));
    }

    #[test]
    fn identical_arms_pass() {
        let a = arm((0..3000).map(|i| 1.0 + (i % 37) as f64 * 0.01), 30, 0.5);
        let j = judge(&a, &a, &cfg(), 1);
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
    }

    #[test]
    fn error_spike_fails() {
        let base = arm(vec![1.0; 1000], 10, 0.5);
        let cand = arm(vec![1.0; 1000], 60, 0.5);
        let j = judge(&cand, &base, &cfg(), 1);
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.reason.contains("error rate"), "{}", j.reason);
    }
}
