//! `kaizen demo`: the seed story on the real runtime and bundled plugins.
//!
//! calculator v1 serves and crashes on divide by zero → the detectors flag
//! it → v2 is hot-swapped in and the failures stop → the slow v3 is swapped
//! in → the latency-regression detector catches it → rollback to v2's exact
//! bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use kaizen_host::runtime::types::{
    CallContext, DetectionInput, ErrorCount, Finding, LatencyStats, PluginKind, TargetStats, WindowStats,
};
use kaizen_host::runtime::validate::world_name;
use kaizen_host::runtime::{Runtime, class_name};
use kaizen_host::{RuntimeConfig, SandboxLimits};

struct Sample {
    ok: bool,
    class: Option<String>,
    latency_ms: f64,
}

/// Offer `n` calls to `calculator`: arithmetic, a third of it divisions by
/// zero (the bug v1 has; v2 answers them with a typed `invalid-input`).
fn traffic(rt: &Runtime, n: usize) -> (Vec<Sample>, Duration, String) {
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n);
    let mut version = String::new();
    for i in 0..n {
        let (op, b) = match i % 6 {
            0 | 3 => ("div", 0),
            1 => ("div", (i % 7 + 1) as i64),
            2 | 4 => ("mul", 3),
            _ => ("add", 5),
        };
        let req = serde_json::to_vec(&serde_json::json!({"op": op, "a": i as i64, "b": b})).unwrap();
        let t = Instant::now();
        let result = rt.call_unit("calculator", &ctx, &req);
        let latency_ms = t.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(served) => {
                version = served.plugin.version().to_string();
                samples.push(Sample { ok: true, class: None, latency_ms });
            }
            // A caller's own bad input is answered correctly: it is not a
            // failure of the unit.
            Err(e) if class_name(&e.class) == "invalid-input" => {
                samples.push(Sample { ok: true, class: None, latency_ms })
            }
            Err(e) => samples.push(Sample { ok: false, class: Some(class_name(&e.class).to_string()), latency_ms }),
        }
    }
    (samples, started.elapsed(), version)
}

fn window(samples: &[Sample], took: Duration) -> WindowStats {
    let mut lat: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let n = samples.len() as f64;
    let mean = lat.iter().sum::<f64>() / n;
    let sd = (lat.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let failures = samples.iter().filter(|s| !s.ok).count() as u64;
    let mut errors: Vec<ErrorCount> = Vec::new();
    for s in samples.iter().filter_map(|s| s.class.as_ref()) {
        match errors.iter_mut().find(|e| &e.error_class == s) {
            Some(e) => e.count += 1,
            None => errors.push(ErrorCount { error_class: s.clone(), count: 1 }),
        }
    }
    WindowStats {
        duration_secs: took.as_secs_f64(),
        executions: samples.len() as u64,
        failures,
        success_rate: 1.0 - failures as f64 / n,
        latency: LatencyStats { p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99), mean_ms: mean, stddev_ms: sd },
        throughput: n / took.as_secs_f64(),
        errors,
    }
}

fn detect(rt: &Runtime, version: &str, current: WindowStats, baseline: Option<WindowStats>) -> Vec<Finding> {
    let input = DetectionInput {
        now_ms: 0,
        targets: vec![TargetStats { target: "calculator".into(), version: version.into(), current, baseline }],
        metrics: vec![],
    };
    let mut all = Vec::new();
    for slot in rt.slots_of(PluginKind::Detector) {
        match slot.current().detect(&input) {
            Ok(f) => all.extend(f),
            Err(e) => println!("    detector {} failed: {e}", slot.name()),
        }
    }
    all
}

fn show(w: &WindowStats) {
    println!(
        "    {} calls, success {:.1}%, p50 {:.3} ms, p95 {:.3} ms, {:.0} calls/s",
        w.executions,
        w.success_rate * 100.0,
        w.latency.p50_ms,
        w.latency.p95_ms,
        w.throughput
    );
}

fn show_findings(findings: &[Finding]) {
    if findings.is_empty() {
        println!("    detectors: nothing to report");
    }
    for f in findings {
        println!(
            "    finding [{}] {}: {}",
            format!("{:?}", f.severity).rsplit(':').next().unwrap_or_default().to_lowercase(),
            f.kind,
            f.summary
        );
    }
}

pub fn run(data_dir: &Path, calls: usize) -> anyhow::Result<()> {
    let calls = calls.max(50);
    let mut config = RuntimeConfig::in_dir(data_dir);
    config.limits = SandboxLimits { deadline: Duration::from_secs(1), ..Default::default() };
    let rt = Runtime::new(config)?;
    println!("Kaizen demo — data in {}", data_dir.display());

    println!("\n1. Loading the bundled plugins");
    let (mut v2, mut v3) = (None, None);
    for g in kaizen_plugins::BUNDLED {
        let plugin = rt.load(g.package, &g.load()?)?;
        let info = plugin.info();
        println!("    {:<20} {:<9} {:<7} {}", info.name, world_name(info.kind), info.version, &plugin.sha256()[..12]);
        match g.package {
            "unit-calculator-v2" => v2 = Some(plugin),
            "unit-calculator-v3" => v3 = Some(plugin),
            _ => {
                rt.install(plugin)?;
            }
        }
    }
    let (v2, v3) = (v2.expect("v2 bundled"), v3.expect("v3 bundled"));

    println!("\n2. calculator 1.0.0 serves {calls} calls (a third divide by zero)");
    let (s, took, version) = traffic(&rt, calls);
    let w1 = window(&s, took);
    show(&w1);
    let sample_error = s.iter().find_map(|s| s.class.clone()).unwrap_or_default();
    println!("    failures are `{sample_error}` errors");
    show_findings(&detect(&rt, &version, w1, None));

    println!("\n3. Hot swap to calculator 2.0.0 (checked arithmetic)");
    let slot = rt.slot("calculator").expect("calculator slot");
    let previous = slot.swap(v2.clone())?;
    println!("    swapped {} → {}", previous.version(), v2.version());
    let (s, took, version) = traffic(&rt, calls);
    let w2 = window(&s, took);
    show(&w2);
    show_findings(&detect(&rt, &version, w2.clone(), None));

    println!("\n4. Hot swap to calculator 3.0.0 (correct, but slow)");
    slot.swap(v3.clone())?;
    let (s, took, version) = traffic(&rt, calls);
    let w3 = window(&s, took);
    show(&w3);
    let findings = detect(&rt, &version, w3, Some(w2));
    show_findings(&findings);
    if findings.iter().any(|f| f.kind == "latency-regression") {
        let rb = slot.rollback()?;
        let bytes = rt.blobs().get(rb.to.sha256())?;
        println!(
            "    rolled back {} → {}: serving the exact prior bytes (sha256 {}, {} bytes)",
            rb.from.version(),
            rb.to.version(),
            &rb.to.sha256()[..16],
            bytes.len()
        );
    } else {
        println!("    no regression detected; keeping {}", v3.version());
    }

    println!("\n5. After the rollback");
    let (s, took, _) = traffic(&rt, calls);
    show(&window(&s, took));
    println!("    serving calculator {}", slot.current().version());
    Ok(())
}
