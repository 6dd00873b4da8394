//! Threshold and trend rules on pushed metrics, written the way Prometheus
//! alerting rules are: a metric name, tag matchers, an aggregation over a
//! sliding window, a comparison against a threshold, and a `for` span the
//! condition must hold without a break before the rule fires.
//!
//! The rules are the host's `[[metrics.rules]]`, checked when the host's
//! configuration is loaded and handed here as one JSON document under the
//! key `rules` (matchers already parsed into `{label, op, value}`). Each
//! series (one name, one set of tags) a rule matches is judged on its own,
//! as Prometheus does.

use kaizen_sdk::metrics::{self, Aggregation, Comparison};
use kaizen_sdk::serde_json::Value;
use kaizen_sdk::{
    Category, Config, DetectionInput, Detector, Evidence, Finding, MetricPoint, PluginInfo, PluginKind, Risk, Severity,
};
use regex::Regex;

pub struct MetricRule;

/// One tag matcher: `=`, `!=`, `=~` or `!~` (regular expressions match
/// the whole value, as in Prometheus).
enum Matcher {
    Eq(String, String),
    Ne(String, String),
    Re(String, Regex),
    NotRe(String, Regex),
}

impl Matcher {
    fn matches(&self, p: &MetricPoint) -> bool {
        let value = |label: &str| metrics::tag(p, label).unwrap_or("");
        match self {
            Matcher::Eq(l, v) => value(l) == v,
            Matcher::Ne(l, v) => value(l) != v,
            Matcher::Re(l, r) => r.is_match(value(l)),
            Matcher::NotRe(l, r) => !r.is_match(value(l)),
        }
    }
}

/// A rule as the host handed it.
struct Rule {
    name: String,
    metric: String,
    matchers: Vec<Matcher>,
    aggregation: (String, Aggregation),
    window_ms: i64,
    op: Comparison,
    threshold: f64,
    for_ms: i64,
    severity: Severity,
    category: Category,
    target: Option<String>,
    target_tag: String,
    summary: Option<String>,
}

fn severity(s: &str) -> Option<Severity> {
    Some(match s {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => return None,
    })
}

fn category(s: &str) -> Option<Category> {
    Some(match s {
        "security" => Category::Security,
        "reliability" => Category::Reliability,
        "performance" => Category::Performance,
        "quality" => Category::Quality,
        "coverage" => Category::Coverage,
        _ => return None,
    })
}

/// Read one rule; `Err` names the field the host should never have let
/// through (a host and a plugin of different versions).
fn rule(v: &Value) -> Result<Rule, String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).ok_or(format!("`{k}` missing or not text"));
    let number = |k: &str| v.get(k).and_then(Value::as_f64).ok_or(format!("`{k}` missing or not a number"));
    let name = text("name")?.to_string();
    let mut matchers = Vec::new();
    for m in v.get("match").and_then(Value::as_array).into_iter().flatten() {
        let field = |k: &str| m.get(k).and_then(Value::as_str).ok_or(format!("a matcher's `{k}` is missing"));
        let (label, value) = (field("label")?.to_string(), field("value")?.to_string());
        let anchored = || Regex::new(&format!("^(?:{value})$")).map_err(|e| format!("matcher on {label}: {e}"));
        matchers.push(match field("op")? {
            "=" => Matcher::Eq(label, value),
            "!=" => Matcher::Ne(label, value),
            "=~" => Matcher::Re(label.clone(), anchored()?),
            "!~" => Matcher::NotRe(label.clone(), anchored()?),
            other => return Err(format!("unknown matcher operator {other:?}")),
        });
    }
    let agg = text("aggregation")?;
    Ok(Rule {
        metric: text("metric")?.to_string(),
        matchers,
        aggregation: (agg.to_string(), Aggregation::parse(agg).ok_or(format!("unknown aggregation {agg:?}"))?),
        window_ms: (number("window_secs")? * 1000.0) as i64,
        op: Comparison::parse(text("op")?).ok_or("unknown `op`")?,
        threshold: number("threshold")?,
        for_ms: (number("for_secs")? * 1000.0) as i64,
        severity: severity(text("severity")?).ok_or("unknown `severity`")?,
        category: category(text("category")?).ok_or("unknown `category`")?,
        target: v.get("target").and_then(Value::as_str).map(str::to_string),
        target_tag: text("target_tag")?.to_string(),
        summary: v.get("summary").and_then(Value::as_str).map(str::to_string),
        name,
    })
}

/// The rules in `config`; a document that cannot be read is an error
/// (reported as a finding about this detector, so an operator sees it).
fn rules(config: &Config) -> Result<Vec<Rule>, String> {
    let Some(raw) = config.get("rules") else { return Ok(Vec::new()) };
    let doc: Value = kaizen_sdk::serde_json::from_str(&raw).map_err(|e| format!("rules are not JSON: {e}"))?;
    let list = doc.as_array().ok_or("rules are not a list")?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            rule(r).map_err(|e| {
                let name = r.get("name").and_then(Value::as_str).map_or(format!("#{i}"), str::to_string);
                format!("rule {name}: {e}")
            })
        })
        .collect()
}

fn format_secs(ms: i64) -> String {
    format!("{}s", ms as f64 / 1000.0)
}

impl Rule {
    /// The findings of this rule over `points` at `now_ms`: one per
    /// target (a finding is known by its target and kind), the first
    /// firing series in its summary and every firing series in its evidence.
    fn evaluate(&self, points: &[MetricPoint], now_ms: i64) -> Vec<Finding> {
        let keep = |p: &MetricPoint| p.name == self.metric && self.matchers.iter().all(|m| m.matches(p));
        let mut out: Vec<Finding> = Vec::new();
        for s in metrics::series(points, keep) {
            let (agg, window_ms) = (self.aggregation.1, self.window_ms);
            let holds = |v: f64| self.op.holds(v, self.threshold);
            let Some(since) = metrics::held_since(&s.points, now_ms, window_ms, self.for_ms, agg, holds) else {
                continue;
            };
            if now_ms - since < self.for_ms {
                continue;
            }
            let Some(value) = agg.of(metrics::window(&s.points, now_ms, window_ms), window_ms) else { continue };
            let target = s
                .tag(&self.target_tag)
                .map(str::to_string)
                .or_else(|| self.target.clone())
                .unwrap_or_else(|| self.name.clone());
            let expr = format!(
                "{}({}{}[{}]) {} {}",
                self.aggregation.0,
                self.metric,
                s.labels(),
                format_secs(window_ms),
                self.op.symbol(),
                self.threshold
            );
            let summary = match &self.summary {
                Some(t) => t
                    .replace("{rule}", &self.name)
                    .replace("{metric}", &self.metric)
                    .replace("{value}", &format!("{value:.4}"))
                    .replace("{threshold}", &self.threshold.to_string())
                    .replace("{target}", &target)
                    .replace("{labels}", &s.labels())
                    .replace("{for}", &format_secs(self.for_ms)),
                None => {
                    format!("rule {}: {expr} has held for {} (now {value:.4})", self.name, format_secs(now_ms - since))
                }
            };
            let series = format!("{}{}", s.name, s.labels());
            if let Some(same) = out.iter_mut().find(|f| f.target == target) {
                same.evidence.push(Evidence::new("series", series));
                continue;
            }
            let mut f = Finding::new(&target, &format!("metric-rule:{}", self.name), summary);
            f.severity = self.severity;
            f.category = self.category;
            f.risk = Risk::Low;
            f.evidence = vec![
                Evidence::new("rule", &self.name),
                Evidence::new("expression", &expr),
                Evidence::new("value", format!("{value:.6}")),
                Evidence::new("threshold", self.threshold),
                Evidence::new("for_secs", self.for_ms as f64 / 1000.0),
                Evidence::new("holding_since_ms", since),
                Evidence::new("series", series),
            ];
            out.push(f);
        }
        out
    }
}

impl Detector for MetricRule {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "metric-rule",
            PluginKind::Detector,
            env!("CARGO_PKG_VERSION"),
            "threshold and trend rules on pushed metrics ([[metrics.rules]]), with a `for` span",
        )
    }

    fn detect(input: &DetectionInput, config: &Config) -> Vec<Finding> {
        match rules(config) {
            Ok(rules) => rules.iter().flat_map(|r| r.evaluate(&input.metrics, input.now_ms)).collect(),
            Err(why) => {
                let mut f = Finding::new("metric-rule", "metric-rule-config", format!("metric rules unusable: {why}"));
                f.evidence = vec![Evidence::new("error", &why)];
                vec![f]
            }
        }
    }
}

kaizen_sdk::export_detector!(MetricRule);

#[cfg(test)]
mod tests {
    use super::*;
    use kaizen_sdk::testing::detect;

    fn point(name: &str, t: i64, v: f64, tags: &[(&str, &str)]) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            value: v,
            timestamp_ms: t,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const RULE: &str = r#"[{"name": "backlog", "metric": "queue.depth",
        "match": [{"label": "queue", "op": "=~", "value": "orders|payments"}, {"label": "env", "op": "!=", "value": "test"}],
        "aggregation": "avg", "window_secs": 1, "op": ">", "threshold": 100, "for_secs": 3,
        "severity": "high", "category": "performance", "target_tag": "target", "target": "shop"}]"#;

    fn run(points: Vec<MetricPoint>, now_ms: i64) -> Vec<Finding> {
        detect::<MetricRule>(&DetectionInput { now_ms, targets: vec![], metrics: points }, &[("rules", RULE)])
    }

    /// Points every 250 ms of `queue` from `from` to `to` (ms) at `value`.
    fn run_of(queue: &str, from: i64, to: i64, value: f64) -> Vec<MetricPoint> {
        (from..=to).step_by(250).map(|t| point("queue.depth", t, value, &[("queue", queue)])).collect()
    }

    #[test]
    fn fires_once_the_condition_held_for_its_span_and_not_before() {
        let points = run_of("orders", 10_000, 20_000, 500.0);
        assert!(run(points.clone(), 12_999).is_empty(), "2.999 s of 3 s");
        let found = run(points.clone(), 13_000);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!((f.target.as_str(), f.kind.as_str(), f.severity), ("shop", "metric-rule:backlog", Severity::High));
        assert!(f.summary.contains("avg(queue.depth{queue=\"orders\"}[1s]) > 100"), "{}", f.summary);
        // Once the series stops reporting, its window drains and it stops.
        assert!(run(points, 21_000).is_empty());
    }

    #[test]
    fn a_dip_restarts_the_span_and_matchers_choose_the_series() {
        let mut points = run_of("orders", 10_000, 20_000, 500.0);
        // Below the threshold for a whole window around t = 15 s.
        for p in points.iter_mut().filter(|p| (15_000..=16_000).contains(&p.timestamp_ms)) {
            p.value = 1.0;
        }
        assert!(run(points.clone(), 18_000).is_empty(), "the window is clear of the dip from 16.25 s");
        assert_eq!(run(points, 20_000).len(), 1);
        // Other queues, and test environments, are not this rule's.
        assert!(run(run_of("emails", 10_000, 20_000, 500.0), 20_000).is_empty());
        let mut test = run_of("orders", 10_000, 20_000, 500.0);
        test.iter_mut().for_each(|p| p.tags.push(("env".into(), "test".into())));
        assert!(run(test, 20_000).is_empty());
        // Each tag set is a series judged on its own; two firing for one
        // target make one finding naming both.
        let mut both = run_of("orders", 10_000, 20_000, 500.0);
        both.extend(run_of("payments", 10_000, 20_000, 500.0));
        let found = run(both.clone(), 20_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].evidence.iter().filter(|e| e.key == "series").count(), 2);
        for p in both.iter_mut().filter(|p| metrics::tag(p, "queue") == Some("payments")) {
            p.tags.push(("target".into(), "payments".into()));
        }
        let targets: Vec<String> = run(both, 20_000).into_iter().map(|f| f.target).collect();
        assert_eq!(targets, ["shop", "payments"]);
    }

    #[test]
    fn an_unreadable_rule_document_is_reported_not_ignored() {
        let input = DetectionInput { now_ms: 0, targets: vec![], metrics: vec![] };
        let found = detect::<MetricRule>(&input, &[("rules", r#"[{"name": "x"}]"#)]);
        assert_eq!(found.len(), 1);
        assert!(found[0].summary.contains("rule x: `aggregation` missing"), "{}", found[0].summary);
    }
}
