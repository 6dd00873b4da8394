//! Host-side bindings of the `kaizen:plugin` contract, one module per
//! package version (`v0_1` for `kaizen:plugin@0.1.0`, generated from
//! `wit/v0.1/`), in the manner of Zed's `extension_host`: a breaking
//! version of the contract gets its own WIT folder and module beside the
//! old ones, and the host keeps loading plugins built against either.
//!
//! The host's own types (findings, windows, error classes) are those of the
//! current version, re-exported here, so the rest of the host names no
//! version.

pub mod v0_1;

pub use v0_1::{detector, host_api, recovery, types, unit};

/// The contract version plugins are written against today: the version of
/// the current bindings, the scaffolds of `kaizen plugin new` and the WIT
/// that `kaizen plugin bindings` writes.
pub const CONTRACT_VERSION: &str = v0_1::VERSION;

/// Where the current contract's WIT lives, relative to the repository root.
pub const CONTRACT_WIT_DIR: &str = v0_1::WIT_DIR;

/// Every package version of `kaizen:plugin` this host loads.
pub const SUPPORTED_VERSIONS: &[&str] = &[v0_1::VERSION];
