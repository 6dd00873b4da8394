//! Helpers shared by the tests.

use std::path::PathBuf;
use std::sync::Arc;

use kaizen_host::runtime::types::{CallContext, PluginKind};
use kaizen_host::{Runtime, RuntimeConfig};
use kaizen_plugins::Guest;

/// Compiled components are cached here across tests and runs, so a debug
/// build compiles each guest once rather than once per test.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kaizen-compiled-cache")
}

/// A runtime over a fresh temporary data directory.
pub fn runtime_with(edit: impl FnOnce(&mut RuntimeConfig)) -> (tempfile::TempDir, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::in_dir(dir.path());
    config.cache_dir = Some(shared_cache());
    edit(&mut config);
    let rt = Runtime::new(config).expect("runtime starts");
    (dir, rt)
}

pub fn runtime() -> (tempfile::TempDir, Arc<Runtime>) {
    runtime_with(|_| {})
}

/// Load and install `guest`, returning its bytes.
pub fn install(rt: &Runtime, guest: &Guest) -> Arc<kaizen_host::Plugin> {
    let bytes = guest.load().expect("guest built");
    let plugin = rt
        .load(guest.package, &bytes)
        .unwrap_or_else(|e| panic!("{} loads: {e}", guest.package));
    rt.install(plugin.clone()).expect("installs");
    plugin
}

pub fn ctx() -> CallContext {
    CallContext {
        attempt: 1,
        scope_pct: None,
        deadline_ms: 5_000,
    }
}

pub fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

pub fn kind_of(group: &str) -> PluginKind {
    match group {
        "detectors" => PluginKind::Detector,
        "recovery" => PluginKind::Recovery,
        _ => PluginKind::Unit,
    }
}
