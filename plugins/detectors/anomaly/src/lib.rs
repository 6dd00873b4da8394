//! Flags values far outside their usual spread (|z| > `z`, default 3): the
//! current mean latency of a target against its baseline's mean and
//! deviation, and the newest point of every pushed metric against that
//! metric's earlier points (at least `min_points`, default 10).

use std::collections::BTreeMap;

use kaizen_sdk::stats::{mean_stddev, z_score};
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Risk, Severity,
};

pub struct Anomaly;

fn severity(z: f64) -> Severity {
    if z.abs() > 6.0 { Severity::High } else { Severity::Medium }
}

impl Detector for Anomaly {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "anomaly",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "Latency or metric values beyond |z| > 3 of their usual spread",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let limit = config.f64("z", 3.0);
        let min_points = config.u64("min_points", 10) as usize;
        let min_exec = config.u64("min_executions", 20);
        let mut out = Vec::new();

        for t in &input.targets {
            let Some(base) = &t.baseline else { continue };
            if t.current.executions < min_exec || base.executions < min_exec {
                continue;
            }
            let z = z_score(t.current.latency.mean_ms, base.latency.mean_ms, base.latency.stddev_ms);
            if z.abs() > limit {
                out.push(Finding {
                    target: t.target.clone(),
                    kind: "latency-anomaly".into(),
                    severity: severity(z),
                    confidence: 0.75,
                    summary: format!(
                        "{} mean latency {:.2} ms is {:.1} deviations from {:.2} ms",
                        t.target, t.current.latency.mean_ms, z, base.latency.mean_ms
                    ),
                    evidence: vec![
                        Evidence::new("mean_ms", format!("{:.3}", t.current.latency.mean_ms)),
                        Evidence::new("baseline_mean_ms", format!("{:.3}", base.latency.mean_ms)),
                        Evidence::new("z", format!("{z:.2}")),
                    ],
                    expected_gain_pct: if z > 0.0 {
                        ((t.current.latency.mean_ms - base.latency.mean_ms) / t.current.latency.mean_ms * 100.0)
                            .clamp(0.0, 100.0)
                    } else {
                        0.0
                    },
                    risk: Risk::Medium,
                    category: Category::Reliability,
                });
            }
        }

        // Metric series by name, in time order; the target is the `target` tag
        // when present, else the metric name itself. The host's own rollups
        // (`kaizen.*`: one point per target and hour of day, all dated at
        // their refresh) are not a time series and are left out.
        let mut series: BTreeMap<&str, Vec<&kaizen_sdk::MetricPoint>> = BTreeMap::new();
        for p in input.metrics.iter().filter(|p| !p.name.starts_with("kaizen.")) {
            series.entry(p.name.as_str()).or_default().push(p);
        }
        for (name, mut points) in series {
            points.sort_by_key(|p| p.timestamp_ms);
            let Some((last, history)) = points.split_last() else {
                continue;
            };
            if history.len() < min_points {
                continue;
            }
            let values: Vec<f64> = history.iter().map(|p| p.value).collect();
            let (mean, sd) = mean_stddev(&values);
            let z = z_score(last.value, mean, sd);
            if z.abs() > limit {
                let target = last
                    .tags
                    .iter()
                    .find(|(k, _)| k == "target")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| name.to_string());
                out.push(Finding {
                    target,
                    kind: "metric-anomaly".into(),
                    severity: severity(z),
                    confidence: 0.7,
                    summary: format!(
                        "metric {name} = {:.3} is {:.1} deviations from its mean {:.3}",
                        last.value, z, mean
                    ),
                    evidence: vec![
                        Evidence::new("metric", name),
                        Evidence::new("value", last.value),
                        Evidence::new("mean", format!("{mean:.4}")),
                        Evidence::new("z", format!("{z:.2}")),
                    ],
                    expected_gain_pct: 0.0,
                    risk: Risk::Medium,
                    category: Category::Reliability,
                });
            }
        }
        out
    }
}

kaizen_sdk::export_detector!(Anomaly);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::MetricPoint;
    use kaizen_sdk::testing::{detect, input, target, window};

    #[test]
    fn latency_mean_far_from_baseline() {
        let mut cur = window(100, 0);
        cur.latency.mean_ms = 5.0;
        let mut base = window(100, 0);
        base.latency.mean_ms = 1.0;
        base.latency.stddev_ms = 0.5;
        let f = detect::<Anomaly>(&input(vec![target("a", cur.clone(), Some(base.clone()))]), &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "latency-anomaly");
        base.latency.stddev_ms = 2.0;
        assert!(detect::<Anomaly>(&input(vec![target("a", cur, Some(base))]), &[]).is_empty());
    }

    #[test]
    fn metric_spike() {
        let point = |t: i64, v: f64| MetricPoint {
            name: "queue_depth".into(),
            value: v,
            timestamp_ms: t,
            tags: vec![("target".into(), "calc".into())],
        };
        let mut metrics: Vec<MetricPoint> = (0..20).map(|i| point(i, 10.0 + (i % 3) as f64)).collect();
        let mut i = input(vec![]);
        i.metrics = metrics.clone();
        assert!(detect::<Anomaly>(&i, &[]).is_empty());
        metrics.push(point(100, 60.0));
        i.metrics = metrics;
        let f = detect::<Anomaly>(&i, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, "calc");
    }

    /// The host's hourly rollups are one point per hour of day, not a
    /// series in time: a slow hour among them is not a spike.
    #[test]
    fn the_hosts_rollups_are_not_a_metric_series() {
        let cell = |hour: i64, v: f64| MetricPoint {
            name: "kaizen.hourly.log_latency_mean".into(),
            value: v,
            timestamp_ms: 0,
            tags: vec![("target".into(), "calc".into()), ("hour".into(), hour.to_string())],
        };
        let mut i = input(vec![]);
        i.metrics = (0..23).map(|h| cell(h, 2.3 + (h % 3) as f64 * 0.01)).chain([cell(23, 9.0)]).collect();
        assert!(detect::<Anomaly>(&i, &[]).is_empty());
    }
}
