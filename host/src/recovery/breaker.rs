//! Circuit breakers, one per target: closed → open when the failure rate
//! over a sliding window of calls passes the threshold after a minimum of
//! calls → half-open after the cool-down, letting a few probe calls through
//! → closed on their success, open again on a failure.
//!
//! Every admitted call carries a [`Ticket`] with the breaker's *generation*
//! (bumped on each change of state). Only outcomes of the current generation
//! move the breaker: a call admitted while closed that answers after the
//! circuit opened, or while it is half-open, is late — it says nothing about
//! the unit as it is now — so it is counted apart and the half-open decision
//! rests on the probe's own outcome alone (the rule of Nygard's *Release
//! It!*, and of resilience4j's state-tagged permits).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Calls in the sliding window.
    pub window: usize,
    /// Calls needed in the window before the breaker may open.
    pub min_calls: usize,
    /// Failure share that opens the breaker.
    pub failure_rate: f64,
    pub cooldown_ms: u64,
    /// Probe calls let through while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { window: 20, min_calls: 10, failure_rate: 0.5, cooldown_ms: 5_000, half_open_probes: 1 }
    }
}

/// The state an operator sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum BreakerState {
    Closed { calls: usize, failures: usize },
    Open { remaining_ms: u64, reason: String },
    HalfOpen { probes_left: u32 },
}

/// The pass of one admitted call: the breaker's generation when it was
/// admitted, and whether it is a half-open probe. Hand it back with the
/// call's outcome to [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    probe: bool,
}

impl Ticket {
    /// Whether the call was let through as a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// What the breaker says about the next call.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Allowed (closed, or as a half-open probe: see [`Ticket::is_probe`]).
    Yes(Ticket),
    /// Refused: open for this much longer.
    No(Duration),
}

/// How an outcome handed to [`Breaker::record`] was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It counted toward the breaker's state.
    Counted,
    /// It belonged to an earlier generation: statistics only.
    Late,
}

#[derive(Debug, Clone)]
enum State {
    Closed,
    Open { until: Instant, reason: String },
    HalfOpen { probes_left: u32, in_flight: u32 },
}

/// One target's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    window: VecDeque<bool>,
    generation: u64,
    late: u64,
    /// When the circuit last opened, for whatever reason.
    opened_at: Option<Instant>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker { config, state: State::Closed, window: VecDeque::new(), generation: 0, late: 0, opened_at: None }
    }

    /// When the circuit last opened (by its own window, a failed probe, a
    /// strategy or an operator); `None` if it never did. Outcomes from
    /// before it are evidence already acted upon.
    pub fn opened_at(&self) -> Option<Instant> {
        self.opened_at
    }

    /// Outcomes that arrived after the state they were admitted in had
    /// ended (counted for statistics, never for the state).
    pub fn late_outcomes(&self) -> u64 {
        self.late
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.generation += 1;
        self.window.clear();
    }

    fn ticket(&self, probe: bool) -> Admit {
        Admit::Yes(Ticket { generation: self.generation, probe })
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        match &mut self.state {
            State::Closed => self.ticket(false),
            State::Open { until, .. } if now < *until => Admit::No(*until - now),
            State::Open { .. } => {
                let probes_left = self.config.half_open_probes.max(1) - 1;
                self.enter(State::HalfOpen { probes_left, in_flight: 1 });
                self.ticket(true)
            }
            State::HalfOpen { probes_left, in_flight } if *probes_left > 0 => {
                *probes_left -= 1;
                *in_flight += 1;
                self.ticket(true)
            }
            // Probes in flight: wait for their outcome.
            State::HalfOpen { .. } => Admit::No(Duration::from_millis(0)),
        }
    }

    /// Record the outcome of the call admitted with `ticket` (`ok` = the
    /// unit did its job). Only the current generation moves the state; in
    /// half-open only a probe's outcome does.
    pub fn record(&mut self, ticket: Ticket, ok: bool, now: Instant) -> Recorded {
        if ticket.generation != self.generation {
            self.late += 1;
            return Recorded::Late;
        }
        match &mut self.state {
            State::HalfOpen { in_flight, .. } => {
                debug_assert!(ticket.probe, "a current-generation ticket in half-open is a probe");
                *in_flight = in_flight.saturating_sub(1);
                if ok {
                    self.enter(State::Closed);
                } else {
                    self.open(now, "a half-open probe failed".into(), self.config.cooldown_ms);
                }
            }
            State::Open { .. } => {}
            State::Closed => {
                self.window.push_back(ok);
                while self.window.len() > self.config.window.max(1) {
                    self.window.pop_front();
                }
                let failures = self.window.iter().filter(|x| !**x).count();
                let n = self.window.len();
                if n >= self.config.min_calls && failures as f64 / n as f64 > self.config.failure_rate {
                    let why = format!("{failures} of the last {n} calls failed");
                    self.open(now, why, self.config.cooldown_ms);
                }
            }
        }
        Recorded::Counted
    }

    fn open(&mut self, now: Instant, reason: String, ms: u64) {
        let until = now.checked_add(Duration::from_millis(ms)).unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.opened_at = Some(now);
        self.enter(State::Open { until, reason });
    }

    /// Open for `ms` (a strategy's or an operator's decision).
    pub fn force_open(&mut self, now: Instant, ms: u64, reason: &str) {
        self.open(now, reason.to_string(), ms);
    }

    /// Close and forget the window.
    pub fn reset(&mut self) {
        self.enter(State::Closed);
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match &self.state {
            State::Closed => {
                BreakerState::Closed { calls: self.window.len(), failures: self.window.iter().filter(|x| !**x).count() }
            }
            State::Open { until, reason } => BreakerState::Open {
                remaining_ms: until.saturating_duration_since(now).as_millis() as u64,
                reason: reason.clone(),
            },
            State::HalfOpen { probes_left, .. } => BreakerState::HalfOpen { probes_left: *probes_left },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(b: &mut Breaker, now: Instant) -> Ticket {
        match b.admit(now) {
            Admit::Yes(t) => t,
            Admit::No(d) => panic!("refused for {d:?}"),
        }
    }

    #[test]
    fn opens_half_opens_and_closes() {
        let cfg = BreakerConfig { window: 10, min_calls: 4, failure_rate: 0.5, cooldown_ms: 100, half_open_probes: 1 };
        let mut b = Breaker::new(cfg);
        let t0 = Instant::now();
        for ok in [true, false, false] {
            let t = pass(&mut b, t0);
            b.record(t, ok, t0);
        }
        let t = pass(&mut b, t0);
        assert!(!t.is_probe(), "too few calls to open");
        b.record(t, false, t0);
        assert!(matches!(b.admit(t0), Admit::No(_)), "3 of 4 failed: open");
        let later = t0 + Duration::from_millis(150);
        let probe = pass(&mut b, later);
        assert!(probe.is_probe());
        assert!(matches!(b.admit(later), Admit::No(_)), "one probe at a time");
        b.record(probe, true, later);
        assert!(!pass(&mut b, later).is_probe(), "a good probe closes it");
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let mut b = Breaker::new(BreakerConfig { cooldown_ms: 10, ..Default::default() });
        let t0 = Instant::now();
        b.force_open(t0, 10, "operator");
        let t1 = t0 + Duration::from_millis(20);
        let probe = pass(&mut b, t1);
        assert!(probe.is_probe());
        b.record(probe, false, t1);
        assert!(matches!(b.state(t1), BreakerState::Open { .. }));
    }

    /// Calls admitted before the circuit opened that answer while it is
    /// half-open are late: five late successes do not close it, and the
    /// probe's failure opens it again.
    #[test]
    fn late_outcomes_never_decide_half_open() {
        let cfg = BreakerConfig { window: 4, min_calls: 4, failure_rate: 0.5, cooldown_ms: 10, half_open_probes: 1 };
        let mut b = Breaker::new(cfg);
        let t0 = Instant::now();
        let early: Vec<Ticket> = (0..5).map(|_| pass(&mut b, t0)).collect();
        for _ in 0..4 {
            let t = pass(&mut b, t0);
            b.record(t, false, t0);
        }
        assert!(matches!(b.state(t0), BreakerState::Open { .. }));
        let t1 = t0 + Duration::from_millis(20);
        let probe = pass(&mut b, t1);
        for t in &early {
            assert_eq!(b.record(*t, true, t1), Recorded::Late);
        }
        assert!(matches!(b.state(t1), BreakerState::HalfOpen { .. }), "late successes leave it half-open");
        assert_eq!(b.late_outcomes(), 5);
        assert_eq!(b.record(probe, false, t1), Recorded::Counted);
        assert!(matches!(b.state(t1), BreakerState::Open { .. }), "the probe's own failure opens it again");
    }

    /// An outcome of a call admitted before an operator's reset does not
    /// count in the fresh window.
    #[test]
    fn late_failures_stay_out_of_a_new_closed_window() {
        let cfg = BreakerConfig { window: 2, min_calls: 2, failure_rate: 0.4, cooldown_ms: 10, half_open_probes: 1 };
        let mut b = Breaker::new(cfg);
        let t0 = Instant::now();
        let before = [pass(&mut b, t0), pass(&mut b, t0)];
        b.reset();
        for t in before {
            assert_eq!(b.record(t, false, t0), Recorded::Late);
        }
        assert_eq!(b.state(t0), BreakerState::Closed { calls: 0, failures: 0 });
    }

    #[test]
    fn an_open_duration_past_the_clock_does_not_overflow() {
        let mut b = Breaker::new(BreakerConfig::default());
        let t0 = Instant::now();
        b.force_open(t0, u64::MAX, "strategy");
        assert!(matches!(b.admit(t0), Admit::No(_)));
    }
}
