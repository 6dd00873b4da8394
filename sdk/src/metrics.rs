//! Pushed metric points as detectors read them: grouped into series (one
//! name and one set of tags, as Prometheus names a series), aggregated over
//! a sliding window, and a condition checked to have held without a break
//! for a span (the `for` of a Prometheus alerting rule).
//!
//! Detectors are pure functions of their input, so "has held for 5 min" is
//! decided from the points alone: a windowed aggregate only changes when a
//! point enters the window (at its timestamp) or leaves it (its timestamp
//! plus the window), so checking the condition at exactly those instants
//! decides whether it held at every moment in between.

use crate::MetricPoint;

/// The value of tag `key` of `p`.
pub fn tag<'a>(p: &'a MetricPoint, key: &str) -> Option<&'a str> {
    p.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// One series: the points of one metric name with one set of tags, oldest
/// first.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub name: &'a str,
    /// Tags sorted by key.
    pub tags: Vec<(String, String)>,
    pub points: Vec<&'a MetricPoint>,
}

impl Series<'_> {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The tags as `{k="v", …}`, for summaries.
    pub fn labels(&self) -> String {
        let inner: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{{{}}}", inner.join(", "))
    }
}

/// A series' tags, sorted by key.
type Tags = Vec<(String, String)>;

/// The points `keep` accepts, grouped into series, each oldest first;
/// series in order of name, then tags.
pub fn series<'a>(points: &'a [MetricPoint], keep: impl Fn(&MetricPoint) -> bool) -> Vec<Series<'a>> {
    let mut by: std::collections::BTreeMap<(&str, Tags), Vec<&MetricPoint>> = Default::default();
    for p in points.iter().filter(|p| keep(p) && p.value.is_finite()) {
        let mut tags = p.tags.clone();
        tags.sort();
        by.entry((p.name.as_str(), tags)).or_default().push(p);
    }
    by.into_iter()
        .map(|((name, tags), mut points)| {
            points.sort_by_key(|p| p.timestamp_ms);
            Series { name, tags, points }
        })
        .collect()
}

/// How a window of points becomes one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    /// The newest value.
    Last,
    /// The 95th percentile (linear interpolation).
    P95,
    /// Growth of a counter over the window, counting a drop as a reset to
    /// zero (Prometheus `increase`, without extrapolation).
    Increase,
    /// [`Aggregation::Increase`] per second of the window (Prometheus `rate`).
    Rate,
    /// Newest minus oldest value of a gauge (Prometheus `delta`, without
    /// extrapolation).
    Delta,
    /// Least-squares slope per second (Prometheus `deriv`).
    Slope,
}

impl Aggregation {
    /// Every name, as configuration spells it.
    pub const NAMES: &[&str] =
        &["avg", "min", "max", "sum", "count", "last", "p95", "increase", "rate", "delta", "slope"];

    pub fn parse(s: &str) -> Option<Aggregation> {
        use Aggregation::*;
        Some(match s {
            "avg" => Avg,
            "min" => Min,
            "max" => Max,
            "sum" => Sum,
            "count" => Count,
            "last" => Last,
            "p95" => P95,
            "increase" => Increase,
            "rate" => Rate,
            "delta" => Delta,
            "slope" => Slope,
            _ => return None,
        })
    }

    /// The aggregate of `points` (oldest first) over a window `window_ms`
    /// long; `None` when there are too few points to say (none, or one for
    /// the trends).
    pub fn of(self, points: &[&MetricPoint], window_ms: i64) -> Option<f64> {
        let values = || points.iter().map(|p| p.value);
        let n = points.len();
        if n == 0
            || (n < 2
                && matches!(self, Aggregation::Increase | Aggregation::Rate | Aggregation::Delta | Aggregation::Slope))
        {
            return None;
        }
        Some(match self {
            Aggregation::Avg => values().sum::<f64>() / n as f64,
            Aggregation::Min => values().fold(f64::INFINITY, f64::min),
            Aggregation::Max => values().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Sum => values().sum(),
            Aggregation::Count => n as f64,
            Aggregation::Last => points[n - 1].value,
            Aggregation::P95 => crate::stats::percentile(&values().collect::<Vec<_>>(), 0.95)?,
            Aggregation::Increase => increase(points),
            Aggregation::Rate => increase(points) / (window_ms as f64 / 1000.0).max(1e-9),
            Aggregation::Delta => points[n - 1].value - points[0].value,
            Aggregation::Slope => slope(points)?,
        })
    }
}

fn increase(points: &[&MetricPoint]) -> f64 {
    points.windows(2).map(|w| if w[1].value >= w[0].value { w[1].value - w[0].value } else { w[1].value }).sum()
}

/// Least-squares slope of value against time, per second.
fn slope(points: &[&MetricPoint]) -> Option<f64> {
    let t0 = points[0].timestamp_ms;
    let n = points.len() as f64;
    let xs = || points.iter().map(|p| (p.timestamp_ms - t0) as f64 / 1000.0);
    let mx = xs().sum::<f64>() / n;
    let my = points.iter().map(|p| p.value).sum::<f64>() / n;
    let sxx: f64 = xs().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = xs().zip(points).map(|(x, p)| (x - mx) * (p.value - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The points of `points` (oldest first) in the window `(at - window_ms, at]`.
pub fn window<'a, 'p>(points: &'a [&'p MetricPoint], at: i64, window_ms: i64) -> &'a [&'p MetricPoint] {
    let lo = points.partition_point(|p| p.timestamp_ms <= at - window_ms);
    let hi = points.partition_point(|p| p.timestamp_ms <= at);
    &points[lo..hi.max(lo)]
}

/// How long, up to `now_ms`, `holds` has held without a break for the
/// aggregate over a sliding window of `window_ms` of `points` (oldest
/// first), looking back at most `for_ms`: `Some(since)` when it held at
/// every instant of `[since, now_ms]`, `since` no earlier than
/// `now_ms - for_ms`; `None` when it does not hold now.
///
/// The windowed aggregate is constant between the instants a point enters
/// or leaves the window, so the condition is checked at those instants
/// (and at `now_ms` and `now_ms - for_ms`) and nowhere else. A window with
/// no points (or too few for the aggregation) does not hold: a series that
/// stopped reporting stops a rule, as an absent series does in Prometheus.
pub fn held_since(
    points: &[&MetricPoint],
    now_ms: i64,
    window_ms: i64,
    for_ms: i64,
    agg: Aggregation,
    holds: impl Fn(f64) -> bool,
) -> Option<i64> {
    let from = now_ms - for_ms.max(0);
    let mut instants: Vec<i64> = points
        .iter()
        .flat_map(|p| [p.timestamp_ms, p.timestamp_ms + window_ms])
        .filter(|t| *t > from && *t <= now_ms)
        .chain([from, now_ms])
        .collect();
    instants.sort_unstable();
    instants.dedup();
    let mut since = None;
    for &at in instants.iter().rev() {
        match agg.of(window(points, at, window_ms), window_ms) {
            Some(v) if holds(v) => since = Some(at),
            _ => break,
        }
    }
    since
}

/// A comparison of a value against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Comparison {
    /// Every operator, as configuration spells it.
    pub const NAMES: &[&str] = &[">", ">=", "<", "<=", "==", "!="];

    pub fn parse(s: &str) -> Option<Comparison> {
        Some(match s {
            ">" => Comparison::Gt,
            ">=" => Comparison::Ge,
            "<" => Comparison::Lt,
            "<=" => Comparison::Le,
            "==" => Comparison::Eq,
            "!=" => Comparison::Ne,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
            Comparison::Eq => value == threshold,
            Comparison::Ne => value != threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t: i64, v: f64) -> MetricPoint {
        MetricPoint { name: "q".into(), value: v, timestamp_ms: t, tags: vec![] }
    }

    #[test]
    fn aggregations_over_a_window() {
        let ps: Vec<MetricPoint> = [(0, 1.0), (1000, 3.0), (2000, 2.0), (3000, 6.0)].map(|(t, v)| pt(t, v)).into();
        let refs: Vec<&MetricPoint> = ps.iter().collect();
        let w = window(&refs, 3000, 2500);
        assert_eq!(w.len(), 3, "(500, 3000]");
        assert_eq!(Aggregation::Avg.of(w, 2500), Some(11.0 / 3.0));
        assert_eq!(Aggregation::Max.of(w, 2500), Some(6.0));
        assert_eq!(Aggregation::Delta.of(w, 2500), Some(3.0));
        // 3 → 2 is a counter reset: it counts 2, not -1.
        assert_eq!(Aggregation::Increase.of(w, 2500), Some(6.0));
        assert_eq!(Aggregation::Rate.of(w, 2000), Some(3.0));
        assert_eq!(Aggregation::Slope.of(&refs, 0), Some(1.4));
        assert_eq!(Aggregation::Slope.of(&refs[..1], 0), None);
    }

    /// The condition must hold at every instant of the span: a window
    /// that drains between two points breaks it.
    #[test]
    fn held_since_needs_every_instant_of_the_span() {
        let high: Vec<MetricPoint> = (0..=10).map(|i| pt(i * 500, 10.0)).collect();
        let refs: Vec<&MetricPoint> = high.iter().collect();
        let above = |v: f64| v > 5.0;
        // Held from t=0 (first point) to 5000: 5 s.
        assert_eq!(held_since(&refs, 5000, 1000, 60_000, Aggregation::Avg, above), Some(0));
        assert_eq!(held_since(&refs, 5000, 1000, 3000, Aggregation::Avg, above), Some(2000));
        // 1 s after the last point the 1 s window is empty: no longer held.
        assert_eq!(held_since(&refs, 6000, 1000, 3000, Aggregation::Avg, above), None);
        // A gap longer than the window breaks the run.
        let mut gap = high.clone();
        gap.retain(|p| !(1000..=2500).contains(&p.timestamp_ms));
        let refs: Vec<&MetricPoint> = gap.iter().collect();
        assert_eq!(held_since(&refs, 5000, 1000, 60_000, Aggregation::Avg, above), Some(3000));
        // One low point inside the window's average does not break it; a
        // max over the same window below the threshold would.
        let mut dip = high.clone();
        dip[6].value = 4.0;
        let refs: Vec<&MetricPoint> = dip.iter().collect();
        assert_eq!(held_since(&refs, 5000, 1000, 60_000, Aggregation::Avg, above), Some(0));
        assert_eq!(held_since(&refs, 5000, 1000, 60_000, Aggregation::Min, above), Some(4000));
    }
}
