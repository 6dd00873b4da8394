//! Change windows and freezes through the real `kaizen serve`, real units
//! and real HTTP traffic: outside its rollout window a proven candidate
//! waits (and `kaizen status` says until when), then starts by itself when
//! the window opens; a declared freeze holds a rollout at its step past its
//! step budget, and the rollout goes on to its promotion when the freeze
//! lapses, without a timeout verdict; bad windows and freezes are refused
//! when the configuration loads.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::{Value, json};

use crate::kaizen_bin::{Calls, Server, refused, wait_for};

fn config(dir: &Path, step_timeout_secs: u64, extra: &str) -> String {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        format!(
            "[loop]\nanalysis_ms = 100\n\
             [safety.limits]\nrequired_proof = [\"validation\"]\ncanary_steps = [10.0, 50.0, 100.0]\n\
             step_timeout_secs = {step_timeout_secs}\nbake_secs = 1\n\
             [safety.limits.judge]\nthreshold = 0.5\nalpha = 0.01\nmin_samples = 30\nerror_points = 20.0\n{extra}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn improvements(s: &Server) -> Vec<Value> {
    s.get("/api/v1/improvements?target=echo").as_array().unwrap().clone()
}

fn audit_actions(s: &Server) -> Vec<String> {
    let audit = s.get("/api/v1/audit?target=echo&limit=200");
    audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap().to_string()).collect()
}

/// `HH:MM:SS` in UTC, `secs` from now.
fn utc_in(secs: i64) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + secs;
    let s = t.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A host whose one rollout window is `window`, serving echo 1.0.0 with
/// 2.0.0 uploaded as a candidate, once the loop has proven 2.0.0 and parked
/// it (`proposed`) until the window opens.
fn parked_behind(dir: &Path, window: &str) -> Server {
    let cfg = config(dir, 600, &format!("[safety.schedule]\nwindows = [\"{window}\"]\n"));
    let s = Server::start(dir, &[], &["--config", &cfg]);
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    wait_for("the candidate to be proven and wait", Duration::from_secs(60), || {
        improvements(&s).first().is_some_and(|i| i["state"] == "proposed")
    });
    s
}

#[test]
fn outside_the_rollout_window_a_proven_candidate_waits_and_starts_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    // A daily window opening 20 s after the host starts (second precision
    // keeps the test short; operators write HH:MM).
    let window = format!("* {}-{} UTC", utc_in(20), utc_in(20 + 1800));
    let s = parked_behind(dir.path(), &window);
    // Proven, then parked: no split, and the reason names the window.
    let imp = &improvements(&s)[0];
    let reason = imp["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("proven; waits to roll out: outside the rollout window") && reason.contains(&window),
        "{imp}"
    );
    assert!(imp["proof"].as_array().is_some_and(|p| !p.is_empty()), "it was proven first: {imp}");
    assert_eq!(s.canary("echo"), None, "no rollout outside the window");
    let status = s.get("/api/v1/status");
    assert_eq!(status["rollout_gates"][0]["state"], "outside-window", "{status}");
    assert_eq!(status["waiting"][0]["improvement"], imp["id"], "{status}");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("rollouts: outside the rollout window") && out.contains("the next opens in"),
        "kaizen status says why nothing rolls out:\n{out}"
    );
    assert!(out.contains(&format!("improvement {} (echo 2.0.0) proven; waits to roll out", imp["id"])), "{out}");
    assert!(audit_actions(&s).contains(&"rollout-waiting".to_string()));

    // The window opens: the same improvement starts its rollout, unproven
    // again, without a cycle being asked for.
    wait_for("the rollout to start when the window opens", Duration::from_secs(60), || s.canary("echo").is_some());
    let all = improvements(&s);
    assert_eq!(all.len(), 1, "the waiting improvement rolls out, not a new one: {all:?}");
    assert_eq!(all[0]["id"], imp["id"]);
    let traffic = Calls::start(&s, "echo", |_| "ping".into());
    wait_for("echo 2.0.0 promoted", Duration::from_secs(120), || improvements(&s)[0]["state"] == "promoted");
    drop(traffic);
    assert_eq!(s.get("/api/v1/status")["rollout_gates"][0]["state"], "open");
    // Paused, no rollout starts whatever the window says, and status says so.
    assert_eq!(s.post("/api/v1/control/pause", json!({"reason": "maintenance"})).status(), 200);
    let gate = &s.get("/api/v1/status")["rollout_gates"][0];
    assert_eq!(gate["state"], "held", "{gate}");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(
        ok && out.contains("rollouts: no rollout starts: the loop is paused") && out.contains("maintenance"),
        "{out}{err}"
    );
    assert_eq!(s.post("/api/v1/control/resume", json!({"reason": "done"})).status(), 200);
    assert_eq!(s.get("/api/v1/status")["rollout_gates"][0]["state"], "open");
}

#[test]
fn a_proven_candidate_waiting_for_its_window_can_be_aborted() {
    let dir = tempfile::tempdir().unwrap();
    // A window that opens in twelve hours: the candidate would wait all day.
    let s = parked_behind(dir.path(), &format!("* {}-{} UTC", utc_in(12 * 3600), utc_in(12 * 3600 + 60)));
    let id = improvements(&s)[0]["id"].clone();
    // Not the queue's any more (withdraw points at abort), and abort works.
    let (ok, _, err) = s.cli(&["candidates", "withdraw", "echo", "2.0.0"]);
    assert!(!ok && err.contains("kaizen abort echo"), "{err}");
    let (ok, out, err) = s.cli(&["abort", "echo", "--reason", "not this week"]);
    assert!(ok && out.contains("aborted") && out.contains("not this week"), "{out}{err}");
    let imp = &improvements(&s)[0];
    assert_eq!((&imp["id"], imp["state"].as_str()), (&id, Some("aborted")), "{imp}");
    assert!(audit_actions(&s).contains(&"rollout-aborted".to_string()));
    // Gone for good: the next cycle takes nothing up, and echo 1.0.0 serves.
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    assert_eq!(improvements(&s).len(), 1, "{:?}", improvements(&s));
    assert!(s.get("/api/v1/status")["waiting"].as_array().is_none_or(|w| w.is_empty()));
    assert_eq!(s.serving("echo").as_deref(), Some("1.0.0"));
    let (ok, _, err) = s.cli(&["abort", "echo"]);
    assert!(!ok && err.contains("no proven candidate of it waits"), "{err}");
}

/// An operator who deploys the waiting candidate's own bytes directly has
/// done its rollout: the improvement ends then, aborted and counted, with
/// nothing queued again — not proven afresh only to be rejected as the
/// version already serving.
#[test]
fn deploying_a_waiting_candidate_directly_ends_its_improvement() {
    let dir = tempfile::tempdir().unwrap();
    let s = parked_behind(dir.path(), &format!("* {}-{} UTC", utc_in(12 * 3600), utc_in(12 * 3600 + 60)));
    let id = improvements(&s)[0]["id"].clone();
    let v2 = dir.path().join("echo-v2.wasm");
    std::fs::write(&v2, guests::TEST_ECHO_V2.load().unwrap()).unwrap();
    let (ok, out, err) = s.cli(&["deploy", "--now", v2.to_str().unwrap()]);
    assert!(ok && out.contains("echo 2.0.0"), "{out}{err}");
    let imp = &improvements(&s)[0];
    assert_eq!((&imp["id"], imp["state"].as_str()), (&id, Some("aborted")), "{imp}");
    assert!(imp["reason"].as_str().unwrap().starts_with("deployed directly by api: echo 2.0.0 serves"), "{imp}");
    assert!(audit_actions(&s).contains(&"rollout-aborted".to_string()));
    // The next cycle takes nothing up: no new improvement, nothing
    // rejected, and the status's figures add up.
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    assert_eq!(improvements(&s).len(), 1, "{:?}", improvements(&s));
    assert!(s.get("/api/v1/candidates").as_array().unwrap().is_empty());
    assert!(s.get("/api/v1/status")["waiting"].as_array().is_none_or(|w| w.is_empty()));
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1 attempted, 0 promoted, 0 rolled back, 0 inconclusive, 1 aborted, 0 rejected or failed"),
        "{out}"
    );
    assert_eq!(s.serving("echo").as_deref(), Some("2.0.0"));
}

#[test]
fn a_freeze_holds_a_rollout_at_its_step_and_it_resumes_after_without_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // An 8 s step budget, and a freeze of 20 s declared mid-step: the
    // check 12 s into the freeze is past the budget, and each step keeps
    // enough of it on a busy machine.
    let cfg = config(dir.path(), 8, "");
    let s = Server::start(dir.path(), &[], &["--config", &cfg]);
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    wait_for("echo 2.0.0 at 10 %", Duration::from_secs(60), || s.canary("echo") == Some(("2.0.0".into(), 10.0)));
    let (ok, out, err) = s.cli(&["freeze", "--for", "20s", "--reason", "release weekend"]);
    assert!(ok && out.contains("change freeze until"), "{out}{err}");
    let traffic = Calls::start(&s, "echo", |_| "ping".into());
    std::thread::sleep(Duration::from_secs(12));
    let imp = &improvements(&s)[0];
    assert_eq!(imp["state"], "canary", "frozen: neither timed out nor moved on: {imp}");
    let reason = imp["reason"].as_str().unwrap();
    assert!(reason.starts_with("change freeze (release weekend)") && reason.ends_with("holding at 10%"), "{imp}");
    assert_eq!(s.canary("echo"), Some(("2.0.0".into(), 10.0)));
    let status = s.get("/api/v1/status");
    assert_eq!(status["rollout_gates"][0]["state"], "frozen", "{status}");
    let (_, out, _) = s.cli(&["status"]);
    assert!(out.contains("rollouts: change freeze (release weekend); it ends in"), "{out}");

    // The freeze lapses by itself; the rollout carries on to its promotion.
    wait_for("echo 2.0.0 promoted after the freeze", Duration::from_secs(120), || {
        let imp = improvements(&s)[0].clone();
        let state = imp["state"].as_str().unwrap().to_string();
        assert!(!["rolled-back", "inconclusive", "failed"].contains(&state.as_str()), "ended {state}: {imp}");
        state == "promoted"
    });
    drop(traffic);
    let actions = audit_actions(&s);
    for a in ["rollout-held", "rollout-resumed", "promoted"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
    assert_eq!(s.get("/api/v1/status")["loop"]["improvements_inconclusive"], 0);

    // A freeze declared and lifted by hand; bad lengths are refused.
    assert_eq!(
        s.http.put(format!("{}/api/v1/freeze", s.url)).bearer_auth(&s.admin).json(&json!({})).send().unwrap().status(),
        422
    );
    let r = s
        .http
        .put(format!("{}/api/v1/freeze", s.url))
        .bearer_auth(&s.admin)
        .json(&json!({"for_secs": 0}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().unwrap().contains("`for_secs` = 0"));
    let (ok, out, err) = s.cli(&["freeze", "--for", "0s"]);
    assert!(!ok && err.contains("--for") && err.contains("`0s` is no time"), "{out}{err}");
    let (ok, out, err) = s.cli(&["freeze", "--for", "1.5h"]);
    assert!(!ok && err.contains("write a whole number of one unit (e.g. 90m"), "{out}{err}");
    let (ok, _, _) = s.cli(&["freeze", "--for", "1h"]);
    assert!(ok);
    assert_eq!(s.get("/api/v1/status")["rollout_gates"][0]["state"], "frozen");
    // A second freeze says which one it replaces; a lift, which it lifted.
    let (ok, out, _) = s.cli(&["freeze", "--for", "2h", "--reason", "release weekend"]);
    assert!(
        ok && out.contains("it replaces the change freeze that was to hold until ")
            && out.contains("(change freeze from the CLI)"),
        "{out}"
    );
    let (ok, out, _) = s.cli(&["freeze", "--lift"]);
    assert!(
        ok && out.contains("lifted the change freeze that was to hold until ") && out.contains("(release weekend)"),
        "{out}"
    );
    assert_eq!(s.get("/api/v1/status")["rollout_gates"][0]["state"], "open");
    let (ok, out, _) = s.cli(&["freeze", "--lift"]);
    assert!(ok && out.contains("no declared change freeze to lift"), "{out}");
    // With --json, the answer of the change is printed, and the change made.
    let (ok, out, err) = s.cli(&["freeze", "--for", "1h", "--json"]);
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert!(ok && answer["freeze_until"].is_i64(), "{out}");
    assert_eq!(s.get("/api/v1/status")["rollout_gates"][0]["state"], "frozen");
}

#[test]
fn bad_windows_and_freezes_are_refused_when_the_configuration_loads() {
    let e = refused("[safety.schedule]\nwindows = [\"Mon-Fry 02:00-05:00 UTC\"]\n", &[]);
    assert!(e.contains("`Fry` is not a day") && e.contains("Mon-Fry 02:00-05:00 UTC"), "{e}");
    let e = refused("[safety.schedule]\nwindows = [\"Mon 02:00-05:00 Mars/Olympus\"]\n", &[]);
    assert!(e.contains("unknown time zone `Mars/Olympus`"), "{e}");
    let e = refused(
        "[[safety.schedule.freezes]]\nfrom = \"2026-12-27T00:00:00Z\"\nto = \"2026-12-24T00:00:00Z\"\nreason = \"x\"\n",
        &[],
    );
    assert!(e.contains("safety.schedule.freezes[0]") && e.contains("is not before"), "{e}");
    let e = refused("[safety.targets.echo.schedule]\nfreezes = [{ reason = \"no times\" }]\n", &[]);
    assert!(e.contains("safety.targets.echo.schedule.freezes[0]") && e.contains("needs `from` and `to`"), "{e}");
}
