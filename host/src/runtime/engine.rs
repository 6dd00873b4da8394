//! The one engine: Cranelift, the pooling allocator, epoch interruption driven
//! by a ticker thread, and the linker every plugin is instantiated against.
//!
//! Guests run as futures on the async runtime (`call_async`): every
//! [`SLICE`] of running wasm, a call yields to the scheduler so that other
//! tasks on its worker get their turn, and at its deadline it traps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::RuntimeConfig;

/// Deadline granularity. One millisecond keeps the ticker cheap (one atomic
/// increment) while deadlines stay precise enough for call budgets.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How long a guest runs on a tokio worker before it yields to the other
/// tasks of that worker. One millisecond bounds how long a spinning guest
/// can hold up an HTTP request or a canary call sharing its worker, while
/// a yield (a fiber switch and a re-queue, a few microseconds) stays under
/// 1 % of the slice. It is one epoch tick: a finer slice would need a
/// faster ticker.
pub const SLICE: Duration = EPOCH_TICK;

/// [`SLICE`] in epoch ticks.
pub const SLICE_TICKS: u64 = (SLICE.as_micros() / EPOCH_TICK.as_micros()) as u64;

/// Native stack a call's fiber keeps beyond its wasm stack, for the host
/// code wasm calls into (WASI, the host's imports) and for the trap
/// handling at the wasm stack's limit. Wasmtime requires the fiber stack
/// to be larger than the wasm stack; with the default 1 MiB wasm stack this
/// gives wasmtime's default 2 MiB fiber.
const FIBER_HEADROOM: usize = 1 << 20;

/// The wasm stack every call may use: the largest `stack_bytes` configured
/// (wasmtime has one limit per engine). Deeper recursion is a trap, not a
/// crash.
pub fn wasm_stack(config: &RuntimeConfig) -> usize {
    let per_plugin = config.plugin_limits.values().map(|l| l.stack_bytes);
    per_plugin.chain([config.limits.stack_bytes]).max().unwrap_or(crate::config::DEFAULT_STACK_BYTES)
}

/// Build the engine for `config`.
pub fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(fuel_enabled(config))
        .parallel_compilation(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(wasm_stack(config))
        .async_stack_size(wasm_stack(config) + FIBER_HEADROOM);
    let mut pool = PoolingAllocationConfig::default();
    let n = config.max_instances.max(16);
    pool.total_component_instances(n)
        .total_core_instances(n * 4)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_memory_size(max_memory(config));
    // A fresh instance per call gives its pages back with `madvise` when it
    // ends, and each `madvise` makes the kernel interrupt every other core
    // the process runs on (the telemetry writer, the HTTP workers) to flush
    // its TLB: three per call, most of a small unit's call. Resetting the
    // lowest bytes of each memory and table in place (`memset`) spares two
    // of them (the tables, which are small) at a cost of a few KiB written.
    // wasmtime's `PAGEMAP_SCAN` reset, which would spare the third as well,
    // is left off: it resets only the pages present in memory, so a dirty
    // page swapped out or being migrated when the instance ends would keep
    // the previous call's data for the next one (wasmtime PR #14357).
    pool.linear_memory_keep_resident(config.keep_resident_bytes)
        .table_keep_resident(config.keep_resident_bytes)
        .pagemap_scan(wasmtime::Enabled::No);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg)
}

/// Whether any plugin has a fuel budget (fuel metering costs a little on
/// every call, so it is only switched on when asked for).
pub fn fuel_enabled(config: &RuntimeConfig) -> bool {
    config.limits.fuel.is_some() || config.plugin_limits.values().any(|l| l.fuel.is_some())
}

fn max_memory(config: &RuntimeConfig) -> usize {
    let per_plugin = config.plugin_limits.values().map(|l| l.memory_bytes);
    // Slots sized for the largest cap (plus headroom for the guest's first
    // page); per-store limiters enforce each plugin's own cap.
    per_plugin.chain([config.limits.memory_bytes]).max().unwrap_or(64 << 20).saturating_add(1 << 16)
}

/// Drives epoch interruption. Runs on its own OS thread (a tokio task can be
/// starved by the very guests it must interrupt) and stops when dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(engine: &Engine) -> Ticker {
        let weak = engine.weak();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kaizen-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawn epoch ticker thread");
        Ticker { stop, thread: Some(thread) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
