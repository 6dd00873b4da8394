//! Circuit breakers, one per target: closed → open when the failure rate
//! over a sliding window of calls passes the threshold after a minimum of
//! calls → half-open after the cool-down, letting a few probe calls through
//! → closed on their success, open again on a failure.

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

/// What the breaker says about the next call.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    Yes,
    /// Allowed as a half-open probe.
    Probe,
    /// Refused: open for this much longer.
    No(Duration),
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
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker { config, state: State::Closed, window: VecDeque::new() }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        match &mut self.state {
            State::Closed => Admit::Yes,
            State::Open { until, .. } if now < *until => Admit::No(*until - now),
            State::Open { .. } => {
                self.state = State::HalfOpen { probes_left: self.config.half_open_probes.max(1) - 1, in_flight: 1 };
                Admit::Probe
            }
            State::HalfOpen { probes_left, in_flight } if *probes_left > 0 => {
                *probes_left -= 1;
                *in_flight += 1;
                Admit::Probe
            }
            // Probes in flight: wait for their outcome.
            State::HalfOpen { .. } => Admit::No(Duration::from_millis(0)),
        }
    }

    /// Record a call's outcome (`true` = the unit did its job).
    pub fn record(&mut self, ok: bool, now: Instant) {
        match &mut self.state {
            State::HalfOpen { in_flight, .. } => {
                *in_flight = in_flight.saturating_sub(1);
                if ok {
                    self.state = State::Closed;
                    self.window.clear();
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
    }

    fn open(&mut self, now: Instant, reason: String, ms: u64) {
        self.state = State::Open { until: now + Duration::from_millis(ms), reason };
        self.window.clear();
    }

    /// Open for `ms` (a strategy's or an operator's decision).
    pub fn force_open(&mut self, now: Instant, ms: u64, reason: &str) {
        self.open(now, reason.to_string(), ms);
    }

    /// Close and forget the window.
    pub fn reset(&mut self) {
        self.state = State::Closed;
        self.window.clear();
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

    #[test]
    fn opens_half_opens_and_closes() {
        let cfg = BreakerConfig { window: 10, min_calls: 4, failure_rate: 0.5, cooldown_ms: 100, half_open_probes: 1 };
        let mut b = Breaker::new(cfg);
        let t0 = Instant::now();
        for ok in [true, false, false] {
            b.record(ok, t0);
        }
        assert_eq!(b.admit(t0), Admit::Yes, "too few calls to open");
        b.record(false, t0);
        assert!(matches!(b.admit(t0), Admit::No(_)), "3 of 4 failed: open");
        let later = t0 + Duration::from_millis(150);
        assert_eq!(b.admit(later), Admit::Probe);
        assert!(matches!(b.admit(later), Admit::No(_)), "one probe at a time");
        b.record(true, later);
        assert_eq!(b.admit(later), Admit::Yes, "a good probe closes it");
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let mut b = Breaker::new(BreakerConfig { cooldown_ms: 10, ..Default::default() });
        let t0 = Instant::now();
        b.force_open(t0, 10, "operator");
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(b.admit(t1), Admit::Probe);
        b.record(false, t1);
        assert!(matches!(b.state(t1), BreakerState::Open { .. }));
    }
}
