//! Test recovery strategy `chaos`: by its `mode` config it traps,
//! loops forever, opens the circuit for `u64::MAX` ms (`open-forever`), or
//! (default) asks for a retry every time, forever. The host must contain
//! each: one failed strategy call, a capped circuit, or a budget that ends
//! the retries.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct Chaos;

impl Recovery for Chaos {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "chaos",
            PluginKind::Recovery,
            env!("CARGO_PKG_VERSION"),
            "Test strategy that traps, loops or retries forever",
        )
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![]
    }

    fn decide(_failure: &Failure, config: &Config) -> RecoveryAction {
        match config.get("mode").as_deref() {
            Some("trap") => panic!("misbehaving strategy asked to trap"),
            Some("loop") => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Some("open-forever") => RecoveryAction::OpenCircuit(u64::MAX),
            _ => RecoveryAction::Retry(config.u64("delay_ms", 10)),
        }
    }
}

kaizen_sdk::export_recovery!(Chaos);
