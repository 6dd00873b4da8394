//! Kaizen's plugin SDK.
//!
//! A plugin is one crate that depends on this one, implements [`Detector`],
//! [`Recovery`] or [`Unit`], and calls the matching export macro
//! ([`export_detector!`], [`export_recovery!`], [`export_unit!`]). Built for
//! `wasm32-wasip2` it is a component of the `kaizen:plugin` world of that
//! kind; built natively (plain `cargo test`) the same trait implementation
//! can be exercised with [`testing`] without any WebAssembly involved.

#[doc(hidden)]
pub mod bindings;
mod config;
pub mod log;
pub mod payload;
pub mod stats;
pub mod testing;

pub use config::Config;

/// The records of the `kaizen:plugin/types` interface.
pub mod types {
    pub use crate::bindings::detector::kaizen::plugin::types::*;
}

pub use types::{
    CallContext, DetectionInput, ErrorClass, ErrorCount, Evidence, Failure, Finding, LatencyStats, MetricPoint,
    PluginInfo, PluginKind, RecentOutcome, RecoveryAction, ReducedScope, Risk, Severity, TargetStats, UnitError,
    WindowStats,
};

/// A detection rule: a pure function from windows of statistics to findings.
pub trait Detector {
    /// Self-description; `kind` must be [`PluginKind::Detector`].
    fn describe() -> PluginInfo;
    /// Findings for `input`, reading thresholds from `config`.
    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding>;
}

/// A recovery strategy: one action for one failed call.
pub trait Recovery {
    /// Self-description; `kind` must be [`PluginKind::Recovery`].
    fn describe() -> PluginInfo;
    /// The error classes this strategy wants to be asked about (empty: all).
    fn handles(config: &Config) -> Vec<ErrorClass>;
    /// What to do about `failure`.
    fn decide(failure: &Failure, config: &Config) -> RecoveryAction;
}

/// A hosted workload.
pub trait Unit {
    /// Self-description; `kind` must be [`PluginKind::Unit`].
    fn describe() -> PluginInfo;
    /// Serve one request.
    fn invoke(context: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError>;
}

impl ErrorClass {
    /// The class's stable name, as used in telemetry and `error-count`.
    pub fn name(&self) -> &str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Memory => "memory",
            ErrorClass::Trap(_) => "trap",
            ErrorClass::InvalidInput => "invalid-input",
            ErrorClass::Dependency => "dependency",
            ErrorClass::Internal => "internal",
            ErrorClass::CircuitOpen => "circuit-open",
            ErrorClass::Other(name) => name,
        }
    }
}

impl UnitError {
    /// A typed error of `class` with a message.
    pub fn new(error_class: ErrorClass, message: impl Into<String>) -> Self {
        UnitError { error_class, message: message.into() }
    }
}

impl PluginInfo {
    /// Shorthand for a self-description.
    pub fn new(name: &str, kind: PluginKind, version: &str, description: &str) -> Self {
        PluginInfo { name: name.into(), kind, version: version.into(), description: description.into() }
    }
}

impl Evidence {
    /// One key/value of evidence.
    pub fn new(key: &str, value: impl ToString) -> Self {
        Evidence { key: key.into(), value: value.to_string() }
    }
}

/// Export a [`Detector`] implementation as this crate's component.
#[macro_export]
macro_rules! export_detector {
    ($t:ty) => {
        const _: () = {
            struct KaizenDetectorExport;
            impl $crate::bindings::detector::Guest for KaizenDetectorExport {
                fn describe() -> $crate::PluginInfo {
                    <$t as $crate::Detector>::describe()
                }
                fn detect(input: $crate::DetectionInput) -> ::std::vec::Vec<$crate::Finding> {
                    <$t as $crate::Detector>::detect(&input, &$crate::Config::from_host())
                }
            }
            $crate::bindings::detector::export_detector_world!(KaizenDetectorExport);
        };
    };
}

/// Export a [`Recovery`] implementation as this crate's component.
#[macro_export]
macro_rules! export_recovery {
    ($t:ty) => {
        const _: () = {
            struct KaizenRecoveryExport;
            impl $crate::bindings::recovery::Guest for KaizenRecoveryExport {
                fn describe() -> $crate::PluginInfo {
                    <$t as $crate::Recovery>::describe()
                }
                fn handles() -> ::std::vec::Vec<$crate::ErrorClass> {
                    <$t as $crate::Recovery>::handles(&$crate::Config::from_host())
                }
                fn decide(failure: $crate::Failure) -> $crate::RecoveryAction {
                    <$t as $crate::Recovery>::decide(&failure, &$crate::Config::from_host())
                }
            }
            $crate::bindings::recovery::export_recovery_world!(KaizenRecoveryExport);
        };
    };
}

/// Export a [`Unit`] implementation as this crate's component.
#[macro_export]
macro_rules! export_unit {
    ($t:ty) => {
        const _: () = {
            struct KaizenUnitExport;
            impl $crate::bindings::unit::Guest for KaizenUnitExport {
                fn describe() -> $crate::PluginInfo {
                    <$t as $crate::Unit>::describe()
                }
                fn invoke(
                    context: $crate::CallContext,
                    request: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::UnitError> {
                    <$t as $crate::Unit>::invoke(&context, &request, &$crate::Config::from_host())
                }
            }
            $crate::bindings::unit::export_unit_world!(KaizenUnitExport);
        };
    };
}

/// Re-exported so that a plugin needs no other dependency to read payloads.
pub use serde_json;

/// Ship synthetic test cases inside the component, in a `kaizen:cases`
/// custom section the host reads before any live traffic reaches a new
/// version. The argument is a JSON array of
/// `{"input": <request as JSON>, "expect": {"output": <JSON>} | {"error": "<class>"}}`.
///
/// ```ignore
/// kaizen_sdk::cases!(r#"[{"input": {"op": "add", "a": 1, "b": 2}, "expect": {"output": {"result": 3}}}]"#);
/// ```
#[macro_export]
macro_rules! cases {
    ($json:literal) => {
        const _: () = {
            const BYTES: &[u8] = $json.as_bytes();
            #[cfg(target_arch = "wasm32")]
            #[used]
            #[unsafe(link_section = "kaizen:cases")]
            static KAIZEN_CASES: [u8; BYTES.len()] = {
                let mut out = [0u8; BYTES.len()];
                let mut i = 0;
                while i < BYTES.len() {
                    out[i] = BYTES[i];
                    i += 1;
                }
                out
            };
        };
    };
}
