//! Checks a module must pass before anything is registered: it is a
//! component, of one of the worlds, importing only what the host provides
//! from one contract version it loads, and describing itself sensibly. Each
//! failure is one [`LoadReason`] naming what was wrong.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::types::{Capability, PluginInfo, PluginKind, Tunable, TunableType, TunableValue};
use super::bindings::{Contract, SUPPORTED_VERSIONS};
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

/// The contract version a component was built against, read from the
/// versions of the `kaizen:plugin` interfaces it imports; `None` when it
/// imports none (then its exports decide, newest version first). A version
/// this host does not load is refused naming it, and so is a component
/// that mixes versions.
pub fn contract_of(engine: &Engine, component: &Component) -> Result<Option<Contract>, LoadReason> {
    let ty = component.component_type();
    let mut found: Option<(Contract, String)> = None;
    for (name, _) in ty.imports(engine) {
        let Some(rest) = name.strip_prefix("kaizen:plugin/") else { continue };
        let Some((_, version)) = rest.split_once('@') else {
            return Err(LoadReason::ForbiddenImport(name.to_string()));
        };
        let contract = Contract::from_version(version).ok_or_else(|| LoadReason::UnsupportedContract {
            version: version.to_string(),
            supported: SUPPORTED_VERSIONS.join(", "),
        })?;
        match &found {
            Some((seen, first)) if *seen != contract => {
                return Err(LoadReason::MixedContracts { first: first.clone(), second: name.to_string() });
            }
            _ => found = Some((contract, name.to_string())),
        }
    }
    Ok(found.map(|(c, _)| c))
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
    } else if has("improve") {
        Some(PluginKind::Improver)
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
/// or a `kaizen:plugin` interface (whose version [`contract_of`] checks).
pub fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadReason> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let kaizen = name
            .strip_prefix("kaizen:plugin/")
            .and_then(|rest| rest.split_once('@'))
            .is_some_and(|(interface, _)| IMPORTABLE_INTERFACES.contains(&interface));
        if !(name.starts_with("wasi:") || kaizen) {
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
        PluginKind::Improver => "improver",
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
    if !info.tunables.is_empty() && info.kind != PluginKind::Unit {
        return bad(format!("a {} declares tunables; only units have them", world_name(info.kind)));
    }
    if info.tunables.len() > 64 {
        return bad(format!("{} tunables declared; at most 64", info.tunables.len()));
    }
    for (i, t) in info.tunables.iter().enumerate() {
        if info.tunables[..i].iter().any(|o| o.name == t.name) {
            return bad(format!("tunable `{}` is declared twice", t.name));
        }
        check_tunable(t).map_err(|m| LoadReason::BadDescription(format!("tunable `{}`: {m}", t.name)))?;
    }
    for c in &info.capabilities {
        check_capability(c).map_err(LoadReason::BadDescription)?;
    }
    Ok(())
}

/// Tunable names: lowercase letters, digits and `_`, starting with a
/// letter, so that they are config keys, TOML keys and `kaizen tune` words.
pub fn valid_tunable_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A declaration the host can tune within: a sound type, a default that
/// is a value of it, one line of text.
fn check_tunable(t: &Tunable) -> Result<(), String> {
    if !valid_tunable_name(&t.name) {
        return Err(
            "the name must be 1-64 characters of lowercase letters, digits and `_`, starting with a letter".into()
        );
    }
    match &t.type_ {
        TunableType::Integer(r) if r.min > r.max => return Err(format!("min {} is above max {}", r.min, r.max)),
        TunableType::Float(r) if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) => {
            return Err(format!("bounds {}..{} must be finite with min <= max", r.min, r.max));
        }
        TunableType::Choice(names) if names.is_empty() => return Err("a choice needs at least one name".into()),
        TunableType::Choice(names) if names.iter().enumerate().any(|(i, n)| names[..i].contains(n)) => {
            return Err("a choice names a value twice".into());
        }
        _ => {}
    }
    check_value(&t.type_, &t.default).map_err(|m| format!("default {m}"))?;
    for (what, text) in [("unit", &t.unit), ("description", &t.description)] {
        if text.len() > 256 || text.chars().any(char::is_control) {
            return Err(format!("{what} must be one line of at most 256 bytes"));
        }
    }
    Ok(())
}

/// Whether `value` is one of the values `ty` allows; `Err` says why not in
/// words that follow "value …" (`5000 is above the maximum 4096`).
pub fn check_value(ty: &TunableType, value: &TunableValue) -> Result<(), String> {
    match (ty, value) {
        (TunableType::Integer(r), TunableValue::Integer(v)) => {
            if *v < r.min {
                Err(format!("{v} is below the minimum {}", r.min))
            } else if *v > r.max {
                Err(format!("{v} is above the maximum {}", r.max))
            } else {
                Ok(())
            }
        }
        (TunableType::Float(r), TunableValue::Float(v)) => {
            if !v.is_finite() {
                Err(format!("{v} is not a finite number"))
            } else if *v < r.min {
                Err(format!("{v} is below the minimum {}", r.min))
            } else if *v > r.max {
                Err(format!("{v} is above the maximum {}", r.max))
            } else {
                Ok(())
            }
        }
        (TunableType::Boolean, TunableValue::Boolean(_)) => Ok(()),
        (TunableType::Choice(names), TunableValue::Choice(v)) if names.contains(v) => Ok(()),
        (TunableType::Choice(names), TunableValue::Choice(v)) => {
            Err(format!("{v:?} is not one of {}", names.join(", ")))
        }
        (ty, value) => Err(format!("{} is not {}", value_text(value), type_name(ty))),
    }
}

/// A value as `host.config` gives it to the unit: decimal numbers,
/// `true`/`false`, the choice's name.
pub fn value_text(value: &TunableValue) -> String {
    match value {
        TunableValue::Integer(v) => v.to_string(),
        TunableValue::Float(v) => v.to_string(),
        TunableValue::Boolean(v) => v.to_string(),
        TunableValue::Choice(v) => v.clone(),
    }
}

/// `an integer`, `a float`, … for messages.
pub fn type_name(ty: &TunableType) -> &'static str {
    match ty {
        TunableType::Integer(_) => "an integer",
        TunableType::Float(_) => "a float",
        TunableType::Boolean => "a boolean",
        TunableType::Choice(_) => "a choice",
    }
}

/// A capability's stable name, as the operator grants it:
/// `wall-clock`, `random`, `http:HOST`, `directory:PATH`.
pub fn capability_name(c: &Capability) -> String {
    match c {
        Capability::WallClock => "wall-clock".into(),
        Capability::Random => "random".into(),
        Capability::Http(host) => format!("http:{host}"),
        Capability::Directory(path) => format!("directory:{path}"),
    }
}

fn check_capability(c: &Capability) -> Result<(), String> {
    match c {
        Capability::Http(host) if !crate::config::valid_http_host(host) => {
            Err(format!("capability http:{host:?} must name one host (letters, digits, `.`, `-`, an optional :port)"))
        }
        Capability::Directory(path) if !path.starts_with('/') || path.len() > 1024 || path.contains("..") => {
            Err(format!("capability directory:{path:?} must be an absolute guest path without `..`"))
        }
        _ => Ok(()),
    }
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
