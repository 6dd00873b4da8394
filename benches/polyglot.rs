//! Plugins in other languages: what loading costs, and what a call costs
//! beside the Rust equivalent, all measured in the same run.
//!
//! * Python detector (18 MB, the interpreter inside): first load — compile
//!   with Cranelift, into an empty compiled cache — against a cached load
//!   (the artifact deserialized from the cache keyed by content hash and
//!   engine). Goal: cached ≥ 50× faster.
//! * Per call, each on a fresh instance as the host runs them: the Python
//!   detector beside the Rust `low-success-rate` detector, the JavaScript
//!   unit beside the Rust echo unit, the C strategy beside the Rust
//!   `backoff-retry` strategy; and the SDKs' test units (`tests/guests/`:
//!   decode the JSON request, encode it back) beside the Rust echo unit, on
//!   a small request and on one of 64 KiB.
//!
//! `cargo bench --bench polyglot` (needs the toolchains of
//! plugins/examples/README.md; a missing one skips its rows).

#[path = "../tests/support/examples.rs"]
mod examples;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kaizen_host::runtime::blocking::block_on;
use kaizen_host::runtime::types::{
    CallContext, DetectionInput, ErrorClass, Failure, LatencyStats, TargetStats, WindowStats,
};
use kaizen_host::{Plugin, Runtime, RuntimeConfig};

fn runtime(cache: &std::path::Path) -> (tempfile::TempDir, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    let c = RuntimeConfig { cache_dir: Some(cache.to_path_buf()), max_module_bytes: 64 << 20, ..Default::default() };
    let rt = Runtime::new(dir.path(), c).unwrap();
    (dir, rt)
}

/// Median of `n` timings of `f`.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

fn row(label: &str, a: Duration, b: Duration, goal: &str) {
    println!("{label:<58} {:>10} / {:>10} = {:>8.2}x {goal}", fmt(a), fmt(b), a.as_secs_f64() / b.as_secs_f64());
}

fn input() -> DetectionInput {
    let w = WindowStats {
        duration_secs: 60.0,
        executions: 200,
        failures: 30,
        success_rate: 0.85,
        latency: LatencyStats { p50_ms: 1.0, p95_ms: 2.0, p99_ms: 3.0, mean_ms: 1.2, stddev_ms: 0.4 },
        throughput: 3.3,
        errors: vec![],
    };
    let targets = (0..10)
        .map(|i| TargetStats {
            target: format!("svc-{i}"),
            version: "1.0.0".into(),
            current: w.clone(),
            baseline: None,
        })
        .collect();
    DetectionInput { now_ms: 1, targets, metrics: vec![] }
}

fn load(rt: &Runtime, guest: &kaizen_plugins::Guest) -> Arc<Plugin> {
    rt.load(guest.package, &guest.load().unwrap()).unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let caches = tempfile::tempdir().unwrap();
    let shared = caches.path().join("shared");
    let (_d, rt) = runtime(&shared);
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 };
    println!("plugins in other languages (release host; fresh instance per call; medians)");

    if let Some(py) = examples::build_python() {
        let bytes = std::fs::read(&py).unwrap();
        println!("Python detector: {} bytes", bytes.len());
        let mut i = 0;
        let cold = median(3, || {
            i += 1;
            let (_d, cold_rt) = runtime(&caches.path().join(format!("cold-{i}")));
            cold_rt.load("py", &bytes).unwrap();
        });
        rt.load("py", &bytes).unwrap(); // fill the shared cache
        let warm = median(10, || {
            let (_d, warm_rt) = runtime(&shared);
            warm_rt.load("py", &bytes).unwrap();
        });
        row("Python detector: first load (compile) / cached load", cold, warm, "(goal cached ≥ 50x faster)");
        let p = rt.load("py", &bytes).unwrap();
        let rust = load(&rt, &kaizen_plugins::DETECTOR_LOW_SUCCESS_RATE);
        let inp = input();
        let py_call = median(30, || drop(block_on(p.detect(&inp)).unwrap()));
        let rs_call = median(200, || drop(block_on(rust.detect(&inp)).unwrap()));
        row("detect, 10 targets: Python / Rust (low-success-rate)", py_call, rs_call, "");
    }
    if let Some(js) = examples::build_js() {
        let p = rt.load("js", &std::fs::read(&js).unwrap()).unwrap();
        let rust = load(&rt, &kaizen_plugins::TEST_ECHO_V1);
        let req = br#"{"title": "Hello, World!"}"#;
        let js_call = median(200, || drop(block_on(p.invoke(&ctx, req)).unwrap()));
        let rs_call = median(200, || drop(block_on(rust.invoke(&ctx, req)).unwrap()));
        row("invoke: JavaScript unit (QuickJS) / Rust unit (echo)", js_call, rs_call, "");
    }
    for (label, built) in
        [("Python", examples::build_python_sdk_guest()), ("JavaScript", examples::build_js_sdk_guest())]
    {
        let Some(wasm) = built else { continue };
        let bytes = std::fs::read(&wasm).unwrap();
        println!("{label} unit on the SDK: {} bytes", bytes.len());
        let p = rt.load("sdk", &bytes).unwrap();
        let rust = load(&rt, &kaizen_plugins::TEST_ECHO_V1);
        let small = br#"{"op": "echo", "title": "Hello, World!"}"#.to_vec();
        let words: Vec<String> = (0..7_280).map(|i| format!("w{i:05}")).collect();
        let large = serde_json::to_vec(&serde_json::json!({"op": "echo", "words": words})).unwrap();
        for (size, req) in [("small", &small), ("64 KiB", &large)] {
            let sdk_call = median(50, || drop(block_on(p.invoke(&ctx, req)).unwrap()));
            let rs_call = median(200, || drop(block_on(rust.invoke(&ctx, req)).unwrap()));
            row(&format!("invoke, {size} JSON: {label} SDK unit / Rust unit (echo)"), sdk_call, rs_call, "");
        }
    }
    if let Some(c) = examples::build_c() {
        let p = rt.load("c", &std::fs::read(&c).unwrap()).unwrap();
        let rust = load(&rt, &kaizen_plugins::RECOVERY_BACKOFF_RETRY);
        let f = Failure {
            target: "svc".into(),
            version: "1.0.0".into(),
            error_class: ErrorClass::Dependency,
            message: "no".into(),
            attempt: 1,
            elapsed_ms: 1,
            remaining_ms: 5000,
            recent: vec![],
        };
        let c_call = median(200, || drop(block_on(p.decide(&f)).unwrap()));
        let rs_call = median(200, || drop(block_on(rust.decide(&f)).unwrap()));
        row("decide: C strategy / Rust strategy (backoff-retry)", c_call, rs_call, "");
    }
}
