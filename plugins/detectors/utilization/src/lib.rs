//! Resource utilization above a ceiling, held for a span: CPU, memory,
//! connection pools — any pushed metric the operator names. One reading
//! over the ceiling is a spike, not a finding: the average over a sliding
//! window of `window_secs` must stay above `threshold` for `for_secs`
//! without a break (a Prometheus alerting rule's `for`).
//!
//! Configuration (`[runtime.plugin_config.utilization]`):
//! - `metrics`: the metric names to watch, comma-separated
//!   (`"cpu.utilization, db.pool.utilization"`); none, no findings.
//! - `threshold` (0.8): the ceiling, in the metric's own unit (0.8 for a
//!   fraction, 80 for a percentage).
//! - `for_secs` (300), `window_secs` (60).
//! - `target`: the finding's target for series without a `target` tag
//!   (default: the metric's name).
//!
//! Each series (name and tags) is judged on its own.

use kaizen_sdk::metrics::{self, Aggregation};
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, MetricPoint, PluginInfo, PluginKind, Severity,
};

pub struct Utilization;

impl Detector for Utilization {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "utilization",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "resource utilization above a ceiling for a sustained span (pushed metrics named by config)",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let names: Vec<String> = config
            .get("metrics")
            .unwrap_or_default()
            .split(',')
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        let threshold = config.f64("threshold", 0.8);
        let for_ms = (config.f64("for_secs", 300.0) * 1000.0) as i64;
        let window_ms = (config.f64("window_secs", 60.0) * 1000.0).max(1.0) as i64;
        let fallback = config.get("target");
        let keep = |p: &MetricPoint| names.contains(&p.name);
        let mut out: Vec<Finding> = Vec::new();
        for s in metrics::series(&input.metrics, keep) {
            let above = |v: f64| v > threshold;
            let Some(since) = metrics::held_since(&s.points, input.now_ms, window_ms, for_ms, Aggregation::Avg, above)
            else {
                continue;
            };
            if input.now_ms - since < for_ms {
                continue;
            }
            let window = metrics::window(&s.points, input.now_ms, window_ms);
            let Some(now) = Aggregation::Avg.of(window, window_ms) else { continue };
            let peak = Aggregation::Max.of(metrics::window(&s.points, input.now_ms, for_ms.max(window_ms)), 0);
            let target =
                s.tag("target").map(str::to_string).or_else(|| fallback.clone()).unwrap_or_else(|| s.name.to_string());
            // One finding per target (a finding is known by its target and
            // kind): every series over its ceiling named in its evidence.
            if let Some(same) = out.iter_mut().find(|f: &&mut Finding| f.target == target) {
                same.evidence.push(Evidence::new("series", format!("{}{}", s.name, s.labels())));
                continue;
            }
            let mut f = Finding::new(
                &target,
                "high-utilization",
                format!(
                    "{}{} above {threshold} for {:.0} s (average over {:.0} s now {now:.3})",
                    s.name,
                    s.labels(),
                    (input.now_ms - since) as f64 / 1000.0,
                    window_ms as f64 / 1000.0
                ),
            );
            f.severity = Severity::Medium;
            f.category = Category::Performance;
            f.confidence = 0.9;
            f.evidence = vec![
                Evidence::new("metric", s.name),
                Evidence::new("series", format!("{}{}", s.name, s.labels())),
                Evidence::new("average", format!("{now:.6}")),
                Evidence::new("peak", format!("{:.6}", peak.unwrap_or(now))),
                Evidence::new("threshold", threshold),
                Evidence::new("for_secs", for_ms as f64 / 1000.0),
                Evidence::new("above_since_ms", since),
            ];
            out.push(f);
        }
        out
    }
}

kaizen_sdk::export_detector!(Utilization);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::detect;

    fn cpu(t: i64, v: f64) -> MetricPoint {
        MetricPoint {
            name: "cpu.utilization".into(),
            value: v,
            timestamp_ms: t,
            tags: vec![("target".into(), "checkout".into())],
        }
    }

    const CONFIG: &[(&str, &str)] =
        &[("metrics", "cpu.utilization, memory.utilization"), ("for_secs", "60"), ("window_secs", "10")];

    fn run(points: Vec<MetricPoint>, now: i64) -> Vec<Finding> {
        detect::<Utilization>(&DetectionInput { now_ms: now, targets: vec![], metrics: points }, CONFIG)
    }

    #[test]
    fn sustained_high_utilization_is_found_and_a_spike_is_not() {
        let busy: Vec<MetricPoint> = (0..=120).map(|s| cpu(s * 1000, 0.93)).collect();
        let found = run(busy.clone(), 120_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].target.as_str(), found[0].kind.as_str()), ("checkout", "high-utilization"));
        assert!(run(busy, 59_000).is_empty(), "above for 59 s of 60");
        // A 20 s burst at 99 % in an otherwise quiet two minutes.
        let spike: Vec<MetricPoint> =
            (0..=120).map(|s| cpu(s * 1000, if (90..110).contains(&s) { 0.99 } else { 0.3 })).collect();
        assert!(run(spike, 120_000).is_empty());
        // Metrics nobody named are not watched.
        let other: Vec<MetricPoint> =
            (0..=120).map(|s| MetricPoint { name: "disk.utilization".into(), ..cpu(s * 1000, 0.99) }).collect();
        assert!(run(other, 120_000).is_empty());
        // CPU and memory of one target over the ceiling: one finding, both named.
        let mut both: Vec<MetricPoint> = (0..=120).map(|s| cpu(s * 1000, 0.93)).collect();
        both.extend((0..=120).map(|s| MetricPoint { name: "memory.utilization".into(), ..cpu(s * 1000, 0.9) }));
        let found = run(both, 120_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].evidence.iter().filter(|e| e.key == "series").count(), 2);
    }
}
