//! Test unit `echo`: answers `<version>:<request>`, so a test can tell which
//! version served each call. echo-v2 compiles this same file with another
//! package version, giving two versions with different bytes.

use kaizen_sdk::{CallContext, Config, PluginInfo, PluginKind, Unit, UnitError};

pub struct Echo;

impl Unit for Echo {
    fn describe() -> PluginInfo {
        PluginInfo::new("echo", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit answering <version>:<request>")
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let mut out = format!("{}:", env!("CARGO_PKG_VERSION")).into_bytes();
        out.extend_from_slice(request);
        Ok(out)
    }
}

kaizen_sdk::export_unit!(Echo);
