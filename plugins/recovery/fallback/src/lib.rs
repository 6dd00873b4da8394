//! Answer a failed call from another unit, named by the `unit` config key
//! (for example a simpler, slower or cached implementation). Without that key,
//! or when the failing unit is the fallback itself, it passes. The key may
//! list several units, separated by commas (`unit.calculator = "calc-lite,
//! calc-cache"`): the host tries them in the order of their measured
//! success for the failing target and error class, until one answers.

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
        let units = config.get(&format!("unit.{}", failure.target)).or_else(|| config.get("unit"));
        let units: Vec<String> = units
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty() && *u != failure.target)
            .map(str::to_string)
            .collect();
        if units.is_empty() { RecoveryAction::Pass } else { RecoveryAction::Fallback(units.join(",")) }
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
        // Several, in the order written (the host orders them by record).
        assert_eq!(
            decide::<Fallback>(&f, &[("unit.calc", "calc-lite, calc, calc-cache")]),
            RecoveryAction::Fallback("calc-lite,calc-cache".into())
        );
        assert_eq!(
            decide::<Fallback>(&failure("calc", ErrorClass::InvalidInput, 1), &[("unit", "z")]),
            RecoveryAction::Pass
        );
    }
}
