//! Findings have a lifecycle and every inaction a reason — through the real
//! `kaizen serve`, its HTTP API, its event stream and the CLI: a finding
//! resolves when its detector stops reporting it (`condition cleared`) or
//! when the unit version it is about no longer serves (`version retired`);
//! an acknowledged one stays out of the way until it recurs, then a new
//! occurrence opens linked to it; a closed one stays closed while it is
//! still reported; a finding on a target known only from telemetry says it
//! is not a hosted unit; an unchanged open finding is published once.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::{Value, json};

use crate::kaizen_bin::{Server, wait_for};

/// The detection window: a condition clears this long after its last bad
/// call.
const WINDOW_SECS: u64 = 3;

/// Cycles only when a test runs one (the scheduled interval is an hour),
/// a short window read from 1 s buckets, and findings resolved after two
/// cycles without a report.
fn start(dir: &Path) -> Server {
    start_with(dir, "")
}

/// [`start`] with `extra` appended to the configuration.
fn start_with(dir: &Path, extra: &str) -> Server {
    let config = dir.join("kaizen.toml");
    std::fs::write(
        &config,
        format!(
            "[loop]\ninterval_secs = 3600.0\nmin_interval_secs = 3600.0\nmax_interval_secs = 3600.0\n\
             window_secs = {WINDOW_SECS}\nbaseline_secs = {WINDOW_SECS}\nresolve_after_cycles = 2\n\
             [telemetry]\nbucket_secs = 1\n{extra}"
        ),
    )
    .unwrap();
    Server::start(dir, &[], &["--config", config.to_str().unwrap()])
}

/// Push `executions` through the telemetry API; it must take them.
fn ingest(s: &Server, executions: Vec<Value>) {
    let r = s
        .http
        .post(format!("{}/api/v1/telemetry", s.url))
        .bearer_auth(&s.invoke)
        .json(&json!({ "executions": executions }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

/// The findings of `kind` on `target`, all states.
fn findings_of(s: &Server, target: &str, kind: &str) -> Vec<Value> {
    let all = s.get("/api/v1/findings?limit=1000");
    all.as_array().unwrap().iter().filter(|f| f["target"] == target && f["kind"] == kind).cloned().collect()
}

/// Push `per_sec` successful calls a second of echo over `[from, to)`,
/// every tenth one to 2.0.0 (a canary at 10 %), the rest to 1.0.0.
fn push_split(s: &Server, from: i64, to: i64, per_sec: i64) {
    let gap = 1000 / per_sec;
    let executions: Vec<Value> = (0..(to - from) / gap)
        .map(|i| {
            let version = if i % 10 == 9 { "2.0.0" } else { "1.0.0" };
            json!({"target": "echo", "version": version, "started_at": from + i * gap, "duration_ms": 1.0,
                "outcome": "ok"})
        })
        .collect();
    ingest(s, executions);
}

/// A canary at 10 % serves a tenth of the demand: `throughput-drop` does
/// not call that a drop of the canary's. A real fall in demand is still
/// found, about each version serving.
#[test]
fn a_canary_share_is_no_throughput_drop_and_a_fall_in_demand_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kaizen.toml");
    std::fs::write(
        &config,
        format!(
            "[loop]\ninterval_secs = 3600.0\nmin_interval_secs = 3600.0\nmax_interval_secs = 3600.0\n\
             window_secs = {WINDOW_SECS}\nbaseline_secs = {WINDOW_SECS}\n\
             [telemetry]\nbucket_secs = 1\n\
             [safety.limits]\nrequired_proof = [\"validation\"]\ncanary_steps = [10.0, 100.0]\nstep_timeout_secs = 600\n"
        ),
    )
    .unwrap();
    let s = Server::start(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    s.deploy(guests::TEST_ECHO_V1.load().unwrap());
    s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    wait_for("echo 2.0.0 at 10 %", Duration::from_secs(60), || s.canary("echo") == Some(("2.0.0".into(), 10.0)));

    // 20 calls/s throughout, split 90/10 between the versions.
    let now = kaizen_host::store::now_ms();
    push_split(&s, now - 8_000, now, 20);
    cycle(&s);
    let drops = findings_of(&s, "echo", "throughput-drop");
    assert!(drops.is_empty(), "a canary's share is no drop: {drops:?}");

    // Later, 20 calls/s, then 5 calls/s for the last 3.5 s: both versions
    // serve a quarter of what their share served before.
    std::thread::sleep(Duration::from_secs(9));
    let now = kaizen_host::store::now_ms();
    push_split(&s, now - 8_000, now - 3_500, 20);
    push_split(&s, now - 3_500, now, 5);
    cycle(&s);
    let mut versions: Vec<String> =
        findings_of(&s, "echo", "throughput-drop").iter().map(|f| f["version"].as_str().unwrap().to_string()).collect();
    versions.sort();
    assert_eq!(versions, ["1.0.0", "2.0.0"], "a fall in demand is found about each version serving");
    assert_eq!(s.canary("echo"), Some(("2.0.0".into(), 10.0)), "the rollout still waits at its step");

    // The candidate taken back, 1.0.0 serves alone; the window still holds
    // the calls 2.0.0 served before. 20 calls/s throughout is no drop.
    let (ok, out, err) = s.cli(&["abort", "echo"]);
    assert!(ok, "{out}{err}");
    std::thread::sleep(Duration::from_secs(9));
    let now = kaizen_host::store::now_ms();
    push_as(&s, "2.0.0", now - 8_000, now - 1_500, 20);
    push_as(&s, "1.0.0", now - 1_500, now, 20);
    cycle(&s);
    let seen = |f: &Value| f["version"] == "1.0.0" && f["status"] != "resolved";
    let drop = findings_of(&s, "echo", "throughput-drop").into_iter().find(seen).unwrap();
    assert_eq!(drop["occurrences"], 1, "the calls a retired version served are demand too: {drop}");
}

/// Push `per_sec` successful calls a second of echo `version` over `[from, to)`.
fn push_as(s: &Server, version: &str, from: i64, to: i64, per_sec: i64) {
    let gap = 1000 / per_sec;
    let executions: Vec<Value> = (0..(to - from) / gap)
        .map(|i| {
            json!({"target": "echo", "version": version, "started_at": from + i * gap, "duration_ms": 1.0,
                "outcome": "ok"})
        })
        .collect();
    ingest(s, executions);
}

/// Push `n` calls of `target` `version`, every other one failing.
fn push_failures(s: &Server, target: &str, version: &str, n: i64) {
    let now = kaizen_host::store::now_ms();
    let executions: Vec<Value> = (0..n)
        .map(|i| {
            json!({"target": target, "version": version, "started_at": now - n + i, "duration_ms": 1.0,
                "outcome": if i % 2 == 0 { "error" } else { "ok" }, "error_class": "dependency"})
        })
        .collect();
    ingest(s, executions);
}

/// Run a cycle now; its report.
fn cycle(s: &Server) -> Value {
    let r = s.post("/api/v1/cycles", Value::Null);
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// Wait out the detection window and the 1 s bucket its start falls in
/// (the bad calls leave it), then run the two cycles without a report that
/// resolve a finding.
fn clear(s: &Server) {
    std::thread::sleep(Duration::from_secs(WINDOW_SECS + 1) + Duration::from_millis(500));
    cycle(s);
    cycle(s);
}

/// The current `low-success-rate` finding on `target` (newest first).
fn low_success(s: &Server, target: &str) -> Vec<Value> {
    let all = s.get("/api/v1/findings?limit=1000");
    all.as_array()
        .unwrap()
        .iter()
        .filter(|f| f["target"] == target && f["kind"] == "low-success-rate")
        .cloned()
        .collect()
}

fn finding(s: &Server, id: i64) -> Value {
    s.get(&format!("/api/v1/findings/{id}"))
}

/// The `finding` events about finding `id` seen on the stream so far.
fn finding_events(seen: &parking_lot::Mutex<Vec<Value>>, id: i64) -> Vec<Value> {
    seen.lock().iter().filter(|e| e["kind"] == "finding" && e["detail"]["id"] == id).cloned().collect()
}

/// Every event of the live stream, collected by a thread.
fn watch_events(s: &Server) -> Arc<parking_lot::Mutex<Vec<Value>>> {
    let stream = s.http.get(format!("{}/api/v1/events?token={}", s.url, s.admin)).send().unwrap();
    assert_eq!(stream.status(), 200);
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
            {
                keep.lock().push(v);
            }
        }
    });
    seen
}

#[test]
fn a_telemetry_only_finding_says_why_and_an_acknowledged_one_stays_quiet_until_it_recurs() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let events = watch_events(&s);

    // A service the host does not run: its finding says so, in the report,
    // on the finding, and in the CLI — not as an attempt.
    push_failures(&s, "outside", "4.2.0", 60);
    let report = cycle(&s);
    let found = low_success(&s, "outside");
    assert_eq!(found.len(), 1, "{found:?}");
    let f1 = found[0]["id"].as_i64().unwrap();
    assert_eq!((found[0]["status"].as_str(), &found[0]["version"]), (Some("open"), &Value::Null));
    let why = report["not_attempted"].as_array().unwrap().iter().find(|n| n["finding_id"] == f1).cloned();
    let why = why.unwrap_or_else(|| panic!("finding {f1} has a reason for no attempt: {report}"));
    assert!(why["reason"].as_str().unwrap().starts_with("not a hosted unit (telemetry only)"), "{why}");
    assert!(report["attempts"].as_array().unwrap().iter().all(|a| a["target"] != "outside"), "{report}");
    assert!(found[0]["inaction"].as_str().unwrap().starts_with("not a hosted unit (telemetry only)"));
    push_failures(&s, "outside", "4.2.0", 60);
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("no attempt on finding {f1} (low-success-rate on outside): not a hosted unit")),
        "{out}"
    );
    assert!(!out.contains("attempt on outside") && !out.contains("- no candidate"), "{out}");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok && out.contains("no attempt: not a hosted unit (telemetry only)"), "{out}{err}");

    // Reported again, unchanged: the stream told of it once.
    push_failures(&s, "outside", "4.2.0", 60);
    cycle(&s);
    assert_eq!(finding(&s, f1)["status"], "open");
    wait_for("the finding's event", Duration::from_secs(10), || !finding_events(&events, f1).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let published = finding_events(&events, f1);
    assert_eq!(published.len(), 1, "an unchanged open finding is published once: {published:?}");
    assert_eq!(published[0]["detail"]["new"], true);

    // Acknowledged through the CLI (audited): reported again, it stays
    // acknowledged, and nothing is published about it.
    let (ok, out, err) = s.cli(&["findings", "ack", &f1.to_string(), "--reason", "their on-call knows"]);
    assert!(ok && out.contains("acknowledged"), "{out}{err}");
    let audit = s.get("/api/v1/audit?target=outside");
    assert!(audit.as_array().unwrap().iter().any(|a| a["action"] == "finding-acknowledge"), "{audit}");
    push_failures(&s, "outside", "4.2.0", 60);
    cycle(&s);
    let acked = finding(&s, f1);
    assert_eq!(acked["status"], "acknowledged", "{acked}");
    assert!(acked["reason"].as_str().unwrap().contains("their on-call knows"), "{acked}");
    assert_eq!(low_success(&s, "outside").len(), 1, "no second finding while it is acknowledged");

    // Its condition clears: two cycles without a report resolve it.
    clear(&s);
    let resolved = finding(&s, f1);
    assert_eq!(
        (resolved["status"].as_str(), resolved["reason"].as_str()),
        (Some("resolved"), Some("condition cleared"))
    );
    wait_for("the resolution on the stream", Duration::from_secs(10), || {
        finding_events(&events, f1).iter().any(|e| e["detail"]["status"] == "resolved")
    });
    let (ok, out, _) = s.cli(&["findings", "list"]);
    assert!(ok && out.contains(&format!("{f1}: resolved: condition cleared")), "{out}");

    // It recurs: a new occurrence opens, linked to the old one.
    push_failures(&s, "outside", "4.2.0", 60);
    cycle(&s);
    let found = low_success(&s, "outside");
    assert_eq!(found.len(), 2, "{found:?}");
    let f2 = found[0]["id"].as_i64().unwrap();
    assert_eq!((found[0]["status"].as_str(), found[0]["previous"].as_i64()), (Some("open"), Some(f1)));

    // Closed, it stays closed while still reported.
    let r = s.post(&format!("/api/v1/findings/{f2}/close"), json!({"reason": "decommissioning it"}));
    assert_eq!(r.status(), 200);
    push_failures(&s, "outside", "4.2.0", 60);
    let report = cycle(&s);
    let closed = finding(&s, f2);
    assert_eq!(closed["status"], "closed", "{closed}");
    assert!(closed["occurrences"].as_i64().unwrap() >= 2, "{closed}");
    assert_eq!(low_success(&s, "outside").len(), 2, "no new occurrence while closed and reported");
    let why = report["not_attempted"].as_array().unwrap().iter().find(|n| n["finding_id"] == f2).cloned().unwrap();
    assert!(why["reason"].as_str().unwrap().starts_with("closed by an operator"), "{why}");
    // Acknowledging a closed finding is refused: it would hand it back to
    // the loop, and it stays closed.
    let r = s.post(&format!("/api/v1/findings/{f2}/acknowledge"), Value::Null);
    assert_eq!(r.status(), 409);
    assert!(r.text().unwrap().contains(&format!("finding {f2} is closed (by api: decommissioning it)")));
    assert_eq!(finding(&s, f2)["status"], "closed");
    // A resolved finding cannot be acted on, and says why.
    let r = s.post(&format!("/api/v1/findings/{f1}/acknowledge"), Value::Null);
    assert_eq!(r.status(), 409);
    assert!(r.text().unwrap().contains("resolved (condition cleared)"));
}

/// Too few calls for the loop to act on a finding by itself does not hold
/// an operator's queued candidate for its unit: the queue says the next
/// cycle takes it up, and the next cycle does, for the finding.
#[test]
fn a_queued_candidate_is_taken_up_though_its_units_finding_has_too_few_calls() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(dir.path(), "[safety.limits]\nmin_executions = 1000\nrequired_proof = [\"validation\"]\n");
    s.deploy(guests::TEST_ECHO_V1.load().unwrap());
    push_failures(&s, "echo", "1.0.0", 60);
    let report = cycle(&s);
    // The target's top finding had its turn and was turned down.
    let turned_down =
        report["not_attempted"].as_array().unwrap().iter().find(|n| n["why"]["code"] == "denied").cloned();
    let f = turned_down.as_ref().map(|n| n["finding_id"].clone());
    assert!(
        turned_down.is_some_and(|n| n["target"] == "echo" && n["reason"].as_str().unwrap().contains("min_executions")),
        "{report}"
    );

    s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    // (The upload wakes the loop, whose cycle may take it up first.)
    let waiting = s.get("/api/v1/candidates");
    if let Some(w) = waiting[0]["waiting"].as_str() {
        assert!(w.starts_with("taken up by the next cycle") || w.starts_with("taken up by improvement"), "{waiting}");
    }
    let improvement = || s.get("/api/v1/improvements?target=echo").as_array().unwrap().first().cloned();
    wait_for("echo 2.0.0 to be taken up", Duration::from_secs(30), || {
        improvement().is_some() || {
            cycle(&s);
            improvement().is_some()
        }
    });
    let imp = improvement().unwrap();
    assert_eq!(Some(&imp["finding_id"]), f.as_ref(), "taken up for the finding: {imp}");
    assert!(s.get("/api/v1/candidates").as_array().unwrap().is_empty());
}

#[test]
fn a_finding_about_a_version_resolves_when_that_version_retires() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy(guests::TEST_ECHO_V1.load().unwrap());
    push_failures(&s, "echo", "1.0.0", 60);
    let report = cycle(&s);
    let found = low_success(&s, "echo");
    assert_eq!(found.len(), 1, "{found:?}");
    let f = found[0]["id"].as_i64().unwrap();
    assert_eq!(found[0]["version"], "1.0.0", "the finding names the version it is about");
    // A hosted unit with no candidate: the reason names where to put one
    // (on the target's top finding; the others wait their turn).
    let watch_dir = s.get("/api/v1/status")["watch_dir"].as_str().unwrap().to_string();
    let reasons: Vec<&str> = report["not_attempted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["target"] == "echo")
        .map(|n| n["reason"].as_str().unwrap())
        .collect();
    let no_candidate = format!("no candidate: drop a module into {watch_dir}, POST /api/v1/plugins?mode=candidate");
    assert_eq!(reasons.iter().filter(|r| r.starts_with(&no_candidate)).count(), 1, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.starts_with(&no_candidate) || r.starts_with("one attempt per target per cycle")),
        "{reasons:?}"
    );

    // Snoozed from the CLI: the loop says so and leaves it alone.
    let (ok, _, err) = s.cli(&["findings", "snooze", &f.to_string(), "--for", "5x"]);
    assert!(!ok && err.contains("the unit must be s, m, h or d"), "{err}");
    let (ok, _, err) = s.cli(&["findings", "snooze", &f.to_string(), "--for", "400d"]);
    assert!(!ok && err.contains("`400d` is too long: a duration is at most a year (366d)"), "{err}");
    // The API holds the same limit for any client.
    let r = s.post(&format!("/api/v1/findings/{f}/snooze"), json!({"for_secs": 34_560_000}));
    let (status, body) = (r.status().as_u16(), r.text().unwrap());
    assert!(status == 400 && body.contains("a snooze lasts 1 to 31622400 seconds (a year), not 34560000"), "{body}");
    let (ok, out, err) = s.cli(&["findings", "snooze", &f.to_string(), "--for", "2h", "--reason", "deploying a fix"]);
    assert!(ok && out.contains("snoozed"), "{out}{err}");
    assert!(finding(&s, f)["snoozed_until"].as_i64().unwrap() > kaizen_host::store::now_ms() + 7_000_000);
    push_failures(&s, "echo", "1.0.0", 60);
    let report = cycle(&s);
    let why = report["not_attempted"].as_array().unwrap().iter().find(|n| n["finding_id"] == f).cloned().unwrap();
    assert!(why["reason"].as_str().unwrap().starts_with("snoozed by an operator until"), "{why}");
    let audit = s.get("/api/v1/audit?target=echo");
    assert!(audit.as_array().unwrap().iter().any(|a| a["action"] == "finding-snooze"), "{audit}");

    // 2.0.0 takes over: the finding about 1.0.0 resolves at the next cycle.
    s.deploy(guests::TEST_ECHO_V2.load().unwrap());
    let report = cycle(&s);
    assert!(report["findings_resolved"].as_u64().unwrap() >= 1, "{report}");
    let retired = finding(&s, f);
    assert_eq!((retired["status"].as_str(), retired["reason"].as_str()), (Some("resolved"), Some("version retired")));
    let audit = s.get("/api/v1/audit?target=echo");
    assert!(audit.as_array().unwrap().iter().any(|a| a["action"] == "finding-resolved"), "{audit}");
}
