//! Rules on pushed metrics (`[[metrics.rules]]`), written the way
//! Prometheus alerting rules are, and how far back the detectors see
//! pushed metrics (`metrics.lookback_secs`).
//!
//! The rules are evaluated by the bundled `metric-rule` detector, a plugin
//! like the others; they are configured here, in the host's file, so that
//! a bad rule is refused when the configuration is loaded — naming the
//! rule and the field — instead of being discovered by a detector pass.
//! The host hands the checked rules to the plugin as one JSON document
//! under its configuration key `rules` (see [`plugin_config`]).

use serde::{Deserialize, Serialize};

/// Per-plugin configuration, as `[runtime.plugin_config]` holds it.
pub type PluginConfig = std::collections::HashMap<String, std::collections::HashMap<String, String>>;

/// The plugin that evaluates the rules.
pub const PLUGIN: &str = "metric-rule";
/// Its configuration key that carries the rules.
pub const RULES_KEY: &str = "rules";

/// Aggregations a rule may use over its window.
pub const AGGREGATIONS: &[&str] =
    &["avg", "min", "max", "sum", "count", "last", "p95", "increase", "rate", "delta", "slope"];
/// Comparisons a rule may make.
pub const OPERATORS: &[&str] = &[">", ">=", "<", "<=", "==", "!="];
pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const CATEGORIES: &[&str] = &["security", "reliability", "performance", "quality", "coverage"];

/// Settings of pushed metrics as the detectors see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// How far back each detection pass is handed pushed metric points, in
    /// seconds; raised to `loop.window_secs`, to the longest rule's
    /// `window_secs + for_secs`, and to the utilization detector's
    /// `window_secs + for_secs` and the cache-hit-rate detector's
    /// `window_secs` when those are longer.
    pub lookback_secs: u64,
    /// At most this many points (the newest) per pass.
    pub max_points: usize,
    /// Threshold and trend rules (`[[metrics.rules]]`).
    pub rules: Vec<MetricRule>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { lookback_secs: 3600, max_points: 10_000, rules: Vec::new() }
    }
}

impl MetricsConfig {
    /// How far back, in ms, detectors see pushed metrics when the loop's
    /// detection window is `window_secs`: `lookback_secs`, or longer when
    /// a rule, or a bundled detector's own settings in `plugin_config`,
    /// needs more points to judge its `for` span or window.
    pub fn lookback_ms(&self, window_secs: u64, plugin_config: &PluginConfig) -> i64 {
        let rules = self.rules.iter().map(|r| r.window_secs.saturating_add(r.for_secs));
        let setting = |plugin: &str, keys: &[&str]| -> u64 {
            let get = |k: &&str| plugin_config.get(plugin)?.get(*k)?.trim().parse::<f64>().ok();
            keys.iter().filter_map(get).filter(|v| v.is_finite() && *v > 0.0).map(|v| v.ceil() as u64).sum()
        };
        let detectors =
            [setting("utilization", &["window_secs", "for_secs"]), setting("cache-hit-rate", &["window_secs"])];
        let longest = rules.chain(detectors).max().unwrap_or(0);
        (self.lookback_secs.max(window_secs).max(longest) as i64).saturating_mul(1000)
    }
}

/// One rule: fires for each series (a metric name with one set of tags)
/// whose `aggregation` over the last `window_secs` compares true with
/// `threshold` and has without a break for `for_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    /// Names the rule in findings (`metric-rule:NAME`) and errors: lowercase
    /// letters, digits, `-` and `_`, unique.
    pub name: String,
    /// The metric's name as pushed.
    pub metric: String,
    /// Tag matchers, as in PromQL: `queue="orders"`, `env!="test"`,
    /// `region=~"eu-.*"`, `host!~"canary-.*"` (regular expressions match
    /// the whole value).
    #[serde(rename = "match", default)]
    pub matchers: Vec<String>,
    /// avg, min, max, sum, count, last, p95, increase, rate, delta or slope.
    #[serde(default = "default_aggregation")]
    pub aggregation: String,
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// `>`, `>=`, `<`, `<=`, `==` or `!=`.
    pub op: String,
    pub threshold: f64,
    /// How long the condition must hold without a break before the rule
    /// fires; 0 fires at once.
    #[serde(default)]
    pub for_secs: u64,
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default = "default_category")]
    pub category: String,
    /// The finding's target when the series has no `target_tag` tag
    /// (default: the rule's name).
    #[serde(default)]
    pub target: Option<String>,
    /// The tag whose value is the finding's target.
    #[serde(default = "default_target_tag")]
    pub target_tag: String,
    /// The finding's summary; `{rule}`, `{metric}`, `{value}`,
    /// `{threshold}`, `{target}`, `{labels}` and `{for}` are filled in.
    #[serde(default)]
    pub summary: Option<String>,
}

fn default_aggregation() -> String {
    "avg".into()
}
fn default_window() -> u64 {
    60
}
fn default_severity() -> String {
    "medium".into()
}
fn default_category() -> String {
    "reliability".into()
}
fn default_target_tag() -> String {
    "target".into()
}

/// A tag matcher, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matcher {
    pub label: String,
    /// `=`, `!=`, `=~` or `!~`.
    pub op: String,
    pub value: String,
}

/// Parse `label OP "value"` (the value may be unquoted); `Err` says why not.
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')).unwrap_or(s.len());
    let (label, rest) = s.split_at(end);
    if label.is_empty() {
        return Err("must start with a tag name (`queue=\"orders\"`)".into());
    }
    let rest = rest.trim_start();
    let op = ["=~", "!~", "!=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("tag {label:?} needs an operator: =, !=, =~ or !~ (`{label}=\"value\"`)"))?;
    let raw = rest[op.len()..].trim();
    let value = match raw.strip_prefix('"') {
        Some(q) => {
            q.strip_suffix('"').ok_or_else(|| format!("the value of {label:?} opens a quote it does not close"))?
        }
        None => raw,
    };
    if op.ends_with('~') {
        regex::Regex::new(&format!("^(?:{value})$"))
            .map_err(|e| format!("the regular expression of {label:?} is invalid: {e}"))?;
    }
    Ok(Matcher { label: label.into(), op: op.into(), value: value.into() })
}

/// The rules as the `metric-rule` plugin reads them: a JSON list, matchers
/// parsed into `{label, op, value}`. Call on checked rules.
pub fn plugin_config(rules: &[MetricRule]) -> String {
    let doc: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            let matchers: Vec<Matcher> = r.matchers.iter().filter_map(|m| parse_matcher(m).ok()).collect();
            v["match"] = serde_json::to_value(matchers).unwrap_or_default();
            v
        })
        .collect();
    serde_json::Value::Array(doc).to_string()
}

/// Put the rules where the `metric-rule` plugin reads them.
pub fn install(runtime: &mut crate::config::RuntimeConfig, m: &MetricsConfig) {
    if !m.rules.is_empty() {
        runtime.plugin_config.entry(PLUGIN.into()).or_default().insert(RULES_KEY.into(), plugin_config(&m.rules));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_like_promql() {
        let m = parse_matcher(r#"region =~ "eu-.*""#).unwrap();
        assert_eq!((m.label.as_str(), m.op.as_str(), m.value.as_str()), ("region", "=~", "eu-.*"));
        assert_eq!(parse_matcher("env!=test").unwrap().op, "!=");
        assert!(parse_matcher(r#"region=~"eu-(""#).unwrap_err().contains("regular expression"));
        assert!(parse_matcher(r#""orders""#).unwrap_err().contains("tag name"));
        assert!(parse_matcher("queue orders").unwrap_err().contains("operator"));
    }
}
