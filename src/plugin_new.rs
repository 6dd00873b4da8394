//! `kaizen plugin new KIND NAME [--lang rust|python|js|c]`: a ready plugin
//! with a working example and its own passing test, so an author starts
//! from something green and edits. Rust (the default) is a crate on the
//! SDK; the other languages are in [`crate::plugin_new_polyglot`].

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Detector,
    Recovery,
    Unit,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

#[derive(Args)]
pub struct NewArgs {
    kind: Kind,
    /// Plugin name: lowercase letters, digits and `-`, starting with a letter.
    name: String,
    /// Where to create the crate (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The plugin's language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Rust: the kaizen-sdk crate to depend on (default: this checkout's `sdk/`).
    #[arg(long, env = "KAIZEN_SDK_PATH")]
    sdk: Option<PathBuf>,
}

/// The SDK of the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

fn ident(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

pub fn run(a: NewArgs) -> anyhow::Result<()> {
    if !kaizen_host::runtime::validate::valid_name(&a.name) {
        bail!("invalid plugin name `{}`: use 1-64 lowercase letters, digits and `-`, starting with a letter", a.name);
    }
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from(&a.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let what = kind_name(a.kind);
    match a.lang {
        Lang::Rust => {
            let sdk = a.sdk.clone().unwrap_or_else(|| PathBuf::from(BUILT_SDK));
            let sdk = sdk.canonicalize().with_context(|| {
                format!("the SDK is not at {} — pass --sdk PATH (the kaizen checkout's sdk/ folder)", sdk.display())
            })?;
            if !sdk.join("Cargo.toml").exists() {
                bail!("{} holds no Cargo.toml: pass --sdk PATH to the kaizen checkout's sdk/ folder", sdk.display());
            }
            write_crate(&dir, a.kind, &a.name, &sdk)?;
            println!("created {what} plugin `{}` (Rust) in {}", a.name, dir.display());
            println!("  cd {}", dir.display());
            println!("  cargo test                                    # its own test, natively");
            println!("  cargo build --release --target wasm32-wasip2  # the component");
            println!("  kaizen plugin check target/wasm32-wasip2/release/{}.wasm", a.name.replace('-', "_"));
        }
        Lang::Python => {
            crate::plugin_new_polyglot::python(&dir, a.kind, &a.name)?;
            println!("created {what} plugin `{}` (Python) in {}; see its README.md", a.name, dir.display());
        }
        Lang::Js => {
            crate::plugin_new_polyglot::js(&dir, a.kind, &a.name)?;
            println!("created {what} plugin `{}` (JavaScript) in {}; see its README.md", a.name, dir.display());
        }
        Lang::C => {
            crate::plugin_new_polyglot::c(&dir, a.kind, &a.name)?;
            println!("created {what} plugin `{}` (C) in {}; see its README.md", a.name, dir.display());
        }
    }
    Ok(())
}

/// The kind's world name in the WIT package (`detector`, `recovery`, `unit`).
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Detector => "detector",
        Kind::Recovery => "recovery",
        Kind::Unit => "unit",
    }
}

pub fn write_crate(dir: &Path, kind: Kind, name: &str, sdk: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    let sdk_path = sdk.display().to_string().replace('\\', "/");
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
kaizen-sdk = {{ path = "{sdk_path}" }}

# A crate of its own, even when created inside another workspace.
[workspace]
"#
    );
    let ty = ident(name);
    let lib = match kind {
        Kind::Detector => DETECTOR,
        Kind::Recovery => RECOVERY,
        Kind::Unit => UNIT,
    }
    .replace("__NAME__", name)
    .replace("__TYPE__", &ty);
    let wasm = name.replace('-', "_");
    let readme = format!(
        "# {name}\n\nA Kaizen {} plugin (see the SDK's README for the contract).\n\n```sh\ncargo test\ncargo build --release --target wasm32-wasip2\nkaizen plugin check target/wasm32-wasip2/release/{wasm}.wasm\ncp target/wasm32-wasip2/release/{wasm}.wasm <watch folder>/   # or: kaizen deploy <file>\n```\n",
        kind_name(kind)
    );
    std::fs::write(dir.join("Cargo.toml"), cargo)?;
    std::fs::write(dir.join("src/lib.rs"), lib)?;
    std::fs::write(dir.join("README.md"), readme)?;
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    Ok(())
}

const DETECTOR: &str = r#"//! Detector `__NAME__`: flags targets whose p95 latency is over a budget.
//! Configure with `[runtime.plugin_config.__NAME__] budget_ms = "50"`.

use kaizen_sdk::{Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity};

pub struct __TYPE__;

impl Detector for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Detector, env!("CARGO_PKG_VERSION"), "p95 latency over a budget")
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let budget = config.f64("budget_ms", 50.0);
        input
            .targets
            .iter()
            .filter(|t| t.current.executions >= 20 && t.current.latency.p95_ms > budget)
            .map(|t| Finding {
                target: t.target.clone(),
                kind: "__NAME__".into(),
                severity: Severity::Medium,
                confidence: 0.8,
                summary: format!("{} p95 {:.1} ms over a {budget} ms budget", t.target, t.current.latency.p95_ms),
                evidence: vec![Evidence::new("p95_ms", t.current.latency.p95_ms)],
                expected_gain_pct: (1.0 - budget / t.current.latency.p95_ms) * 100.0,
                risk: Risk::Low,
            })
            .collect()
    }
}

kaizen_sdk::export_detector!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{detect, input, target, window, with_latency};

    #[test]
    fn fires_over_budget_only() {
        let slow = with_latency(window(100, 0), 10.0, 80.0, 90.0, 5.0);
        let fast = with_latency(window(100, 0), 1.0, 2.0, 3.0, 0.5);
        assert_eq!(detect::<__TYPE__>(&input(vec![target("api", slow, None)]), &[]).len(), 1);
        assert!(detect::<__TYPE__>(&input(vec![target("api", fast, None)]), &[]).is_empty());
    }
}
"#;

const RECOVERY: &str = r#"//! Recovery strategy `__NAME__`: retries timeouts and dependency failures
//! after a fixed delay, up to `max_attempts` (default 2), then passes.

use kaizen_sdk::{Config, ErrorClass, Failure, PluginInfo, PluginKind, Recovery, RecoveryAction};

pub struct __TYPE__;

impl Recovery for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Recovery, env!("CARGO_PKG_VERSION"), "Retry after a fixed delay")
    }

    fn handles(_config: &Config) -> Vec<ErrorClass> {
        vec![ErrorClass::Timeout, ErrorClass::Dependency]
    }

    fn decide(failure: &Failure, config: &Config) -> RecoveryAction {
        if u64::from(failure.attempt) > config.u64("max_attempts", 2) {
            return RecoveryAction::Pass;
        }
        RecoveryAction::Retry(config.u64("delay_ms", 50))
    }
}

kaizen_sdk::export_recovery!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::{decide, failure};

    #[test]
    fn retries_then_passes() {
        assert!(matches!(decide::<__TYPE__>(&failure("api", ErrorClass::Timeout, 1), &[]), RecoveryAction::Retry(50)));
        assert!(matches!(decide::<__TYPE__>(&failure("api", ErrorClass::Timeout, 3), &[]), RecoveryAction::Pass));
    }
}
"#;

const UNIT: &str = r#"//! Unit `__NAME__`: greets by name. Request `{"name": "Ada"}`, answer
//! `{"greeting": "Hello, Ada!"}`; a request without a name is refused with
//! the `invalid-input` class.

use kaizen_sdk::{CallContext, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError, serde_json};

pub struct __TYPE__;

impl Unit for __TYPE__ {
    fn describe() -> PluginInfo {
        PluginInfo::new("__NAME__", PluginKind::Unit, env!("CARGO_PKG_VERSION"), "Greets by name")
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let req: serde_json::Value = serde_json::from_slice(request)
            .map_err(|e| UnitError::new(ErrorClass::InvalidInput, format!("request is not JSON: {e}")))?;
        let name = req["name"]
            .as_str()
            .ok_or_else(|| UnitError::new(ErrorClass::InvalidInput, "missing \"name\""))?;
        Ok(serde_json::to_vec(&serde_json::json!({ "greeting": format!("Hello, {name}!") })).expect("JSON"))
    }
}

kaizen_sdk::export_unit!(__TYPE__);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::invoke_json;

    #[test]
    fn greets_and_refuses_nameless_requests() {
        let out = invoke_json::<__TYPE__>(&serde_json::json!({"name": "Ada"})).unwrap();
        assert_eq!(out["greeting"], "Hello, Ada!");
        let err = invoke_json::<__TYPE__>(&serde_json::json!({})).unwrap_err();
        assert_eq!(err.error_class, ErrorClass::InvalidInput);
    }
}
"#;
