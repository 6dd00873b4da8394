//! Settings of the runtime. Defaults are conservative: a plugin gets a short
//! deadline, a modest memory cap and no capabilities beyond the host's two
//! imports and an empty WASI environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Per-call sandbox limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Wall-clock budget of one call: epoch interruption traps wasm running
    /// past it, and a call waiting in a host call (a WASI sleep) is dropped
    /// at it.
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Cap on a call's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Optional instruction budget (fuel) per call; `None` disables fuel.
    pub fuel: Option<u64>,
    /// Largest output a unit call may return, in bytes. A unit may fill its
    /// whole memory cap with an answer; without this bound every concurrent
    /// call could hand that much to the host to keep, record and send.
    pub max_output_bytes: usize,
    /// Largest wasm stack a call may use, in bytes: deeper recursion (a
    /// deeply nested payload parsed recursively) traps as a stack overflow
    /// instead of crashing the host. Wasmtime sets this limit per engine, so
    /// the largest value among `[runtime.limits]` and
    /// `[runtime.plugin_limits.*]` applies to every plugin.
    pub stack_bytes: usize,
}

/// The wasm stack of a call unless configured: wasmtime's default is 512 KiB;
/// the interpreters inside Python and JavaScript components recurse deeper.
pub const DEFAULT_STACK_BYTES: usize = 1 << 20;
/// Smallest `stack_bytes`: below it the WASI adapter and a language
/// runtime's start-up do not fit.
pub const MIN_STACK_BYTES: usize = 64 << 10;
/// Largest `stack_bytes`. Every call's fiber stack is sized above it (see
/// [`crate::runtime::engine`]) and the pooling allocator reserves one per
/// instance slot, so the bound keeps that reservation finite.
pub const MAX_STACK_BYTES: usize = 64 << 20;

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            deadline: Duration::from_secs(5),
            memory_bytes: 64 << 20,
            fuel: None,
            max_output_bytes: 8 << 20,
            stack_bytes: DEFAULT_STACK_BYTES,
        }
    }
}

/// Capabilities a plugin may be granted. Everything is off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Grants {
    /// Let the plugin see the host's environment variables.
    pub inherit_env: bool,
    /// Let the plugin open network sockets.
    pub network: bool,
    /// Host directories mounted read-only: guest path → host path.
    pub read_only_dirs: HashMap<String, PathBuf>,
    /// Capabilities a contract-0.2 plugin may declare and be given
    /// (`wall-clock`, `random`, `directory:GUEST_PATH`): a plugin that
    /// declares one not listed here is refused at load, naming it.
    /// `directory:P` needs `read_only_dirs` to map `P`.
    pub capabilities: Vec<String>,
    /// What the sandbox withholds from this plugin: set at load from its
    /// contract and its declarations, never from the file.
    #[serde(skip)]
    pub withhold: Withhold,
    /// The hosts (`HOST` or `HOST:PORT`) this plugin may send HTTP requests
    /// to: the `http:` capabilities it declares, all granted. Set at load,
    /// never from the file; empty for everything else, so every outgoing
    /// request is denied.
    #[serde(skip)]
    pub outgoing_http: std::sync::Arc<[String]>,
}

/// Parts of WASI's default sandbox a plugin does not get. A contract-0.2
/// plugin gets the wall clock and randomness only when it declares them
/// (and they are granted): without them its `wasi:clocks/wall-clock` reads
/// the Unix epoch and its `wasi:random` is a fixed sequence, so the same
/// input gives the same answer. Contract-0.1 plugins, which cannot declare,
/// keep both as they always had them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Withhold {
    pub wall_clock: bool,
    pub random: bool,
}

impl Grants {
    /// Whether capability `name` (`wall-clock`, `http:HOST`, …) is granted.
    pub fn grants(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }
}

/// Why a granted capability's name cannot be given; `None` when it can.
pub fn capability_grant_error(name: &str, read_only_dirs: &HashMap<String, PathBuf>) -> Option<String> {
    match name.split_once(':') {
        None if name == "wall-clock" || name == "random" => None,
        Some(("http", host)) if valid_http_host(host) => None,
        Some(("http", host)) => {
            Some(format!("http:{host:?} must name one host (letters, digits, `.`, `-`, an optional :port)"))
        }
        Some(("directory", path)) if read_only_dirs.contains_key(path) => None,
        Some(("directory", path)) => Some(format!("read_only_dirs has no entry for the guest path {path:?}")),
        _ => Some("must be `wall-clock`, `random`, `http:HOST[:PORT]` or `directory:GUEST_PATH`".into()),
    }
}

/// Whether `host` is what an `http:` capability may name: one host name
/// or address (letters, digits, `.`, `-`) with an optional `:PORT`.
pub fn valid_http_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Where a slot's calls run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceMode {
    /// A new instance for every call: nothing a call leaves in the guest's
    /// memory is seen by the next one.
    #[default]
    Fresh,
    /// Instances kept between calls of the same version and reused: no
    /// instantiation on the call path, but what a call leaves in the guest's
    /// memory (globals, caches, leaked allocations) is seen by later calls.
    /// An instance is dropped after any failed call (a trap never leaks into
    /// the next call) and after `reuse` calls.
    Warm,
}

/// A slot's instance mode and, when warm, how many calls one instance
/// serves before it is dropped and a fresh one takes its place.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Instances {
    pub mode: InstanceMode,
    /// Calls served by one warm instance before it is re-created (like
    /// `wasmtime serve`'s reuse count); at least 1. Ignored when fresh.
    pub reuse: u32,
}

impl Default for Instances {
    fn default() -> Self {
        Instances { mode: InstanceMode::Fresh, reuse: 1000 }
    }
}

impl Instances {
    pub fn warm(&self) -> bool {
        self.mode == InstanceMode::Warm
    }
}

/// Settings of the [`Runtime`](crate::runtime::Runtime). Where it keeps its
/// files is not one of them: the data directory is the host's (see
/// [`HostConfig`](crate::host::HostConfig)) and is handed to
/// [`Runtime::new`](crate::runtime::Runtime::new).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `<data_dir>/compiled` when unset.
    /// Several data directories may share one cache (tests do).
    pub cache_dir: Option<PathBuf>,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Default limits of every call.
    pub limits: SandboxLimits,
    /// Per-plugin limit overrides, by plugin name.
    pub plugin_limits: HashMap<String, SandboxLimits>,
    /// Per-plugin capability grants, by plugin name.
    pub grants: HashMap<String, Grants>,
    /// Per-plugin configuration read through `host.config`, by plugin name
    /// (`[runtime.plugin_config.NAME]`). Values reach the plugin as text; a
    /// number or boolean written as such (`threshold = 0.8`) is taken as its
    /// text, and anything else (a list, a table) is refused naming the key.
    #[serde(deserialize_with = "plugin_config::deserialize")]
    pub plugin_config: HashMap<String, HashMap<String, String>>,
    /// Previous versions kept compiled in each slot for instant rollback.
    pub history_depth: usize,
    /// How many instances (across all plugins) may be live at once.
    pub max_instances: u32,
    /// The lowest bytes of each instance's linear memory and tables that are
    /// reset in place (`memset` to their initial contents) when the instance
    /// ends; the rest is handed back to the kernel (`madvise`). Isolation is
    /// the same either way. In place spares a fresh call the kernel's
    /// cross-core TLB flush of an `madvise` (and the page faults of the next
    /// call) for each table and memory that fits, at the price of writing
    /// these bytes and keeping them resident in each pool slot used (idle
    /// slots kept for reuse included). 0 hands every page back.
    pub keep_resident_bytes: usize,
    /// Per-slot instance mode, by plugin name (`[runtime.instances.NAME]`):
    /// a fresh instance per call (the default) or warm instances reused for
    /// up to `reuse` calls each.
    pub instances: HashMap<String, Instances>,
    /// Give every plugin the capabilities it declares instead of refusing
    /// those not granted: for `kaizen plugin check`, which reports what a
    /// module asks for rather than judging it against a host's grants.
    #[serde(skip)]
    pub grant_declared: bool,
}

/// [`RuntimeConfig::keep_resident_bytes`] by default: 64 KiB, which holds a
/// unit's tables whole (two of a fresh call's three `madvise`s) and costs a
/// few µs of `memset` at most. Larger values cost more to write per call
/// than the `madvise` they spare for a Rust unit, whose memory starts at
/// about 1 MiB (measured with `cargo bench --bench telemetry -- calls`).
pub const DEFAULT_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// The largest [`RuntimeConfig::keep_resident_bytes`] accepted: 16 MiB.
pub const MAX_KEEP_RESIDENT_BYTES: usize = 16 << 20;

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_module_bytes: 64 << 20,
            limits: SandboxLimits::default(),
            plugin_limits: HashMap::new(),
            grants: HashMap::new(),
            plugin_config: HashMap::new(),
            history_depth: 8,
            max_instances: 1000,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
            instances: HashMap::new(),
            grant_declared: false,
        }
    }
}

impl RuntimeConfig {
    /// The limits that apply to plugin `name`.
    pub fn limits_for(&self, name: &str) -> &SandboxLimits {
        self.plugin_limits.get(name).unwrap_or(&self.limits)
    }

    /// The instance mode of slot `name`.
    pub fn instances_for(&self, name: &str) -> Instances {
        self.instances.get(name).copied().unwrap_or_default()
    }

    /// The longest deadline any call may have: the default's or a plugin's
    /// own. No execution can honestly report a longer duration.
    pub fn longest_deadline(&self) -> std::time::Duration {
        self.plugin_limits.values().map(|l| l.deadline).fold(self.limits.deadline, std::cmp::max)
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Plugin configuration as operators write it: strings, numbers and
/// booleans, all handed to the plugin as text.
mod plugin_config {
    use std::collections::HashMap;
    use std::fmt;

    use serde::de::{Deserializer, Visitor};
    use serde::{Deserialize, de};

    /// One value, as the text the plugin reads.
    struct Text(String);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
            d.deserialize_any(TextVisitor)
        }
    }

    struct TextVisitor;

    impl Visitor<'_> for TextVisitor {
        type Value = Text;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a number or a boolean (a plugin reads its configuration as text)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
            Ok(Text(v.to_string()))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, HashMap<String, String>>, D::Error> {
        let raw: HashMap<String, HashMap<String, Text>> = HashMap::deserialize(d)?;
        Ok(raw.into_iter().map(|(plugin, kv)| (plugin, kv.into_iter().map(|(k, v)| (k, v.0)).collect())).collect())
    }
}
