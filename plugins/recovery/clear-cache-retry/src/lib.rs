//! When a unit fails in a way that warm state can cause (a trap, running out
//! of memory, an internal error), ask the host to throw that state away and
//! retry once after `delay_ms` (default 0). A second failure is not this
//! strategy's to fix: it passes to the next one.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct ClearCacheRetry;

impl Recovery for ClearCacheRetry {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "clear-cache-retry",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Discard the unit's warm state and retry once",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![ErrorClass::Trap(String::new()), ErrorClass::Memory, ErrorClass::Internal]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        let retries = config.u64("max_attempts", 1) as u32;
        if failure.attempt > retries {
            return RecoveryAction::Pass;
        }
        RecoveryAction::ClearCacheRetry(config.u64("delay_ms", 0))
    }
}

kaizen_sdk::export_recovery!(ClearCacheRetry);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    #[test]
    fn clears_once_then_passes() {
        assert_eq!(
            decide::<ClearCacheRetry>(&failure("a", ErrorClass::Memory, 1), &[]),
            RecoveryAction::ClearCacheRetry(0)
        );
        assert_eq!(decide::<ClearCacheRetry>(&failure("a", ErrorClass::Memory, 2), &[]), RecoveryAction::Pass);
        assert_eq!(
            decide::<ClearCacheRetry>(
                &failure("a", ErrorClass::Internal, 2),
                &[("max_attempts", "2"), ("delay_ms", "5")]
            ),
            RecoveryAction::ClearCacheRetry(5)
        );
    }
}
