//! The rollout owns its slot, and its state is durable — through the real
//! `kaizen serve`, real units and real HTTP traffic: a restart (SIGTERM or
//! kill -9) mid-canary resumes the rollout at its step; an operator's deploy
//! or rollback during a rollout is refused until the rollout is aborted; a
//! pause holds a step and its clock; a step without traffic ends
//! inconclusive, not as a judge failure; a duplicate of the candidate in
//! flight changes nothing; a candidate queued behind a rollout outlives
//! kill -9.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::Value;

use crate::kaizen_bin::{Server, wait_for};

/// Short timings and a judge that decides quickly on identical versions;
/// `step_timeout_secs` is each test's own.
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

fn start(dir: &Path, config: &str) -> Server {
    Server::start(dir, &[], &["--config", config])
}

/// Upload `bytes` with `mode`; (status, body).
fn upload(s: &Server, bytes: &[u8], mode: &str) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?mode={mode}", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn improvements(s: &Server, target: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/improvements?target={target}")).as_array().unwrap().clone()
}

/// Calls from two threads until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(s: &Server, unit: &str, body: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|_| {
                let (stop, url, token, unit, body) =
                    (stop.clone(), s.url.clone(), s.invoke.clone(), unit.to_string(), body.to_string());
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let _ = http
                            .post(format!("{url}/api/v1/units/{unit}/invoke"))
                            .bearer_auth(&token)
                            .body(body.clone())
                            .send();
                    }
                })
            })
            .collect();
        Traffic { stop, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Deploy echo 1.0.0, hand echo 2.0.0 to the loop, and wait until its
/// rollout holds the slot at the first step.
fn echo_candidate_at_first_step(s: &Server) -> i64 {
    let (status, body) = upload(s, &guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(s, &guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    wait_for("echo 2.0.0 at 10 %", Duration::from_secs(60), || s.canary("echo") == Some(("2.0.0".into(), 10.0)));
    improvements(s, "echo")[0]["id"].as_i64().unwrap()
}

fn kill9(mut s: Server) {
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

fn audit_actions(s: &Server, target: &str) -> Vec<String> {
    let audit = s.get(&format!("/api/v1/audit?target={target}&limit=200"));
    audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_restart_mid_canary_resumes_the_rollout_at_its_step() {
    let dir = tempfile::tempdir().unwrap();
    // No traffic, and a step budget far longer than the test: the rollout
    // waits at 10 % for evidence across both restarts.
    let cfg = config(dir.path(), 600, "");
    let s = start(dir.path(), &cfg);
    let id = echo_candidate_at_first_step(&s);

    // SIGTERM, then restart on the same data directory.
    assert!(s.stop().success());
    let s = start(dir.path(), &cfg);
    assert_eq!(s.canary("echo"), Some(("2.0.0".into(), 10.0)), "the split is back after SIGTERM");
    let rollouts = s.get("/api/v1/rollouts");
    assert_eq!(rollouts[0]["improvement"], id, "a rollout drives the split again: {rollouts}");
    assert!(audit_actions(&s, "echo").contains(&"rollout-resumed".to_string()));

    // kill -9, then restart.
    kill9(s);
    let s = start(dir.path(), &cfg);
    assert_eq!(s.canary("echo"), Some(("2.0.0".into(), 10.0)), "the split is back after kill -9");
    assert_eq!(s.get("/api/v1/rollouts")[0]["improvement"], id);
    // The history tells the first step from the two taken again.
    let history = s.get("/api/v1/deployments/echo/history");
    let reasons: Vec<&str> = history.as_array().unwrap().iter().filter_map(|h| h["reason"].as_str()).collect();
    let count = |r: &str| reasons.iter().filter(|x| **x == r).count();
    assert_eq!((count("canary at 10%"), count("canary at 10%, resumed")), (1, 2), "{reasons:?}");

    // With traffic the resumed rollout reaches its verdict and closes the
    // same improvement.
    let traffic = Traffic::start(&s, "echo", "ping");
    wait_for("the resumed rollout to promote echo 2.0.0", Duration::from_secs(120), || {
        improvements(&s, "echo")[0]["state"] == "promoted"
    });
    drop(traffic);
    let all = improvements(&s, "echo");
    assert_eq!(all.len(), 1, "one improvement, resumed, not a new one: {all:?}");
    assert_eq!(all[0]["id"], id);
    assert_eq!(s.serving("echo").as_deref(), Some("2.0.0"));
    assert!(s.canary("echo").is_none());
    assert_eq!(s.get("/api/v1/rollouts").as_array().unwrap().len(), 0);
}

#[test]
fn a_rollout_owns_its_slot_until_an_operator_aborts_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 600, "");
    let s = start(dir.path(), &cfg);
    let v2 = guests::UNIT_CALCULATOR_V2.load().unwrap();
    let (status, body) = upload(&s, &v2, "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    wait_for("calculator 2.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("2.0.0".into(), 10.0))
    });
    let id = improvements(&s, "calculator")[0]["id"].as_i64().unwrap();

    // The same bytes again, through the API and the CLI: nothing changes.
    let (status, body) = upload(&s, &v2, "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("unchanged")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains(&format!("improvement {id}")), "{body}");
    let file = dir.path().join("calculator-v2.wasm");
    std::fs::write(&file, &v2).unwrap();
    let (ok, out, err) = s.cli(&["deploy", file.to_str().unwrap()]);
    assert!(ok && out.contains("unchanged"), "{out}{err}");

    // An operator's deploy and rollback are refused, naming the rollout and
    // how to abort it.
    let (status, body) = upload(&s, &guests::UNIT_CALCULATOR_V3.load().unwrap(), "deploy");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "rollout-in-flight", "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains(&format!("improvement {id}")) && msg.contains("kaizen abort calculator"), "{msg}");
    let (ok, out, err) = s.cli(&["rollback", "calculator"]);
    assert!(!ok && err.contains("kaizen abort calculator"), "{out}{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(s.canary("calculator"), Some(("2.0.0".into(), 10.0)), "the rollout is untouched");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok && out.contains("kaizen abort calculator"), "{out}{err}");

    // Abort: the candidate is taken back, the improvement ends aborted.
    let (ok, out, err) = s.cli(&["abort", "calculator", "--reason", "release freeze"]);
    assert!(ok && out.contains("aborted"), "{out}{err}");
    assert!(s.canary("calculator").is_none());
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));
    let imp = &improvements(&s, "calculator")[0];
    assert_eq!((imp["id"].as_i64(), imp["state"].as_str()), (Some(id), Some("aborted")), "{imp}");
    assert!(imp["reason"].as_str().unwrap().contains("release freeze"), "{imp}");
    assert!(audit_actions(&s, "calculator").contains(&"rollout-aborted".to_string()));
    let (ok, _, err) = s.cli(&["abort", "calculator"]);
    assert!(!ok && err.contains("no rollout of `calculator`"), "{err}");

    // Now the operator's deploy goes through, and nothing undoes it.
    let (status, body) = upload(&s, &guests::UNIT_CALCULATOR_V3.load().unwrap(), "deploy");
    assert_eq!((status, body["result"].as_str()), (200, Some("deployed")), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.serving("calculator").as_deref(), Some("3.0.0"));
    let loop_stats = &s.get("/api/v1/status")["loop"];
    assert_eq!(loop_stats["improvements_rolled_back"], 0, "{loop_stats}");
    assert_eq!(loop_stats["improvements_aborted"], 1, "{loop_stats}");
}

#[test]
fn a_pause_holds_the_step_and_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    // A 5 s step budget, and a pause longer than it.
    let cfg = config(dir.path(), 5, "");
    let s = start(dir.path(), &cfg);
    let id = echo_candidate_at_first_step(&s);
    assert_eq!(s.post("/api/v1/control/pause", serde_json::json!({"reason": "hold"})).status(), 200);
    let traffic = Traffic::start(&s, "echo", "ping");
    std::thread::sleep(Duration::from_secs(8));
    let imp = &improvements(&s, "echo")[0];
    assert_eq!(imp["state"], "canary", "paused: neither timed out nor moved on: {imp}");
    assert_eq!(imp["reason"], "loop paused: holding at 10%", "the hold is on record: {imp}");
    assert_eq!(s.canary("echo"), Some(("2.0.0".into(), 10.0)));

    assert_eq!(s.post("/api/v1/control/resume", serde_json::json!({"reason": "go"})).status(), 200);
    wait_for("echo 2.0.0 promoted after the resume", Duration::from_secs(120), || {
        let state = improvements(&s, "echo")[0]["state"].as_str().unwrap().to_string();
        assert!(!["rolled-back", "inconclusive", "failed"].contains(&state.as_str()), "ended {state}");
        state == "promoted"
    });
    drop(traffic);
    assert_eq!(improvements(&s, "echo")[0]["id"], id);
    assert_eq!(s.get("/api/v1/status")["loop"]["improvements_rolled_back"], 0);
}

#[test]
fn a_step_without_traffic_ends_inconclusive_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    // A self-watch that pauses the loop on a single rolled-back outcome.
    let cfg = config(dir.path(), 2, "[safety.self_watch]\nmin_outcomes = 1\nmax_rollback_rate = 0.0\n");
    let s = start(dir.path(), &cfg);
    echo_candidate_at_first_step(&s);
    wait_for("the step to end", Duration::from_secs(60), || improvements(&s, "echo")[0]["state"] != "canary");
    let imp = &improvements(&s, "echo")[0];
    assert_eq!(imp["state"], "inconclusive", "{imp}");
    let reason = imp["reason"].as_str().unwrap();
    assert!(reason.contains("no verdict within 2 s") && reason.contains("not evidence of harm"), "{reason}");
    assert!(s.canary("echo").is_none(), "rolled back by policy");
    assert_eq!(s.serving("echo").as_deref(), Some("1.0.0"));
    let status = s.get("/api/v1/status");
    assert_eq!(status["state"], "running", "the self-watch did not count it as a judge failure: {status}");
    assert_eq!(status["loop"]["improvements_rolled_back"], 0);
    assert_eq!(status["loop"]["improvements_inconclusive"], 1);
}

#[test]
fn the_bake_judges_against_a_concurrent_holdback_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 600, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("bake_secs = 1", "bake_secs = 8");
    std::fs::write(&cfg, text).unwrap();
    let s = start(dir.path(), &cfg);
    let id = echo_candidate_at_first_step(&s);
    // At the first step the other arm is the candidate.
    let (ok, out, err) = s.cli(&["status"]);
    let row = out.lines().find(|l| l.starts_with("echo ")).unwrap_or_default();
    assert!(ok && row.contains("2.0.0") && !row.contains("holdback"), "{out}{err}");
    let traffic = Traffic::start(&s, "echo", "ping");
    // The promotion is recorded before it is made (so that a crash between
    // the two resumes it), and the holdback is set right after it: wait for
    // all three.
    wait_for("echo 2.0.0 promoted and baking", Duration::from_secs(120), || {
        improvements(&s, "echo")[0]["state"] == "baking"
            && s.serving("echo").as_deref() == Some("2.0.0")
            && s.canary("echo").is_some()
    });
    // The previous version keeps 5 % of the calls: the bake's holdback.
    assert_eq!(s.serving("echo").as_deref(), Some("2.0.0"));
    assert_eq!(s.canary("echo"), Some(("1.0.0".into(), 5.0)));
    // Shown as what it is: a holdback, not a canary of the old version.
    let (ok, out, err) = s.cli(&["status"]);
    let row = out.lines().find(|l| l.starts_with("echo ")).unwrap_or_default();
    assert!(ok && row.contains("holdback 1.0.0") && row.contains("at 5.0%"), "{out}{err}");
    drop(traffic);

    // A restart in the bake starts the bake again, with its holdback.
    assert!(s.stop().success());
    let s = start(dir.path(), &cfg);
    wait_for("the holdback back after the restart", Duration::from_secs(60), || {
        s.canary("echo") == Some(("1.0.0".into(), 5.0))
    });
    assert_eq!(improvements(&s, "echo")[0]["state"], "baking");
    let traffic = Traffic::start(&s, "echo", "ping");
    wait_for("the bake to end", Duration::from_secs(120), || improvements(&s, "echo")[0]["state"] != "baking");
    drop(traffic);
    let imp = &improvements(&s, "echo")[0];
    assert_eq!((imp["id"].as_i64(), imp["state"].as_str()), (Some(id), Some("promoted")), "{imp}");
    let verdicts = imp["verdicts"].as_array().unwrap();
    let bake = verdicts.iter().find(|v| v["phase"] == "bake").expect("a bake verdict");
    assert!(bake["judgement"]["baseline_samples"].as_u64().unwrap() > 0, "judged against the holdback: {bake}");
    // A pass measured every objective; a bake that could not is
    // inconclusive and says the promotion stands, never a pass.
    let j = &bake["judgement"];
    match j["verdict"].as_str() {
        Some("pass") => {
            let objectives = j["objectives"].as_array().unwrap();
            assert!(objectives.iter().all(|o| o["high"].is_number()), "a pass with an unmeasured objective: {bake}");
        }
        Some("inconclusive") => assert!(j["reason"].as_str().unwrap().contains("the promotion stands"), "{bake}"),
        other => panic!("the bake of an identical candidate ended {other:?}: {bake}"),
    }
    // The steps passed before the restart keep their verdicts.
    let steps: Vec<(&str, f64)> =
        verdicts.iter().map(|v| (v["phase"].as_str().unwrap(), v["percent"].as_f64().unwrap())).collect();
    assert_eq!(steps[..2], [("canary", 10.0), ("canary", 50.0)], "{verdicts:?}");
    assert_eq!(steps.len(), 3, "{verdicts:?}");
    assert!(s.canary("echo").is_none(), "the holdback ends with the bake");
    assert_eq!(s.serving("echo").as_deref(), Some("2.0.0"));
    // The promotion is announced once; the bake taken again says so.
    let promoted = audit_actions(&s, "echo").iter().filter(|a| *a == "promoted").count();
    assert_eq!(promoted, 1, "one promotion");
    let history = s.get("/api/v1/deployments/echo/history");
    let reasons: Vec<&str> = history.as_array().unwrap().iter().filter_map(|h| h["reason"].as_str()).collect();
    let count = |r: &str| reasons.iter().filter(|x| **x == r).count();
    assert_eq!((count("promoted; baking"), count("promoted; baking, resumed")), (1, 1), "{reasons:?}");
}

#[test]
fn a_panicking_rollout_leaves_no_split_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 600, "");
    // The rollout's task panics right after its first step took effect.
    let s = Server::start(dir.path(), &[("KAIZEN_FAULT_INJECT", "rollout:1")], &["--config", &cfg]);
    upload(&s, &guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    let (status, body) = upload(&s, &guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    wait_for("the improvement to be settled", Duration::from_secs(60), || {
        improvements(&s, "echo").first().is_some_and(|i| i["state"] == "failed")
    });
    let imp = &improvements(&s, "echo")[0];
    assert!(imp["reason"].as_str().unwrap().contains("its rollout panicked"), "{imp}");
    assert!(s.canary("echo").is_none(), "the split was withdrawn");
    assert_eq!(s.serving("echo").as_deref(), Some("1.0.0"));
    assert_eq!(s.get("/api/v1/rollouts").as_array().unwrap().len(), 0, "the slot is free");
    let (status, body) = upload(&s, &guests::TEST_ECHO_V2.load().unwrap(), "deploy");
    assert_eq!((status, body["result"].as_str()), (200, Some("deployed")), "{body}");
}

#[test]
fn a_queued_candidate_outlives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 600, "");
    let s = start(dir.path(), &cfg);
    // 2.0.0's rollout holds the slot at 10 % (no traffic, a long step), so
    // 3.0.0, answered "candidate", waits in the queue behind it.
    let (status, body) = upload(&s, &guests::UNIT_CALCULATOR_V2.load().unwrap(), "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    wait_for("calculator 2.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("2.0.0".into(), 10.0))
    });
    let (status, body) = upload(&s, &guests::UNIT_CALCULATOR_V3.load().unwrap(), "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    let v3 = body["sha256"].as_str().unwrap().to_string();
    assert_eq!(s.get("/api/v1/status")["loop"]["candidates_queued"], 1);

    // kill -9, then restart: the rollout resumes and 3.0.0 still waits.
    kill9(s);
    let s = start(dir.path(), &cfg);
    assert_eq!(s.canary("calculator"), Some(("2.0.0".into(), 10.0)));
    let status = s.get("/api/v1/status");
    assert_eq!(status["loop"]["candidates_queued"], 1, "the queued candidate is back: {status}");
    assert!(improvements(&s, "calculator").iter().all(|i| i["candidate_sha"] != v3.as_str()));

    // Once the slot is free, the loop takes 3.0.0 up: an improvement proves
    // it, and it leaves the queue.
    let (ok, out, err) = s.cli(&["abort", "calculator"]);
    assert!(ok && out.contains("aborted"), "{out}{err}");
    wait_for("calculator 3.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("3.0.0".into(), 10.0))
    });
    assert_eq!(s.get("/api/v1/status")["loop"]["candidates_queued"], 0);

    // Its row left the queue with the opening of its improvement: another
    // kill -9 resumes 3.0.0's rollout and queues nothing, so 3.0.0 is not
    // proven a second time.
    kill9(s);
    let s = start(dir.path(), &cfg);
    assert_eq!(s.canary("calculator"), Some(("3.0.0".into(), 10.0)));
    assert_eq!(s.get("/api/v1/status")["loop"]["candidates_queued"], 0);
    let mine: Vec<Value> =
        improvements(&s, "calculator").into_iter().filter(|i| i["candidate_sha"] == v3.as_str()).collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["state"], "canary", "{mine:?}");
}

/// An abort while the candidate is still being proven takes effect when
/// the proof ends: the candidate never takes a call, its improvement ends
/// `aborted` with the operator's reason, and the serving version stays.
#[test]
fn an_abort_during_the_proof_stops_the_candidate_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 600, "[loop.prove]\nshadow_secs = 6\nshadow_min_calls = 1000000\n");
    let s = start(dir.path(), &cfg);
    let (status, body) = upload(&s, &guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(&s, &guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    assert_eq!((status, body["result"].as_str()), (200, Some("candidate")), "{body}");
    wait_for("echo 2.0.0 to be proven", Duration::from_secs(60), || {
        improvements(&s, "echo").first().is_some_and(|i| i["state"] == "proving")
    });
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok && out.contains("echo 2.0.0) being proven; `kaizen abort echo` stops it"), "{out}{err}");
    let (ok, out, err) = s.cli(&["abort", "echo", "--reason", "not today"]);
    assert!(ok && out.contains("aborted"), "{out}{err}");
    let imp = &improvements(&s, "echo")[0];
    assert_eq!(imp["state"], "aborted", "{imp}");
    assert!(imp["reason"].as_str().unwrap().contains("not today"), "{imp}");
    assert!(imp["verdicts"].as_array().is_none_or(|v| v.is_empty()), "no step was judged: {imp}");
    assert!(s.canary("echo").is_none());
    assert_eq!(s.serving("echo").as_deref(), Some("1.0.0"));
}
