//! `kaizen plugin check FILE`: what the host would make of a module.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use etcetera::BaseStrategy;
use kaizen_host::runtime::CacheOutcome;
use kaizen_host::runtime::types::TunableType;
use kaizen_host::runtime::validate::{capability_name, value_text, world_name};
use kaizen_host::{Runtime, RuntimeConfig};

/// Where `plugin check` keeps compiled modules: `$KAIZEN_CACHE_DIR`, else
/// `kaizen/compiled` in the platform's cache directory. The host's own
/// compiled cache (keyed by sha256 and engine), so an entry is only ever
/// reused by an engine configured the same way.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KAIZEN_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let base = etcetera::choose_base_strategy()
        .context("no cache directory: set KAIZEN_CACHE_DIR (or run with --no-cache)")?;
    Ok(base.cache_dir().join("kaizen").join("compiled"))
}

/// Check `file`; `cached`: reuse (and fill) the compiled cache of
/// [`cache_dir`], else compile in a scratch directory.
pub fn run(file: &Path, json: bool, cached: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let scratch = tempfile::tempdir()?;
    let cache = if cached { Some(cache_dir()?) } else { None };
    // What the module declares is reported, not judged against a host's
    // grants: `serve` refuses a capability its config does not grant.
    let config = RuntimeConfig { cache_dir: cache.clone(), grant_declared: true, ..RuntimeConfig::default() };
    let rt = Runtime::new(scratch.path(), config).with_context(|| {
        format!("cannot open the compiled cache {}", cache.as_deref().unwrap_or(scratch.path()).display())
    })?;
    let label = file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let started = Instant::now();
    let loaded = rt.load(&label, &bytes);
    let took = started.elapsed();
    // After the load: it compiled (or found) the module, so this is a hit.
    let imports = rt.component_imports(&bytes).unwrap_or_default();
    match loaded {
        Ok(p) => {
            let info = p.info();
            let hit = p.cache_outcome() == CacheOutcome::Hit;
            let cache_text = match (&cache, hit) {
                (None, _) => "not used (--no-cache): compiled".to_string(),
                (Some(dir), true) => format!("hit ({})", dir.display()),
                (Some(dir), false) => format!("miss: compiled and stored ({})", dir.display()),
            };
            if json {
                out!(
                    "{}",
                    serde_json::json!({
                        "file": file, "accepted": true, "world": world_name(info.kind),
                        "contract": p.contract().version(),
                        "name": info.name, "version": info.version, "description": info.description,
                        "sha256": p.sha256(), "size": p.size(), "imports": imports,
                        "tunables": info.tunables, "capabilities": info.capabilities.iter().map(capability_name).collect::<Vec<_>>(),
                        "cache": if cache.is_none() { "off" } else if hit { "hit" } else { "miss" },
                        "load_ms": took.as_secs_f64() * 1000.0,
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
                out!("  cache        {cache_text}");
                out!("  loaded in    {:.1} ms", took.as_secs_f64() * 1000.0);
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
