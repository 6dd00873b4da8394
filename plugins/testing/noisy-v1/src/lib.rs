//! Test unit `noisy`: echoes the request, and fails about `error_percent`
//! (default 1) percent of calls with a `dependency` error chosen at random
//! (WASI randomness), like a unit with a flaky upstream. noisy-v2 compiles
//! this same file with another version: behaviour-identical candidates whose
//! outputs do not name their version, so replay can compare them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use kaizen_sdk::{CallContext, Capability, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Noisy;

impl Unit for Noisy {
    fn describe() -> PluginInfo {
        PluginInfo::new("noisy", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit with random transient errors")
            // Its errors come from `wasi:random`, which a 0.2 plugin gets only when it asks.
            .needs(Capability::Random)
    }

    fn invoke(_ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        // A fresh random seed per call: uniform in 0..10_000.
        let draw = RandomState::new().hash_one(request) % 10_000;
        if (draw as f64) < config.f64("error_percent", 1.0) * 100.0 {
            return Err(UnitError::new(ErrorClass::Dependency, "upstream unavailable (transient)"));
        }
        Ok(request.to_vec())
    }
}

kaizen_sdk::export_unit!(Noisy);
