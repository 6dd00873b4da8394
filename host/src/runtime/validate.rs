//! Checks a module must pass before anything is registered: it is a
//! component, of one of the three worlds, importing only what the host
//! provides, and describing itself sensibly. Each failure is one
//! [`LoadReason`] naming what was wrong.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::SUPPORTED_VERSIONS;
use super::bindings::types::{PluginInfo, PluginKind};
use super::error::LoadReason;

/// The `kaizen:plugin` interfaces a plugin may import, in every supported
/// package version ([`SUPPORTED_VERSIONS`]).
pub const IMPORTABLE_INTERFACES: &[&str] = &["host", "types"];

/// Whether `name` (`kaizen:plugin/host@0.1.0`) is an interface of a
/// contract version this host loads.
pub fn is_supported_import(name: &str) -> bool {
    name.strip_prefix("kaizen:plugin/").and_then(|rest| rest.split_once('@')).is_some_and(|(interface, version)| {
        IMPORTABLE_INTERFACES.contains(&interface) && SUPPORTED_VERSIONS.contains(&version)
    })
}

/// Cheap checks on raw bytes, before compiling anything.
pub fn check_bytes(bytes: &[u8], max: usize) -> Result<(), LoadReason> {
    if bytes.is_empty() {
        return Err(LoadReason::Empty);
    }
    if bytes.len() > max {
        return Err(LoadReason::TooLarge { size: bytes.len(), limit: max });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadReason::NotWasm);
    }
    // Bytes 4..8 are the version and layer: 1,0,0,0 is a core module; a
    // component has layer 1 (bytes 6..8 = 1,0).
    if bytes[6..8] == [0, 0] {
        return Err(LoadReason::CoreModule);
    }
    Ok(())
}

/// Which world `component` targets, from its exports.
pub fn world_of(engine: &Engine, component: &Component) -> Result<PluginKind, LoadReason> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    let has = |n: &str| exports.iter().any(|e| e == n);
    let kind = if !has("describe") {
        None
    } else if has("detect") {
        Some(PluginKind::Detector)
    } else if has("handles") && has("decide") {
        Some(PluginKind::Recovery)
    } else if has("invoke") {
        Some(PluginKind::Unit)
    } else {
        None
    };
    kind.ok_or_else(|| LoadReason::UnknownWorld {
        exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
    })
}

/// Every import must be WASI (given with nothing granted unless configured)
/// or a supported `kaizen:plugin` interface.
pub fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadReason> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let allowed = name.starts_with("wasi:") || is_supported_import(name);
        if !allowed {
            return Err(LoadReason::ForbiddenImport(name.to_string()));
        }
    }
    Ok(())
}

/// World names for messages.
pub fn world_name(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Detector => "detector",
        PluginKind::Recovery => "recovery",
        PluginKind::Unit => "unit",
    }
}

/// A self-description the host can rely on: the name is a safe slot and file
/// name, the kind matches the world, the version is semantic.
pub fn check_info(info: &PluginInfo, world: PluginKind) -> Result<(), LoadReason> {
    let bad = |m: String| Err(LoadReason::BadDescription(m));
    if !valid_name(&info.name) {
        return bad(format!(
            "name {:?} must be 1-64 characters of lowercase letters, digits and `-`, starting with a letter",
            info.name
        ));
    }
    if info.kind != world {
        return bad(format!("says it is a {} but targets the {} world", world_name(info.kind), world_name(world)));
    }
    if !valid_semver(&info.version) {
        return bad(format!("version {:?} is not MAJOR.MINOR.PATCH", info.version));
    }
    if info.description.len() > 1024 || info.description.chars().any(char::is_control) {
        return bad("description must be one line of at most 1024 bytes".into());
    }
    Ok(())
}

/// Slot names: lowercase letters, digits and `-`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `MAJOR.MINOR.PATCH`, optionally followed by `-pre` / `+build`.
pub fn valid_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(valid_name("calculator"));
        assert!(valid_name("low-success-rate2"));
        assert!(!valid_name("../etc"));
        assert!(!valid_name("Calc"));
        assert!(!valid_name(""));
        assert!(valid_semver("1.2.3"));
        assert!(valid_semver("1.2.3-rc.1"));
        assert!(!valid_semver("1.2"));
        assert!(!valid_semver("v1.2.3"));
    }

    #[test]
    fn imports_of_supported_contract_versions_only() {
        let current = super::super::bindings::CONTRACT_VERSION;
        assert!(is_supported_import(&format!("kaizen:plugin/host@{current}")));
        assert!(is_supported_import(&format!("kaizen:plugin/types@{current}")));
        assert!(is_supported_import("kaizen:plugin/host@0.1.0"));
        assert!(!is_supported_import("kaizen:plugin/host@9.0.0"));
        assert!(!is_supported_import("kaizen:plugin/host"));
        assert!(!is_supported_import("kaizen:plugin/unit@0.1.0"));
        assert!(!is_supported_import("test:bad-import/exfiltrate"));
    }

    #[test]
    fn byte_checks() {
        assert!(matches!(check_bytes(b"", 10), Err(LoadReason::Empty)));
        assert!(matches!(check_bytes(b"hello world", 100), Err(LoadReason::NotWasm)));
        assert!(matches!(check_bytes(b"\0asm\x01\0\0\0", 100), Err(LoadReason::CoreModule)));
        assert!(matches!(check_bytes(&[0; 200], 100), Err(LoadReason::TooLarge { .. })));
        assert!(check_bytes(b"\0asm\x0d\0\x01\0", 100).is_ok());
    }
}
