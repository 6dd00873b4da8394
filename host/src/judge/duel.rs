//! Call-by-call comparison of the candidate with the baseline, as
//! anytime-valid tests by betting (Waudby-Smith & Ramdas, "Estimating means
//! of bounded random variables by betting", JRSS B 2024; Shafer & Vovk's
//! test martingales) on the one thing the host controls: **which arm each
//! call was routed to**.
//!
//! **Randomization, not a model of the machine.** The slot routes each call
//! to the candidate with probability equal to its share, by a coin that
//! knows nothing of the call. When the candidate does not differ from the
//! baseline, a call's latency — however the machine's speed wanders, stalls
//! or bursts — says nothing about which arm served it: given every latency,
//! the arms are independent coins. Every test below bets only on those
//! coins, call after call, in the order calls end; so its error guarantee
//! holds whatever the latencies do in time (Fisher's randomization test,
//! made sequential). Earlier, candidate calls were ranked among the
//! baseline calls around them and the ranks treated as independent; on a
//! busy machine a 200 ms stall gave twenty candidate calls in a row a high
//! rank, and that streak alone reached the judge's level (two identical
//! candidates rolled back in twenty through the real binary). A stall now
//! pays nothing: its calls go to either arm by the coin.
//!
//! **Scores.** Each call is scored against a window of the [`WINDOW`]
//! calls of either arm that ended just before it, which is fixed before
//! the call's own coin is read. For a ratio r, a candidate call's latency
//! is divided by r first (what it would have taken as a baseline call, were
//! the candidate r times slower); then
//! - the *shift* score `h = 2·rank/n − 1` in [−1, 1] is the call's standing
//!   among the calls of the moment; the bet is on `(A − p)·h`, where A is 1
//!   for a candidate call and p the candidate's share. Its mean is zero when
//!   the candidate is r times the baseline, positive when slower. The r at
//!   which its sum crosses zero is the median ratio of candidate to baseline
//!   latency (a Hodges-Lehmann-type shift);
//! - for tail quantile q, the bet is on `(A − p)·s` for a score s ≥ 0 of
//!   the call's rank that is zero below the tail's band. Any such score has mean
//!   zero when the candidate is r times the baseline, the coin knowing
//!   nothing of the call, and leans to the candidate when its tail is
//!   slower. A slowdown's bet scores a call's depth past q ([`depth`]); the
//!   bet that the tail is faster than r scores its standing in the band
//!   from `2q − 1` to the top ([`band`]). Each side is its own test, valid
//!   alone, so each uses the score that shows its alternative soonest.
//!
//! Ties (a millisecond clock) are broken at random.
//!
//! **Bets.** For each ratio of a ladder and each direction, a mixture over
//! fixed bet sizes of the capital process ∏(1 + λ·x) is a nonnegative
//! supermartingale while the null holds (the candidate no slower than r, or
//! no faster than r): dividing a candidate call's latency by a larger r can
//! only lower its rank, so the bet's mean is at most zero. By Ville's
//! inequality a capital reaches 1/α with probability at most α, however
//! long it runs and however often it is looked at. The ratios a process
//! has rejected bound the shift from below and above: an anytime-valid
//! confidence sequence read off the ladder.
//!
//! **Outcomes by class.** Conditioned on a call ending in class k, the call
//! came from the candidate with probability equal to its share of calls
//! when the arms do not differ (Lindon & Malek, "Anytime-valid inference for
//! multinomial count data", NeurIPS 2022): one bet per class on "more than
//! its share", immune to error bursts that hit both arms.

use std::collections::{BTreeMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Calls (of either arm) a call is ranked among: the ones that ended just
/// before it. A multiple of 20 and of 100, less one, so that p95 and p99
/// cut the window at whole ranks.
pub const WINDOW: usize = 199;

/// Fewest calls in the window before calls are scored.
const MIN_WINDOW: usize = 19;

/// Calls of the sparser arm at the start of a step that are not scored
/// (nor the other arm's calls beside them): a version that has just been
/// given (or kept back to) a small share runs cold for its first calls —
/// instances, caches — which is no property of its code. Outcomes still
/// count from the first call.
pub const WARMUP: u64 = 50;

/// Fractions of the largest bet a mixture spreads its capital over. A shift
/// score is bet on from a few percent slower to every call slower; a rare
/// event's rate (a tail, an outcome class) from 5 % → 8 % upward. Fewer
/// sizes cost less: the mixture pays ln(sizes) of evidence.
const SHIFT_BETS: &[f64] = &[0.05, 0.15, 0.4, 0.8];
const RARE_BETS: &[f64] = &[0.01, 0.03, 0.1, 0.3, 0.8];

/// Ratios (candidate / baseline) of the ladder, before the target's own
/// thresholds are added: from twice as fast to three times as slow, finest
/// around 1.
const LADDER: [f64; 35] = [
    0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06,
    1.07, 1.08, 1.1, 1.12, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0,
];

/// A mixture of capital processes betting that an observation's mean,
/// zero under the null, is positive.
#[derive(Debug, Clone)]
pub struct Bet {
    sizes: &'static [f64],
    /// Each process's capital as a logarithm and a running product folded
    /// into it when it leaves [1e-100, 1e100]: a multiplication per call
    /// instead of a logarithm (every call of a step is bet on, at every
    /// ratio of a ladder).
    ln_capital: Vec<f64>,
    product: Vec<f64>,
}

impl Bet {
    fn new(sizes: &'static [f64]) -> Bet {
        Bet { sizes, ln_capital: vec![0.0; sizes.len()], product: vec![1.0; sizes.len()] }
    }

    /// One observation `x` ≥ −`bound` whose mean is at most zero under the
    /// null: the capital grows by 1 + λx, λ a fraction of 1/`bound` (so the
    /// factor stays nonnegative).
    fn add(&mut self, x: f64, bound: f64) {
        for ((c, p), f) in self.ln_capital.iter_mut().zip(&mut self.product).zip(self.sizes) {
            *p *= 1.0 + f / bound * x;
            if !(1e-100..=1e100).contains(p) {
                *c += p.ln();
                *p = 1.0;
            }
        }
    }

    /// One observation: `score` in [0, 1] against `null` in (0, 1).
    fn up(&mut self, score: f64, null: f64) {
        self.add(score - null, null);
    }

    /// The mixture's capital: the e-value against the null.
    pub fn e_value(&self) -> f64 {
        let ln = self.ln_capital.iter().zip(&self.product).map(|(c, p)| c + p.ln());
        ln.map(f64::exp).sum::<f64>() / self.sizes.len() as f64
    }
}
/// The calls of the moment (both arms), in arrival order and sorted.
#[derive(Debug, Clone, Default)]
struct Window {
    recent: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Window {
    fn push(&mut self, x: f64) {
        if self.recent.len() == WINDOW
            && let Some(old) = self.recent.pop_front()
        {
            let i = self.sorted.partition_point(|v| *v < old);
            self.sorted.remove(i);
        }
        self.recent.push_back(x);
        let i = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(i, x);
    }

    /// The rank of `y` among the window (0..=len), ties broken at random.
    fn rank(&self, y: f64, rng: &mut StdRng) -> usize {
        let below = self.sorted.partition_point(|v| *v < y);
        let equal = self.sorted[below..].partition_point(|v| *v <= y);
        below + if equal > 0 { rng.random_range(0..=equal) } else { 0 }
    }
}

/// Bets at each ratio of a ladder, both directions: against "no slower
/// than the ratio" (`up`) and "no faster" (`down`), each with its own
/// score for a tail.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub ratios: Vec<f64>,
    up: Vec<Bet>,
    down: Vec<Bet>,
    /// Sum of the shift's bet terms (A − p)·h at each ratio (for the point
    /// estimate).
    sums: Vec<f64>,
    pub scored: u64,
}

impl Ladder {
    fn new(extra: &[f64], sizes: &'static [f64]) -> Ladder {
        let mut ratios: Vec<f64> = LADDER.iter().chain(extra).copied().collect();
        ratios.sort_by(f64::total_cmp);
        ratios.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        let n = ratios.len();
        let bets = vec![Bet::new(sizes); n];
        Ladder { ratios, up: bets.clone(), down: bets, sums: vec![0.0; n], scored: 0 }
    }

    fn index(&self, ratio: f64) -> usize {
        self.ratios.iter().position(|r| (r - ratio).abs() < 1e-12).expect("a ratio of the ladder")
    }

    /// E-value against "the candidate is no slower than `ratio`".
    pub fn slower_than(&self, ratio: f64) -> f64 {
        self.up[self.index(ratio)].e_value()
    }

    /// E-value against "the candidate is no faster than `ratio`".
    pub fn faster_than(&self, ratio: f64) -> f64 {
        self.down[self.index(ratio)].e_value()
    }

    /// The smallest ratio of the ladder at or above `ratio` (its largest
    /// if none).
    pub fn at_or_above(&self, ratio: f64) -> f64 {
        self.ratios.iter().copied().find(|r| *r >= ratio - 1e-12).unwrap_or(*self.ratios.last().unwrap())
    }

    /// The confidence sequence at level `alpha`: the largest ratio the
    /// candidate is shown slower than (0 if none) and the smallest it is
    /// shown faster than (+∞ if none).
    pub fn bounds(&self, alpha: f64) -> (f64, f64) {
        let limit = 1.0 / alpha;
        let low = (0..self.ratios.len()).rev().find(|&i| self.up[i].e_value() >= limit).map_or(0.0, |i| self.ratios[i]);
        let high =
            (0..self.ratios.len()).find(|&i| self.down[i].e_value() >= limit).map_or(f64::INFINITY, |i| self.ratios[i]);
        (low, high)
    }

    /// The ratio at which the shift's summed bet terms cross zero,
    /// interpolated on the log scale between ladder ratios (1 before any
    /// score).
    pub fn estimate(&self) -> f64 {
        if self.scored == 0 {
            return 1.0;
        }
        // The sum falls as the ratio grows.
        match self.sums.iter().position(|m| *m <= 0.0) {
            None => *self.ratios.last().unwrap(),
            Some(0) => self.ratios[0],
            Some(i) => {
                let (r0, r1, m0, m1) = (self.ratios[i - 1], self.ratios[i], self.sums[i - 1], self.sums[i]);
                let t = if m0 > m1 { m0 / (m0 - m1) } else { 0.5 };
                (r0.ln() + t * (r1.ln() - r0.ln())).exp()
            }
        }
    }
}

/// A tail quantile's ladder.
#[derive(Debug, Clone)]
pub struct Tail {
    pub p: f64,
    pub ladder: Ladder,
}

/// Per outcome class: the bet that its calls come from the candidate more
/// often than the candidate's share.
#[derive(Debug, Clone)]
pub struct ClassBet {
    pub bet: Bet,
    pub calls: u64,
}

impl Default for ClassBet {
    fn default() -> Self {
        ClassBet { bet: Bet::new(RARE_BETS), calls: 0 }
    }
}

/// The running comparison of one step.
#[derive(Debug, Clone)]
pub struct Duel {
    /// The candidate's share of calls: the chance its coin comes up.
    share: f64,
    window: Window,
    rng: StdRng,
    pub shift: Ladder,
    pub tails: Vec<Tail>,
    pub classes: BTreeMap<String, ClassBet>,
    /// Calls of the sparser arm seen, scored or not.
    sparse: u64,
}

impl Duel {
    /// A comparison for a candidate with `share` of the calls, with ladders
    /// holding the `shift_ratios` and, per tail quantile, its ratios.
    pub fn new(share: f64, shift_ratios: &[f64], tails: &[(f64, Vec<f64>)]) -> Duel {
        Duel {
            share,
            window: Window::default(),
            rng: StdRng::seed_from_u64(0x6b61_697a_656e),
            shift: Ladder::new(shift_ratios, SHIFT_BETS),
            tails: tails.iter().map(|(p, r)| Tail { p: *p, ladder: Ladder::new(r, RARE_BETS) }).collect(),
            classes: BTreeMap::new(),
            sparse: 0,
        }
    }

    /// One call, in the order calls end. `class` is `None` for an answer.
    pub fn record(&mut self, candidate: bool, latency_ms: f64, class: Option<&str>) {
        if let Some(class) = class {
            let c = self.classes.entry(class.to_string()).or_default();
            c.calls += 1;
            c.bet.up(f64::from(u8::from(candidate)), self.share);
        }
        if candidate == (self.share <= 0.5) {
            self.sparse += 1;
        }
        if self.sparse > WARMUP && self.window.sorted.len() >= MIN_WINDOW {
            self.score(candidate, latency_ms);
        }
        self.window.push(latency_ms);
    }

    /// Bet on this call's coin, its score read off the window of the calls
    /// before it.
    fn score(&mut self, candidate: bool, latency_ms: f64) {
        let p = self.share;
        let a = f64::from(u8::from(candidate));
        let n = self.window.sorted.len() as f64;
        // |(A − p)·h| ≤ max(p, 1 − p).
        let bound = p.max(1.0 - p);
        // A baseline call's rank is the same at every ratio: read it once.
        let fixed = (!candidate).then(|| self.window.rank(latency_ms, &mut self.rng));
        let rank = |r: f64, w: &Window, rng: &mut StdRng| fixed.unwrap_or_else(|| w.rank(latency_ms / r, rng));
        for i in 0..self.shift.ratios.len() {
            let h = 2.0 * rank(self.shift.ratios[i], &self.window, &mut self.rng) as f64 / n - 1.0;
            let x = (a - p) * h;
            self.shift.up[i].add(x, bound);
            self.shift.down[i].add(-x, bound);
            self.shift.sums[i] += x;
        }
        self.shift.scored += 1;
        for t in &mut self.tails {
            let len = self.window.sorted.len();
            let cut = tail_cut(t.p, len);
            for i in 0..t.ladder.ratios.len() {
                let r = rank(t.ladder.ratios[i], &self.window, &mut self.rng);
                // (A − p)·s ≥ −p·s ≥ −p for a slowdown's bet, and
                // (p − A)·s ≥ −(1 − p) for the other.
                let (slow, fast) = (depth(r, cut, len), band(r, t.p, len));
                if slow > 0.0 {
                    t.ladder.up[i].add((a - p) * slow, p);
                }
                if fast > 0.0 {
                    t.ladder.down[i].add((p - a) * fast, 1.0 - p);
                }
            }
            t.ladder.scored += 1;
        }
    }
}

/// A call's score in a bet on a slowdown of the tail: 0 under the `cut`,
/// then its depth past it, `(rank − cut + 1)/(n − cut + 1)` in (0, 1]. The
/// deeper calls weigh most: a slowed tail moves its calls deeper, and
/// counting them only as in or out of the tail (a sign test) wastes much
/// of what they show: a tail-only regression (+30 % on the slowest 10 % of
/// calls) took a median 1 290 candidate calls to show instead of 750 in
/// the trials (`cargo bench --bench judge`).
fn depth(rank: usize, cut: usize, n: usize) -> f64 {
    if rank >= cut { (rank - cut + 1) as f64 / (n - cut + 1) as f64 } else { 0.0 }
}

/// A call's score in a bet that the tail is faster than a ratio: its
/// standing in the band from quantile `2p − 1` to the top (p90 to p100 for
/// p95), 0 below it, rising linearly to 1. Showing a tail *within* a limit
/// needs evidence from every call near the quantile, not just the deepest:
/// on a heavy tail (lognormal σ = 1.0) the depth score left 20 % of
/// identical 10 % steps without a pass in their 3 000 calls, the band
/// 7.5 % (200-step trials). For a quantile at or under the median the band
/// is every call, scored by rank.
fn band(rank: usize, p: f64, n: usize) -> f64 {
    let low = (2.0 * p - 1.0).max(0.0);
    ((rank as f64 / n as f64 - low) / (1.0 - low)).clamp(0.0, 1.0)
}

/// For quantile `p` and a window of `n`: the rank a call must reach to
/// count as in the tail.
fn tail_cut(p: f64, n: usize) -> usize {
    // The small slack keeps 0.95 · 200 = 190.00000000000003 at 190.
    let j = (p * (n + 1) as f64 - 1e-9).ceil() as usize;
    j.clamp(1, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bet_grows_only_against_a_false_null() {
        let mut rng = StdRng::seed_from_u64(3);
        let (mut fair, mut biased) = (Bet::new(SHIFT_BETS), Bet::new(SHIFT_BETS));
        for _ in 0..2000 {
            fair.up(rng.random::<f64>(), 0.5);
            biased.up(rng.random::<f64>().powf(0.7), 0.5);
        }
        assert!(fair.e_value() < 20.0, "{}", fair.e_value());
        assert!(biased.e_value() > 1e6, "{}", biased.e_value());
    }

    #[test]
    fn ranks_break_ties_and_tails_cut_at_whole_ranks() {
        let mut w = Window::default();
        for i in 0..300 {
            w.push((i % 3) as f64);
        }
        assert_eq!(w.sorted.len(), WINDOW);
        let mut rng = StdRng::seed_from_u64(1);
        let r = w.rank(1.0, &mut rng);
        assert!((66..=133).contains(&r), "{r}");
        assert_eq!(tail_cut(0.95, WINDOW), 190);
        assert_eq!(tail_cut(0.99, WINDOW), 198);
    }

    /// Identical arms on a machine whose speed wanders and stalls: runs of
    /// slow calls hit both arms, and no bet gains from them. Of 200 steps
    /// of 4 000 calls at a 50 % share, looked at after every call, the
    /// shift's or the p95 tail's bet against "no slower" reaches 1/α = 100
    /// in at most 2α of them (one α each, plus three standard errors), and
    /// the tail's band bet against "no faster" — the one its pass is read
    /// from — in at most α.
    #[test]
    fn stalls_that_hit_both_arms_win_no_bet() {
        let (steps, alpha) = (200, 0.01);
        let mut rng = StdRng::seed_from_u64(11);
        let (mut rejected, mut faster) = (0, 0);
        for _ in 0..steps {
            let mut duel = Duel::new(0.5, &[], &[(0.95, vec![])]);
            let mut level = 0.0f64;
            let (mut hit, mut hit_faster) = (false, false);
            for _ in 0..4000 {
                // Log-speed: a random walk pulled back to zero, and a stall
                // (4× slower) of ~40 calls now and then.
                level = 0.97 * level + 0.1 * (rng.random::<f64>() - 0.5);
                let stall = if rng.random::<f64>() < 0.003 { 40 } else { 0 };
                for _ in 0..=stall {
                    let ms = (level + 0.3 * (rng.random::<f64>() - 0.5)).exp() * if stall > 0 { 4.0 } else { 1.0 };
                    duel.record(rng.random::<f64>() < 0.5, ms, None);
                }
                if duel.shift.slower_than(1.0) >= 1.0 / alpha || duel.tails[0].ladder.slower_than(1.0) >= 1.0 / alpha {
                    hit = true;
                }
                hit_faster |= duel.tails[0].ladder.faster_than(1.0) >= 1.0 / alpha;
            }
            rejected += u32::from(hit);
            faster += u32::from(hit_faster);
        }
        let allowed = |tests: f64| tests * alpha * steps as f64 + 3.0 * (alpha * steps as f64).sqrt();
        assert!(f64::from(rejected) <= allowed(2.0), "{rejected} of {steps} identical steps showed a slowdown");
        assert!(f64::from(faster) <= allowed(1.0), "{faster} of {steps} identical steps showed a faster p95 band");
    }
}
