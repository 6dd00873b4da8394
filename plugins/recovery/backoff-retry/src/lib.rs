//! Exponential backoff: retry after `base_ms` (default 1000), then twice that,
//! and so on, for `max_attempts` retries (default 3: 1 s → 2 s → 4 s), each
//! delay spread by ±`jitter_pct` percent (default 10) so that many callers
//! failing together do not retry in lockstep. After the last retry, or when
//! the next delay would pass the caller's deadline, it passes: another
//! strategy (a fallback, say) may still help.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct BackoffRetry;

/// Deterministic jitter in [-1, 1] from the failure itself (FNV-1a over the
/// target, attempt and elapsed time): reproducible in tests, yet different for
/// concurrent callers whose calls started at different times.
fn jitter_unit(failure: &Failure) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = failure.target.bytes().chain(failure.attempt.to_le_bytes()).chain(failure.elapsed_ms.to_le_bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 2001) as f64 / 1000.0 - 1.0
}

/// The delay before retry number `attempt` (1-based), without jitter.
pub fn base_delay_ms(attempt: u32, base_ms: u64, factor: f64) -> u64 {
    (base_ms as f64 * factor.powi(attempt.saturating_sub(1) as i32)) as u64
}

impl Recovery for BackoffRetry {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "backoff-retry",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Retry with exponential backoff (1 s, 2 s, 4 s) and jitter",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![ErrorClass::Dependency, ErrorClass::Timeout, ErrorClass::Internal]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        let max_attempts = config.u64("max_attempts", 3) as u32;
        if failure.attempt > max_attempts {
            return RecoveryAction::Pass;
        }
        let base = base_delay_ms(failure.attempt, config.u64("base_ms", 1000), config.f64("factor", 2.0));
        let jitter_pct = config.f64("jitter_pct", 10.0).clamp(0.0, 100.0);
        let delay = (base as f64 * (1.0 + jitter_unit(failure) * jitter_pct / 100.0)).round() as u64;
        if delay >= failure.remaining_ms {
            // The next retry would pass the caller's deadline.
            return RecoveryAction::Pass;
        }
        RecoveryAction::Retry(delay)
    }
}

kaizen_sdk::export_recovery!(BackoffRetry);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    #[test]
    fn one_two_four_seconds_then_pass() {
        let no_jitter = [("jitter_pct", "0")];
        let delays: Vec<_> =
            (1..=3).map(|a| decide::<BackoffRetry>(&failure("a", ErrorClass::Dependency, a), &no_jitter)).collect();
        assert_eq!(delays, vec![RecoveryAction::Retry(1000), RecoveryAction::Retry(2000), RecoveryAction::Retry(4000)]);
        assert_eq!(decide::<BackoffRetry>(&failure("a", ErrorClass::Dependency, 4), &no_jitter), RecoveryAction::Pass);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut seen = std::collections::HashSet::new();
        for elapsed in 0..50 {
            let mut f = failure("a", ErrorClass::Timeout, 2);
            f.elapsed_ms = elapsed;
            let RecoveryAction::Retry(d) = decide::<BackoffRetry>(&f, &[]) else { panic!("expected retry") };
            assert!((1800..=2200).contains(&d), "{d}");
            seen.insert(d);
        }
        assert!(seen.len() > 10);
    }

    #[test]
    fn never_waits_past_the_deadline() {
        let mut f = failure("a", ErrorClass::Dependency, 3);
        f.remaining_ms = 1000;
        assert_eq!(decide::<BackoffRetry>(&f, &[("jitter_pct", "0")]), RecoveryAction::Pass);
    }
}
