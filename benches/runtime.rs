//! Runtime benchmarks: the host's call path against raw wasmtime and a native
//! function, hot swap against raw deserialize, rollback, and instantiation
//! with and without the pooling allocator. Run with `cargo bench --bench
//! runtime`; the ratios are printed at the end.
//!
//! The host calls guests only as futures (`call_async` on a fiber, awaited
//! on a tokio runtime); the async rows drive them with `block_on` from the
//! bench thread, as an HTTP handler awaits them on its worker. A raw
//! wasmtime embedding is measured both ways, synchronous and async, so the
//! engine's own price of async (a fiber per call) is printed as the floor.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::Criterion;
use kaizen_host::invoke::Invoker;
use kaizen_host::runtime::types::CallContext;
use kaizen_host::store::Db;
use kaizen_host::telemetry::{Telemetry, TelemetryConfig};
use kaizen_host::{Runtime, RuntimeConfig};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod raw {
    wasmtime::component::bindgen!({ world: "unit", path: "wit/v0.2" });
}

/// The same world bound for `call_async`.
mod raw_async {
    wasmtime::component::bindgen!({ world: "unit", path: "wit/v0.2", exports: { default: async } });
}

/// The raw embedding: what a hand-written wasmtime host would keep per store.
struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl raw::kaizen::plugin::host::Host for RawState {
    fn log(&mut self, _: raw::kaizen::plugin::host::LogLevel, _: String, _: Vec<(String, String)>) {}
    fn config(&mut self, _: String) -> Option<String> {
        None
    }
}

impl raw_async::kaizen::plugin::host::Host for RawState {
    fn log(&mut self, _: raw_async::kaizen::plugin::host::LogLevel, _: String, _: Vec<(String, String)>) {}
    fn config(&mut self, _: String) -> Option<String> {
        None
    }
}

fn raw_engine(pooling: bool) -> Engine {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true).epoch_interruption(true);
    if pooling {
        // The host's own pool settings (the lowest 64 KiB of memories and
        // tables reset in place after a call), so that a ratio against this
        // embedding measures the host's call path, not a pool set otherwise.
        let keep = kaizen_host::config::DEFAULT_KEEP_RESIDENT_BYTES;
        let mut pool = PoolingAllocationConfig::default();
        pool.linear_memory_keep_resident(keep).table_keep_resident(keep);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&cfg).unwrap()
}

fn raw_linker(engine: &Engine) -> Linker<RawState> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    raw::kaizen::plugin::host::add_to_linker::<RawState, HasSelf<RawState>>(&mut linker, |s| s).unwrap();
    linker
}

fn raw_async_linker(engine: &Engine) -> Linker<RawState> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    raw_async::kaizen::plugin::host::add_to_linker::<RawState, HasSelf<RawState>>(&mut linker, |s| s).unwrap();
    linker
}

/// A store for async calls that yields every epoch tick, as a timesliced
/// embedding would.
fn raw_async_store(engine: &Engine) -> Store<RawState> {
    let mut store = Store::new(engine, RawState { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    store
}

fn async_ctx() -> raw_async::kaizen::plugin::types::CallContext {
    raw_async::kaizen::plugin::types::CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 }
}

fn raw_store(engine: &Engine) -> Store<RawState> {
    let mut store = Store::new(engine, RawState { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    store.set_epoch_deadline(u64::MAX / 2);
    store
}

fn ctx() -> raw::kaizen::plugin::types::CallContext {
    raw::kaizen::plugin::types::CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 }
}

const REQUEST: &[u8] = b"benchmark-request";

/// The native equivalent of the echo unit.
fn native_echo(req: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", "1.0.0").into_bytes();
    out.extend_from_slice(req);
    out
}

fn host() -> (tempfile::TempDir, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(dir.path(), RuntimeConfig::default()).unwrap();
    (dir, rt)
}

fn calls(c: &mut Criterion) -> Vec<(&'static str, Alternated)> {
    let echo = kaizen_plugins::TEST_ECHO_V1.load().unwrap();
    let mut g = c.benchmark_group("call");

    g.bench_function("native", |b| b.iter(|| native_echo(black_box(REQUEST))));

    let engine = raw_engine(true);
    let linker = raw_linker(&engine);
    let component = Component::new(&engine, &echo).unwrap();
    let pre = raw::UnitPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    g.bench_function("raw_fresh", |b| {
        b.iter(|| {
            let mut store = raw_store(&engine);
            let unit = pre.instantiate(&mut store).unwrap();
            unit.call_invoke(&mut store, ctx(), black_box(REQUEST)).unwrap().unwrap()
        })
    });
    let mut store = raw_store(&engine);
    let unit = pre.instantiate(&mut store).unwrap();
    g.bench_function("raw_warm", |b| {
        b.iter(|| unit.call_invoke(&mut store, ctx(), black_box(REQUEST)).unwrap().unwrap())
    });

    // The same embedding, async: `call_async` on a fiber, driven by tokio.
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let async_linker = raw_async_linker(&engine);
    let async_pre = raw_async::UnitPre::new(async_linker.instantiate_pre(&component).unwrap()).unwrap();
    g.bench_function("raw_async_fresh", |b| {
        b.iter(|| {
            tokio.block_on(async {
                let mut store = raw_async_store(&engine);
                let unit = async_pre.instantiate_async(&mut store).await.unwrap();
                unit.call_invoke(&mut store, async_ctx(), black_box(REQUEST)).await.unwrap().unwrap()
            })
        })
    });
    let mut store = raw_async_store(&engine);
    let unit = tokio.block_on(async_pre.instantiate_async(&mut store)).unwrap();
    g.bench_function("raw_async_warm", |b| {
        b.iter(|| tokio.block_on(unit.call_invoke(&mut store, async_ctx(), black_box(REQUEST))).unwrap().unwrap())
    });

    // The host's call, unrecorded, awaited as a handler awaits it.
    let (dir, rt) = host();
    let plugin = rt.load("echo", &echo).unwrap();
    rt.install(plugin.clone()).unwrap();
    let hctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    g.bench_function("host_fresh", |b| {
        b.iter(|| tokio.block_on(rt.call_unit("echo", &hctx, black_box(REQUEST))).unwrap())
    });
    plugin.set_warm(true);
    g.bench_function("host_warm", |b| {
        b.iter(|| tokio.block_on(rt.call_unit("echo", &hctx, black_box(REQUEST))).unwrap())
    });
    plugin.set_warm(false);

    // The service's call path: through the invoker, the call recorded by
    // telemetry, as `POST /api/v1/units/{name}/invoke` makes it.
    let db = tokio.block_on(Db::open_sqlite_file(&dir.path().join("kaizen.db"))).unwrap();
    let telemetry = tokio.block_on(Telemetry::start(db, TelemetryConfig::default())).unwrap();
    let invoker = Invoker::new(rt.clone(), telemetry.clone());
    g.bench_function("service_fresh", |b| {
        b.iter(|| tokio.block_on(invoker.invoke("echo", REQUEST.to_vec(), None)).unwrap())
    });
    g.finish();
    tokio.block_on(telemetry.shutdown()).unwrap();

    // The async/sync ratios again, in alternating rounds: on a machine whose
    // load moves, both sides of a ratio see the same load.
    let fresh_sync = || {
        let mut store = raw_store(&engine);
        let unit = pre.instantiate(&mut store).unwrap();
        unit.call_invoke(&mut store, ctx(), black_box(REQUEST)).unwrap().unwrap();
    };
    let fresh_raw_async = || {
        tokio.block_on(async {
            let mut store = raw_async_store(&engine);
            let unit = async_pre.instantiate_async(&mut store).await.unwrap();
            unit.call_invoke(&mut store, async_ctx(), black_box(REQUEST)).await.unwrap().unwrap();
        })
    };
    let host_call = || drop(tokio.block_on(rt.call_unit("echo", &hctx, black_box(REQUEST))).unwrap());
    let mut sync_store = raw_store(&engine);
    let sync_unit = pre.instantiate(&mut sync_store).unwrap();
    let mut warm_sync = || drop(sync_unit.call_invoke(&mut sync_store, ctx(), black_box(REQUEST)).unwrap().unwrap());
    let mut async_store = raw_async_store(&engine);
    let async_unit = tokio.block_on(async_pre.instantiate_async(&mut async_store)).unwrap();
    let mut warm_raw_async =
        || drop(tokio.block_on(async_unit.call_invoke(&mut async_store, async_ctx(), black_box(REQUEST))).unwrap());
    let mut rows = vec![
        ("host call through tokio (async) / sync call on thread", alternating(200, 100, host_call, fresh_sync)),
        ("  floor: raw wasmtime async fresh / raw sync fresh", alternating(200, 100, fresh_raw_async, fresh_sync)),
    ];
    plugin.set_warm(true);
    rows.push((
        "warm: host call through tokio / sync call on thread",
        alternating(200, 2000, host_call, &mut warm_sync),
    ));
    plugin.set_warm(false);
    rows.push((
        "  floor: raw wasmtime async warm / raw sync warm",
        alternating(200, 2000, &mut warm_raw_async, &mut warm_sync),
    ));
    rows
}

/// `a` and `b` timed in `rounds` alternating rounds of `calls` each: the
/// median time per call of each, and the median of the rounds' ratios.
fn alternating(rounds: usize, calls: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> Alternated {
    let per_call = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        for _ in 0..calls {
            f();
        }
        t.elapsed().as_secs_f64() * 1e9 / calls as f64
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (x, y) = (per_call(&mut a), per_call(&mut b));
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Alternated { a_ns: median(ta), b_ns: median(tb), ratio: median(ratios) }
}

/// What [`alternating`] measured.
struct Alternated {
    a_ns: f64,
    b_ns: f64,
    ratio: f64,
}

fn swaps(c: &mut Criterion) {
    let v1 = kaizen_plugins::TEST_ECHO_V1.load().unwrap();
    let v2 = kaizen_plugins::TEST_ECHO_V2.load().unwrap();
    let mut g = c.benchmark_group("swap");

    // Raw: precompiled bytes → deserialize → instantiate → first call.
    let engine = raw_engine(true);
    let linker = raw_linker(&engine);
    let precompiled = engine.precompile_component(&v2).unwrap();
    g.bench_function("raw_deserialize_first_call", |b| {
        b.iter(|| {
            // SAFETY: produced by this engine just above.
            let component = unsafe { Component::deserialize(&engine, &precompiled).unwrap() };
            let pre = raw::UnitPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
            let mut store = raw_store(&engine);
            let unit = pre.instantiate(&mut store).unwrap();
            unit.call_invoke(&mut store, ctx(), REQUEST).unwrap().unwrap()
        })
    });

    // Host: a new version whose compiled artifact is cached → validated,
    // described, swapped in, first call answered.
    let (_dir, rt) = host();
    let first = rt.load("v1", &v1).unwrap();
    rt.install(first.clone()).unwrap();
    rt.load("v2", &v2).unwrap(); // warm the compiled cache
    let slot = rt.slot("echo").unwrap();
    let hctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    g.bench_function("host_swap_first_call", |b| {
        b.iter_batched(
            || slot.restore(first.clone()).unwrap(),
            |_| {
                let next = rt.load("v2", &v2).unwrap();
                slot.swap(next).unwrap();
                tokio.block_on(rt.call_unit("echo", &hctx, REQUEST)).unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });

    // Rollback to a previous version kept compiled in the slot.
    let second = rt.load("v2", &v2).unwrap();
    first.set_warm(true);
    tokio.block_on(rt.call_unit("echo", &hctx, REQUEST)).unwrap();
    g.bench_function("host_rollback_first_call", |b| {
        b.iter_batched(
            || slot.swap(second.clone()).unwrap(),
            |_| {
                slot.rollback().unwrap();
                tokio.block_on(rt.call_unit("echo", &hctx, REQUEST)).unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn instantiation(c: &mut Criterion) {
    let echo = kaizen_plugins::TEST_ECHO_V1.load().unwrap();
    let mut g = c.benchmark_group("instantiate");
    for (name, pooling) in [("pooling", true), ("on_demand", false)] {
        let engine = raw_engine(pooling);
        let linker = raw_linker(&engine);
        let component = Component::new(&engine, &echo).unwrap();
        let pre = raw::UnitPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut store = raw_store(&engine);
                let unit = pre.instantiate(&mut store).unwrap();
                unit.call_invoke(&mut store, ctx(), REQUEST).unwrap().unwrap()
            })
        });
    }
    g.finish();
}

/// Median of `group/function` in nanoseconds, from criterion's estimates.
/// On a loaded machine a few descheduled samples carry the mean; the median
/// stays with the call itself.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = support::output_dir().join(group).join(function).join("new").join("estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Print `label: a / b = ratio` of the two medians.
fn median_ratio(label: &str, (ga, fa): (&str, &str), (gb, fb): (&str, &str)) {
    match (median_ns(ga, fa), median_ns(gb, fb)) {
        (Some(a), Some(b)) => {
            println!("{label:<52} {:>10} / {:>10} = {:>6.2}x", support::fmt_ns(a), support::fmt_ns(b), a / b)
        }
        _ => println!("{label:<52} (not measured in this run)"),
    }
}

fn main() {
    let mut c = support::criterion();
    let alternated = calls(&mut c);
    swaps(&mut c);
    instantiation(&mut c);
    c.final_summary();

    println!("\n== Kaizen runtime: ratios measured in this run ==");
    support::ratio(
        "host call, fresh instance / raw wasmtime async fresh",
        ("call", "host_fresh"),
        ("call", "raw_async_fresh"),
        Some("<= 1.3x"),
    );
    support::ratio(
        "host call, warm instance / raw wasmtime async warm",
        ("call", "host_warm"),
        ("call", "raw_async_warm"),
        Some("<= 3x"),
    );
    support::ratio(
        "host call through tokio (async) / sync call on thread",
        ("call", "host_fresh"),
        ("call", "raw_fresh"),
        Some("<= 1.2x"),
    );
    support::ratio(
        "  floor: raw wasmtime async fresh / raw sync fresh",
        ("call", "raw_async_fresh"),
        ("call", "raw_fresh"),
        None,
    );
    support::ratio(
        "warm: host call through tokio / sync call on thread",
        ("call", "host_warm"),
        ("call", "raw_warm"),
        None,
    );
    support::ratio(
        "  floor: raw wasmtime async warm / raw sync warm",
        ("call", "raw_async_warm"),
        ("call", "raw_warm"),
        None,
    );
    support::ratio(
        "service call path (recorded) / host call (async)",
        ("call", "service_fresh"),
        ("call", "host_fresh"),
        None,
    );
    println!("-- async / sync again, in 200 alternating rounds (medians) --");
    for (label, r) in &alternated {
        println!("{label:<52} {:>10} / {:>10} = {:>6.2}x", support::fmt_ns(r.a_ns), support::fmt_ns(r.b_ns), r.ratio);
    }
    println!("-- the call rows again, criterion's medians --");
    for (label, a, b) in [
        ("host call, fresh / raw wasmtime async fresh", "host_fresh", "raw_async_fresh"),
        ("host call, warm / raw wasmtime async warm", "host_warm", "raw_async_warm"),
        ("host call through tokio (async) / sync call on thread", "host_fresh", "raw_fresh"),
        ("  floor: raw wasmtime async fresh / raw sync fresh", "raw_async_fresh", "raw_fresh"),
        ("warm: host call through tokio / sync call on thread", "host_warm", "raw_warm"),
        ("  floor: raw wasmtime async warm / raw sync warm", "raw_async_warm", "raw_warm"),
        ("service call path (recorded) / host call (async)", "service_fresh", "host_fresh"),
    ] {
        median_ratio(label, ("call", a), ("call", b));
    }
    support::ratio("raw wasmtime warm / native function", ("call", "raw_warm"), ("call", "native"), None);
    support::ratio(
        "swap to first call / raw deserialize to first call",
        ("swap", "host_swap_first_call"),
        ("swap", "raw_deserialize_first_call"),
        Some("<= 2x"),
    );
    support::figure(
        "rollback to warm previous version + first call",
        ("swap", "host_rollback_first_call"),
        Some("<= 0.2 ms"),
    );
    support::ratio(
        "instantiate+call: on-demand / pooling allocator",
        ("instantiate", "on_demand"),
        ("instantiate", "pooling"),
        None,
    );
}
