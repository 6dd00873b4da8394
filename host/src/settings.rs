//! The valid range of every setting of the host, checked when a
//! configuration is loaded — never discovered by a task that panics on it
//! later (`min > max` in a clamp, a negative float turned into a
//! `Duration`, a zero interval that spins the loop).
//!
//! One rule per setting, written beside its key, so the README's table of
//! valid ranges and this file say the same thing. Every violation is
//! reported at once, each naming the key, the value and the rule.

use crate::config::RuntimeConfig;
use crate::r#loop::LoopConfig;
use crate::metric_rules::{self, MetricsConfig};
use crate::recovery::RecoveryConfig;
use crate::safety::{Limits, SafetyConfig};
use crate::telemetry::TelemetryConfig;

/// The host's configuration, section by section (`HostConfig::check`
/// hands its sections in, so this file needs nothing above it).
pub struct Sections<'a> {
    pub runtime: &'a RuntimeConfig,
    pub telemetry: &'a TelemetryConfig,
    pub improve: &'a LoopConfig,
    pub safety: &'a SafetyConfig,
    pub recovery: &'a RecoveryConfig,
    pub metrics: &'a MetricsConfig,
    pub fleet: &'a crate::fleet::FleetConfig,
}

/// The proof steps a candidate can be required to pass.
pub const PROOF_STEPS: &[&str] = &["validation", "synthetic", "replay", "shadow"];

/// One setting outside its valid range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` = {value}: {rule}")]
pub struct OutOfRange {
    /// The key as written in the configuration file, e.g. `loop.min_interval_secs`.
    pub key: String,
    /// The value found, as text.
    pub value: String,
    /// The rule it breaks, e.g. `must be at most loop.max_interval_secs (5)`.
    pub rule: String,
}

/// Every setting outside its valid range (at least one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidSettings(pub Vec<OutOfRange>);

/// Collects violations; each helper checks one rule of one key.
#[derive(Default)]
pub struct Checker {
    found: Vec<OutOfRange>,
}

impl Checker {
    /// A violation of `rule` by `key` = `value`.
    pub fn bad(&mut self, key: impl Into<String>, value: impl ToString, rule: impl Into<String>) {
        self.found.push(OutOfRange { key: key.into(), value: value.to_string(), rule: rule.into() });
    }

    /// A finite number greater than zero.
    pub fn positive(&mut self, key: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.bad(key, v, "must be a number greater than 0");
        }
    }

    /// A whole number of at least `min`.
    pub fn at_least(&mut self, key: &str, v: u64, min: u64) {
        if v < min {
            self.bad(key, v, format!("must be at least {min}"));
        }
    }

    /// A number in `[lo, hi]`.
    pub fn within(&mut self, key: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.bad(key, v, format!("must be between {lo} and {hi}"));
        }
    }

    /// A number in `(0, hi]`.
    pub fn above_zero_to(&mut self, key: &str, v: f64, hi: f64) {
        if !(v.is_finite() && v > 0.0 && v <= hi) {
            self.bad(key, v, format!("must be greater than 0 and at most {hi}"));
        }
    }

    /// `a` (at `key`) no greater than `b` (at `other`).
    pub fn not_above<T: PartialOrd + std::fmt::Display>(&mut self, key: &str, a: T, other: &str, b: T) {
        if a > b {
            self.bad(key, &a, format!("must be at most {other} ({b})"));
        }
    }

    /// `Ok` when nothing was found.
    pub fn finish(self) -> Result<(), InvalidSettings> {
        if self.found.is_empty() { Ok(()) } else { Err(InvalidSettings(self.found)) }
    }
}

/// Check every setting of the host.
pub fn check(c: &Sections<'_>) -> Result<(), InvalidSettings> {
    let mut k = Checker::default();
    runtime(&mut k, c);
    telemetry(&mut k, c);
    improve(&mut k, c);
    safety(&mut k, c);
    recovery(&mut k, c);
    metrics(&mut k, c);
    fleet(&mut k, c.fleet);
    k.finish()
}

/// The fleet's lease, and a host id an operator set.
fn fleet(k: &mut Checker, f: &crate::fleet::FleetConfig) {
    k.within("fleet.lease_secs", f.lease_secs, 1.0, 600.0);
    if let Some(id) = &f.host_id
        && !crate::fleet::valid_host_id(id)
    {
        k.bad("fleet.host_id", format!("{id:?}"), "must be 1 to 32 lowercase letters, digits, -, _ or .");
    }
    if let Some(url) = &f.advertise_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        k.bad("fleet.advertise_url", format!("{url:?}"), "must be an http:// or https:// URL");
    }
}

/// Pushed metrics' settings, and every rule: a bad rule is named with its
/// field, `metrics.rules[NAME].FIELD`.
fn metrics(k: &mut Checker, c: &Sections<'_>) {
    let m = c.metrics;
    not_hand_set(k, &c.runtime.plugin_config);
    k.at_least("metrics.max_points", m.max_points as u64, 1);
    let mut seen = std::collections::HashSet::new();
    for (i, r) in m.rules.iter().enumerate() {
        let at = if r.name.is_empty() { format!("metrics.rules[{i}]") } else { format!("metrics.rules[{}]", r.name) };
        let valid_name = !r.name.is_empty()
            && r.name.len() <= 64
            && r.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            k.bad(format!("{at}.name"), format!("{:?}", r.name), "must be 1 to 64 lowercase letters, digits, - or _");
        } else if !seen.insert(r.name.as_str()) {
            k.bad(format!("{at}.name"), format!("{:?}", r.name), "must be unique among metrics.rules");
        }
        if r.metric.is_empty() || r.metric.len() > 200 {
            k.bad(format!("{at}.metric"), format!("{:?}", r.metric), "must be a metric name of 1 to 200 bytes");
        } else if r.metric.starts_with(crate::telemetry::hourly::RESERVED_PREFIX) {
            k.bad(format!("{at}.metric"), format!("{:?}", r.metric), "names the host's own rollups (kaizen.*)");
        }
        for m in &r.matchers {
            if let Err(why) = metric_rules::parse_matcher(m) {
                k.bad(format!("{at}.match"), format!("{m:?}"), why);
            }
        }
        let one_of = |k: &mut Checker, field: &str, v: &str, allowed: &[&str]| {
            if !allowed.contains(&v) {
                k.bad(format!("{at}.{field}"), format!("{v:?}"), format!("must be one of {}", allowed.join(", ")));
            }
        };
        one_of(k, "aggregation", &r.aggregation, metric_rules::AGGREGATIONS);
        one_of(k, "op", &r.op, metric_rules::OPERATORS);
        one_of(k, "severity", &r.severity, metric_rules::SEVERITIES);
        one_of(k, "category", &r.category, metric_rules::CATEGORIES);
        k.at_least(&format!("{at}.window_secs"), r.window_secs, 1);
        if !r.threshold.is_finite() {
            k.bad(format!("{at}.threshold"), r.threshold, "must be a finite number");
        }
        if r.target.as_deref().is_some_and(|t| t.is_empty()) {
            k.bad(format!("{at}.target"), "\"\"", "must not be empty");
        }
        if r.target_tag.is_empty() {
            k.bad(format!("{at}.target_tag"), "\"\"", "must not be empty");
        }
    }
}

/// `[runtime.plugin_config.metric-rule] rules` set by hand would bypass
/// the checks above; refuse it naming where the rules belong.
fn not_hand_set(k: &mut Checker, plugin_config: &metric_rules::PluginConfig) {
    use metric_rules::{PLUGIN, RULES_KEY};
    if plugin_config.get(PLUGIN).is_some_and(|c| c.contains_key(RULES_KEY)) {
        k.bad(
            format!("runtime.plugin_config.{PLUGIN}.{RULES_KEY}"),
            "(set)",
            "is the host's to set: write the rules as [[metrics.rules]]",
        );
    }
}

fn sandbox(k: &mut Checker, at: &str, l: &crate::config::SandboxLimits) {
    k.at_least(&format!("{at}.deadline"), l.deadline.as_millis() as u64, 1);
    k.at_least(&format!("{at}.memory_bytes"), l.memory_bytes as u64, 64 << 10);
    if let Some(fuel) = l.fuel {
        k.at_least(&format!("{at}.fuel"), fuel, 1);
    }
    k.at_least(&format!("{at}.max_output_bytes"), l.max_output_bytes as u64, 1);
    let (lo, hi) = (crate::config::MIN_STACK_BYTES, crate::config::MAX_STACK_BYTES);
    if !(lo..=hi).contains(&l.stack_bytes) {
        k.bad(format!("{at}.stack_bytes"), l.stack_bytes, format!("must be between {lo} and {hi} bytes"));
    }
}

fn runtime(k: &mut Checker, c: &Sections<'_>) {
    let r = c.runtime;
    k.at_least("runtime.max_module_bytes", r.max_module_bytes as u64, 8);
    sandbox(k, "runtime.limits", &r.limits);
    for (name, l) in &r.plugin_limits {
        sandbox(k, &format!("runtime.plugin_limits.{name}"), l);
    }
    k.at_least("runtime.history_depth", r.history_depth as u64, 1);
    k.at_least("runtime.max_instances", r.max_instances as u64, 1);
    let keep_max = crate::config::MAX_KEEP_RESIDENT_BYTES;
    if r.keep_resident_bytes > keep_max {
        k.bad(
            "runtime.keep_resident_bytes",
            r.keep_resident_bytes,
            format!("must be at most {keep_max} bytes (16 MiB)"),
        );
    }
    for (name, i) in &r.instances {
        k.at_least(&format!("runtime.instances.{name}.reuse"), u64::from(i.reuse), 1);
    }
    for (name, g) in &r.grants {
        for cap in &g.capabilities {
            if let Some(rule) = crate::config::capability_grant_error(cap, &g.read_only_dirs) {
                k.bad(format!("runtime.grants.{name}.capabilities"), format!("{cap:?}"), rule);
            }
        }
    }
}

fn telemetry(k: &mut Checker, c: &Sections<'_>) {
    let t = c.telemetry;
    k.at_least("telemetry.channel_capacity", t.channel_capacity as u64, 1);
    k.at_least("telemetry.max_batch", t.max_batch as u64, 1);
    k.at_least("telemetry.sample_requests_every", t.sample_requests_every, 1);
    k.at_least("telemetry.retention_secs", t.retention_secs, 1);
    k.at_least("telemetry.bucket_secs", t.bucket_secs, 1);
    k.at_least("telemetry.maintenance_secs", t.maintenance_secs, 1);
    k.at_least("telemetry.history_days", t.history_days, 1);
    k.at_least("telemetry.history_refresh_secs", t.history_refresh_secs, 1);
    k.not_above("telemetry.bucket_secs", t.bucket_secs, "telemetry.horizon_secs", t.horizon_secs);
    // Detection reads the window and the baseline before it from the
    // aggregates kept in memory.
    let span = c.improve.window_secs.saturating_add(c.improve.baseline_secs);
    if span > t.horizon_secs {
        k.bad(
            "telemetry.horizon_secs",
            t.horizon_secs,
            format!("must cover loop.window_secs + loop.baseline_secs ({span})"),
        );
    }
}

fn improve(k: &mut Checker, c: &Sections<'_>) {
    let l = c.improve;
    k.positive("loop.interval_secs", l.interval_secs);
    k.positive("loop.min_interval_secs", l.min_interval_secs);
    k.positive("loop.max_interval_secs", l.max_interval_secs);
    if l.min_interval_secs.is_finite() && l.max_interval_secs.is_finite() {
        k.not_above("loop.min_interval_secs", l.min_interval_secs, "loop.max_interval_secs", l.max_interval_secs);
    }
    k.at_least("loop.window_secs", l.window_secs, 1);
    k.at_least("loop.baseline_secs", l.baseline_secs, 1);
    k.at_least("loop.analysis_ms", l.analysis_ms, 1);
    k.at_least("loop.max_findings_per_detector", l.max_findings_per_detector as u64, 1);
    k.at_least("loop.resolve_after_cycles", u64::from(l.resolve_after_cycles), 1);
    k.at_least("loop.max_improver_trials", u64::from(l.max_improver_trials), 1);
    for (unit, policy) in &l.tuning {
        for (name, [min, max]) in &policy.bounds {
            let key = format!("loop.tuning.{unit}.bounds.{name}");
            if !(min.is_finite() && max.is_finite() && min <= max) {
                k.bad(key, format!("[{min}, {max}]"), "must be two finite numbers [min, max] with min <= max");
            }
        }
    }
    for (category, w) in l.category_weights.all() {
        k.within(&format!("loop.category_weights.{category}"), w, 0.0, 10.0);
    }
    let p = &l.prove;
    if p.replay_max < 0 {
        k.bad("loop.prove.replay_max", p.replay_max, "must be at least 0");
    }
    k.above_zero_to("loop.prove.shadow_percent", p.shadow_percent, 100.0);
    k.at_least("loop.prove.shadow_concurrency", p.shadow_concurrency, 1);
    if !(1..=20).contains(&p.reruns) {
        k.bad("loop.prove.reruns", p.reruns, "must be between 1 and 20");
    }
    if let Some(g) = &l.generator {
        if g.command.is_empty() {
            k.bad("loop.generator.command", "[]", "must name a program");
        }
        k.at_least("loop.generator.timeout_secs", g.timeout_secs, 1);
    }
}

fn limits(k: &mut Checker, at: &str, l: &Limits) {
    k.at_least(&format!("{at}.concurrent_rollouts"), l.concurrent_rollouts as u64, 1);
    k.at_least(&format!("{at}.max_change_bytes"), l.max_change_bytes as u64, 8);
    for step in &l.required_proof {
        if !PROOF_STEPS.contains(&step.as_str()) {
            k.bad(format!("{at}.required_proof"), step, format!("must be one of {}", PROOF_STEPS.join(", ")));
        }
    }
    let steps = format!("{at}.canary_steps");
    let shown = format!("{:?}", l.canary_steps);
    if l.canary_steps.last() != Some(&100.0) {
        k.bad(&steps, &shown, "must end at 100 (the promotion)");
    }
    if l.canary_steps.iter().any(|s| !(s.is_finite() && *s > 0.0 && *s <= 100.0)) {
        k.bad(&steps, &shown, "every step must be a share greater than 0 and at most 100");
    }
    if l.canary_steps.windows(2).any(|w| w[0] >= w[1]) {
        k.bad(&steps, &shown, "steps must increase");
    }
    let j = &l.judge;
    k.above_zero_to(&format!("{at}.judge.threshold"), j.threshold, 1.0);
    k.at_least(&format!("{at}.judge.min_samples"), j.min_samples as u64, 1);
    k.at_least(&format!("{at}.judge.max_samples"), j.max_samples as u64, 1);
    if j.min_samples > j.max_samples {
        k.bad(
            format!("{at}.judge.min_samples"),
            j.min_samples,
            format!("must be at most {at}.judge.max_samples ({}): no step could ever pass", j.max_samples),
        );
    }
    if !(j.alpha.is_finite() && j.alpha > 0.0 && j.alpha < 0.5) {
        k.bad(format!("{at}.judge.alpha"), j.alpha, "must be greater than 0 and less than 0.5");
    }
    k.above_zero_to(&format!("{at}.judge.error_points"), j.error_points, 100.0);
    if !(j.matched_control_below_ms.is_finite() && j.matched_control_below_ms >= 0.0) {
        k.bad(
            format!("{at}.judge.matched_control_below_ms"),
            j.matched_control_below_ms,
            "must be at least 0 (milliseconds; 0 = never)",
        );
    }
    if !(j.min_shift_ms.is_finite() && j.min_shift_ms >= 0.0) {
        k.bad(format!("{at}.judge.min_shift_ms"), j.min_shift_ms, "must be at least 0 (milliseconds)");
    }
    if let Some(t) = j.tolerance
        && !(t.is_finite() && t >= 0.0 && t < j.threshold)
    {
        k.bad(format!("{at}.judge.tolerance"), t, "must be at least 0 and less than judge.threshold");
    }
    if !(j.error_tolerance_points.is_finite()
        && j.error_tolerance_points >= 0.0
        && j.error_tolerance_points < j.error_points)
    {
        k.bad(
            format!("{at}.judge.error_tolerance_points"),
            j.error_tolerance_points,
            "must be at least 0 and less than judge.error_points",
        );
    }
    let bad_quantile = |q: &crate::judge::Quantile| match *q {
        crate::judge::Quantile::P(p) => !(p > 0.0 && p < 1.0),
        crate::judge::Quantile::With { p, threshold } => !(p > 0.0 && p < 1.0 && threshold > 0.0 && threshold <= 1.0),
    };
    if j.quantiles.is_empty() || j.quantiles.len() > 5 || j.quantiles.iter().any(bad_quantile) {
        k.bad(
            format!("{at}.judge.quantiles"),
            serde_json::to_string(&j.quantiles).unwrap_or_default(),
            "one to five latency quantiles, each a level greater than 0 and less than 1 (0.95 = p95), \
             optionally { p = 0.99, threshold = 0.2 } with a threshold greater than 0 and at most 1",
        );
    }
    k.at_least(&format!("{at}.step_timeout_secs"), l.step_timeout_secs, 1);
    if !(l.holdback_percent.is_finite() && (0.0..=50.0).contains(&l.holdback_percent)) {
        k.bad(format!("{at}.holdback_percent"), l.holdback_percent, "must be from 0 to 50");
    }
}

fn safety(k: &mut Checker, c: &Sections<'_>) {
    let s = c.safety;
    limits(k, "safety.limits", &s.limits);
    for (name, t) in &s.targets {
        if let Some(l) = &t.limits {
            limits(k, &format!("safety.targets.{name}.limits"), l);
        }
    }
    let freezes = |at: &str, f: &[crate::schedule::Freeze]| {
        let shown = |f: &crate::schedule::Freeze| {
            let field = |name: &str, v: Option<String>| v.map(|v| format!("{name} = \"{v}\""));
            let fields = [
                field("from", f.from.map(|t| t.to_string())),
                field("to", f.to.map(|t| t.to_string())),
                field("every", f.every.as_ref().map(ToString::to_string)),
            ];
            format!("{{ {} }}", fields.into_iter().flatten().collect::<Vec<_>>().join(", "))
        };
        f.iter()
            .enumerate()
            .filter_map(|(i, f)| f.check().err().map(|e| (format!("{at}.freezes[{i}]"), shown(f), e)))
            .collect::<Vec<_>>()
    };
    let mut bad = freezes("safety.schedule", &s.schedule.freezes);
    for (name, t) in &s.targets {
        bad.extend(freezes(&format!("safety.targets.{name}.schedule"), &t.schedule.freezes));
    }
    for (key, value, why) in bad {
        k.bad(key, value, why);
    }
    let w = &s.self_watch;
    k.at_least("safety.self_watch.window", w.window as u64, 1);
    k.at_least("safety.self_watch.min_outcomes", w.min_outcomes as u64, 1);
    k.not_above("safety.self_watch.min_outcomes", w.min_outcomes, "safety.self_watch.window", w.window);
    k.within("safety.self_watch.max_rollback_rate", w.max_rollback_rate, 0.0, 1.0);
    k.within("safety.self_watch.max_failure_rate", w.max_failure_rate, 0.0, 1.0);
}

fn recovery(k: &mut Checker, c: &Sections<'_>) {
    let r = c.recovery;
    k.at_least("recovery.max_attempts", r.max_attempts as u64, 1);
    k.at_least("recovery.recent_outcomes", r.recent_outcomes as u64, 1);
    k.at_least("recovery.max_open_ms", r.max_open_ms, 1);
    let b = &r.breaker;
    k.at_least("recovery.breaker.window", b.window as u64, 1);
    k.at_least("recovery.breaker.min_calls", b.min_calls as u64, 1);
    k.not_above("recovery.breaker.min_calls", b.min_calls, "recovery.breaker.window", b.window);
    k.above_zero_to("recovery.breaker.failure_rate", b.failure_rate, 1.0);
    k.at_least("recovery.breaker.cooldown_ms", b.cooldown_ms, 1);
    k.at_least("recovery.breaker.half_open_probes", b.half_open_probes as u64, 1);
    for (target, unit) in &r.circuit_fallbacks {
        if !crate::runtime::validate::valid_name(unit) {
            k.bad(format!("recovery.circuit_fallbacks.{target}"), unit, "must name a unit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostConfig;

    fn rule(edit: impl FnOnce(&mut metric_rules::MetricRule)) -> metric_rules::MetricRule {
        let mut r = metric_rules::MetricRule {
            name: "backlog".into(),
            metric: "queue.depth".into(),
            matchers: vec![r#"queue="orders""#.into()],
            aggregation: "avg".into(),
            window_secs: 60,
            op: ">".into(),
            threshold: 100.0,
            for_secs: 300,
            severity: "high".into(),
            category: "performance".into(),
            target: None,
            target_tag: "target".into(),
            summary: None,
        };
        edit(&mut r);
        r
    }

    fn rule_problems(rules: Vec<metric_rules::MetricRule>) -> Vec<String> {
        let mut c = HostConfig::default();
        c.metrics.rules = rules;
        match c.check() {
            Ok(()) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_bad_metric_rule_is_named_with_its_field() {
        assert!(rule_problems(vec![rule(|_| {})]).is_empty());
        let found = rule_problems(vec![
            rule(|r| r.op = "=>".into()),
            rule(|r| {
                r.name = "slow".into();
                r.aggregation = "median".into();
                r.window_secs = 0;
                r.matchers = vec![r#"region=~"eu-(""#.into()];
            }),
        ]);
        assert!(found[0].starts_with("`metrics.rules[backlog].op` = \"=>\": must be one of >"), "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("`metrics.rules[slow].aggregation`")), "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("`metrics.rules[slow].window_secs` = 0")), "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("`metrics.rules[slow].match`")), "{found:?}");
        let twice = rule_problems(vec![rule(|_| {}), rule(|_| {})]);
        assert!(twice[0].contains("must be unique"), "{twice:?}");
        let mut c = HostConfig::default();
        c.runtime.plugin_config.entry("metric-rule".into()).or_default().insert("rules".into(), "[]".into());
        assert!(c.check().unwrap_err().to_string().contains("write the rules as [[metrics.rules]]"));
    }

    #[test]
    fn the_metric_lookback_covers_the_longest_rule() {
        let m = MetricsConfig { lookback_secs: 60, rules: vec![rule(|_| {})], ..Default::default() };
        let none = Default::default();
        assert_eq!(m.lookback_ms(30, &none), 360_000);
        assert_eq!(MetricsConfig { lookback_secs: 60, ..Default::default() }.lookback_ms(300, &none), 300_000);
        let mut plugins = metric_rules::PluginConfig::default();
        let utilization = plugins.entry("utilization".into()).or_default();
        utilization.insert("for_secs".into(), "900".into());
        utilization.insert("window_secs".into(), "120".into());
        assert_eq!(m.lookback_ms(30, &plugins), 1_020_000, "utilization's window + for");
        let doc: serde_json::Value = serde_json::from_str(&metric_rules::plugin_config(&m.rules)).unwrap();
        assert_eq!(doc[0]["match"][0], serde_json::json!({"label": "queue", "op": "=", "value": "orders"}));
    }

    #[test]
    fn the_defaults_are_valid() {
        HostConfig::default().check().unwrap();
    }

    #[test]
    fn each_violation_names_its_key_value_and_rule() {
        let mut c = HostConfig::default();
        c.improve.min_interval_secs = 10.0;
        c.improve.max_interval_secs = 5.0;
        c.improve.interval_secs = -1.0;
        c.safety.limits.canary_steps = vec![50.0, 10.0];
        c.safety.limits.judge.alpha = 0.0;
        c.safety.limits.judge.tolerance = Some(0.2);
        c.safety.limits.judge.quantiles = vec![crate::judge::Quantile::P(1.5)];
        c.safety.limits.judge.error_tolerance_points = 3.0;
        c.recovery.breaker.failure_rate = 1.5;
        c.improve.resolve_after_cycles = 0;
        c.runtime.keep_resident_bytes = 1 << 30;
        let err = c.check().unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|o| o.key.as_str()).collect();
        assert!(keys.contains(&"loop.interval_secs"), "{err}");
        assert!(keys.contains(&"safety.limits.judge.alpha"), "{err}");
        assert!(keys.contains(&"safety.limits.judge.tolerance"), "{err}");
        assert!(keys.contains(&"safety.limits.judge.quantiles"), "{err}");
        assert!(keys.contains(&"safety.limits.judge.error_tolerance_points"), "{err}");
        assert!(keys.contains(&"recovery.breaker.failure_rate"), "{err}");
        let text = err.to_string();
        assert!(text.contains("`loop.min_interval_secs` = 10: must be at most loop.max_interval_secs (5)"), "{text}");
        assert!(text.contains("`safety.limits.canary_steps` = [50.0, 10.0]: must end at 100"), "{text}");
        assert!(text.contains("steps must increase"), "{text}");
        assert!(text.contains("`loop.resolve_after_cycles` = 0: must be at least 1"), "{text}");
        assert!(
            text.contains("`runtime.keep_resident_bytes` = 1073741824: must be at most 16777216 bytes (16 MiB)"),
            "{text}"
        );
    }

    #[test]
    fn per_target_and_per_plugin_overrides_are_checked_under_their_own_keys() {
        let mut c = HostConfig::default();
        let limits = Limits { step_timeout_secs: 0, ..Limits::default() };
        c.safety.targets.insert(
            "pay".into(),
            crate::safety::TargetPolicy { enabled: None, preset: None, limits: Some(limits), ..Default::default() },
        );
        c.runtime.plugin_limits.insert(
            "calc".into(),
            crate::config::SandboxLimits { deadline: std::time::Duration::ZERO, ..Default::default() },
        );
        let text = c.check().unwrap_err().to_string();
        assert!(text.contains("`safety.targets.pay.limits.step_timeout_secs` = 0: must be at least 1"), "{text}");
        assert!(text.contains("`runtime.plugin_limits.calc.deadline` = 0: must be at least 1"), "{text}");
    }
}
