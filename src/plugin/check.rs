//! `kaizen plugin check FILE`: what the host would make of a module.

use std::path::Path;

use anyhow::Context;
use kaizen_host::runtime::validate::world_name;
use kaizen_host::{Runtime, RuntimeConfig};

use super::CONTRACT_VERSION;

pub fn run(file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let scratch = tempfile::tempdir()?;
    let rt = Runtime::new(scratch.path(), RuntimeConfig::default())?;
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
                        "name": info.name, "version": info.version, "description": info.description,
                        "sha256": p.sha256(), "size": p.size(), "imports": imports,
                    })
                );
            } else {
                out!("{}: accepted", file.display());
                out!("  world        kaizen:plugin/{}@{CONTRACT_VERSION}", world_name(info.kind));
                out!("  name         {}", info.name);
                out!("  version      {}", info.version);
                out!("  description  {}", info.description);
                out!("  size         {} bytes", p.size());
                out!("  sha256       {}", p.sha256());
                out!("  imports      {}", if imports.is_empty() { "none".into() } else { imports.join(", ") });
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
