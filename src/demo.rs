//! `kaizen demo`: the seed story on the real host — store, telemetry, the
//! loop, the judge and the safety controller — with the bundled plugins
//! and a built-in traffic generator.
//!
//! calculator 1.0.0 serves and crashes on divide by zero → the detectors
//! flag it → 2.0.0, dropped in as a candidate, is proven (shipped cases,
//! replay of recorded requests, shadow traffic) and rolled out stepwise under
//! the judge → promoted → the correct but slow 3.0.0 is dropped in → the
//! judge fails it at the first canary step → rollback to 2.0.0's exact bytes.

use std::path::Path;

use kaizen_host::host::{Host, HostConfig};
use kaizen_host::runtime::validate::world_name;
use kaizen_host::store;
use kaizen_host::traffic::Traffic;

fn window_line(host: &Host, version: &str) -> String {
    let now = store::now_ms();
    match host.telemetry.aggregates().window("calculator", Some(version), now - 60_000, now + 1) {
        Some(w) => format!(
            "{version}: {} calls, success {:.1}%, p50 {:.3} ms, p95 {:.3} ms",
            w.executions,
            w.success_rate * 100.0,
            w.latency.p50_ms,
            w.latency.p95_ms
        ),
        None => format!("{version}: no calls yet"),
    }
}

async fn show_improvement(host: &Host) -> anyhow::Result<()> {
    let imp = &store::improvements::list(&host.db, Some("calculator"), 1).await?[0];
    println!("    improvement #{}: {} — {}", imp.id, imp.state, imp.reason);
    for step in imp.proof.as_array().into_iter().flatten() {
        println!(
            "      proof   {:<10} {:<7} {}",
            step["step"].as_str().unwrap_or(""),
            step["result"].as_str().unwrap_or(""),
            step["detail"].as_str().unwrap_or("")
        );
    }
    for v in imp.verdicts.as_array().into_iter().flatten() {
        let j = &v["judgement"];
        println!(
            "      verdict {:<6} at {:>5}%: {:<5} ({} vs {} calls) {}",
            v["phase"].as_str().unwrap_or(""),
            v["percent"],
            j["verdict"].as_str().unwrap_or(""),
            j["candidate_samples"],
            j["baseline_samples"],
            j["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub fn run(data_dir: &Path, database_url: Option<String>, rate: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(demo(data_dir, database_url, rate))
}

async fn demo(data_dir: &Path, database_url: Option<String>, rate: u64) -> anyhow::Result<()> {
    // A fresh SQLite state each run: the demo tells its story from the start.
    for f in ["kaizen.db", "kaizen.db-wal", "kaizen.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let mut config = HostConfig { data_dir: data_dir.to_path_buf(), database_url, ..Default::default() };
    config.telemetry.sample_requests_every = 5;
    config.improve.window_secs = 30;
    config.improve.baseline_secs = 30;
    config.improve.prove.shadow_secs = 3;
    config.safety.limits.judge.max_samples = 600;
    config.safety.limits.bake_secs = 3;
    let (host, _) = Host::open(config).await?;
    println!("Kaizen demo — data in {}", data_dir.display());

    println!("\n1. Loading the bundled plugins");
    let (mut v2, mut v3) = (None, None);
    for g in kaizen_plugins::BUNDLED {
        let plugin = host.runtime.load(g.package, &g.load()?)?;
        let info = plugin.info();
        println!("    {:<20} {:<9} {:<7} {}", info.name, world_name(info.kind), info.version, &plugin.sha256()[..12]);
        match g.package {
            "unit-calculator-v2" => v2 = Some(plugin),
            "unit-calculator-v3" => v3 = Some(plugin),
            _ => {
                host.deploy(plugin, "demo", "bundled plugin").await?;
            }
        }
    }
    let (v2, v3) = (v2.expect("v2 bundled"), v3.expect("v3 bundled"));

    println!("\n2. calculator 1.0.0 serves {rate} calls/s (a third divide by zero)");
    let traffic = Traffic::start(host.invoker.clone(), rate);
    traffic.wait_for(rate * 2).await;
    host.telemetry.recorder().flush().await;
    println!("    {}", window_line(&host, "1.0.0"));

    println!("\n3. 2.0.0 arrives as a candidate; a loop cycle runs");
    host.improve.submit(v2.clone(), "demo").await?;
    let report = host.improve.run_cycle("manual").await;
    for f in store::findings::list(&host.db, None, 20).await? {
        println!("    finding [{}] {}: {}", f.priority, f.kind, f.summary);
    }
    for a in &report.attempts {
        println!("    attempt on {}: {} {}", a.target, a.candidate.as_deref().unwrap_or("-"), a.result);
    }
    host.improve.wait_rollouts().await;
    show_improvement(&host).await?;
    traffic.wait_for(rate).await;
    println!("    {}", window_line(&host, "2.0.0"));

    println!("\n4. 3.0.0 (correct, but slow) arrives as a candidate; a loop cycle runs");
    host.improve.submit(v3.clone(), "demo").await?;
    host.improve.run_cycle("manual").await;
    host.improve.wait_rollouts().await;
    show_improvement(&host).await?;
    let slot = host.runtime.slot("calculator").expect("calculator slot");
    let bytes = host.runtime.blobs().get(slot.current().sha256())?;
    println!(
        "    serving calculator {} (sha256 {}, {} bytes — the exact bytes of the checkpoint)",
        slot.current().version(),
        &slot.current().sha256()[..16],
        bytes.len()
    );
    traffic.wait_for(rate).await;
    println!("    {}", window_line(&host, "2.0.0"));

    drop(traffic);
    println!("\n5. Audit trail");
    let mut audit = store::audit::recent(&host.db, Some("calculator"), 50).await?;
    audit.reverse();
    for e in audit {
        let d = &e.detail;
        let what = ["reason", "percent", "version", "candidate_version"]
            .iter()
            .find_map(|k| d.get(*k).map(|v| format!("{k}: {v}")))
            .unwrap_or_default();
        println!("    {:<10} {:<14} {what}", e.actor, e.action);
    }
    let s = host.improve.stats();
    println!(
        "\nloop: {} cycles, {} opportunities, {} attempted, {} deployed, {} rolled back",
        s.cycles_completed,
        s.opportunities_detected,
        s.improvements_attempted,
        s.improvements_deployed,
        s.improvements_rolled_back
    );
    host.shutdown().await?;
    Ok(())
}
