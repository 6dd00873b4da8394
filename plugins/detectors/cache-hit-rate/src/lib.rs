//! A cache whose hit rate is below a floor while it serves enough requests
//! to matter, from pushed metrics.
//!
//! It reads two counts a service pushes for each cache, each point the
//! number of hits (or misses) since that cache's previous point:
//! `cache.hits` and `cache.misses`, with the same tags — `cache` (which
//! cache) and, optionally, `target` (the unit or service the finding is
//! about). Over the last `window_secs` the hit rate is
//! `hits / (hits + misses)` and the load `(hits + misses)` per hour.
//!
//! Configuration (`[runtime.plugin_config.cache-hit-rate]`):
//! - `min_hit_rate` (0.5): the floor, a fraction.
//! - `min_requests_per_hour` (100): quieter caches are left alone.
//! - `window_secs` (3600).
//! - `target`: the target of caches pushed without a `target` tag
//!   (default: the cache's name).

use std::collections::BTreeMap;

use kaizen_sdk::metrics::{self, Aggregation};
use kaizen_sdk::{Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Severity};

pub struct CacheHitRate;

pub const HITS: &str = "cache.hits";
pub const MISSES: &str = "cache.misses";

impl Detector for CacheHitRate {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "cache-hit-rate",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "a cache's hit rate below a floor while it serves enough requests (cache.hits, cache.misses)",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let floor = config.f64("min_hit_rate", 0.5);
        let min_per_hour = config.f64("min_requests_per_hour", 100.0);
        let window_ms = (config.f64("window_secs", 3600.0) * 1000.0).max(1.0) as i64;
        let fallback = config.get("target");
        // Hits and misses of one cache share its tags.
        let mut caches: BTreeMap<Vec<(String, String)>, (f64, f64, String)> = BTreeMap::new();
        for s in metrics::series(&input.metrics, |p| p.name == HITS || p.name == MISSES) {
            let sum =
                Aggregation::Sum.of(metrics::window(&s.points, input.now_ms, window_ms), window_ms).unwrap_or(0.0);
            let e = caches.entry(s.tags.clone()).or_insert((0.0, 0.0, s.labels()));
            if s.name == HITS {
                e.0 += sum;
            } else {
                e.1 += sum;
            }
        }
        let mut out: Vec<Finding> = Vec::new();
        for (tags, (hits, misses, labels)) in caches {
            let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
            let total = hits + misses;
            let per_hour = total * 3_600_000.0 / window_ms as f64;
            if total <= 0.0 || per_hour < min_per_hour {
                continue;
            }
            let rate = hits / total;
            if rate >= floor {
                continue;
            }
            let cache = tag("cache").unwrap_or_else(|| "cache".into());
            let target = tag("target").or_else(|| fallback.clone()).unwrap_or_else(|| cache.clone());
            // One finding per target (a finding is known by its target and
            // kind): every cache under the floor named in its evidence.
            if let Some(same) = out.iter_mut().find(|f: &&mut Finding| f.target == target) {
                same.evidence.push(Evidence::new("cache", format!("{cache} {labels} hit rate {rate:.4}")));
                continue;
            }
            let mut f = Finding::new(
                &target,
                "low-cache-hit-rate",
                format!(
                    "cache {cache} hits {:.1} % of {total:.0} requests in the last {:.0} s ({per_hour:.0}/h), under the {:.0} % floor",
                    rate * 100.0,
                    window_ms as f64 / 1000.0,
                    floor * 100.0
                ),
            );
            f.category = Category::Performance;
            f.severity = if rate < floor / 2.0 { Severity::High } else { Severity::Medium };
            f.confidence = 0.9;
            f.expected_gain_pct = (floor - rate) * 100.0;
            f.evidence = vec![
                Evidence::new("cache", &cache),
                Evidence::new("series", labels),
                Evidence::new("hit_rate", format!("{rate:.4}")),
                Evidence::new("hits", hits),
                Evidence::new("misses", misses),
                Evidence::new("requests_per_hour", format!("{per_hour:.1}")),
                Evidence::new("min_hit_rate", floor),
            ];
            out.push(f);
        }
        out
    }
}

kaizen_sdk::export_detector!(CacheHitRate);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::MetricPoint;
    use kaizen_sdk::testing::detect;

    fn count(name: &str, cache: &str, t: i64, v: f64) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            value: v,
            timestamp_ms: t,
            tags: vec![("cache".into(), cache.into()), ("target".into(), "catalog".into())],
        }
    }

    /// Ten minutes of one point a minute per count, `hits` and `misses` each.
    fn cache(name: &str, hits: f64, misses: f64) -> Vec<MetricPoint> {
        (1..=10).flat_map(|m| [count(HITS, name, m * 60_000, hits), count(MISSES, name, m * 60_000, misses)]).collect()
    }

    fn run(points: Vec<MetricPoint>) -> Vec<Finding> {
        detect::<CacheHitRate>(&DetectionInput { now_ms: 600_000, targets: vec![], metrics: points }, &[])
    }

    #[test]
    fn a_busy_cache_under_half_hits_is_found() {
        let found = run(cache("products", 30.0, 70.0));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!((f.target.as_str(), f.kind.as_str()), ("catalog", "low-cache-hit-rate"));
        assert!(f.evidence.iter().any(|e| e.key == "hit_rate" && e.value == "0.3000"), "{:?}", f.evidence);
        assert!(run(cache("products", 70.0, 30.0)).is_empty(), "70 % hits");
        // 20 requests in the hour: too quiet to matter.
        assert!(run(cache("products", 0.0, 2.0)).is_empty());
        // Two caches, judged apart.
        let mut both = cache("products", 30.0, 70.0);
        both.extend(cache("sessions", 90.0, 10.0));
        assert_eq!(run(both.clone()).len(), 1);
        // Two caches of one target under the floor: one finding naming both.
        both.extend(cache("prices", 10.0, 90.0));
        let found = run(both);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].evidence.iter().filter(|e| e.key == "cache").count(), 2, "{:?}", found[0].evidence);
    }
}
