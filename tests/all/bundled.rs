//! Every bundled plugin loads, describes itself, and does its job when called
//! through the host with real inputs.

use std::collections::HashMap;

use kaizen_host::runtime::blocking::block_on;
use kaizen_host::runtime::types::{
    DetectionInput, ErrorClass, ErrorCount, Failure, LatencyStats, MetricPoint, RecoveryAction, Severity, TargetStats,
    WindowStats,
};
use kaizen_plugins as guests;

use crate::common::{ctx, install, json, kind_of, runtime, runtime_with};

fn window(executions: u64, failures: u64) -> WindowStats {
    WindowStats {
        duration_secs: 60.0,
        executions,
        failures,
        success_rate: (executions - failures) as f64 / executions as f64,
        latency: LatencyStats { p50_ms: 1.0, p95_ms: 2.0, p99_ms: 3.0, mean_ms: 1.1, stddev_ms: 0.3 },
        throughput: executions as f64 / 60.0,
        errors: vec![ErrorCount { error_class: "trap".into(), count: failures }],
    }
}

fn input(current: WindowStats, baseline: Option<WindowStats>) -> DetectionInput {
    DetectionInput {
        now_ms: NOW,
        targets: vec![TargetStats { target: "calculator".into(), version: "1.0.0".into(), current, baseline }],
        metrics: vec![],
    }
}

#[test]
fn every_bundled_plugin_loads_and_describes_itself() {
    let (_dir, rt) = runtime();
    assert!(guests::BUNDLED.len() >= 23, "12 detectors, 5 strategies, 2 improvers, 4 units");
    let mut names = HashMap::new();
    for g in guests::BUNDLED {
        let bytes = g.load().unwrap();
        let p = rt.load(g.package, &bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.kind(), kind_of(g.group), "{}", g.package);
        let info = block_on(p.describe()).unwrap();
        assert_eq!(&info, p.info());
        assert!(!info.description.is_empty());
        names.insert(g.package, info.name);
    }
    assert_eq!(names["detector-low-success-rate"], "low-success-rate");
    assert_eq!(names["unit-calculator-v3"], "calculator");
}

#[test]
fn low_success_detector_fires_on_half_success_only() {
    let (_dir, rt) = runtime();
    let det = install(&rt, &guests::DETECTOR_LOW_SUCCESS_RATE);
    let found = block_on(det.detect(&input(window(200, 100), None))).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, "low-success-rate");
    assert_eq!(found[0].target, "calculator");
    assert_eq!(found[0].severity, Severity::High);
    assert!(block_on(det.detect(&input(window(200, 4), None))).unwrap().is_empty());
}

const NOW: i64 = 1_700_000_000_000;

fn point(name: &str, at: i64, value: f64, tags: &[(&str, &str)]) -> MetricPoint {
    let tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    MetricPoint { name: name.into(), value, timestamp_ms: at, tags }
}

/// Pushed metrics and the host's hourly rollups, bad or good in every way
/// the metric detectors measure: a cache's hit rate, CPU held high, a
/// queue over its rule for two minutes, one hour of day 3x slower on two
/// days.
fn metrics(bad: bool) -> Vec<MetricPoint> {
    let target = [("target", "calculator")];
    let mut out = Vec::new();
    let (hits, misses) = if bad { (10.0, 90.0) } else { (90.0, 10.0) };
    for m in 0..10 {
        let tags = [("cache", "products"), ("target", "calculator")];
        out.push(point("cache.hits", NOW - m * 60_000, hits, &tags));
        out.push(point("cache.misses", NOW - m * 60_000, misses, &tags));
    }
    for s in 0..=120 {
        let at = NOW - s * 1000;
        out.push(point("cpu.utilization", at, if bad { 0.95 } else { 0.3 }, &target));
        out.push(point("queue.depth", at, if bad { 500.0 } else { 5.0 }, &target));
    }
    // Two days of every hour: an hour of day seen once is no pattern.
    for (hour, day) in (0..24).flat_map(|h| ["0", "1"].map(|d| (h, d))) {
        let tags = [("target", "calculator"), ("hour", &hour.to_string()), ("weekday", day)];
        let ms: f64 = if bad && hour == 15 { 30.0 } else { 10.0 };
        for (name, value) in [("calls", 40.0), ("hours", 1.0), ("log_latency_mean", ms.ln()), ("log_latency_var", 0.09)]
        {
            out.push(point(&format!("kaizen.hourly.{name}"), NOW, value, &tags));
        }
    }
    out
}

#[test]
fn every_detector_runs_on_a_bad_window_and_a_good_one() {
    // The latency budget is the operator's: 5 ms for this target; so are
    // the metrics utilization watches and the rule on the queue.
    let rule = kaizen_host::metric_rules::MetricRule {
        name: "backlog".into(),
        metric: "queue.depth".into(),
        matchers: vec![],
        aggregation: "avg".into(),
        window_secs: 10,
        op: ">".into(),
        threshold: 100.0,
        for_secs: 60,
        severity: "high".into(),
        category: "performance".into(),
        target: None,
        target_tag: "target".into(),
        summary: None,
    };
    let (_dir, rt) = runtime_with(|c| {
        let mut set = |plugin: &str, pairs: &[(&str, String)]| {
            let config = c.plugin_config.entry(plugin.into()).or_default();
            config.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())));
        };
        set("latency-budget", &[("calculator", "5".into())]);
        set("utilization", &[("metrics", "cpu.utilization".into()), ("for_secs", "60".into())]);
        set("metric-rule", &[("rules", kaizen_host::metric_rules::plugin_config(&[rule]))]);
    });
    // A window that is bad in every way each rule measures: low success, a
    // burst of failures of one class, slow, and far less traffic than before.
    let mut bad = window(100, 60);
    bad.latency = LatencyStats { p50_ms: 9.0, p95_ms: 20.0, p99_ms: 30.0, mean_ms: 10.0, stddev_ms: 4.0 };
    bad.throughput = 0.5;
    let baseline = window(1000, 2);
    let good = window(1000, 2);
    for g in guests::BUNDLED.iter().filter(|g| g.group == "detectors") {
        let det = install(&rt, g);
        let bad_input = DetectionInput { metrics: metrics(true), ..input(bad.clone(), Some(baseline.clone())) };
        let fired = block_on(det.detect(&bad_input)).unwrap();
        assert!(!fired.is_empty(), "{} stays quiet on a bad window", g.package);
        for f in &fired {
            assert!((0.0..=1.0).contains(&f.confidence), "{f:?}");
            assert!(!f.summary.is_empty());
        }
        let good_input = DetectionInput { metrics: metrics(false), ..input(good.clone(), Some(baseline.clone())) };
        let quiet = block_on(det.detect(&good_input)).unwrap();
        assert!(quiet.is_empty(), "{} fires on a good window: {quiet:?}", g.package);
    }
}

fn failure(class: ErrorClass, attempt: u32) -> Failure {
    Failure {
        target: "calculator".into(),
        version: "1.0.0".into(),
        error_class: class,
        message: "boom".into(),
        attempt,
        elapsed_ms: 10,
        remaining_ms: 60_000,
        recent: vec![],
    }
}

#[test]
fn backoff_strategy_returns_one_two_four_seconds() {
    let (_dir, rt) = runtime_with(|c| {
        c.plugin_config.insert("backoff-retry".into(), [("jitter_pct".to_string(), "0".to_string())].into());
    });
    let s = install(&rt, &guests::RECOVERY_BACKOFF_RETRY);
    assert!(block_on(s.handles()).unwrap().contains(&ErrorClass::Dependency));
    let delays: Vec<_> = (1..=4).map(|a| block_on(s.decide(&failure(ErrorClass::Dependency, a))).unwrap()).collect();
    assert_eq!(&delays[..3], &[RecoveryAction::Retry(1000), RecoveryAction::Retry(2000), RecoveryAction::Retry(4000)]);
    assert_eq!(delays[3], RecoveryAction::Pass, "after its retries it leaves the call to other strategies");
}

#[test]
fn backoff_jitter_stays_within_ten_percent() {
    let (_dir, rt) = runtime();
    let s = install(&rt, &guests::RECOVERY_BACKOFF_RETRY);
    let mut f = failure(ErrorClass::Timeout, 1);
    for elapsed in [1, 17, 333] {
        f.elapsed_ms = elapsed;
        let RecoveryAction::Retry(d) = block_on(s.decide(&f)).unwrap() else { panic!("expected a retry") };
        assert!((900..=1100).contains(&d), "{d}");
    }
}

#[test]
fn other_strategies_choose_their_actions() {
    let (_dir, rt) = runtime_with(|c| {
        c.plugin_config.insert("fallback".into(), [("unit".to_string(), "calculator-lite".to_string())].into());
    });
    let clear = install(&rt, &guests::RECOVERY_CLEAR_CACHE_RETRY);
    assert_eq!(
        block_on(clear.decide(&failure(ErrorClass::Trap("x".into()), 1))).unwrap(),
        RecoveryAction::ClearCacheRetry(0)
    );
    let reduce = install(&rt, &guests::RECOVERY_REDUCE_SCOPE);
    let RecoveryAction::RetryReducedScope(r) = block_on(reduce.decide(&failure(ErrorClass::Timeout, 1))).unwrap()
    else {
        panic!("expected a reduced-scope retry")
    };
    assert_eq!(r.scope_pct, 50);
    let fallback = install(&rt, &guests::RECOVERY_FALLBACK);
    assert_eq!(
        block_on(fallback.decide(&failure(ErrorClass::Internal, 1))).unwrap(),
        RecoveryAction::Fallback("calculator-lite".into())
    );
    let breaker = install(&rt, &guests::RECOVERY_CIRCUIT_BREAKER);
    assert_eq!(block_on(breaker.decide(&failure(ErrorClass::Internal, 1))).unwrap(), RecoveryAction::Pass);
}

#[test]
fn calculator_versions_behave_as_the_seed_story_says() {
    let (_dir, rt) = runtime();
    let div0 = json(serde_json::json!({"op": "div", "a": 1, "b": 0}));
    let add = json(serde_json::json!({"op": "add", "a": 2, "b": 40}));

    let v1 = install(&rt, &guests::UNIT_CALCULATOR_V1);
    assert_eq!(block_on(rt.call_unit("calculator", &ctx(), &add)).unwrap().output, br#"{"result":42}"#);
    let err = block_on(v1.invoke(&ctx(), &div0)).unwrap_err();
    assert!(matches!(err.class, ErrorClass::Trap(_)), "{err}");
    assert!(err.to_string().contains("divide by zero"), "the panic message reaches the operator: {err}");
    // The trap cost one call, not the plugin.
    assert!(block_on(v1.invoke(&ctx(), &add)).is_ok());

    for g in [&guests::UNIT_CALCULATOR_V2, &guests::UNIT_CALCULATOR_V3] {
        let p = install(&rt, g);
        let err = block_on(p.invoke(&ctx(), &div0)).unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidInput, "{err}");
        assert!(err.message.contains("division by zero"));
        // MessagePack in, MessagePack out.
        let req = rmp_serde::to_vec_named(&serde_json::json!({"op": "mul", "a": 6, "b": 7})).unwrap();
        let out: serde_json::Value = rmp_serde::from_slice(&block_on(p.invoke(&ctx(), &req)).unwrap()).unwrap();
        assert_eq!(out["result"], 42);
    }
}
