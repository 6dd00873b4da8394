//! Sparse arms: what a version given a small share of a slot's calls pays
//! per call, and whether a matched control pays the same.
//!
//! The echo unit serves; an identical-code candidate (another version
//! string) takes `share` of the calls through the slot's real split, and a
//! matched control (a separately loaded copy of the serving version,
//! [`Runtime::control_of`]) takes as many; the rest stay on the serving
//! version. Three callers on a two-worker runtime call through the recorded
//! call path. Printed per share: p50 and p95 per arm, the candidate against
//! the serving version (what a judge comparing those two would see) and
//! against the matched control (what the judge compares now). Every arm is
//! identical code, so every ratio's ideal is 1.
//!
//! `cargo bench --bench arms`. Knobs: ARMS_BENCH_CALLS (default 60 000
//! calls per round), ARMS_BENCH_ROUNDS (default 3; the medians of the
//! rounds' figures are printed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kaizen_host::invoke::Invoker;
use kaizen_host::runtime::types::CallContext;
use kaizen_host::store::Db;
use kaizen_host::telemetry::{Telemetry, TelemetryConfig};
use kaizen_host::{Runtime, RuntimeConfig};

const ARMS: [&str; 3] = ["serving version (the rest)", "candidate (identical code)", "matched control"];

/// Latencies in µs per arm of one round of `n` calls.
fn round(rt: &tokio::runtime::Runtime, invoker: &Arc<Invoker>, candidate: &str, n: u64) -> [Vec<f64>; 3] {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (invoker, next, candidate) = (invoker.clone(), next.clone(), candidate.to_string());
            rt.spawn(async move {
                let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
                let mut lat: [Vec<f64>; 3] = Default::default();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let answer = invoker.call("echo", &ctx, br#"{"hello":"world"}"#).await.unwrap();
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    let arm = if answer.plugin.id() == candidate {
                        1
                    } else if answer.plugin.is_control() {
                        2
                    } else {
                        0
                    };
                    lat[arm].push(us);
                }
                lat
            })
        })
        .collect();
    let mut all: [Vec<f64>; 3] = Default::default();
    for t in tasks {
        for (a, l) in rt.block_on(t).unwrap().into_iter().enumerate() {
            all[a].extend(l);
        }
    }
    all
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (calls, rounds) = (env("ARMS_BENCH_CALLS", 60_000), env("ARMS_BENCH_ROUNDS", 3));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(dir.path(), RuntimeConfig::default()).unwrap();
    let serving = runtime.load("echo-v1", &kaizen_plugins::TEST_ECHO_V1.load().unwrap()).unwrap();
    let candidate = runtime.load("echo-v2", &kaizen_plugins::TEST_ECHO_V2.load().unwrap()).unwrap();
    runtime.install(serving.clone()).unwrap();
    let db = rt.block_on(Db::open_sqlite_file(&dir.path().join("k.db"))).unwrap();
    let telemetry = rt.block_on(Telemetry::start(db, TelemetryConfig::default())).unwrap();
    let invoker = Arc::new(Invoker::new(runtime.clone(), telemetry.clone()));
    let slot = runtime.slot("echo").unwrap();
    let claim = slot.claim("the arms bench", &[serving.id()]).unwrap();
    let control = runtime.control_of(&serving, &candidate).unwrap();

    println!("echo unit, fresh instances, recording on; {calls} calls per round, {rounds} rounds");
    let mut summary = Vec::new();
    for share in [10.0, 5.0] {
        claim.split(&serving, &candidate, share, Some(&control)).unwrap();
        round(&rt, &invoker, candidate.id(), calls / 10); // warm-up
        // Per round: (p50, p95) of each arm.
        let mut figures: Vec<[(f64, f64); 3]> = Vec::new();
        for r in 0..rounds {
            let mut lat = round(&rt, &invoker, candidate.id(), calls);
            let mut row = [(0.0, 0.0); 3];
            for (a, l) in lat.iter_mut().enumerate() {
                l.sort_by(f64::total_cmp);
                row[a] = (quantile(l, 0.5), quantile(l, 0.95));
                println!(
                    "share {share:>4}% round {r}: {:<28} {:>6} calls  p50 {:>7.1} µs  p95 {:>7.1} µs",
                    ARMS[a],
                    l.len(),
                    row[a].0,
                    row[a].1
                );
            }
            figures.push(row);
        }
        let med = |a: usize, q: fn(&(f64, f64)) -> f64| median(figures.iter().map(|r| q(&r[a])).collect());
        summary.push((share, [0, 1, 2].map(|a| (med(a, |x| x.0), med(a, |x| x.1)))));
    }
    drop(claim);

    println!("\n== Kaizen sparse arms: figures measured in this run (medians of {rounds} rounds) ==");
    for (share, m) in summary {
        let [(s50, s95), (c50, c95), (k50, k95)] = m;
        println!(
            "candidate at {share}% / serving version: p50 {c50:.1} / {s50:.1} µs = {:.2}x, p95 {c95:.1} / {s95:.1} µs = {:.2}x",
            c50 / s50,
            c95 / s95
        );
        println!(
            "candidate at {share}% / matched control at {share}%: p50 {c50:.1} / {k50:.1} µs = {:.2}x, p95 {c95:.1} / {k95:.1} µs = {:.2}x   (ideal 1.00x)",
            c50 / k50,
            c95 / k95
        );
    }
    rt.block_on(telemetry.shutdown()).unwrap();
}
