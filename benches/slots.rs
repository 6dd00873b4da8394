//! Many slots: the resident memory of a host with 10, 1 000 and 10 000
//! small unit slots loaded, and the median latency of calls on one of them
//! (through the recorded call path), each level measured in the same run.
//! The idle slots all serve one loaded echo unit (one compiled component),
//! so what a slot costs is the slot itself, not its code; a warm instance's
//! cost is measured apart, on separately loaded versions.
//!
//! `cargo bench --bench slots`. Knob: SLOTS_BENCH_CALLS (default 20 000
//! calls per level).

use std::time::{Duration, Instant};

use kaizen_host::config::{InstanceMode, Instances};
use kaizen_host::invoke::Invoker;
use kaizen_host::runtime::types::CallContext;
use kaizen_host::store::Db;
use kaizen_host::telemetry::{Telemetry, TelemetryConfig};
use kaizen_host::{Runtime, RuntimeConfig};

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1 << 20) as f64)
}

/// Median latency of `n` calls of slot `echo`, alternating nothing else.
fn p50(rt: &tokio::runtime::Runtime, invoker: &Invoker, n: usize) -> Duration {
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    let mut lat: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(invoker.call("echo", &ctx, b"request")).unwrap();
            t.elapsed()
        })
        .collect();
    lat.sort_unstable();
    lat[n / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let calls = std::env::var("SLOTS_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Room for the warm instances measured below besides the default's.
    let config = RuntimeConfig { max_instances: 2000, ..RuntimeConfig::default() };
    let runtime = Runtime::new(dir.path(), config).unwrap();
    let bytes = kaizen_plugins::TEST_ECHO_V1.load().unwrap();
    runtime.install(runtime.load("echo", &bytes).unwrap()).unwrap();
    let shared = runtime.load("echo", &bytes).unwrap();
    let db = rt.block_on(Db::open_sqlite_file(&dir.path().join("k.db"))).unwrap();
    let telemetry = rt.block_on(Telemetry::start(db, TelemetryConfig::default())).unwrap();
    let invoker = Invoker::new(runtime.clone(), telemetry.clone());

    println!("one slot called, {calls} calls per level; the others idle (recording on, fresh instances)");
    let mut rows: Vec<(usize, u64, Duration)> = Vec::new();
    let mut loaded = 1; // `echo` itself
    p50(&rt, &invoker, calls / 4); // warm-up: allocator pools, caches
    for level in [10usize, 1_000, 10_000] {
        while loaded < level {
            runtime.install_as(&format!("unit-{loaded:05}"), shared.clone()).unwrap();
            loaded += 1;
        }
        let before = rss();
        let p = p50(&rt, &invoker, calls);
        rows.push((level, before, p));
        println!(
            "{level:>6} slots loaded: RSS {:>10}   p50 call on one slot {:>8.2} µs",
            mib(before as f64),
            p.as_secs_f64() * 1e6
        );
    }
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    let per_slot = (last.1 as f64 - first.1 as f64) / (last.0 - first.0) as f64;

    // Warm instances: W versions loaded apart, each called once fresh, then
    // once warm (its instance kept): the difference is what a kept warm
    // instance holds.
    const W: usize = 200;
    let versions: Vec<_> = (0..W).map(|_| runtime.load("echo", &bytes).unwrap()).collect();
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    for v in &versions {
        rt.block_on(v.invoke(&ctx, b"request")).unwrap();
    }
    let fresh = rss();
    for v in &versions {
        v.set_instances(Instances { mode: InstanceMode::Warm, reuse: 1000 });
        rt.block_on(v.invoke(&ctx, b"request")).unwrap();
        assert_eq!(v.warm_count(), 1, "the instance is kept");
    }
    let warm = rss();
    let per_warm = (warm as f64 - fresh as f64) / W as f64;

    println!("\n== Kaizen slots: figures measured in this run ==");
    println!(
        "{:<52} {:>10.2} µs / {:>8.2} µs = {:>5.2}x   (goal <= 1.1x)",
        format!("p50 call on one slot: {} / {} slots loaded", last.0, first.0),
        last.2.as_secs_f64() * 1e6,
        first.2.as_secs_f64() * 1e6,
        last.2.as_secs_f64() / first.2.as_secs_f64()
    );
    println!(
        "{:<52} {:>10} -> {:>10}: {:.0} bytes per idle slot",
        format!("RSS, {} -> {} slots", first.0, last.0),
        mib(first.1 as f64),
        mib(last.1 as f64),
        per_slot
    );
    println!("{:<52} {:>10.0} KiB per warm instance ({W} kept)", "RSS, warm instance kept / none", per_warm / 1024.0);
    rt.block_on(telemetry.shutdown()).unwrap();
}
