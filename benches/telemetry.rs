//! Telemetry benchmarks: executions recorded per second through the writer
//! (SQLite, and PostgreSQL when `KAIZEN_TEST_POSTGRES` is set), unit call
//! throughput with recording on against off, and the cost of building the
//! detectors' input with 10^3 against 10^6 stored executions. Run with
//! `cargo bench --bench telemetry`; ratios are printed at the end.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kaizen_host::invoke::Invoker;
use kaizen_host::runtime::types::CallContext;
use kaizen_host::store::executions::{Execution, Outcome};
use kaizen_host::store::{Db, executions};
use kaizen_host::telemetry::{FullPolicy, Telemetry, TelemetryConfig};
use kaizen_host::{Runtime, RuntimeConfig};

fn exec(target: usize, i: i64, now: i64) -> Execution {
    Execution {
        target: format!("unit-{target}"),
        version: "1.0.0".into(),
        started_at: now - (i % 300_000),
        duration_us: 50 + (i % 977) * 3,
        outcome: if i % 50 == 0 { Outcome::Error } else { Outcome::Ok },
        error_class: (i % 50 == 0).then(|| "dependency".into()),
        message: None,
        request: None,
    }
}

/// Record `n` executions through the writer and wait until all are on disk;
/// returns executions per second.
async fn writer_rate(db: Db, n: i64) -> f64 {
    let cfg = TelemetryConfig { full_policy: FullPolicy::Block { max_wait_ms: 60_000 }, ..Default::default() };
    let t = Telemetry::start(db, cfg).await.unwrap();
    let now = kaizen_host::store::now_ms();
    let rec = t.recorder().clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        for i in 0..n {
            rec.record(exec((i % 100) as usize, i, now));
        }
    })
    .await
    .unwrap();
    t.recorder().flush().await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(t.counters().written, n as u64);
    t.shutdown().await.unwrap();
    rate
}

/// A database of its own on the server at `admin` (created once).
async fn bench_database(admin: &str) -> Db {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'kaizen_bench'")
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::query("CREATE DATABASE kaizen_bench").execute(&mut conn).await.unwrap();
    }
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    Db::connect(&format!("{base}/kaizen_bench")).await.unwrap()
}

fn writer(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("writer");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("sqlite_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let db = rt.block_on(Db::open_sqlite_file(&dir.path().join("k.db"))).unwrap();
                let started = Instant::now();
                rt.block_on(writer_rate(db, 100_000));
                total += started.elapsed();
            }
            total
        })
    });
    if let Ok(url) = std::env::var("KAIZEN_TEST_POSTGRES") {
        g.bench_function("postgres_100k", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let db = rt.block_on(bench_database(&url));
                    rt.block_on(async {
                        let Db::Postgres(p) = &db else { unreachable!() };
                        sqlx::query("TRUNCATE executions").execute(p).await.unwrap();
                    });
                    let started = Instant::now();
                    rt.block_on(writer_rate(db, 100_000));
                    total += started.elapsed();
                }
                total
            })
        });
    } else {
        println!("NOTICE: KAIZEN_TEST_POSTGRES unset: PostgreSQL writer bench skipped");
    }
    g.finish();
}

fn recording(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(dir.path(), RuntimeConfig::default()).unwrap();
    let p = runtime.load("echo", &kaizen_plugins::TEST_ECHO_V1.load().unwrap()).unwrap();
    runtime.install(p).unwrap();
    let db = rt.block_on(Db::open_sqlite_file(&dir.path().join("k.db"))).unwrap();
    let telemetry = rt.block_on(Telemetry::start(db, TelemetryConfig::default())).unwrap();
    let invoker = Invoker::new(runtime.clone(), telemetry.clone());
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    let mut g = c.benchmark_group("calls");
    g.bench_function("recording_off", |b| b.iter(|| rt.block_on(runtime.call_unit("echo", &ctx, b"request")).unwrap()));
    g.bench_function("recording_on", |b| b.iter(|| rt.block_on(invoker.call("echo", &ctx, b"request")).unwrap()));
    g.finish();
    // The same calls counted in CPU time of the whole process (every
    // thread: the calls, the writer and SQLite's own thread), the rows
    // committed to disk before the clock stops: what recording costs a
    // host whose cores are all busy, whatever else runs on the machine.
    const N: u32 = 50_000;
    let off = cpu_per_call(N, || {
        rt.block_on(runtime.call_unit("echo", &ctx, b"request")).unwrap();
    });
    rt.block_on(telemetry.recorder().flush());
    let started = cpu_time();
    for _ in 0..N {
        rt.block_on(invoker.call("echo", &ctx, b"request")).unwrap();
    }
    rt.block_on(telemetry.recorder().flush());
    let on = (cpu_time() - started) / N;
    *CPU.lock().unwrap() = Some((on, off));
    rt.block_on(telemetry.shutdown()).unwrap();
}

/// CPU time (user + system) of every thread of this process so far.
fn cpu_time() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage for getrusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Process CPU time per call over `n` calls of `f`.
fn cpu_per_call(n: u32, mut f: impl FnMut()) -> Duration {
    let started = cpu_time();
    for _ in 0..n {
        f();
    }
    (cpu_time() - started) / n
}

/// (recording on, recording off) process CPU time per call.
static CPU: std::sync::Mutex<Option<(Duration, Duration)>> = std::sync::Mutex::new(None);

/// Build the detection input for 100 targets over a database holding
/// `stored` executions, the aggregates restored from their checkpoint as at
/// a restart.
fn detection(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("detection_input");
    for (name, stored) in [("stored_1e3", 1_000i64), ("stored_1e6", 1_000_000)] {
        let dir = tempfile::tempdir().unwrap();
        let db = rt.block_on(Db::open_sqlite_file(&dir.path().join("k.db"))).unwrap();
        let now = kaizen_host::store::now_ms();
        // No maintenance pass during the set-up: its checkpoint would race
        // the bulk inserts below for the write lock.
        let quiet = TelemetryConfig { maintenance_secs: 3600, ..Default::default() };
        let t = rt.block_on(Telemetry::start(db.clone(), quiet)).unwrap();
        // The same 1000 recent calls in the window either way; the rest is
        // older history (1 hour to 6 days back) that detection must not pay for.
        let batch: Vec<Execution> = (0..stored)
            .map(|i| {
                let mut e = exec((i % 100) as usize, i, now);
                e.started_at = if i < 1000 {
                    now - 1 - (i * 293) % 290_000
                } else {
                    now - 3_600_000 - (i * 7919) % (6 * 86_400_000)
                };
                e
            })
            .collect();
        for chunk in batch.chunks(100_000) {
            rt.block_on(executions::insert_batch(&db, chunk)).unwrap();
            for e in chunk {
                t.aggregates().observe(e);
            }
        }
        rt.block_on(t.shutdown()).unwrap();
        let t = Arc::new(rt.block_on(Telemetry::start(db.clone(), TelemetryConfig::default())).unwrap());
        assert_eq!(rt.block_on(executions::count(&db)).unwrap(), stored);
        g.bench_function(name, |b| {
            b.iter(|| {
                let input = t.aggregates().detection_input(now, 300_000, 1_800_000, vec![]);
                assert_eq!(input.targets.len(), 100);
                input
            })
        });
    }
    g.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut c = support::criterion();
    // A filter on the command line (`cargo bench --bench telemetry -- calls`)
    // also skips the other groups' set-up (a million inserts for detection),
    // so that a profile of one group shows that group alone.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |ids: &[&str]| filter.as_deref().is_none_or(|f| ids.iter().any(|id| id.contains(f)));
    if wanted(&["writer/sqlite_100k", "writer/postgres_100k"]) {
        writer(&mut c, &rt);
    }
    if wanted(&["calls/recording_off", "calls/recording_on"]) {
        recording(&mut c, &rt);
    }
    if wanted(&["detection_input/stored_1e3", "detection_input/stored_1e6"]) {
        detection(&mut c, &rt);
    }
    c.final_summary();

    println!("\n== Kaizen telemetry: figures measured in this run ==");
    for (label, f) in [("SQLite", "sqlite_100k"), ("PostgreSQL", "postgres_100k")] {
        match support::mean_ns("writer", f) {
            Some(ns) => println!(
                "{:<52} {:>10.0} executions/s{}",
                format!("writer throughput, {label}"),
                100_000.0 / (ns / 1e9),
                if label == "SQLite" { "   (goal >= 100000/s)" } else { "" }
            ),
            None => println!("writer throughput, {label}: not measured in this run"),
        }
    }
    support::ratio(
        "unit call: recording on / recording off",
        ("calls", "recording_on"),
        ("calls", "recording_off"),
        Some("<= 1.10x"),
    );
    if let Some((on, off)) = *CPU.lock().unwrap() {
        println!(
            "{:<52} {:>10} / {:>10} = {:>6.2}x   (goal <= 1.10x)",
            "unit call, process CPU: recording on / off",
            support::fmt_ns(on.as_nanos() as f64),
            support::fmt_ns(off.as_nanos() as f64),
            on.as_secs_f64() / off.as_secs_f64()
        );
    }
    support::ratio(
        "detection input, 100 targets: 10^6 / 10^3 stored",
        ("detection_input", "stored_1e6"),
        ("detection_input", "stored_1e3"),
        Some("~1.0x"),
    );
}
