//! A caller's call is one call however many attempts recovery made for it,
//! through the real `kaizen serve`: a unit that fails transiently and is
//! retried into an answer records one call with its attempts and
//! `recovered`, counted apart in the units view, `kaizen units` and
//! `/metrics`; and the demo's narrated rate and failure share are the ones
//! its detectors report.

use std::time::Duration;

use kaizen_plugins as guests;

use crate::kaizen_bin::{Server, wait_for};

/// The number after the last `key` in `line`, up to the next character
/// that is not part of a number.
fn number_after(line: &str, key: &str) -> f64 {
    let rest = &line[line.rfind(key).unwrap_or_else(|| panic!("no `{key}` in: {line}")) + key.len()..];
    let n: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    n.trim_end_matches('.').parse().unwrap_or_else(|_| panic!("no number after `{key}` in: {line}"))
}

/// The number just before `key` in `line`.
fn number_before(line: &str, key: &str) -> f64 {
    let head = &line[..line.find(key).unwrap_or_else(|| panic!("no `{key}` in: {line}"))];
    let n: String = head.trim_end().chars().rev().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    n.chars().rev().collect::<String>().parse().unwrap_or_else(|_| panic!("no number before `{key}` in: {line}"))
}

fn within_10_pct(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() <= 0.1 * want.abs(), "{what}: {got} is not within 10 % of {want}");
}

#[test]
fn a_retried_call_is_one_call_with_its_attempts_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kaizen.toml");
    // Retries after 20 ms, then 40 ms: `flaky` answers on its third attempt.
    std::fs::write(&cfg, "[runtime.plugin_config.backoff-retry]\nbase_ms = \"20\"\njitter_pct = \"0\"\n").unwrap();
    let s = Server::start(dir.path(), &[], &["--config", cfg.to_str().unwrap()]);
    s.deploy(guests::TEST_FLAKY.load().unwrap());
    for i in 0..5 {
        let (status, _, body) = s.invoke("flaky", &format!("hello {i}"));
        assert_eq!((status, body.as_str()), (200, format!("hello {i}").as_str()), "retries answer the call");
    }

    let units = s.get("/api/v1/units");
    let flaky = units.as_array().unwrap().iter().find(|u| u["unit"] == "flaky").expect("flaky in the units view");
    let n = |k: &str| flaky[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {flaky}"));
    assert_eq!(
        (n("calls_total"), n("successes_total"), n("unit_errors_total"), n("attempts_total"), n("recovered_total")),
        (5, 5, 0, 15, 5),
        "five calls, each answered on its third attempt: {flaky}"
    );
    assert_eq!((n("calls"), n("unit_errors"), n("attempts"), n("recovered")), (5, 0, 15, 5), "{flaky}");

    let (ok, out, err) = s.cli(&["units"]);
    assert!(ok, "{err}");
    let header = out.lines().find(|l| l.starts_with("UNIT")).expect("a table");
    assert!(header.contains("ATTEMPTS") && header.contains("RECOVERED"), "{out}");
    let row: Vec<&str> =
        out.lines().find(|l| l.starts_with("flaky")).expect("a flaky row").split_whitespace().collect();
    assert_eq!(
        (row[3], row[4], &row[row.len() - 3..]),
        ("5", "5", &["15", "5", "0"][..]),
        "calls, answered, then attempts, recovered and refused: {out}"
    );

    let metrics = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.metrics).send().unwrap().text().unwrap();
    for (name, want) in
        [("kaizen_calls_total", 5), ("kaizen_call_attempts_total", 15), ("kaizen_calls_recovered_total", 5)]
    {
        let line = format!("{name}{{unit=\"flaky\",version=\"0.1.0\"}} {want}");
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in\n{metrics}");
    }

    // A force with a duration it cannot have is refused, naming why, and
    // leaves the breaker as it was.
    for (body, why) in [
        (serde_json::json!({"state": "open", "ms": 0}), "`ms` = 0: a breaker is forced open for 1 to"),
        (serde_json::json!({"state": "open", "ms": u64::MAX}), "a breaker is forced open for 1 to 31622400000 ms"),
        (serde_json::json!({"state": "closed", "ms": 5000}), "`ms` is for `open` only"),
    ] {
        let r = s.post("/api/v1/breakers/flaky", body.clone());
        assert_eq!(r.status(), 422, "{body}");
        let text = r.text().unwrap();
        assert!(text.contains(why) && text.contains("\"invalid-breaker-force\""), "{body}: {text}");
    }
    assert!(s.get("/api/v1/breakers").as_array().unwrap().iter().all(|b| b["state"] != "open"));

    // Calls an open circuit refuses were not made: the caller's error is
    // counted, apart from the calls.
    let r = s.post("/api/v1/breakers/flaky", serde_json::json!({"state": "open", "ms": 60_000}));
    assert_eq!(r.status(), 200);
    for _ in 0..2 {
        let (status, _, body) = s.invoke("flaky", "refused");
        assert_eq!(status, 503, "{body}");
    }
    // The CLI shows the open breaker, in the list and in the status, and
    // closes it.
    let (ok, out, err) = s.cli(&["breakers", "list"]);
    let row = out.lines().find(|l| l.starts_with("flaky")).unwrap_or_default();
    assert!(ok && row.contains("open") && row.contains(" s more: forced through the API"), "{out}{err}");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok && out.contains("breaker of flaky open ("), "{out}{err}");
    let (ok, out, err) = s.cli(&["breakers", "open", "flaky", "--for", "0s"]);
    assert!(!ok && err.contains("`0s` is no time"), "{out}{err}");
    let (ok, out, err) = s.cli(&["breakers", "close", "flaky", "--reason", "seen"]);
    assert!(ok && out.contains("flaky: breaker closed"), "{out}{err}");
    let (ok, out, _) = s.cli(&["status"]);
    assert!(ok && !out.contains("breaker of flaky open"), "{out}");
    let units = s.get("/api/v1/units");
    let flaky = units.as_array().unwrap().iter().find(|u| u["unit"] == "flaky").unwrap();
    assert_eq!((&flaky["calls_total"], &flaky["refused_total"], &flaky["refused"]), (&5.into(), &2.into(), &2.into()));
    // The tables show them too, beside the calls.
    let (ok, out, err) = s.cli(&["units"]);
    let header = out.lines().find(|l| l.starts_with("UNIT")).unwrap_or_default();
    let row: Vec<&str> = out.lines().find(|l| l.starts_with("flaky")).unwrap_or_default().split_whitespace().collect();
    assert!(ok && header.ends_with("REFUSED") && row.last() == Some(&"2"), "{out}{err}");
    let metrics = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.metrics).send().unwrap().text().unwrap();
    for line in [
        "kaizen_calls_total{unit=\"flaky\",version=\"0.1.0\"} 5",
        "kaizen_calls_refused_total{unit=\"flaky\",version=\"0.1.0\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in\n{metrics}");
    }
    assert!(s.stop().success());

    // The store holds one row per call, with its attempts.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows = rt.block_on(async {
        let db = kaizen_host::store::Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
        kaizen_host::store::executions::recent(&db, "flaky", 100).await.unwrap()
    });
    assert_eq!(rows.len(), 5, "one execution per call, not per attempt");
    assert!(rows.iter().all(|r| r.attempts == 3 && r.recovered && r.execution.error_class.is_none()), "{rows:?}");
}

#[test]
fn the_demo_narrates_the_rate_and_failure_share_its_detectors_report() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("KAIZEN_LOG", "warn")], &["--demo"]);
    let stdout = s.stdout.clone();
    let find = |pat: &str| stdout.lock().iter().find(|l| l.contains(pat)).cloned();
    wait_for("the demo to tell what its detectors counted", Duration::from_secs(120), || {
        find("counted by the detectors:").is_some()
            && find("finding   low-success-rate on calculator").is_some()
            && find("finding   failure-burst on calculator").is_some()
    });
    let told: Vec<String> = stdout.lock().clone();
    let counted = find("counted by the detectors:").unwrap();
    // "counted by the detectors: calculator 1.0.0 had N calls in S s (R calls/s), F failed (P %)"
    let (calls, rate, failed, share) = (
        number_before(&counted, "calls in"),
        number_after(&counted, "s ("),
        number_before(&counted, "failed"),
        number_after(&counted, "failed ("),
    );
    let secs = number_before(&counted, "s (");
    within_10_pct("the narrated rate against its calls and time", rate, calls / secs);
    // The generator keeps to the stated rate whatever the calls take: the
    // calls counted, those an open circuit refused and those it had to drop
    // (every caller busy, as on a starved machine) add up to the schedule.
    let stated = told.iter().find(|l| l.contains("calls/s; a third of them")).expect("the stated rate");
    let made = told.iter().find(|l| l.contains("the generator has made")).expect("what the generator made");
    let (refused, dropped) = (number_after(made, "the open circuit refused"), number_before(made, "(calls due while"));
    within_10_pct(
        &format!("the calls counted, refused and dropped per second against the stated rate, in {told:#?}"),
        (calls + refused + dropped) / secs,
        number_before(stated, "calls/s"),
    );
    within_10_pct("the narrated failure share against a third", share, 100.0 / 3.0);

    // What the first findings say, in the detectors' own words.
    let low = find("finding   low-success-rate on calculator").unwrap();
    let (success_pct, seen_calls) = (number_after(&low, "succeeds in"), number_after(&low, "% of"));
    within_10_pct("the low-success-rate finding's calls", seen_calls, calls);
    within_10_pct("the low-success-rate finding's failure share", 100.0 - success_pct, share);
    let burst = find("finding   failure-burst on calculator").unwrap();
    within_10_pct("the failure-burst finding's failures", number_before(&burst, "failures in"), failed);
    assert!(
        told.iter().any(|l| l.contains("a call counts once: recovery made")),
        "the attempts are told apart from the calls: {told:#?}"
    );
}
