//! Test unit `counter`: keeps a count in the guest's memory and answers it,
//! so a test can see whether calls share an instance. `trap` panics (after
//! counting), anything else is counted and answered with the new count.
//! In a fresh instance every answer is `1`; in a warm one the count climbs
//! until the instance is re-created.

use std::sync::atomic::{AtomicU64, Ordering};

use kaizen_sdk::{CallContext, Config, PluginInfo, PluginKind, Unit, UnitError};

static CALLS: AtomicU64 = AtomicU64::new(0);

pub struct Counter;

impl Unit for Counter {
    fn describe() -> PluginInfo {
        PluginInfo::new("counter", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Test unit answering its call count")
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        if request == b"trap" {
            panic!("counter asked to trap after {n} calls");
        }
        Ok(n.to_string().into_bytes())
    }
}

kaizen_sdk::export_unit!(Counter);
