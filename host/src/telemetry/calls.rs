//! Call counters since start, per unit and version: calls, the attempts
//! made for them and the calls recovery answered, errors by class and a
//! cumulative latency histogram. The rolling aggregates answer the
//! loop's windowed questions; these answer a scraper's (Prometheus wants
//! monotonic counters, not windows).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::store::executions::Attempts;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Error classes counted separately; anything else counts as `other`.
const CLASSES: [&str; 8] =
    ["timeout", "memory", "trap", "invalid-input", "dependency", "internal", "circuit-open", "other"];

/// One unit version's counters. The call path holds it (interned per unit
/// version by [`super::Telemetry`]) and counts without a lookup.
#[derive(Default)]
pub struct Counter {
    calls: AtomicU64,
    attempts: AtomicU64,
    recovered: AtomicU64,
    /// Callers' calls an open circuit refused: never made, so not among
    /// `calls` (see [`Counter::refused`]).
    refused: AtomicU64,
    errors: [AtomicU64; CLASSES.len()],
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    sum_ns: AtomicU64,
}

/// One unit version's counters, read out.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCounts {
    pub unit: String,
    pub version: String,
    pub calls: u64,
    /// Attempts made for those calls, first attempts included.
    pub attempts: u64,
    /// Calls that failed at first and recovery answered.
    pub recovered: u64,
    /// Callers' calls refused while the unit's circuit was open: not made,
    /// so not among `calls`, `attempts` or the latency histogram.
    pub refused: u64,
    /// (class, count) for classes seen at least once.
    pub errors: Vec<(&'static str, u64)>,
    /// Cumulative counts per bound of [`LATENCY_BUCKETS`].
    pub buckets: Vec<u64>,
    pub sum_secs: f64,
}

type Versions = HashMap<String, Arc<Counter>>;

/// Counters of every unit version called on this host.
#[derive(Default)]
pub struct CallCounters {
    units: RwLock<HashMap<String, Versions>>,
}

impl Counter {
    /// Count one call and its attempts; `error_class` is `None` for a
    /// success.
    pub fn observe(&self, error_class: Option<&str>, latency: Duration, attempts: Attempts) {
        let c = self;
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.attempts.fetch_add(u64::from(attempts.attempts.max(1)), Ordering::Relaxed);
        c.recovered.fetch_add(u64::from(attempts.recovered), Ordering::Relaxed);
        if let Some(class) = error_class {
            let i = CLASSES.iter().position(|k| *k == class).unwrap_or(CLASSES.len() - 1);
            c.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        let secs = latency.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            c.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        c.sum_ns.fetch_add(latency.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Count one caller's call refused by an open circuit. It is counted
    /// apart from the calls: the unit was not called, so the refusal says
    /// nothing about its errors or its latency, but a caller got an error
    /// and an operator must see how many did.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

impl CallCounters {
    /// The counters of `unit` at `version`, created on first use.
    pub fn counter(&self, unit: &str, version: &str) -> Arc<Counter> {
        // Borrowed lookups first: a known unit version allocates nothing.
        if let Some(c) = self.units.read().get(unit).and_then(|v| v.get(version)) {
            return c.clone();
        }
        self.units.write().entry(unit.to_string()).or_default().entry(version.to_string()).or_default().clone()
    }

    /// Count one call and its attempts; `error_class` is `None` for a
    /// success.
    pub fn observe(&self, unit: &str, version: &str, error_class: Option<&str>, latency: Duration, attempts: Attempts) {
        self.counter(unit, version).observe(error_class, latency, attempts);
    }

    /// Every counter, sorted by unit and version.
    pub fn snapshot(&self) -> Vec<CallCounts> {
        let units = self.units.read();
        let mut out = Vec::new();
        for (unit, versions) in units.iter() {
            for (version, c) in versions {
                let mut cumulative = 0;
                let buckets = c
                    .buckets
                    .iter()
                    .map(|b| {
                        cumulative += b.load(Ordering::Relaxed);
                        cumulative
                    })
                    .collect();
                let errors = CLASSES
                    .iter()
                    .zip(&c.errors)
                    .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                out.push(CallCounts {
                    unit: unit.clone(),
                    version: version.clone(),
                    calls: c.calls.load(Ordering::Relaxed),
                    attempts: c.attempts.load(Ordering::Relaxed),
                    recovered: c.recovered.load(Ordering::Relaxed),
                    refused: c.refused.load(Ordering::Relaxed),
                    errors,
                    buckets,
                    sum_secs: c.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
                });
            }
        }
        out.sort_by(|a, b| (&a.unit, &a.version).cmp(&(&b.unit, &b.version)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_errors_classed() {
        let c = CallCounters::default();
        c.observe("u", "1", None, Duration::from_micros(30), Attempts::ONCE);
        c.observe("u", "1", Some("trap"), Duration::from_millis(3), Attempts { attempts: 2, recovered: false });
        c.observe("u", "1", Some("weird"), Duration::from_secs(9), Attempts::ONCE);
        c.observe("u", "1", None, Duration::from_millis(40), Attempts { attempts: 3, recovered: true });
        c.counter("u", "1").refused();
        let s = &c.snapshot()[0];
        assert_eq!((s.calls, s.attempts, s.recovered), (4, 7, 1), "calls, attempts and recovered calls apart");
        assert_eq!(s.refused, 1, "a refused call is counted apart from the calls");
        assert_eq!(s.errors, vec![("trap", 1), ("other", 1)]);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(*s.buckets.last().unwrap(), 3, "9 s is above every bound: only +Inf holds it");
    }
}
