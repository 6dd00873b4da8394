//! Native test harness: build inputs the way the host would and call a
//! plugin's trait implementation directly, with plain `cargo test`.

use crate::*;

/// A window with `executions` calls of which `failures` failed, latencies
/// given as p50/p95/p99 and a one-minute duration. Adjust fields as needed.
pub fn window(executions: u64, failures: u64) -> WindowStats {
    let success_rate = if executions == 0 { 1.0 } else { (executions - failures) as f64 / executions as f64 };
    WindowStats {
        duration_secs: 60.0,
        executions,
        failures,
        success_rate,
        latency: LatencyStats { p50_ms: 1.0, p95_ms: 2.0, p99_ms: 3.0, mean_ms: 1.2, stddev_ms: 0.5 },
        throughput: executions as f64 / 60.0,
        errors: if failures > 0 {
            vec![ErrorCount { error_class: "internal".into(), count: failures }]
        } else {
            vec![]
        },
    }
}

/// Set the latency of a window.
pub fn with_latency(mut w: WindowStats, p50: f64, p95: f64, p99: f64, stddev: f64) -> WindowStats {
    w.latency = LatencyStats { p50_ms: p50, p95_ms: p95, p99_ms: p99, mean_ms: p50, stddev_ms: stddev };
    w
}

/// Replace the per-class failure counts of a window.
pub fn with_errors(mut w: WindowStats, errors: &[(&str, u64)]) -> WindowStats {
    w.errors = errors.iter().map(|(c, n)| ErrorCount { error_class: c.to_string(), count: *n }).collect();
    w
}

/// Statistics of `target` at version 1.0.0.
pub fn target(target: &str, current: WindowStats, baseline: Option<WindowStats>) -> TargetStats {
    TargetStats { target: target.into(), version: "1.0.0".into(), current, baseline }
}

/// A detection input over `targets` with no metrics.
pub fn input(targets: Vec<TargetStats>) -> DetectionInput {
    DetectionInput { now_ms: 0, targets, metrics: vec![] }
}

/// A failure of `target` with `class` at `attempt`.
pub fn failure(target: &str, class: ErrorClass, attempt: u32) -> Failure {
    Failure {
        target: target.into(),
        version: "1.0.0".into(),
        error_class: class,
        message: "test failure".into(),
        attempt,
        elapsed_ms: 0,
        remaining_ms: 30_000,
        recent: vec![],
    }
}

/// A first-attempt call context with a 1 s deadline.
pub fn context() -> CallContext {
    CallContext { attempt: 1, scope_pct: None, deadline_ms: 1_000 }
}

/// Run detector `D` on `input` with configuration `pairs`.
pub fn detect<D: Detector>(input: &DetectionInput, pairs: &[(&str, &str)]) -> Vec<Finding> {
    D::detect(input, &Config::from_pairs(pairs.iter().copied()))
}

/// Ask recovery strategy `R` about `failure` with configuration `pairs`.
pub fn decide<R: Recovery>(failure: &Failure, pairs: &[(&str, &str)]) -> RecoveryAction {
    R::decide(failure, &Config::from_pairs(pairs.iter().copied()))
}

/// Call unit `U` with a JSON request, decoding its JSON response.
pub fn invoke_json<U: Unit>(request: &serde_json::Value) -> Result<serde_json::Value, UnitError> {
    invoke_json_with::<U>(request, &Config::default())
}

/// Call unit `U` with a JSON request under `config` (its knobs), decoding
/// its JSON response.
pub fn invoke_json_with<U: Unit>(request: &serde_json::Value, config: &Config) -> Result<serde_json::Value, UnitError> {
    let bytes = serde_json::to_vec(request).expect("JSON request");
    U::invoke(&context(), &bytes, config).map(|out| serde_json::from_slice(&out).expect("unit answered JSON"))
}
