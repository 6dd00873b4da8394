//! Call-by-call comparison of the candidate with the baseline calls around
//! it, as anytime-valid tests by betting (Waudby-Smith & Ramdas,
//! "Estimating means of bounded random variables by betting", JRSS B 2024;
//! Shafer & Vovk's test martingales).
//!
//! **Concurrent scores.** Each call of the sparser arm (the candidate in a
//! canary, the holdback in a bake) is ranked among [`WINDOW`] calls of the
//! other arm centred on it — the [`AFTER`] that end after it and the rest
//! just before — so a slowdown of the whole machine slows both sides of
//! every comparison. Centring matters when the machine changes speed at
//! once: against only the calls before it, every call for a while after a
//! sudden slowdown would be compared with faster calls of the moment before
//! (and at a 50 % share there are hundreds of such calls); centred, the
//! calls just before the change are compared with slower ones as much as
//! those just after with faster ones, and the two cancel. A call is scored
//! once the [`AFTER`] calls of the other arm have ended. Ties
//! (a millisecond clock) are broken at random, which makes the rank exactly
//! uniform when the two arms do not differ. Two scores come from the rank of
//! the candidate's latency divided by a ratio r:
//! - the *shift* score `u = rank / window` has mean ½ exactly when the
//!   candidate's latency / r is distributed like the baseline's, more when
//!   it is slower; the r at which its mean is ½ is the median ratio of
//!   candidate to baseline latencies (a Hodges-Lehmann-type shift);
//! - a *tail* score for quantile p, `1{rank ≥ ⌈p(window + 1)⌉}`, has a known
//!   rate (≈ 1 − p) when they do not differ.
//!
//! **Bets.** For each ratio of a ladder and each direction, a mixture over
//! four fixed bet sizes of the capital process ∏(1 + λ(score − null)) is a
//! nonnegative supermartingale while the null holds (the candidate no
//! slower than r, or no faster than r), so by Ville's inequality it reaches
//! 1/α with probability at most α, however long it runs. The ratios a
//! process has rejected bound the shift from below and above: an
//! anytime-valid confidence sequence read off the ladder.
//!
//! **Outcomes by class.** Conditioned on a call ending in class k, the call
//! came from the candidate with probability equal to its share of calls
//! when the arms do not differ (Lindon & Malek, "Anytime-valid inference for
//! multinomial count data", NeurIPS 2022): one bet per class on "more than
//! its share", immune to error bursts that hit both arms.

use std::collections::{BTreeMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Baseline calls a candidate call is ranked among: its 200 most recent.
/// A multiple of 20 and of 100 less one, so that p95 and p99 have exact
/// null rates (10 and 2 in 200).
pub const WINDOW: usize = 199;

/// Calls of the denser arm that end after a call of the sparser arm in the
/// window it is ranked among: half of it.
pub const AFTER: u64 = (WINDOW / 2) as u64;

/// Fewest calls in the window before calls of the other arm are scored.
const MIN_WINDOW: usize = 19;

/// Calls of the sparser arm at the start of a step that are not scored: a
/// version that has just been given (or kept back to) a small share runs
/// cold for its first calls — instances, caches — which is no property of
/// its code. Outcomes still count from the first call.
pub const WARMUP: u64 = 50;

/// Fractions of the largest bet a mixture spreads its capital over. A shift
/// score (null ½) is bet on from a few percent slower to every call slower;
/// a rare event's rate (a tail, an outcome class) from 5 % → 8 % upward.
/// Fewer sizes cost less: the mixture pays ln(sizes) of evidence.
const SHIFT_BETS: &[f64] = &[0.05, 0.15, 0.4, 0.8];
const RARE_BETS: &[f64] = &[0.01, 0.03, 0.1, 0.3, 0.8];

/// Ratios (candidate / baseline) of the ladder, before the target's own
/// thresholds are added: from twice as fast to three times as slow, finest
/// around 1.
const LADDER: [f64; 35] = [
    0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06,
    1.07, 1.08, 1.1, 1.12, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0,
];

/// A mixture of capital processes betting that a score's mean is above
/// (`up`) or below its null.
#[derive(Debug, Clone)]
pub struct Bet {
    sizes: &'static [f64],
    ln_capital: Vec<f64>,
}

impl Bet {
    fn new(sizes: &'static [f64]) -> Bet {
        Bet { sizes, ln_capital: vec![0.0; sizes.len()] }
    }

    /// One observation: `score` in [0, 1] against `null` in (0, 1).
    fn up(&mut self, score: f64, null: f64) {
        // 1 + λ(score − null) ≥ 0 for every score in [0, 1] while λ ≤ 1/null.
        for (c, f) in self.ln_capital.iter_mut().zip(self.sizes) {
            *c += (f / null * (score - null)).ln_1p();
        }
    }

    fn down(&mut self, score: f64, null: f64) {
        for (c, f) in self.ln_capital.iter_mut().zip(self.sizes) {
            *c += (f / (1.0 - null) * (null - score)).ln_1p();
        }
    }

    /// The mixture's capital: the e-value against the null.
    pub fn e_value(&self) -> f64 {
        self.ln_capital.iter().map(|c| c.exp()).sum::<f64>() / self.sizes.len() as f64
    }
}

/// The baseline calls of the moment, in arrival order and sorted.
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

/// Bets at each ratio of a ladder, both directions, for one score.
#[derive(Debug, Clone)]
pub struct Ladder {
    pub ratios: Vec<f64>,
    up: Vec<Bet>,
    down: Vec<Bet>,
    /// Sum of the scores at each ratio (for the point estimate).
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

    /// The ratio at which the mean score crosses `null`, interpolated on the
    /// log scale between ladder ratios (1 before any score).
    pub fn estimate(&self, null: f64) -> f64 {
        if self.scored == 0 {
            return 1.0;
        }
        let mean: Vec<f64> = self.sums.iter().map(|s| s / self.scored as f64).collect();
        // The mean falls as the ratio grows.
        match mean.iter().position(|m| *m <= null) {
            None => *self.ratios.last().unwrap(),
            Some(0) => self.ratios[0],
            Some(i) => {
                let (r0, r1, m0, m1) = (self.ratios[i - 1], self.ratios[i], mean[i - 1], mean[i]);
                let t = if m0 > m1 { (m0 - null) / (m0 - m1) } else { 0.5 };
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
    share: f64,
    /// The candidate is the denser arm (a bake against a holdback): the
    /// baseline's calls are scored against the candidate's, and the scores
    /// turned round so that "slower" still means the candidate.
    flipped: bool,
    window: Window,
    rng: StdRng,
    pub shift: Ladder,
    pub tails: Vec<Tail>,
    pub classes: BTreeMap<String, ClassBet>,
    /// Calls of the sparser arm seen, scored or not.
    seen: u64,
    /// Calls of the denser arm seen.
    dense: u64,
    /// Calls of the sparser arm waiting for [`AFTER`] calls of the other
    /// arm: latency, and the denser arm's count when it ended.
    pending: VecDeque<(f64, u64)>,
}

impl Duel {
    /// A comparison for a candidate with `share` of the calls, with ladders
    /// holding the `shift_ratios` and, per tail quantile, its ratios.
    pub fn new(share: f64, shift_ratios: &[f64], tails: &[(f64, Vec<f64>)]) -> Duel {
        Duel {
            share,
            flipped: share > 0.5,
            window: Window::default(),
            rng: StdRng::seed_from_u64(0x6b61_697a_656e),
            shift: Ladder::new(shift_ratios, SHIFT_BETS),
            tails: tails.iter().map(|(p, r)| Tail { p: *p, ladder: Ladder::new(r, RARE_BETS) }).collect(),
            classes: BTreeMap::new(),
            seen: 0,
            dense: 0,
            pending: VecDeque::new(),
        }
    }

    /// One call, in the order calls end. `class` is `None` for an answer.
    pub fn record(&mut self, candidate: bool, latency_ms: f64, class: Option<&str>) {
        if let Some(class) = class {
            let c = self.classes.entry(class.to_string()).or_default();
            c.calls += 1;
            c.bet.up(f64::from(u8::from(candidate)), self.share);
        }
        if candidate != self.flipped {
            self.seen += 1;
            if self.seen > WARMUP {
                self.pending.push_back((latency_ms, self.dense));
            }
            return;
        }
        self.window.push(latency_ms);
        self.dense += 1;
        while let Some(&(x, at)) = self.pending.front()
            && self.dense - at >= AFTER
        {
            self.pending.pop_front();
            self.score(x);
        }
    }

    /// Score one call of the sparser arm against the window now centred on
    /// it.
    fn score(&mut self, latency_ms: f64) {
        let n = self.window.sorted.len();
        if n < MIN_WINDOW {
            return;
        }
        let scale = n as f64;
        for i in 0..self.shift.ratios.len() {
            let r = self.shift.ratios[i];
            // Unflipped: the candidate's latency / r among the baseline's.
            // Flipped: the baseline's latency · r among the candidate's,
            // turned round.
            let u = if self.flipped {
                1.0 - self.window.rank(latency_ms * r, &mut self.rng) as f64 / scale
            } else {
                self.window.rank(latency_ms / r, &mut self.rng) as f64 / scale
            };
            self.shift.up[i].up(u, 0.5);
            self.shift.down[i].down(u, 0.5);
            self.shift.sums[i] += u;
        }
        self.shift.scored += 1;
        for t in &mut self.tails {
            let (j, null) = tail_cut(t.p, n);
            for i in 0..t.ladder.ratios.len() {
                let r = t.ladder.ratios[i];
                if self.flipped {
                    // A slower candidate puts fewer of the baseline's calls
                    // (times r) into its own tail.
                    let v = f64::from(u8::from(self.window.rank(latency_ms * r, &mut self.rng) >= j));
                    t.ladder.up[i].down(v, null);
                    t.ladder.down[i].up(v, null);
                } else {
                    let v = f64::from(u8::from(self.window.rank(latency_ms / r, &mut self.rng) >= j));
                    t.ladder.up[i].up(v, null);
                    t.ladder.down[i].down(v, null);
                }
            }
            t.ladder.scored += 1;
        }
    }
}

/// For quantile `p` and a window of `n`: the rank a candidate call must
/// reach to count as in the tail, and the rate of that when the arms do not
/// differ (ranks are uniform on 0..=n).
fn tail_cut(p: f64, n: usize) -> (usize, f64) {
    // The small slack keeps 0.95 · 200 = 190.00000000000003 at 190.
    let j = (p * (n + 1) as f64 - 1e-9).ceil() as usize;
    let j = j.clamp(1, n);
    (j, (n + 1 - j) as f64 / (n + 1) as f64)
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
    fn ranks_break_ties_and_tails_have_exact_nulls() {
        let mut w = Window::default();
        for i in 0..300 {
            w.push((i % 3) as f64);
        }
        assert_eq!(w.sorted.len(), WINDOW);
        let mut rng = StdRng::seed_from_u64(1);
        let r = w.rank(1.0, &mut rng);
        assert!((66..=133).contains(&r), "{r}");
        assert_eq!(tail_cut(0.95, WINDOW), (190, 0.05));
        assert_eq!(tail_cut(0.99, WINDOW), (198, 0.01));
    }
}
