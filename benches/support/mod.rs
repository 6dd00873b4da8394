#![allow(dead_code)] // each bench uses a subset of these helpers

//! Ratio reporting for criterion benches: every figure Kaizen claims is a
//! ratio against a baseline measured in the same run, read back from
//! criterion's own estimates.

use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;

/// Where criterion writes its estimates for these benches.
pub fn output_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("criterion")
}

/// Criterion tuned for a 2-core machine: short but stable runs.
pub fn criterion() -> Criterion {
    Criterion::default()
        .output_directory(&output_dir())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// Mean time of `group/function` in nanoseconds, from criterion's estimates.
pub fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = output_dir().join(group).join(function).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Human time.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Print `label: a / b = ratio` with an optional goal.
pub fn ratio(label: &str, (ga, fa): (&str, &str), (gb, fb): (&str, &str), goal: Option<&str>) {
    match (mean_ns(ga, fa), mean_ns(gb, fb)) {
        (Some(a), Some(b)) => println!(
            "{label:<52} {:>10} / {:>10} = {:>6.2}x{}",
            fmt_ns(a),
            fmt_ns(b),
            a / b,
            goal.map(|g| format!("   (goal {g})")).unwrap_or_default()
        ),
        _ => println!("{label:<52} (not measured in this run)"),
    }
}

/// Print one absolute figure.
pub fn figure(label: &str, (g, f): (&str, &str), goal: Option<&str>) {
    match mean_ns(g, f) {
        Some(a) => {
            println!("{label:<52} {:>10}{}", fmt_ns(a), goal.map(|g| format!("   (goal {g})")).unwrap_or_default())
        }
        None => println!("{label:<52} (not measured in this run)"),
    }
}
