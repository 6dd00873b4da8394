//! Errors of loading and calling plugins.

use std::fmt;

use super::bindings::types::ErrorClass;

/// Why a module was refused. Always names the file and the reason, and
/// nothing is registered when it is returned.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct LoadError {
    /// The file name or label the module came from.
    pub file: String,
    pub reason: LoadReason,
}

/// The reason behind a [`LoadError`].
#[derive(Debug, thiserror::Error)]
pub enum LoadReason {
    #[error("empty file")]
    Empty,
    #[error("{size} bytes exceeds the {limit}-byte module limit")]
    TooLarge { size: usize, limit: usize },
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error(
        "targets no kaizen:plugin world (it exports {exports}); expected describe + detect, describe + handles + decide, describe + invoke, or describe + improve"
    )]
    UnknownWorld { exports: String },
    #[error("targets kaizen:plugin@{version}, which this host does not load (it loads {supported})")]
    UnsupportedContract { version: String, supported: String },
    #[error("mixes contract versions: imports both `{first}` and `{second}`")]
    MixedContracts { first: String, second: String },
    #[error(
        "asks for the capability `{capability}`, which is not granted to `{plugin}`: grant it with `capabilities = [\"{capability}\"]` under [runtime.grants.{plugin}], or build the plugin without it"
    )]
    CapabilityNotGranted { plugin: String, capability: String },
    #[error("imports `{0}`, which the host does not provide (allowed: kaizen:plugin/host and WASI)")]
    ForbiddenImport(String),
    #[error("does not match the {world} world: {message}")]
    WorldMismatch { world: &'static str, message: String },
    #[error("self-description refused: {0}")]
    BadDescription(String),
    #[error("self-description call failed: {0}")]
    DescribeFailed(CallError),
    #[error("could not store the module: {0}")]
    Storage(String),
}

/// A failed call: the class decides what recovery and telemetry make of it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct CallError {
    pub class: ErrorClass,
    pub message: String,
    /// The version of the unit that failed, when a unit was reached (during
    /// a canary, which of the arms failed the call).
    pub version: Option<String>,
}

impl CallError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        CallError { class, message: message.into(), version: None }
    }

    /// The same error, naming the unit version that failed.
    pub fn of_version(mut self, version: &str) -> Self {
        self.version = Some(version.to_string());
        self
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.class {
            // A trap's message is its cause, then what the guest printed
            // last (see `sandbox::classify`).
            ErrorClass::Trap(cause) => match self.message.strip_prefix(cause.as_str()) {
                Some(printed) => write!(f, "trap: {cause}{printed}"),
                None => write!(f, "trap: {cause}"),
            },
            other => write!(f, "{}: {}", class_name(other), self.message),
        }
    }
}

/// The stable name of an error class, as stored in telemetry.
pub fn class_name(class: &ErrorClass) -> &str {
    match class {
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

/// The class for a stable name; unknown names become `other`.
pub fn class_from_name(name: &str) -> ErrorClass {
    match name {
        "timeout" => ErrorClass::Timeout,
        "memory" => ErrorClass::Memory,
        "trap" => ErrorClass::Trap(String::new()),
        "invalid-input" => ErrorClass::InvalidInput,
        "dependency" => ErrorClass::Dependency,
        "internal" => ErrorClass::Internal,
        "circuit-open" => ErrorClass::CircuitOpen,
        other => ErrorClass::Other(other.to_string()),
    }
}
