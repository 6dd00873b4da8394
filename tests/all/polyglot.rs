//! The WIT contract from three other languages: the example plugins under
//! `plugins/examples/` are built from source here with their own
//! toolchains (componentize-py, jco with the QuickJS backend, clang +
//! wasi-libc with `kaizen plugin bindings` / `componentize`) and checked
//! through the host: each loads, describes itself and behaves.
//!
//! Outside CI a missing toolchain skips its language with a notice; in CI
//! (`CI` set; `.ci/run` installs them all) it fails.

use kaizen_host::runtime::blocking::block_on;
use kaizen_host::runtime::types::{
    CallContext, DetectionInput, ErrorClass, Failure, LatencyStats, PluginKind, RecoveryAction, Severity, TargetStats,
    WindowStats,
};

use crate::common::runtime_with;
use crate::examples::{build_c, build_js, build_python};

fn window(executions: u64, failures: u64) -> WindowStats {
    WindowStats {
        duration_secs: 60.0,
        executions,
        failures,
        success_rate: 1.0 - failures as f64 / executions.max(1) as f64,
        latency: LatencyStats { p50_ms: 1.0, p95_ms: 2.0, p99_ms: 3.0, mean_ms: 1.2, stddev_ms: 0.4 },
        throughput: executions as f64 / 60.0,
        errors: vec![],
    }
}

fn input(executions: u64, failures: u64) -> DetectionInput {
    DetectionInput {
        now_ms: 1,
        targets: vec![TargetStats {
            target: "checkout".into(),
            version: "2.1.0".into(),
            current: window(executions, failures),
            baseline: None,
        }],
        metrics: vec![],
    }
}

#[test]
fn python_detector_fires_on_a_bad_window_only() {
    let Some(wasm) = build_python() else { return };
    let (_dir, rt) = runtime_with(|c| {
        c.plugin_config.insert("error-budget".into(), [("max_error_rate".to_string(), "0.02".to_string())].into());
    });
    let p = rt.load("error_budget.wasm", &std::fs::read(&wasm).unwrap()).expect("the Python detector loads");
    assert_eq!((p.name(), p.kind(), p.version()), ("error-budget", PluginKind::Detector, "1.0.0"));
    let found = block_on(p.detect(&input(200, 30))).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, "error-budget");
    assert_eq!(found[0].severity, Severity::High, "15 % against a 2 % budget burns 7.5x too fast");
    assert!(found[0].summary.contains("7.5x"), "{}", found[0].summary);
    assert!(block_on(p.detect(&input(200, 2))).unwrap().is_empty(), "1 % is within a 2 % budget");
    assert!(block_on(p.detect(&input(5, 5))).unwrap().is_empty(), "too few calls to judge");
}

#[test]
fn js_unit_answers_and_its_errors_carry_their_class() {
    let Some(wasm) = build_js() else { return };
    let (_dir, rt) = runtime_with(|_| {});
    let p = rt.load("slugify.wasm", &std::fs::read(&wasm).unwrap()).expect("the JS unit loads");
    assert_eq!((p.name(), p.kind(), p.version()), ("slugify", PluginKind::Unit, "1.0.0"));
    let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 5_000 };
    let out = block_on(p.invoke(&ctx, r#"{"title": "Crème Brûlée: 10 Recipes!"}"#.as_bytes())).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"slug":"creme-brulee-10-recipes"}"#);
    let e = block_on(p.invoke(&ctx, b"not json")).unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidInput, "{e}");
    let e = block_on(p.invoke(&ctx, br#"{"title": 7}"#)).unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidInput, "{e}");
    let e = block_on(p.invoke(&ctx, br#"{"title": "!!!"}"#)).unwrap_err();
    assert_eq!(e.class, ErrorClass::Internal, "{e}");
    assert!(e.message.contains("no letters or digits"), "{e}");
}

#[test]
fn c_strategy_returns_the_right_action() {
    let Some(wasm) = build_c() else { return };
    let (_dir, rt) = runtime_with(|c| {
        c.plugin_config.insert("jittered-retry".into(), [("base_ms".to_string(), "40".to_string())].into());
    });
    let p = rt.load("jittered_retry.wasm", &std::fs::read(&wasm).unwrap()).expect("the C strategy loads");
    assert_eq!((p.name(), p.kind(), p.version()), ("jittered-retry", PluginKind::Recovery, "1.0.0"));
    assert_eq!(block_on(p.handles()).unwrap(), vec![ErrorClass::Dependency, ErrorClass::Timeout]);
    let failure = |class: ErrorClass, attempt: u32, remaining_ms: u64| Failure {
        target: "checkout".into(),
        version: "2.1.0".into(),
        error_class: class,
        message: "upstream said no".into(),
        attempt,
        elapsed_ms: 10,
        remaining_ms,
        recent: vec![],
    };
    assert_eq!(block_on(p.decide(&failure(ErrorClass::Dependency, 1, 1000))).unwrap(), RecoveryAction::Retry(40));
    assert_eq!(block_on(p.decide(&failure(ErrorClass::Timeout, 3, 1000))).unwrap(), RecoveryAction::Retry(160));
    assert_eq!(
        block_on(p.decide(&failure(ErrorClass::Dependency, 4, 1000))).unwrap(),
        RecoveryAction::OpenCircuit(5000)
    );
    assert!(
        matches!(block_on(p.decide(&failure(ErrorClass::Dependency, 2, 50))).unwrap(), RecoveryAction::GiveUp(why) if why.contains("deadline"))
    );
    assert_eq!(block_on(p.decide(&failure(ErrorClass::Trap("boom".into()), 1, 1000))).unwrap(), RecoveryAction::Pass);
}

/// `kaizen plugin check` of the 18 MB Python component twice over one
/// cache: the first check compiles it with Cranelift, the second finds the
/// compiled module (both say which); `--no-cache` compiles afresh. Prints
/// both wall times (the whole command) and their ratio — the README's
/// figure; no timing is asserted.
#[test]
fn plugin_check_of_the_python_component_is_fast_the_second_time() {
    let Some(wasm) = build_python() else { return };
    let cache = tempfile::tempdir().unwrap();
    let check = |extra: &[&str]| {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(crate::kaizen_bin::BIN)
            .args(["plugin", "check", "--json", wasm.to_str().unwrap()])
            .args(extra)
            .env("KAIZEN_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        (serde_json::from_str::<serde_json::Value>(&text).unwrap(), took)
    };
    let (first, t1) = check(&[]);
    let (second, t2) = check(&[]);
    let (fresh, t3) = check(&["--no-cache"]);
    assert_eq!((first["cache"].as_str(), second["cache"].as_str()), (Some("miss"), Some("hit")));
    assert_eq!(fresh["cache"], "off");
    assert_eq!(first["sha256"], second["sha256"]);
    let mb = first["size"].as_u64().unwrap() as f64 / 1e6;
    let load = |v: &serde_json::Value| v["load_ms"].as_f64().unwrap();
    println!(
        "plugin check, Python component ({mb:.1} MB): first {:.2} s, second {:.1} ms ({:.0}x faster), --no-cache {:.2} s; \
         of which loading (validate, compile or deserialize, describe): {:.0} ms / {:.1} ms = {:.0}x",
        t1.as_secs_f64(),
        t2.as_secs_f64() * 1e3,
        t1.as_secs_f64() / t2.as_secs_f64(),
        t3.as_secs_f64(),
        load(&first),
        load(&second),
        load(&first) / load(&second)
    );
}
