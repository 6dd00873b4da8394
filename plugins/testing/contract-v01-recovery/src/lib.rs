//! Test recovery strategy `legacy-retry`, built against `wit/v0.1`: handles
//! `dependency` failures only, retrying after `attempt` × 3 ms twice, then
//! giving up with the failure's message.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "recovery", path: "../../../wit/v0.1" });

use kaizen::plugin::types::PluginKind;

struct LegacyRetry;

impl Guest for LegacyRetry {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "legacy-retry".into(),
            kind: PluginKind::Recovery,
            version: "0.1.0".into(),
            description: "Test recovery strategy built against contract 0.1.0".into(),
        }
    }

    fn handles() -> Vec<ErrorClass> {
        vec![ErrorClass::Dependency]
    }

    fn decide(failure: Failure) -> RecoveryAction {
        if failure.attempt <= 2 {
            RecoveryAction::Retry(u64::from(failure.attempt) * 3)
        } else {
            RecoveryAction::GiveUp(format!("legacy-retry gave up: {}", failure.message))
        }
    }
}

export!(LegacyRetry);
