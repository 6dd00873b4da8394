//! `kaizen plugin check FILE`: what the host would make of a module.

use std::path::Path;

use anyhow::Context;
use kaizen_host::runtime::types::TunableType;
use kaizen_host::runtime::validate::{capability_name, value_text, world_name};
use kaizen_host::{Runtime, RuntimeConfig};

pub fn run(file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let scratch = tempfile::tempdir()?;
    // What the module declares is reported, not judged against a host's
    // grants: `serve` refuses a capability its config does not grant.
    let rt = Runtime::new(scratch.path(), RuntimeConfig { grant_declared: true, ..RuntimeConfig::default() })?;
    let label = file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let imports = rt.component_imports(&bytes).unwrap_or_default();
    match rt.load(&label, &bytes) {
        Ok(p) => {
            let info = p.info();
            if json {
                out!(
                    "{}",
                    serde_json::json!({
                        "file": file, "accepted": true, "world": world_name(info.kind),
                        "contract": p.contract().version(),
                        "name": info.name, "version": info.version, "description": info.description,
                        "sha256": p.sha256(), "size": p.size(), "imports": imports,
                        "tunables": info.tunables, "capabilities": info.capabilities.iter().map(capability_name).collect::<Vec<_>>(),
                    })
                );
            } else {
                out!("{}: accepted", file.display());
                out!("  world        kaizen:plugin/{}@{}", world_name(info.kind), p.contract().version());
                out!("  contract     {}", p.contract().version());
                out!("  name         {}", info.name);
                out!("  version      {}", info.version);
                out!("  description  {}", info.description);
                out!("  size         {} bytes", p.size());
                out!("  sha256       {}", p.sha256());
                out!("  imports      {}", if imports.is_empty() { "none".into() } else { imports.join(", ") });
                for t in &info.tunables {
                    let safe = if t.canary_safe { "" } else { ", not canary-safe" };
                    let unit = if t.unit.is_empty() { String::new() } else { format!(" {}", t.unit) };
                    out!(
                        "  tunable      {} = {}{unit} ({}{safe}): {}",
                        t.name,
                        value_text(&t.default),
                        domain(&t.type_),
                        t.description
                    );
                }
                if !info.capabilities.is_empty() {
                    let names: Vec<String> = info.capabilities.iter().map(capability_name).collect();
                    out!(
                        "  needs        {} (granted per plugin under [runtime.grants.{}])",
                        names.join(", "),
                        info.name
                    );
                }
            }
            Ok(())
        }
        Err(e) => {
            if json {
                out!(
                    "{}",
                    serde_json::json!({ "file": file, "accepted": false, "reason": e.reason.to_string(), "imports": imports })
                );
            } else {
                out!("{}: refused", file.display());
                out!("  reason   {}", e.reason);
                if !imports.is_empty() {
                    out!("  imports  {}", imports.join(", "));
                }
            }
            std::process::exit(1);
        }
    }
}

/// A tunable's domain in words: `integer 1..=4096`, `one of lru, fifo`.
fn domain(ty: &TunableType) -> String {
    match ty {
        TunableType::Integer(r) => format!("integer {}..={}", r.min, r.max),
        TunableType::Float(r) => format!("float {}..={}", r.min, r.max),
        TunableType::Boolean => "boolean".into(),
        TunableType::Choice(names) => format!("one of {}", names.join(", ")),
    }
}
