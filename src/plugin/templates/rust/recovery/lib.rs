//! Recovery strategy `__NAME__`: retries timeouts and dependency failures
//! after a fixed delay, up to `max_attempts` (default 2), then passes.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct __TYPE__;

impl Recovery for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Recovery, env!("CARGO_PKG_VERSION"), "Retry after a fixed delay")
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![ErrorClass::Timeout, ErrorClass::Dependency]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        if u64::from(failure.attempt) > config.u64("max_attempts", 2) {
            return RecoveryAction::Pass;
        }
        RecoveryAction::Retry(config.u64("delay_ms", 50))
    }
}

kaizen_sdk::export_recovery!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    #[test]
    fn retries_then_passes() {
        assert!(matches!(decide::<__TYPE__>(&failure("api", ErrorClass::Timeout, 1), &[]), RecoveryAction::Retry(50)));
        assert!(matches!(decide::<__TYPE__>(&failure("api", ErrorClass::Timeout, 3), &[]), RecoveryAction::Pass));
    }
}
