//! Test unit `flaky`: fails with a `dependency` error while the call's
//! attempt number is at most `fail_attempts` (default 2), then echoes the
//! request. Retries are what make it succeed.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Flaky;

impl Unit for Flaky {
    fn describe() -> PluginInfo {
        PluginInfo::new("flaky", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit failing its first attempts")
    }

    fn invoke(ctx: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError> {
        if u64::from(ctx.attempt) <= config.u64("fail_attempts", 2) {
            return Err(UnitError::new(
                ErrorClass::Dependency,
                format!("upstream unavailable (attempt {})", ctx.attempt),
            ));
        }
        Ok(request.to_vec())
    }
}

kaizen_sdk::export_unit!(Flaky);
