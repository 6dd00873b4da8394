//! The per-call sandbox: a store with a deadline, a memory cap, optional fuel
//! and only the capabilities granted, plus the translation of whatever went
//! wrong inside it into an error class.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::bindings::host_api::{self, LogLevel};
use super::bindings::types::ErrorClass;
use super::error::CallError;
use super::output::{CallId, GuestOutput, Stream};
use crate::config::{Grants, SandboxLimits};

/// Who a store belongs to, for logs and config look-ups.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub version: String,
    pub config: Arc<HashMap<String, String>>,
}

/// The data of every store.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Where this plugin's outgoing HTTP requests may go.
    outgoing: OutgoingHttp,
    table: ResourceTable,
    limiter: MemoryCap,
    identity: Identity,
    /// The guest's stdout and stderr: logged, and kept to explain a trap.
    output: GuestOutput,
    /// Whether the engine meters fuel (then every call needs a budget).
    fuel_enabled: bool,
    /// When the call in progress must end: past it, the next epoch slice
    /// traps instead of yielding.
    deadline: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outgoing }
    }
}

/// The allow-list of a plugin's outgoing HTTP: a request goes out only to
/// a host the plugin declared as `http:HOST[:PORT]` and the operator
/// granted; any other is answered `HTTP-request-denied` without a
/// connection being opened, and logged. A capability without a port allows
/// every port of that host.
struct OutgoingHttp {
    plugin: String,
    allowed: Arc<[String]>,
}

impl OutgoingHttp {
    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().or_else(|| match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        self.allowed.iter().any(|entry| match entry.rsplit_once(':') {
            Some((name, p)) => *name == host && p.parse::<u16>().ok() == port,
            None => *entry == host,
        })
    }
}

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        if !self.allows(request.uri()) {
            tracing::warn!(
                target: "kaizen::plugin",
                plugin = %self.plugin,
                uri = %request.uri(),
                "outgoing HTTP request denied: the host is not among the plugin's granted `http:` capabilities"
            );
            return Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)));
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Contract-0.1 plugins import the 0.1 `host` interface: the same two
/// functions, answered by the same code.
impl super::bindings::v0_1::host_api::Host for HostState {
    fn log(
        &mut self,
        level: super::bindings::v0_1::host_api::LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        use super::bindings::v0_1::host_api::LogLevel as Old;
        let level = match level {
            Old::Trace => LogLevel::Trace,
            Old::Debug => LogLevel::Debug,
            Old::Info => LogLevel::Info,
            Old::Warn => LogLevel::Warn,
            Old::Error => LogLevel::Error,
        };
        host_api::Host::log(self, level, message, fields)
    }

    fn config(&mut self, key: String) -> Option<String> {
        host_api::Host::config(self, key)
    }
}

impl host_api::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) {
        let (plugin, version) = (&self.identity.name, &self.identity.version);
        let call = self.output.call().map(|c| c.to_string()).unwrap_or_default();
        let message = truncate(&message, 2048);
        // One JSON object of the plugin's fields; the JSON log writes it as
        // an object (src/logs.rs), so each field can be queried.
        let fields = fields_as_json(fields);
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "kaizen::plugin", plugin, version, call, fields = fields.as_str(), "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "kaizen::plugin", plugin, version, call, fields = fields.as_str(), "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "kaizen::plugin", plugin, version, call, fields = fields.as_str(), "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "kaizen::plugin", plugin, version, call, fields = fields.as_str(), "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "kaizen::plugin", plugin, version, call, fields = fields.as_str(), "{message}")
            }
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.identity.config.get(&key).cloned()
    }
}

/// A plugin's log fields as the text of a JSON object (a later duplicate
/// key wins).
fn fields_as_json(fields: Vec<(String, String)>) -> String {
    let object: serde_json::Map<String, serde_json::Value> =
        fields.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    serde_json::Value::Object(object).to_string()
}

/// Denies memory growth past the cap and remembers that it did, so that the
/// resulting trap (the guest's allocator aborts) is reported as `memory`.
struct MemoryCap {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The wall clock of a plugin that was not given one: always the Unix
/// epoch.
struct UnixEpoch;

impl wasmtime_wasi::HostWallClock for UnixEpoch {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// The bytes `wasi:random` cycles through for a plugin not given
/// randomness (the first 32 bytes of SHA-256("kaizen"), so nothing special).
const WITHHELD_RANDOM: [u8; 32] = [
    0x4d, 0x9f, 0x2d, 0x3c, 0x1b, 0x6a, 0x70, 0x85, 0x0e, 0xa1, 0x5b, 0x27, 0x93, 0xc4, 0x38, 0xd6, 0x61, 0xfa, 0x0c,
    0x7e, 0x22, 0xb8, 0x49, 0x15, 0xe3, 0x8c, 0x56, 0xad, 0x07, 0x34, 0xcf, 0x90,
];

/// A fresh store for one plugin under `limits`, granted `grants`.
pub fn new_store(
    engine: &wasmtime::Engine,
    fuel_enabled: bool,
    identity: Identity,
    limits: &SandboxLimits,
    grants: &Grants,
) -> Store<HostState> {
    let output = GuestOutput::new(&identity.name, &identity.version);
    let mut wasi = WasiCtx::builder();
    wasi.stdout(output.pipe(Stream::Stdout)).stderr(output.pipe(Stream::Stderr));
    if grants.inherit_env {
        wasi.inherit_env();
    }
    if grants.network {
        wasi.inherit_network();
    }
    if grants.withhold.wall_clock {
        wasi.wall_clock(UnixEpoch);
    }
    if grants.withhold.random {
        // A fixed sequence: the guest's randomness is its input's function.
        wasi.secure_random(wasmtime_wasi::Deterministic::new(WITHHELD_RANDOM.to_vec()));
        wasi.insecure_random(wasmtime_wasi::Deterministic::new(WITHHELD_RANDOM.to_vec()));
        wasi.insecure_random_seed(u128::from_le_bytes(WITHHELD_RANDOM[..16].try_into().unwrap()));
    }
    for (guest, host) in &grants.read_only_dirs {
        // A missing directory is the operator's mistake; the plugin then runs
        // without it rather than not at all, and the log says so.
        if let Err(e) = wasi.preopened_dir(host, guest, FsPerms::ReadOnly) {
            tracing::warn!(plugin = %identity.name, dir = %host.display(), "cannot grant directory: {e}");
        }
    }
    let outgoing = OutgoingHttp { plugin: identity.name.clone(), allowed: grants.outgoing_http.clone() };
    let state = HostState {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        outgoing,
        table: ResourceTable::new(),
        limiter: MemoryCap { max: limits.memory_bytes, hit: false },
        identity,
        output,
        fuel_enabled,
        deadline: Instant::now() + limits.deadline,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Each slice of running wasm ends here: yield to the scheduler, or trap
    // once the call's deadline has passed.
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline {
            Err(Trap::Interrupt.into())
        } else {
            Ok(UpdateDeadline::Yield(super::engine::SLICE_TICKS))
        }
    });
    arm(&mut store, limits);
    store
}

/// Reset a store's deadline, fuel and diagnostics before a call: a store
/// with epochs or fuel enabled and no budget set traps at once. The call's
/// output is logged under the id of the caller's call when it runs in one
/// ([`CallId::scope`]), else under an id of its own.
pub fn arm(store: &mut Store<HostState>, limits: &SandboxLimits) {
    store.set_epoch_deadline(super::engine::SLICE_TICKS);
    store.data_mut().deadline = Instant::now() + limits.deadline;
    if store.data().fuel_enabled {
        // Plugins without a fuel budget still need one once the engine meters.
        let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
    }
    store.data_mut().limiter.hit = false;
    store.data().output.begin(CallId::current().unwrap_or_else(CallId::next));
}

/// Turn a wasmtime error from inside a call into a classified [`CallError`].
pub fn classify(store: &Store<HostState>, err: &wasmtime::Error, limits: &SandboxLimits) -> CallError {
    let state = store.data();
    if state.limiter.hit {
        return CallError::new(ErrorClass::Memory, format!("memory cap of {} bytes exceeded", limits.memory_bytes));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => deadline_exceeded(limits),
        Some(Trap::OutOfFuel) => CallError::new(ErrorClass::Timeout, "fuel budget exhausted"),
        Some(trap) => {
            let cause = match panic_message(&state.output.tail_text()) {
                Some(panic) => format!("{trap} ({panic})"),
                None => trap.to_string(),
            };
            // The last lines the guest printed (a traceback, a stack trace)
            // go with the error; the class stays the cause alone.
            let message = match state.output.last_lines() {
                Some(lines) => format!("{cause}\nlast output of the guest:\n{lines}"),
                None => cause.clone(),
            };
            CallError::new(ErrorClass::Trap(cause), message)
        }
        None => {
            let chain = format!("{err:#}");
            CallError::new(ErrorClass::Trap(truncate(&chain, 512).to_string()), chain)
        }
    }
}

/// The error of a call that ran out of its deadline, whether the epoch cut
/// its wasm or the wall clock cut a wait in a host call.
pub fn deadline_exceeded(limits: &SandboxLimits) -> CallError {
    CallError::new(ErrorClass::Timeout, format!("deadline of {} ms exceeded", limits.deadline.as_millis()))
}

/// The `panicked at ...` lines a Rust guest printed before trapping.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at")?;
    let text: String = stderr[start..].lines().take(2).collect::<Vec<_>>().join(": ");
    Some(truncate(&text, 300).to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The linker shared by every world and contract version: WASI (with
/// nothing granted unless configured per plugin), `wasi:http`'s outgoing
/// handler (every request denied unless declared and granted, see
/// [`OutgoingHttp`]) and `kaizen:plugin/host` of each version. WASI is linked in its
/// async form: a guest waiting in a sleep or a poll suspends its call's
/// future instead of blocking a thread, so the wall-clock deadline can cut
/// it and the worker serves other calls meanwhile.
pub fn build_linker(engine: &wasmtime::Engine) -> wasmtime::Result<wasmtime::component::Linker<HostState>> {
    let mut linker = wasmtime::component::Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    super::bindings::host_api::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(&mut linker, |s| s)?;
    super::bindings::v0_1::host_api::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::OutgoingHttp;

    fn allows(allowed: &[&str], uri: &str) -> bool {
        let list = OutgoingHttp { plugin: "p".into(), allowed: allowed.iter().map(|s| s.to_string()).collect() };
        list.allows(&uri.parse().unwrap())
    }

    #[test]
    fn a_capability_names_a_host_and_optionally_its_port() {
        assert!(allows(&["api.example.com"], "https://api.example.com/v1"));
        assert!(allows(&["api.example.com"], "http://API.example.com:8080/"));
        assert!(!allows(&["api.example.com"], "https://example.com/"));
        assert!(!allows(&["api.example.com"], "https://api.example.com.evil.net/"));
        assert!(allows(&["api.example.com:443"], "https://api.example.com/"));
        assert!(!allows(&["api.example.com:443"], "http://api.example.com/"));
        assert!(allows(&["127.0.0.1:8080"], "http://127.0.0.1:8080/x"));
        assert!(!allows(&["127.0.0.1:8080"], "http://127.0.0.1:8081/x"));
        assert!(!allows(&[], "http://127.0.0.1/"));
    }
}
