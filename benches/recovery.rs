//! Recovery benchmarks: the healing call path on a call that succeeds
//! against the plain call path (same host, same unit, recording on in both),
//! and one retry episode against its configured delay. Run with
//! `cargo bench --bench recovery`.

mod support;

use kaizen_host::host::{Host, HostConfig};
use kaizen_host::invoke::Invoker;
use kaizen_host::runtime::types::CallContext;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    config.runtime.plugin_config.insert("backoff-retry".into(), pairs(&[("base_ms", "10"), ("jitter_pct", "0")]));
    config.runtime.plugin_config.insert("flaky".into(), pairs(&[("fail_attempts", "1")]));
    // Half of flaky's invocations fail by design; keep its breaker closed so
    // that every iteration measures a retry episode.
    config.recovery.breaker.min_calls = usize::MAX;
    let host = rt.block_on(async {
        let (host, _) = Host::open(config).await.unwrap();
        for g in [&kaizen_plugins::TEST_ECHO_V1, &kaizen_plugins::TEST_FLAKY, &kaizen_plugins::RECOVERY_BACKOFF_RETRY] {
            let p = host.runtime.load(g.package, &g.load().unwrap()).unwrap();
            host.deploy(p, "bench", "setup").await.unwrap();
        }
        host
    });
    let plain = Invoker::new(host.runtime.clone(), host.telemetry.clone());
    let healing = host.invoker.clone();
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 };

    let mut c = support::criterion();
    let mut g = c.benchmark_group("recovery");
    g.bench_function("plain_success", |b| b.iter(|| rt.block_on(plain.call("echo", &ctx, b"request")).unwrap()));
    g.bench_function("healing_success", |b| b.iter(|| rt.block_on(healing.call("echo", &ctx, b"request")).unwrap()));
    g.sample_size(20);
    g.bench_function("retry_episode_10ms", |b| {
        b.iter(|| rt.block_on(healing.call("flaky", &ctx, b"request")).unwrap())
    });
    g.finish();
    c.final_summary();

    println!("\n== Kaizen recovery: figures measured in this run ==");
    support::ratio(
        "successful call: healing path / plain path",
        ("recovery", "healing_success"),
        ("recovery", "plain_success"),
        Some("<= 1.05x"),
    );
    match support::mean_ns("recovery", "retry_episode_10ms") {
        Some(ns) => println!(
            "{:<52} {:>10} / {:>10} = {:>6.2}x   (failed call + 10 ms backoff + successful retry)",
            "one retry episode / its configured delay",
            support::fmt_ns(ns),
            "10.00 ms",
            ns / 1e7
        ),
        None => println!("retry episode not measured in this run"),
    }
    rt.block_on(host.shutdown()).unwrap();
}
