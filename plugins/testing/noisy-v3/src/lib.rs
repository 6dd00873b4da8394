//! Test unit `noisy` 3.0.0: a regression that looks like the caller's
//! fault — it refuses every request with the typed error `invalid-input`.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};

pub struct Strict;

impl Unit for Strict {
    fn describe() -> PluginInfo {
        PluginInfo::new("noisy", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit refusing every request")
    }

    fn invoke(_ctx: &CallContext, _request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        Err(UnitError::new(ErrorClass::InvalidInput, "request not accepted"))
    }
}

kaizen_sdk::export_unit!(Strict);
