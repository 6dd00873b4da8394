//! Kaizen's plugin SDK.
//!
//! A plugin is one crate that depends on this one, implements [`Detector`],
//! [`Recovery`], [`Unit`] or [`Improver`], and calls the matching export
//! macro ([`export_detector!`], [`export_recovery!`], [`export_unit!`],
//! [`export_improver!`]). Built for `wasm32-wasip2` it is a component of the
//! `kaizen:plugin@0.2.0` world of that kind; built natively (plain `cargo
//! test`) the same trait implementation can be exercised with [`testing`]
//! without any WebAssembly involved.

#[doc(hidden)]
pub mod bindings;
mod config;
pub mod log;
pub mod metrics;
pub mod payload;
pub mod stats;
pub mod testing;

pub use config::Config;

/// The records of the `kaizen:plugin/types` interface.
pub mod types {
    pub use crate::bindings::detector::kaizen::plugin::types::*;
}

pub use types::{
    CallContext, Capability, Category, Change, DetectionInput, Effect, ErrorClass, ErrorCount, Evidence, Failure,
    Finding, FloatRange, ImprovementInput, IntegerRange, LatencyStats, MetricPoint, ModuleVersion, PluginInfo,
    PluginKind, Proposal, RecentOutcome, RecoveryAction, ReducedScope, Risk, Setting, Severity, TargetStats, Trial,
    Tunable, TunableState, TunableType, TunableValue, UnitError, Verdict, WindowStats,
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
    /// Self-description; `kind` must be [`PluginKind::Unit`]. Declare the
    /// unit's knobs with [`PluginInfo::tunable`]; read their values from
    /// `config` in [`Unit::invoke`].
    fn describe() -> PluginInfo;
    /// Serve one request.
    fn invoke(context: &CallContext, request: &[u8], config: &Config) -> Result<Vec<u8>, UnitError>;
}

/// An improvement strategy: proposals for one finding. The host checks
/// each (a declared tunable within bounds, a module version it keeps) and
/// proves, canaries and judges it like any candidate.
pub trait Improver {
    /// Self-description; `kind` must be [`PluginKind::Improver`].
    fn describe() -> PluginInfo;
    /// Zero or more proposals for `input.finding`, best first.
    fn improve(input: &ImprovementInput, config: &Config) -> Vec<Proposal>;
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
    /// Shorthand for a self-description with no tunables and no
    /// capabilities.
    pub fn new(name: &str, kind: PluginKind, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.into(),
            kind,
            version: version.into(),
            description: description.into(),
            tunables: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// The same, declaring one more tunable.
    pub fn tunable(mut self, tunable: Tunable) -> Self {
        self.tunables.push(tunable);
        self
    }

    /// The same, declaring that the plugin needs `capability` (the operator
    /// must grant it, or the host refuses the module).
    pub fn needs(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }
}

impl Tunable {
    /// An integer knob within `min..=max`, `default` when unset.
    pub fn integer(name: &str, min: i64, max: i64, default: i64) -> Self {
        Tunable::new(name, TunableType::Integer(IntegerRange { min, max }), TunableValue::Integer(default))
    }

    /// A float knob within `min..=max`, `default` when unset.
    pub fn float(name: &str, min: f64, max: f64, default: f64) -> Self {
        Tunable::new(name, TunableType::Float(FloatRange { min, max }), TunableValue::Float(default))
    }

    /// An on/off knob.
    pub fn boolean(name: &str, default: bool) -> Self {
        Tunable::new(name, TunableType::Boolean, TunableValue::Boolean(default))
    }

    /// A knob taking one of `choices`, `default` when unset.
    pub fn choice(name: &str, choices: &[&str], default: &str) -> Self {
        Tunable::new(
            name,
            TunableType::Choice(choices.iter().map(|c| c.to_string()).collect()),
            TunableValue::Choice(default.into()),
        )
    }

    fn new(name: &str, type_: TunableType, default: TunableValue) -> Self {
        Tunable {
            name: name.into(),
            type_,
            default,
            unit: String::new(),
            description: String::new(),
            canary_safe: true,
        }
    }

    /// The same, with a unit of measure (`ms`, `entries`).
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = unit.into();
        self
    }

    /// The same, with a one-line description.
    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }

    /// The same, marked unsafe to canary: a change of this knob changes the
    /// unit's answers (their format, their meaning), so the host never
    /// changes it on its own.
    pub fn not_canary_safe(mut self) -> Self {
        self.canary_safe = false;
        self
    }
}

impl Finding {
    /// A finding about `target` of `kind`, with the rest to fill in:
    /// medium severity, full confidence, low risk, reliability.
    pub fn new(target: &str, kind: &str, summary: impl Into<String>) -> Self {
        Finding {
            target: target.into(),
            kind: kind.into(),
            severity: Severity::Medium,
            confidence: 1.0,
            summary: summary.into(),
            evidence: Vec::new(),
            expected_gain_pct: 0.0,
            risk: Risk::Low,
            category: Category::Reliability,
        }
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

/// Export an [`Improver`] implementation as this crate's component.
#[macro_export]
macro_rules! export_improver {
    ($t:ty) => {
        const _: () = {
            struct KaizenImproverExport;
            impl $crate::bindings::improver::Guest for KaizenImproverExport {
                fn describe() -> $crate::PluginInfo {
                    <$t as $crate::Improver>::describe()
                }
                fn improve(input: $crate::ImprovementInput) -> ::std::vec::Vec<$crate::Proposal> {
                    <$t as $crate::Improver>::improve(&input, &$crate::Config::from_host())
                }
            }
            $crate::bindings::improver::export_improver_world!(KaizenImproverExport);
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
