//! Answer a failed call from another unit, named by the `unit` config key
//! (for example a simpler, slower or cached implementation). Without that key,
//! or when the failing unit is the fallback itself, it passes.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct Fallback;

impl Recovery for Fallback {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "fallback",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Answer from a configured fallback unit",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        // Every class: a fallback is the last resort whatever went wrong,
        // except a caller's own bad input, which no other unit can fix.
        vec![]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        if failure.error_class == ErrorClass::InvalidInput {
            return RecoveryAction::Pass;
        }
        // A per-target key wins over the global one: `unit.calculator = calc-lite`.
        let unit = config.get(&format!("unit.{}", failure.target)).or_else(|| config.get("unit"));
        match unit {
            Some(u) if !u.is_empty() && u != failure.target => RecoveryAction::Fallback(u),
            _ => RecoveryAction::Pass,
        }
    }
}

kaizen_sdk::export_recovery!(Fallback);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    #[test]
    fn falls_back_to_the_configured_unit() {
        let f = failure("calc", ErrorClass::Internal, 1);
        assert_eq!(decide::<Fallback>(&f, &[("unit", "calc-lite")]), RecoveryAction::Fallback("calc-lite".into()));
        assert_eq!(decide::<Fallback>(&f, &[("unit", "x"), ("unit.calc", "y")]), RecoveryAction::Fallback("y".into()));
        assert_eq!(decide::<Fallback>(&f, &[]), RecoveryAction::Pass);
        assert_eq!(decide::<Fallback>(&f, &[("unit", "calc")]), RecoveryAction::Pass);
        assert_eq!(
            decide::<Fallback>(&failure("calc", ErrorClass::InvalidInput, 1), &[("unit", "z")]),
            RecoveryAction::Pass
        );
    }
}
