//! Test unit `failing`: every call fails with an `internal` error.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Failing;

impl Unit for Failing {
    fn describe() -> PluginInfo {
        PluginInfo::new("failing", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit that always fails")
    }

    fn invoke(_ctx: &CallContext, _request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        Err(UnitError::new(ErrorClass::Internal, "always broken"))
    }
}

kaizen_sdk::export_unit!(Failing);
