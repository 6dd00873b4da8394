//! Latency that varies with the hour of day (or the day of week): a target
//! slow every evening is a capacity or a neighbour problem, not noise.
//!
//! Detectors see only what the host gives them, so the host publishes
//! rollups of each target's recorded history (`telemetry.history_days`)
//! among the metric points, under the reserved `kaizen.` prefix, one point
//! per target, hour of day (0–23, UTC) and day of week (0 = Monday):
//! `kaizen.hourly.calls` (calls), `kaizen.hourly.log_latency_mean` and
//! `kaizen.hourly.log_latency_var` (mean and sample variance of ln(latency
//! in ms)), and `kaizen.hourly.hours` (calendar hours of history behind
//! that cell, for calls per hour).
//!
//! The test is Welch's one-way ANOVA (B. L. Welch, "On the comparison of
//! several mean values: an alternative approach", Biometrika 38, 1951) on
//! log latency grouped by hour of day, then by day of week: it needs only
//! each group's size, mean and variance, and does not assume the groups
//! share a variance (busy hours are rarely as steady as quiet ones). Log
//! latency because latency is skewed and its ratios, not differences, are
//! what an operator compares: the group means are log geometric means.
//! A finding needs both significance (`p < alpha`) and a size that matters
//! (slowest over fastest geometric mean at least `min_ratio`), so a large
//! history does not turn a 2 % difference into news.
//!
//! Configuration (`[runtime.plugin_config.time-of-day]`): `alpha` (0.01),
//! `min_ratio` (1.5), `min_calls` per group (20). An hour of day is tested
//! only once it is in the history on two days or more: one day's hour
//! stands for whatever happened in it (a deploy, an incident, a version
//! that crashed until it was replaced), not for the time of day. A day of
//! the week is tested only once a whole day (24 calendar hours) of it is
//! in the history: part of a day stands for the hours it covered, not the
//! day.

use std::collections::BTreeMap;

use kaizen_sdk::metrics::tag;
use kaizen_sdk::{Category, Config, DetectionInput, Detector, Evidence, Finding, PluginInfo, PluginKind, Severity};
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

pub struct TimeOfDay;

/// Size, mean and sample variance of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Group {
    pub n: f64,
    pub mean: f64,
    pub var: f64,
}

impl Group {
    /// The group of two groups' observations together (Chan et al.'s
    /// parallel combination of moments).
    pub fn merge(self, o: Group) -> Group {
        let n = self.n + o.n;
        if self.n == 0.0 {
            return o;
        }
        if o.n == 0.0 {
            return self;
        }
        let mean = (self.n * self.mean + o.n * o.mean) / n;
        let ss = (self.n - 1.0) * self.var
            + (o.n - 1.0) * o.var
            + self.n * (self.mean - mean).powi(2)
            + o.n * (o.mean - mean).powi(2);
        Group { n, mean, var: if n > 1.0 { ss / (n - 1.0) } else { 0.0 } }
    }
}

/// The outcome of Welch's test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anova {
    pub f: f64,
    pub df_between: f64,
    pub df_within: f64,
    pub p_value: f64,
}

/// Welch's one-way ANOVA over `groups` (each with n ≥ 2); `None` with
/// fewer than two groups. A group without spread gets a tiny variance
/// floor rather than an infinite weight.
pub fn welch_anova(groups: &[Group]) -> Option<Anova> {
    let groups: Vec<&Group> = groups.iter().filter(|g| g.n >= 2.0).collect();
    let k = groups.len() as f64;
    if k < 2.0 {
        return None;
    }
    let w: Vec<f64> = groups.iter().map(|g| g.n / g.var.max(1e-12)).collect();
    let sw: f64 = w.iter().sum();
    let grand = groups.iter().zip(&w).map(|(g, w)| w * g.mean).sum::<f64>() / sw;
    let a = groups.iter().zip(&w).map(|(g, w)| w * (g.mean - grand).powi(2)).sum::<f64>() / (k - 1.0);
    let tmp: f64 = groups.iter().zip(&w).map(|(g, w)| (1.0 - w / sw).powi(2) / (g.n - 1.0)).sum();
    let b = 1.0 + 2.0 * (k - 2.0) / (k * k - 1.0) * tmp;
    let f = a / b;
    let (df_between, df_within) = (k - 1.0, (k * k - 1.0) / (3.0 * tmp));
    let p_value = FisherSnedecor::new(df_between, df_within).ok()?.sf(f);
    Some(Anova { f, df_between, df_within, p_value })
}

/// One cell of a target's history: a (hour, weekday) group and the
/// calendar hours behind it.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    group: Group,
    hours: f64,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A way of grouping a target's cells: hour of day or day of week.
struct Grouping {
    kind: &'static str,
    test: &'static str,
    label: fn(usize) -> String,
    /// Calendar hours of history a group needs to be tested: an hour of
    /// day seen on one day only would stand for what happened in it, a
    /// weekday seen for only part of a day for the hours it happened to
    /// cover (a slow evening), not for the day.
    min_hours: f64,
}

const BY_HOUR: Grouping = Grouping {
    kind: "time-of-day-latency",
    test: "Welch's one-way ANOVA on ln(latency) by hour of day (UTC)",
    label: |h| format!("{h:02}:00"),
    min_hours: 2.0,
};
const BY_DAY: Grouping = Grouping {
    kind: "day-of-week-latency",
    test: "Welch's one-way ANOVA on ln(latency) by day of week (UTC)",
    label: |d| DAYS[d % 7].to_string(),
    min_hours: 24.0,
};

struct Settings {
    alpha: f64,
    min_ratio: f64,
    min_calls: f64,
}

fn list(items: &[usize], label: fn(usize) -> String) -> String {
    items.iter().map(|i| label(*i)).collect::<Vec<_>>().join(", ")
}

/// The finding of one grouping of one target's history, if it has one.
fn judge(target: &str, g: &Grouping, cells: &[Cell], s: &Settings) -> Option<Finding> {
    let tested: Vec<(usize, Group)> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| c.group.n >= s.min_calls && c.hours >= g.min_hours)
        .map(|(i, c)| (i, c.group))
        .collect();
    let groups: Vec<Group> = tested.iter().map(|(_, g)| *g).collect();
    let anova = welch_anova(&groups)?;
    let by_latency = |a: &&(usize, Group), b: &&(usize, Group)| a.1.mean.total_cmp(&b.1.mean);
    let slow = tested.iter().max_by(by_latency)?;
    let fast = tested.iter().min_by(by_latency)?;
    let ratio = (slow.1.mean - fast.1.mean).exp();
    if anova.p_value >= s.alpha || ratio < s.min_ratio {
        return None;
    }
    let mut by_lat: Vec<&(usize, Group)> = tested.iter().collect();
    by_lat.sort_by(|a, b| by_latency(b, a));
    let peak_latency: Vec<usize> = by_lat.iter().take(3).map(|(i, _)| *i).collect();
    let quiet_latency: Vec<usize> = by_lat.iter().rev().take(3).map(|(i, _)| *i).collect();
    let mut traffic: Vec<(usize, f64)> =
        cells.iter().enumerate().filter(|(_, c)| c.hours > 0.0).map(|(i, c)| (i, c.group.n / c.hours)).collect();
    traffic.sort_by(|a, b| b.1.total_cmp(&a.1));
    let peak_traffic: Vec<usize> = traffic.iter().take(3).map(|(i, _)| *i).collect();
    let quiet_traffic: Vec<usize> = traffic.iter().rev().take(3).map(|(i, _)| *i).collect();
    let ms = |grp: &Group| grp.mean.exp();
    let calls: f64 = cells.iter().map(|c| c.group.n).sum();
    let mut f = Finding::new(
        target,
        g.kind,
        format!(
            "{target} is {ratio:.1}x slower at {} ({:.1} ms geometric mean) than at {} ({:.1} ms); {} p = {:.2e}",
            (g.label)(slow.0),
            ms(&slow.1),
            (g.label)(fast.0),
            ms(&fast.1),
            g.test,
            anova.p_value
        ),
    );
    f.category = Category::Performance;
    f.severity = if ratio >= 3.0 { Severity::Medium } else { Severity::Low };
    f.confidence = (1.0 - anova.p_value).clamp(0.0, 1.0);
    f.expected_gain_pct = (1.0 - 1.0 / ratio) * 100.0;
    f.evidence = vec![
        Evidence::new("test", g.test),
        Evidence::new("f_statistic", format!("{:.4}", anova.f)),
        Evidence::new("df_between", anova.df_between),
        Evidence::new("df_within", format!("{:.3}", anova.df_within)),
        Evidence::new("p_value", format!("{:.3e}", anova.p_value)),
        Evidence::new("groups_tested", tested.len()),
        Evidence::new("calls", calls),
        Evidence::new("slowest", (g.label)(slow.0)),
        Evidence::new("slowest_geomean_ms", format!("{:.3}", ms(&slow.1))),
        Evidence::new("fastest", (g.label)(fast.0)),
        Evidence::new("fastest_geomean_ms", format!("{:.3}", ms(&fast.1))),
        Evidence::new("ratio", format!("{ratio:.3}")),
        Evidence::new("peak_latency", list(&peak_latency, g.label)),
        Evidence::new("quiet_latency", list(&quiet_latency, g.label)),
        Evidence::new("peak_traffic", list(&peak_traffic, g.label)),
        Evidence::new("quiet_traffic", list(&quiet_traffic, g.label)),
    ];
    Some(f)
}

impl Detector for TimeOfDay {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "time-of-day",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "latency varying by hour of day or day of week (Welch's ANOVA on the host's hourly rollups)",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        let s = Settings {
            alpha: config.f64("alpha", 0.01),
            min_ratio: config.f64("min_ratio", 1.5),
            min_calls: config.f64("min_calls", 20.0),
        };
        // target → (hour, weekday) → cell.
        let mut history: BTreeMap<&str, BTreeMap<(usize, usize), Cell>> = BTreeMap::new();
        for p in &input.metrics {
            let Some(field) = p.name.strip_prefix("kaizen.hourly.") else { continue };
            let (Some(target), Some(hour), Some(day)) = (tag(p, "target"), tag(p, "hour"), tag(p, "weekday")) else {
                continue;
            };
            let (Ok(hour), Ok(day)) = (hour.parse::<usize>(), day.parse::<usize>()) else { continue };
            if hour > 23 || day > 6 {
                continue;
            }
            let cell = history.entry(target).or_default().entry((hour, day)).or_default();
            match field {
                "calls" => cell.group.n = p.value,
                "log_latency_mean" => cell.group.mean = p.value,
                "log_latency_var" => cell.group.var = p.value,
                "hours" => cell.hours = p.value,
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (target, cells) in history {
            let mut hours = [Cell::default(); 24];
            let mut days = [Cell::default(); 7];
            for ((h, d), c) in cells {
                for into in [&mut hours[h], &mut days[d]] {
                    into.group = into.group.merge(c.group);
                    into.hours += c.hours;
                }
            }
            out.extend(judge(target, &BY_HOUR, &hours, &s));
            out.extend(judge(target, &BY_DAY, &days, &s));
        }
        out
    }
}

kaizen_sdk::export_detector!(TimeOfDay);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::MetricPoint;
    use kaizen_sdk::testing::detect;

    fn group(xs: &[f64]) -> Group {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        Group { n, mean, var: xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) }
    }

    /// R's `oneway.test(extra ~ group, data = sleep)`: F = 3.4626, num df
    /// = 1, denom df = 17.776, p-value = 0.07939 (with two groups, Welch's
    /// ANOVA is Welch's t-test squared: t = -1.8608 in `t.test`'s example).
    #[test]
    fn welch_anova_matches_r_on_the_sleep_data() {
        let a = group(&[0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]);
        let b = group(&[1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]);
        let r = welch_anova(&[a, b]).unwrap();
        assert!((r.f - 3.4626).abs() < 1e-4, "{r:?}");
        assert_eq!(r.df_between, 1.0);
        assert!((r.df_within - 17.776).abs() < 1e-3, "{r:?}");
        assert!((r.p_value - 0.07939).abs() < 1e-5, "{r:?}");
    }

    /// R's `oneway.test(count ~ spray, data = InsectSprays)`: F = 36.065,
    /// num df = 5, denom df = 30.043, p-value = 7.999e-12.
    #[test]
    fn welch_anova_matches_r_on_the_insect_sprays() {
        let sprays: [&[f64]; 6] = [
            &[10., 7., 20., 14., 14., 12., 10., 23., 17., 20., 14., 13.],
            &[11., 17., 21., 11., 16., 14., 17., 17., 19., 21., 7., 13.],
            &[0., 1., 7., 2., 3., 1., 2., 1., 3., 0., 1., 4.],
            &[3., 5., 12., 6., 4., 3., 5., 5., 5., 5., 2., 4.],
            &[3., 5., 3., 5., 3., 6., 1., 1., 3., 2., 6., 4.],
            &[11., 9., 15., 22., 15., 16., 13., 10., 26., 26., 24., 13.],
        ];
        let groups: Vec<Group> = sprays.iter().map(|s| group(s)).collect();
        let r = welch_anova(&groups).unwrap();
        assert!((r.f - 36.065).abs() < 1e-3, "{r:?}");
        assert!((r.df_within - 30.043).abs() < 1e-3, "{r:?}");
        assert!((r.p_value / 7.999e-12 - 1.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn merged_groups_equal_the_group_of_all_observations() {
        let (xs, ys) = ([1.0, 2.0, 4.0], [3.0, 9.0, 5.0, 7.0]);
        let all: Vec<f64> = xs.iter().chain(&ys).copied().collect();
        let m = group(&xs).merge(group(&ys));
        let want = group(&all);
        assert!((m.mean - want.mean).abs() < 1e-12 && (m.var - want.var).abs() < 1e-12, "{m:?} {want:?}");
    }

    /// Rollup points for `target`: every hour of two weekdays, 40 calls
    /// each, log-latency spread 0.3, the geometric mean `ms(hour)`.
    fn history(target: &str, ms: impl Fn(usize) -> f64) -> Vec<MetricPoint> {
        let mut out = Vec::new();
        for day in [0usize, 1] {
            for hour in 0..24 {
                let tags = vec![
                    ("target".to_string(), target.to_string()),
                    ("hour".to_string(), hour.to_string()),
                    ("weekday".to_string(), day.to_string()),
                ];
                let calls = if hour < 6 { 10.0 } else { 40.0 };
                for (name, value) in
                    [("calls", calls), ("log_latency_mean", ms(hour).ln()), ("log_latency_var", 0.09), ("hours", 1.0)]
                {
                    out.push(MetricPoint {
                        name: format!("kaizen.hourly.{name}"),
                        value,
                        timestamp_ms: 0,
                        tags: tags.clone(),
                    });
                }
            }
        }
        out
    }

    fn run(points: Vec<MetricPoint>) -> Vec<Finding> {
        detect::<TimeOfDay>(&DetectionInput { now_ms: 0, targets: vec![], metrics: points }, &[])
    }

    #[test]
    fn a_slow_hour_is_found_with_its_test_and_hours_named() {
        let found = run(history("checkout", |h| if h == 15 { 30.0 } else { 10.0 }));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!((f.target.as_str(), f.kind.as_str()), ("checkout", "time-of-day-latency"));
        let ev = |k: &str| f.evidence.iter().find(|e| e.key == k).map(|e| e.value.clone()).unwrap_or_default();
        assert!(ev("test").starts_with("Welch's one-way ANOVA"), "{:?}", f.evidence);
        assert_eq!(ev("slowest"), "15:00");
        assert_eq!(ev("ratio"), "3.000");
        assert!(ev("quiet_traffic").split(", ").all(|h| h < "06:00"), "{}", ev("quiet_traffic"));
        // The same latency every hour: nothing, however much history.
        assert!(run(history("checkout", |_| 10.0)).is_empty());
        // Significant but small (1.2x): not worth a finding.
        assert!(run(history("checkout", |h| if h == 15 { 12.0 } else { 10.0 })).is_empty());
    }

    /// One day of history is not a pattern of the day: its slow hour may
    /// have been a crashing version replaced the next hour.
    #[test]
    fn an_hour_seen_on_one_day_is_no_time_of_day_pattern() {
        let one_day: Vec<MetricPoint> = history("checkout", |h| if h == 15 { 30.0 } else { 10.0 })
            .into_iter()
            .filter(|p| p.tags.iter().any(|(k, v)| k == "weekday" && v == "0"))
            .collect();
        assert!(run(one_day).is_empty());
    }

    /// A weekday seen only for its slow hour is not a slow day.
    #[test]
    fn part_of_a_day_does_not_stand_for_the_day() {
        let mut points = history("checkout", |_| 10.0);
        let tags = vec![
            ("target".to_string(), "checkout".to_string()),
            ("hour".to_string(), "15".to_string()),
            ("weekday".to_string(), "2".to_string()),
        ];
        for (name, value) in
            [("calls", 40.0), ("log_latency_mean", 30f64.ln()), ("log_latency_var", 0.09), ("hours", 1.0)]
        {
            points.push(MetricPoint {
                name: format!("kaizen.hourly.{name}"),
                value,
                timestamp_ms: 0,
                tags: tags.clone(),
            });
        }
        let kinds: Vec<String> = run(points).into_iter().map(|f| f.kind).collect();
        assert!(!kinds.contains(&"day-of-week-latency".to_string()), "{kinds:?}");
    }
}
