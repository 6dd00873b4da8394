//! Test unit `clock`: answers the wall-clock time it reads (seconds since
//! the Unix epoch) and 8 random bytes in hex, as `SECONDS RANDOM`. Built as
//! `test-clock-declared` it declares the `wall-clock` and `random`
//! capabilities; built as `test-clock-undeclared` (the same file) it
//! declares nothing, so the host must withhold both.

use kaizen_sdk::{CallContext, Capability, Config, PluginInfo, PluginKind, Unit, UnitError};

pub struct Clock;

const DECLARES: bool = matches!(env!("CARGO_PKG_NAME").as_bytes(), b"test-clock-declared");

impl Unit for Clock {
    fn describe() -> PluginInfo {
        let info =
            PluginInfo::new("clock", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit reading the wall clock");
        if DECLARES { info.needs(Capability::WallClock).needs(Capability::Random) } else { info }
    }

    fn invoke(_ctx: &CallContext, _request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut bytes = [0u8; 8];
        // `std` has no public randomness; a HashMap's keys come from
        // `wasi:random`, which is what this reads.
        let seeded = std::collections::hash_map::RandomState::new();
        let h = std::hash::BuildHasher::hash_one(&seeded, 0u8);
        bytes.copy_from_slice(&h.to_le_bytes());
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{secs} {hex}").into_bytes())
    }
}

kaizen_sdk::export_unit!(Clock);
