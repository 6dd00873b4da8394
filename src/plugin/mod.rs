//! Tools for plugin authors: `kaizen plugin new` ([`new`]), `bindings` and
//! `componentize` ([`build`]) and `check` ([`check`]).
//!
//! This module holds what they share: the plugin kinds and their worlds, the
//! scaffolds' languages, and the contract's WIT embedded in the binary. The
//! tools import it and never each other (`new` alone uses [`templates`]).

pub mod build;
pub mod check;
pub mod new;
mod templates;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
pub use kaizen_host::runtime::bindings::CONTRACT_VERSION;

/// A plugin kind; each is one world of the contract.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Detector,
    Recovery,
    Unit,
}

impl Kind {
    /// The kind's world name in the WIT package (`detector`, `recovery`, `unit`).
    pub fn world(self) -> &'static str {
        match self {
            Kind::Detector => "detector",
            Kind::Recovery => "recovery",
            Kind::Unit => "unit",
        }
    }
}

/// A language `kaizen plugin new` scaffolds.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    /// The language's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        }
    }
}

/// The current contract's WIT, embedded so that the binary alone is enough
/// (`kaizen plugin bindings` and the polyglot scaffolds write it out). A test
/// checks that it is the version [`CONTRACT_VERSION`] names.
const WIT: [(&str, &str); 2] = [
    ("types.wit", include_str!("../../wit/v0.2/types.wit")),
    ("worlds.wit", include_str!("../../wit/v0.2/worlds.wit")),
];

/// Write the embedded WIT to `dir/wit`.
pub fn write_wit(dir: &Path) -> anyhow::Result<PathBuf> {
    let wit = dir.join("wit");
    std::fs::create_dir_all(&wit).with_context(|| format!("cannot create {}", wit.display()))?;
    for (name, text) in WIT {
        std::fs::write(wit.join(name), text)?;
    }
    Ok(wit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_is_the_current_contract() {
        let package = format!("package kaizen:plugin@{CONTRACT_VERSION};");
        for (name, text) in WIT {
            assert_eq!(text.lines().next(), Some(package.as_str()), "{name}");
        }
    }
}
