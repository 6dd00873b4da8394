//! When a call fails for its size (timeout, memory, or a unit's `too-large`
//! class), retry asking the unit to do less: `first_pct` percent of the work
//! (default 50), then half of that again, down to `min_pct` (default 10), after
//! which it passes to the next strategy.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction, ReducedScope};

pub struct ReduceScope;

impl Recovery for ReduceScope {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "reduce-scope",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Retry asking the unit for a smaller piece of work",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![ErrorClass::Timeout, ErrorClass::Memory, ErrorClass::Other("too-large".into())]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        let first = config.f64("first_pct", 50.0);
        let min = config.f64("min_pct", 10.0);
        let pct = first / 2f64.powi(failure.attempt.saturating_sub(1) as i32);
        if pct < min || pct < 1.0 {
            return RecoveryAction::Pass;
        }
        RecoveryAction::RetryReducedScope(ReducedScope {
            delay_ms: config.u64("delay_ms", 0),
            scope_pct: pct.min(99.0) as u8,
        })
    }
}

kaizen_sdk::export_recovery!(ReduceScope);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    fn scope(attempt: u32) -> Option<u8> {
        match decide::<ReduceScope>(&failure("a", ErrorClass::Timeout, attempt), &[]) {
            RecoveryAction::RetryReducedScope(r) => Some(r.scope_pct),
            RecoveryAction::Pass => None,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn halves_until_the_floor() {
        assert_eq!((1..=5).map(scope).collect::<Vec<_>>(), vec![Some(50), Some(25), Some(12), None, None]);
    }
}
