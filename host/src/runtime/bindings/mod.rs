//! Host-side bindings of the `kaizen:plugin` contract, one module per
//! package version (`v0_1` for `kaizen:plugin@0.1.0`, `v0_2` for
//! `kaizen:plugin@0.2.0`, each generated from its folder under `wit/`), in
//! the manner of Zed's `extension_host`: a new version of the contract gets
//! its own WIT folder and module beside the old ones, and the host keeps
//! loading plugins built against any of them.
//!
//! The host's own types (findings, windows, error classes) are those of the
//! current version, re-exported here, so the rest of the host names no
//! version; [`upgrade`] maps what an older plugin answers onto them and what
//! the host asks onto the older shapes.

pub mod upgrade;
pub mod v0_1;
pub mod v0_2;

pub use v0_2::{detector, host_api, improver, recovery, types, unit};

/// The contract version plugins are written against today: the version of
/// the current bindings, the scaffolds of `kaizen plugin new` and the WIT
/// that `kaizen plugin bindings` writes.
pub const CONTRACT_VERSION: &str = v0_2::VERSION;

/// Where the current contract's WIT lives, relative to the repository root.
pub const CONTRACT_WIT_DIR: &str = v0_2::WIT_DIR;

/// Every package version of `kaizen:plugin` this host loads, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &[v0_1::VERSION, v0_2::VERSION];

/// A contract version this host loads, as a type: what a loaded plugin was
/// built against, so that calls are dispatched to the matching bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Contract {
    #[serde(rename = "0.1.0")]
    V0_1,
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl Contract {
    /// The newest version: what a plugin that imports nothing of the
    /// contract is tried against first.
    pub const CURRENT: Contract = Contract::V0_2;

    /// The package version, `0.1.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => v0_1::VERSION,
            Contract::V0_2 => v0_2::VERSION,
        }
    }

    /// The contract of package version `version`, when this host loads it.
    pub fn from_version(version: &str) -> Option<Contract> {
        [Contract::V0_1, Contract::V0_2].into_iter().find(|c| c.version() == version)
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kaizen:plugin@{}", self.version())
    }
}
