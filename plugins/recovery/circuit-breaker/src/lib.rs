//! Opens the circuit of a target whose recent calls fail too often: at least
//! `min_calls` (default 10) outcomes within `window_ms` (default 60 000) of
//! which more than `failure_rate` (default 0.5) failed → open for
//! `cooldown_ms` (default 30 000). The host keeps the breaker's state and
//! sends half-open probes after the cool-down; this plugin only decides when
//! the evidence is strong enough to stop calling.

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
        let recent: Vec<_> = failure.recent.iter().filter(|o| o.age_ms <= window).collect();
        // The failure being handled counts too.
        let calls = recent.len() + 1;
        let failures = recent.iter().filter(|o| !o.ok).count() + 1;
        let rate = failures as f64 / calls as f64;
        if calls >= min_calls && rate > threshold {
            RecoveryAction::OpenCircuit(config.u64("cooldown_ms", 30_000))
        } else {
            RecoveryAction::Pass
        }
    }
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

    #[test]
    fn old_outcomes_do_not_count() {
        let mut f = with_history(0, 20);
        for o in &mut f.recent {
            o.age_ms = 120_000;
        }
        assert_eq!(decide::<CircuitBreaker>(&f, &[]), RecoveryAction::Pass);
    }
}
