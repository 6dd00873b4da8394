//! Opens the circuit of a target whose recent calls fail too often: with
//! at least `min_calls` (default 10) outcomes within `window_ms` (default
//! 60 000), when their failure share is shown above `failure_rate`
//! (default 0.5) at 95 % confidence — the Wilson score lower bound of the
//! share is above it — or when the last `min_calls` all failed → open for
//! `cooldown_ms` (default 30 000). Judging the share with its uncertainty
//! keeps chance runs in a few calls (6 failures in 12 of a unit failing a
//! third of its calls) from cutting off a unit that mostly works. The host
//! keeps the breaker's state and sends half-open probes after the
//! cool-down; this plugin only decides when the evidence is strong enough
//! to stop calling.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct CircuitBreaker;

impl Recovery for CircuitBreaker {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "circuit-breaker",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Open the circuit after a failure-rate threshold over a minimum of calls",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        if failure.error_class == ErrorClass::InvalidInput {
            return RecoveryAction::Pass;
        }
        let min_calls = config.u64("min_calls", 10) as usize;
        let threshold = config.f64("failure_rate", 0.5);
        let window = config.u64("window_ms", 60_000);
        // Oldest first, as the host sends them.
        let recent: Vec<_> = failure.recent.iter().filter(|o| o.age_ms <= window).collect();
        // The failure being handled counts too.
        let calls = recent.len() + 1;
        let failures = recent.iter().filter(|o| !o.ok).count() + 1;
        let run = recent.iter().rev().take_while(|o| !o.ok).count() + 1;
        let open = calls >= min_calls && (run >= min_calls || wilson_lower_bound(failures, calls) > threshold);
        if open { RecoveryAction::OpenCircuit(config.u64("cooldown_ms", 30_000)) } else { RecoveryAction::Pass }
    }
}

/// The lower end of the one-sided 95 % Wilson score interval for a share
/// of `k` in `n` (Wilson, "Probable inference, the law of succession, and
/// statistical inference", JASA 22, 1927); `n` ≥ 1. The host's own
/// breaker judges its window the same way.
fn wilson_lower_bound(k: usize, n: usize) -> f64 {
    const Z: f64 = 1.644_853_626_951_472_2;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    (p + Z * Z / (2.0 * n) - Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt()) / (1.0 + Z * Z / n)
}

kaizen_sdk::export_recovery!(CircuitBreaker);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::RecentOutcome;
    use kaizen_sdk::testing::{decide, failure};

    fn with_history(ok: usize, failed: usize) -> Failure {
        let mut f = failure("a", ErrorClass::Dependency, 1);
        let outcome = |ok: bool| RecentOutcome {
            age_ms: 100,
            ok,
            error_class: (!ok).then_some(ErrorClass::Dependency),
            latency_ms: 1.0,
        };
        f.recent = (0..ok).map(|_| outcome(true)).chain((0..failed).map(|_| outcome(false))).collect();
        f
    }

    #[test]
    fn opens_above_the_rate_after_enough_calls() {
        assert_eq!(decide::<CircuitBreaker>(&with_history(3, 8), &[]), RecoveryAction::OpenCircuit(30_000));
        assert_eq!(decide::<CircuitBreaker>(&with_history(8, 3), &[]), RecoveryAction::Pass);
        // Too few calls to judge.
        assert_eq!(decide::<CircuitBreaker>(&with_history(0, 5), &[]), RecoveryAction::Pass);
    }

    /// 6 failures in 12 (this one included), or 7 in 13, is a chance run
    /// for a unit failing a third of its calls; 8 in 10 is shown above
    /// half; 10 failures in a row open it whatever came before.
    #[test]
    fn a_share_just_over_the_rate_is_not_enough() {
        assert_eq!(decide::<CircuitBreaker>(&with_history(6, 5), &[]), RecoveryAction::Pass);
        assert_eq!(decide::<CircuitBreaker>(&with_history(6, 6), &[]), RecoveryAction::Pass);
        assert_eq!(decide::<CircuitBreaker>(&with_history(2, 7), &[]), RecoveryAction::OpenCircuit(30_000));
        assert_eq!(decide::<CircuitBreaker>(&with_history(40, 9), &[]), RecoveryAction::OpenCircuit(30_000));
        assert_eq!(decide::<CircuitBreaker>(&with_history(40, 8), &[]), RecoveryAction::Pass);
    }

    #[test]
    fn old_outcomes_do_not_count() {
        let mut f = with_history(0, 20);
        for o in &mut f.recent {
            o.age_ms = 120_000;
        }
        assert_eq!(decide::<CircuitBreaker>(&f, &[]), RecoveryAction::Pass);
    }
}
