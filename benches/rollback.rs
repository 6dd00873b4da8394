//! Detection-to-rollback time: calculator 2.0.0 serves 1,000 calls/s, the
//! slow 3.0.0 is rolled out with the default judge and rollout settings, and
//! we measure from the first call answered by 3.0.0 to the first call back
//! on 2.0.0 after the judge failed it. Run with `cargo bench --bench
//! rollback`. Printed beside the floor set by the judge's minimum samples at
//! the first canary share (the time the traffic needs to supply them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kaizen_host::host::{Host, HostConfig};
use kaizen_host::invoke::{CallListener, CallRecord};
use kaizen_host::runtime::types::CallContext;
use parking_lot::Mutex;

struct Timeline(Mutex<Vec<(Instant, String)>>);

impl CallListener for Timeline {
    fn on_call(&self, r: &CallRecord) {
        let started = Instant::now() - Duration::from_secs_f64(r.latency_ms / 1e3);
        self.0.lock().push((started, r.sha256.clone()));
    }
}

const RATE: u64 = 1000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut trials = Vec::new();
    rt.block_on(async {
        let mut config = HostConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
        // Five deliberate rollbacks in a row would (rightly) make the
        // self-watch pause the loop; this bench wants all five.
        config.safety.self_watch.min_outcomes = 100;
        let (host, _) = Host::open(config).await.unwrap();
        let v2 = host.runtime.load("v2", &kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap()).unwrap();
        host.deploy(v2.clone(), "bench", "baseline").await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (inv, stop) = (host.invoker.clone(), stop.clone());
                let tokio = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
                    let period = Duration::from_micros(1_000_000 * 2 / RATE);
                    let mut next = Instant::now();
                    let mut i = t as i64;
                    while !stop.load(Ordering::Relaxed) {
                        let req = format!(r#"{{"op":"add","a":{i},"b":1}}"#);
                        let _ = tokio.block_on(inv.call("calculator", &ctx, req.as_bytes()));
                        i += 2;
                        next += period;
                        if let Some(d) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let v3 = host.runtime.load("v3", &kaizen_plugins::UNIT_CALCULATOR_V3.load().unwrap()).unwrap();
        for _ in 0..5 {
            run_trial(&host, &v2, &v3, &mut trials).await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    });
    let limits = kaizen_host::safety::Limits::default();
    let floor = limits.judge.min_samples as f64 / (RATE as f64 * limits.canary_steps[0] / 100.0);
    println!("\n== Kaizen: detection-to-rollback at {RATE} calls/s offered (5 trials) ==");
    for (i, (t, samples, reason)) in trials.iter().enumerate() {
        println!("trial {}: {:>7.0} ms, judge samples {} (reason: {reason})", i + 1, t * 1e3, samples);
    }
    let mut times: Vec<f64> = trials.iter().map(|t| t.0).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "median {:.0} ms (goal <= 2000 ms); the judge's sample floor at a {}% canary is {:.0} ms: {:.2}x of it",
        median * 1e3,
        limits.canary_steps[0],
        floor * 1e3,
        median / floor
    );
}

async fn run_trial(
    host: &Arc<Host>,
    v2: &Arc<kaizen_host::Plugin>,
    v3: &Arc<kaizen_host::Plugin>,
    trials: &mut Vec<(f64, String, String)>,
) {
    let timeline = Arc::new(Timeline(Mutex::new(Vec::new())));
    let listener: Arc<dyn CallListener> = timeline.clone();
    host.invoker.listen("calculator", listener.clone());
    host.improve.submit(v3.clone(), "bench").await.unwrap();
    let report = host.improve.run_cycle("manual").await;
    if !report.attempts.iter().any(|a| a.result == "rolling out") {
        panic!("v3 was not rolled out: {:?} {:?}", report.skipped, report.attempts);
    }
    host.improve.wait_rollouts().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.invoker.unlisten("calculator", &listener);
    let calls = timeline.0.lock().clone();
    let first_bad = calls.iter().filter(|c| c.1 == v3.id()).map(|c| c.0).min().expect("v3 served calls");
    let last_bad = calls.iter().filter(|c| c.1 == v3.id()).map(|c| c.0).max().unwrap();
    let back = calls.iter().filter(|c| c.1 == v2.id() && c.0 > last_bad).map(|c| c.0).min().expect("v2 serves again");
    let imp = &kaizen_host::store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0];
    let j = &imp.verdicts[0]["judgement"];
    let samples = format!("{} candidate / {} baseline", j["candidate_samples"], j["baseline_samples"]);
    trials.push((
        back.duration_since(first_bad).as_secs_f64(),
        samples,
        j["reason"].as_str().unwrap_or("").to_string(),
    ));
}
