//! Rules on pushed metrics and time-of-day patterns, through the real
//! `kaizen serve` over HTTP: metric points and executions are pushed with
//! explicit timestamps through the telemetry ingest, cycles are run on
//! demand, and what the bundled detectors found is read from the findings
//! API. A cache under half hits is found and one above is not; a rule fires
//! once its condition has held for its `for` span and a shorter run never
//! fires it; utilization held above its ceiling is found and a spike is
//! not; a target 3x slower at one hour of the day is found and an A/A
//! history is not; `kaizen backtest` replays the recorded metrics and shows
//! the rule firing when it should have; bad rules and reserved metric names
//! are refused, named.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::kaizen_bin::{BIN, Server, refused, wait_for};

/// Only the cycles a test runs (the scheduled interval is an hour), and
/// the hourly rollups refreshed at every cycle.
const QUIET_LOOP: &str = "[loop]\ninterval_secs = 3600.0\nmin_interval_secs = 3600.0\nmax_interval_secs = 3600.0\n\
                          [telemetry]\nhistory_refresh_secs = 1\n";

fn start(dir: &Path, extra: &str) -> (Server, std::path::PathBuf) {
    let config = dir.join("kaizen.toml");
    std::fs::write(&config, format!("{QUIET_LOOP}{extra}")).unwrap();
    let s = Server::start(dir, &[], &["--config", config.to_str().unwrap()]);
    (s, config)
}

fn push(s: &Server, batch: Value) -> reqwest::blocking::Response {
    s.http.post(format!("{}/api/v1/telemetry", s.url)).bearer_auth(&s.invoke).json(&batch).send().unwrap()
}

fn push_ok(s: &Server, batch: Value) {
    let r = push(s, batch);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

/// Run a cycle now; its report.
fn cycle(s: &Server) -> Value {
    let r = s.post("/api/v1/cycles", Value::Null);
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// The findings of `kind` about `target`.
fn findings(s: &Server, target: &str, kind: &str) -> Vec<Value> {
    let all = s.get("/api/v1/findings?limit=1000");
    all.as_array().unwrap().iter().filter(|f| f["target"] == target && f["kind"] == kind).cloned().collect()
}

/// Run cycles until a finding of `kind` about `target` is recorded; it.
fn await_finding(s: &Server, target: &str, kind: &str) -> Value {
    let mut found = None;
    wait_for(&format!("a {kind} finding on {target}"), Duration::from_secs(90), || {
        cycle(s);
        found = findings(s, target, kind).into_iter().next();
        found.is_some()
    });
    found.unwrap()
}

fn evidence(f: &Value, key: &str) -> String {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == key)
        .and_then(|e| e[1].as_str())
        .unwrap_or_else(|| panic!("no evidence {key} in {f}"))
        .to_string()
}

/// Points of `name` with `tags` every 250 ms over `[from, to]` (Unix ms),
/// `value(t)` at each.
fn series(name: &str, tags: Value, from: i64, to: i64, value: impl Fn(i64) -> f64) -> Vec<Value> {
    (from..=to).step_by(250).map(|t| json!({"name": name, "value": value(t), "at": t, "tags": tags})).collect()
}

#[test]
fn a_cache_under_half_hits_is_found_and_one_above_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path(), "[runtime.plugin_config.cache-hit-rate]\nwindow_secs = 600\n");
    let now = kaizen_host::store::now_ms();
    // One point a minute for ten minutes per count: 1000 requests in the
    // window, 6000 an hour.
    let mut metrics = Vec::new();
    for m in 0..10 {
        let at = now - m * 60_000;
        for (cache, target, hits, misses) in [("products", "catalog", 30, 70), ("sessions", "accounts", 80, 20)] {
            let tags = json!({"cache": cache, "target": target});
            metrics.push(json!({"name": "cache.hits", "value": hits, "at": at, "tags": tags}));
            metrics.push(json!({"name": "cache.misses", "value": misses, "at": at, "tags": tags}));
        }
    }
    push_ok(&s, json!({ "metrics": metrics }));
    let f = await_finding(&s, "catalog", "low-cache-hit-rate");
    assert_eq!(f["detector"], "cache-hit-rate");
    assert_eq!(evidence(&f, "hit_rate"), "0.3000");
    assert!(f["summary"].as_str().unwrap().contains("cache products hits 30.0 %"), "{f}");
    // The cycle that found the busy cache under half saw the other one too.
    assert!(findings(&s, "accounts", "low-cache-hit-rate").is_empty(), "80 % hits is not a finding");

    // The host's own rollups cannot be forged by a push.
    let r = push(&s, json!({"metrics": [{"name": "kaizen.hourly.calls", "value": 1.0, "at": now}]}));
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    let message = body["message"].as_str().unwrap_or_default().to_string() + &body["details"].to_string();
    assert!(message.contains("kaizen.hourly.calls") && message.contains("reserved"), "{body}");
}

/// The rule: the orders and refunds queues' 1 s average over 100 for 3 s.
const RULES: &str = r#"
[[metrics.rules]]
name = "backlog"
metric = "queue.depth"
match = ['queue=~"orders|refunds"', 'env!="test"']
aggregation = "avg"
window_secs = 1
op = ">"
threshold = 100
for_secs = 3
severity = "high"
category = "performance"
target = "shop"

[runtime.plugin_config.utilization]
metrics = "db.pool.utilization"
threshold = 0.8
for_secs = 3
window_secs = 1
"#;

#[test]
fn a_rule_fires_after_its_for_span_and_a_shorter_run_never_does_and_backtest_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (s, config) = start(dir.path(), RULES);
    let t0 = kaizen_host::store::now_ms() - 1000;
    let end = t0 + 60_000;
    let mut metrics = Vec::new();
    // orders: over the threshold from t0 on.
    metrics.extend(series("queue.depth", json!({"queue": "orders"}), t0, end, |_| 500.0));
    // refunds: over it for 1.5 s only (its 1 s average for 2.25 s), then
    // quiet — never 3 s in a row.
    metrics.extend(series("queue.depth", json!({"queue": "refunds"}), t0, end, |t| {
        if t < t0 + 1500 { 500.0 } else { 5.0 }
    }));
    // The orders pool held over 80 %; the billing pool spikes for 1 s.
    metrics.extend(series("db.pool.utilization", json!({"target": "orders-db"}), t0, end, |_| 0.92));
    metrics.extend(series("db.pool.utilization", json!({"target": "billing-db"}), t0, end, |t| {
        if t < t0 + 1000 { 0.99 } else { 0.2 }
    }));
    push_ok(&s, json!({ "metrics": metrics }));

    // A cycle that sampled before the 3 s were up must not have fired.
    let early = cycle(&s);
    if early["finished_at"].as_i64().unwrap() < t0 + 3000 {
        assert!(findings(&s, "shop", "metric-rule:backlog").is_empty(), "fired before its for span: {early}");
        assert!(findings(&s, "orders-db", "high-utilization").is_empty(), "fired before its for span");
    }
    let f = await_finding(&s, "shop", "metric-rule:backlog");
    assert!(f["first_seen"].as_i64().unwrap() >= t0 + 3000, "first seen {} ms after the run began", {
        f["first_seen"].as_i64().unwrap() - t0
    });
    assert_eq!((f["detector"].as_str(), f["severity"].as_str()), (Some("metric-rule"), Some("high")));
    assert!(evidence(&f, "series").contains("queue=\"orders\""), "{f}");
    let u = await_finding(&s, "orders-db", "high-utilization");
    assert!(u["first_seen"].as_i64().unwrap() >= t0 + 3000);
    // By now the refunds run and the billing spike are over: neither fired.
    cycle(&s);
    let all = s.get("/api/v1/findings?limit=1000");
    let about =
        |what: &str| all.as_array().unwrap().iter().filter(|f| f["summary"].as_str().unwrap().contains(what)).count();
    assert_eq!(about("refunds"), 0, "{all}");
    assert_eq!(findings(&s, "billing-db", "high-utilization").len(), 0, "{all}");
    s.stop();

    // The recorded metrics, replayed second by second with the same rules:
    // from the data directory, and from the same points in a CSV.
    let csv = dir.path().join("metrics.csv");
    let mut text = String::from("name,value,timestamp_ms,tags\n");
    for m in &metrics {
        let tags: Vec<String> =
            m["tags"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
        text += &format!("{},{},{},{}\n", m["name"].as_str().unwrap(), m["value"], m["at"], tags.join(";"));
    }
    std::fs::write(&csv, text).unwrap();
    let data_dir = ["--data-dir".to_string(), dir.path().display().to_string()];
    let csv_file = ["--metrics".to_string(), csv.display().to_string()];
    for source in [&data_dir, &csv_file] {
        let out = Command::new(BIN)
            .arg("backtest")
            .args(source)
            .arg("--config")
            .arg(&config)
            .args(["--window", "1", "--step", "1", "--json"])
            .env("KAIZEN_RUNTIME__CACHE_DIR", crate::common::shared_cache())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{source:?}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["metrics"].as_u64().unwrap(), metrics.len() as u64, "{source:?}: {stdout}");
        let found = v["findings"].as_array().unwrap();
        let rule = found.iter().find(|f| f["kind"] == "metric-rule:backlog").unwrap_or_else(|| panic!("{stdout}"));
        let first = rule["first_at"].as_i64().unwrap();
        assert!((t0 + 3000..t0 + 4000).contains(&first), "{source:?}: fired {} ms after the run began", first - t0);
        assert!(rule["summary"].as_str().unwrap().contains("orders"), "{rule}");
        assert!(found.iter().any(|f| f["kind"] == "high-utilization" && f["target"] == "orders-db"), "{stdout}");
        assert!(!found.iter().any(|f| f["target"] == "billing-db"), "{source:?}: {stdout}");
    }
}

#[test]
fn bad_rules_are_refused_at_load_naming_the_rule_and_the_field() {
    let err = refused(
        "[[metrics.rules]]\nname = \"backlog\"\nmetric = \"queue.depth\"\nop = \"=>\"\nthreshold = 100\n\
         [[metrics.rules]]\nname = \"slow-eu\"\nmetric = \"latency\"\nmatch = ['region=~\"eu-(\"']\nop = \">\"\nthreshold = 1\n",
        &[],
    );
    assert!(err.contains("metrics.rules[backlog].op") && err.contains("\"=>\""), "{err}");
    assert!(err.contains("metrics.rules[slow-eu].match") && err.contains("regular expression"), "{err}");
}

/// A deterministic normal deviate per index (Box–Muller over a hash).
fn noise(i: u64) -> f64 {
    let h = |x: u64| (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    let (u, v) = (h(2 * i + 1).max(1e-12), h(2 * i + 2));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[test]
fn a_target_three_times_slower_at_one_hour_is_found_and_an_aa_history_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = start(dir.path(), "");
    const HOUR: i64 = 3_600_000;
    let now = kaizen_host::store::now_ms();
    // The slow hour of day: the one five hours ago, so both days have it.
    let slow = ((now - 5 * HOUR).rem_euclid(24 * HOUR) / HOUR) as usize;
    let mut executions = Vec::new();
    let mut i = 0;
    // Two days of calls, one every two minutes per target.
    for k in 1..=48 * 30 {
        let at = now - k * 120_000;
        let hour = (at.rem_euclid(24 * HOUR) / HOUR) as usize;
        for (target, ms) in [("checkout", if hour == slow { 30.0 } else { 10.0 }), ("ledger", 10.0)] {
            i += 1;
            let duration = ms * (0.3 * noise(i)).exp();
            executions.push(json!({"target": target, "version": "1.0.0", "started_at": at,
                "duration_ms": duration, "outcome": "ok"}));
        }
    }
    push_ok(&s, json!({ "executions": executions }));
    let f = await_finding(&s, "checkout", "time-of-day-latency");
    assert_eq!(f["detector"], "time-of-day");
    assert!(evidence(&f, "test").starts_with("Welch's one-way ANOVA on ln(latency) by hour of day"), "{f}");
    assert_eq!(evidence(&f, "slowest"), format!("{slow:02}:00"), "{f}");
    let ratio: f64 = evidence(&f, "ratio").parse().unwrap();
    assert!((2.5..3.6).contains(&ratio), "{ratio}");
    assert!(evidence(&f, "p_value").parse::<f64>().unwrap() < 0.01, "{f}");
    for key in ["peak_latency", "quiet_latency", "peak_traffic", "quiet_traffic"] {
        assert!(!evidence(&f, key).is_empty(), "{key} in {f}");
    }
    // The same cycle judged the A/A target: the same latency at every hour.
    assert!(findings(&s, "ledger", "time-of-day-latency").is_empty());
    assert!(findings(&s, "ledger", "day-of-week-latency").is_empty());
}
