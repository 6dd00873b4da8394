//! The candidate queue as an operator sees it, through the real `kaizen
//! serve` and CLI: each queued candidate says why the loop has not taken
//! it up (an improvement of its unit under way, no such unit hosted), and
//! one can be withdrawn before the loop takes it up — durably, audited, and
//! never once the loop has taken it.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::{Value, json};

use crate::kaizen_bin::{Server, wait_for};

/// Only validation as proof, a long first step that no traffic ends: a
/// candidate's rollout holds its unit at 10 % until it is aborted.
pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        "[loop]\nanalysis_ms = 100\n\
         [safety.limits]\nrequired_proof = [\"validation\"]\ncanary_steps = [10.0, 50.0, 100.0]\n\
         step_timeout_secs = 600\n",
    )
    .unwrap();
    Server::start(dir, env, &["--config", &path.display().to_string()])
}

fn queued(s: &Server) -> Vec<Value> {
    s.get("/api/v1/candidates").as_array().unwrap().clone()
}

/// DELETE /api/v1/candidates/{unit}/{which} with a reason; (status, body).
fn withdraw(s: &Server, unit: &str, which: &str, reason: &str) -> (u16, Value) {
    let r = s
        .http
        .delete(format!("{}/api/v1/candidates/{unit}/{which}", s.url))
        .bearer_auth(&s.admin)
        .json(&json!({ "reason": reason }))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn kill9(mut s: Server) {
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_queued_candidate_says_why_it_waits_and_can_be_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]);
    // 2.0.0's rollout holds calculator at 10 % (no traffic, a long step);
    // 3.0.0 waits behind it.
    s.upload(&guests::UNIT_CALCULATOR_V2.load().unwrap(), "candidate");
    wait_for("calculator 2.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("2.0.0".into(), 10.0))
    });
    let rollout = s.get("/api/v1/improvements?target=calculator")[0]["id"].as_i64().unwrap();
    let v3 = s.upload(&guests::UNIT_CALCULATOR_V3.load().unwrap(), "candidate")["sha256"].as_str().unwrap().to_string();
    let q = queued(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!((q[0]["target"].as_str(), q[0]["version"].as_str()), (Some("calculator"), Some("3.0.0")), "{q:?}");
    assert_eq!((q[0]["sha256"].as_str(), q[0]["source"].as_str()), (Some(v3.as_str()), Some("api")), "{q:?}");
    let waiting = q[0]["waiting"].as_str().unwrap();
    assert!(waiting.contains(&format!("after improvement {rollout} of `calculator` (canary)")), "{waiting}");
    let (ok, out, err) = s.cli(&["candidates", "list"]);
    assert!(ok && out.contains("3.0.0") && out.contains(&v3[..12]) && out.contains("after improvement"), "{out}{err}");
    // The one rollout permit (the default) is held: the status does not
    // say rollouts may start.
    let (ok, out, err) = s.cli(&["status"]);
    assert!(
        ok && out.contains("1 in flight hold every permit (safety.limits.concurrent_rollouts = 1)")
            && !out.contains("rollouts: rollouts may start"),
        "{out}{err}"
    );

    // The candidate the rollout carries is no longer the queue's: withdrawing
    // it is refused, saying how to end it instead.
    let (status, body) = withdraw(&s, "calculator", "2.0.0", "changed my mind");
    assert_eq!((status, body["code"].as_str()), (409, Some("taken-up")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("kaizen abort calculator"), "{body}");
    // Neither a version nor six characters of a sha256 names nothing.
    let (status, body) = withdraw(&s, "calculator", "3", "typo");
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap().contains("kaizen candidates"), "{body}");
    assert_eq!(queued(&s).len(), 1, "a refused withdrawal takes nothing");
    // A name is a name: one that reads like a path reaches no other route.
    let (ok, _, err) = s.cli(&["candidates", "withdraw", "calculator", "../../control/pause"]);
    assert!(!ok && err.contains("no candidate `../../control/pause` is queued"), "{err}");
    assert_eq!(s.get("/api/v1/status")["control"]["paused"], false);

    // Withdrawn by a prefix of its sha256, from the CLI: gone from the
    // queue, the status's count and the audit trail says who and why.
    let (ok, out, err) = s.cli(&["candidates", "withdraw", "calculator", &v3[..8], "--reason", "superseded"]);
    assert!(ok && out.contains("3.0.0") && out.contains("withdrawn"), "{out}{err}");
    assert!(queued(&s).is_empty());
    assert_eq!(s.get("/api/v1/status")["loop"]["candidates_queued"], 0);
    let audit = s.get("/api/v1/audit?target=calculator&limit=50");
    let entry = audit.as_array().unwrap().iter().find(|a| a["action"] == "candidate-withdrawn").cloned();
    let entry = entry.unwrap_or_else(|| panic!("no candidate-withdrawn in {audit}"));
    assert_eq!(entry["actor"], "api", "{entry}");
    assert!(entry.to_string().contains("superseded") && entry.to_string().contains(&v3), "{entry}");
    let (ok, _, err) = s.cli(&["candidates", "withdraw", "calculator", "3.0.0"]);
    assert!(!ok && err.contains("no candidate `3.0.0` is queued"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");

    // Withdrawn is durable: after kill -9 it is not back, and once the slot
    // is free the loop has nothing of 3.0.0 to take up.
    kill9(s);
    let s = start(dir.path(), &[]);
    assert!(queued(&s).is_empty(), "the withdrawn candidate is not queued again by a restart");
    let (ok, out, err) = s.cli(&["abort", "calculator"]);
    assert!(ok && out.contains("aborted"), "{out}{err}");
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    let imps = s.get("/api/v1/improvements?target=calculator");
    assert!(imps.as_array().unwrap().iter().all(|i| i["candidate_sha"] != v3.as_str()), "{imps}");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));
}

#[test]
fn a_candidate_for_a_unit_not_hosted_waits_for_one_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("KAIZEN_SEED_UNIT", "false")]);
    s.upload(&guests::UNIT_CALCULATOR_V2.load().unwrap(), "candidate");
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    let q = queued(&s);
    assert_eq!(q.len(), 1, "{q:?}");
    let waiting = q[0]["waiting"].as_str().unwrap();
    assert!(waiting.contains("no unit `calculator` is hosted") && waiting.contains("withdraw"), "{waiting}");
    let (ok, out, err) = s.cli(&["candidates", "list"]);
    assert!(ok && out.contains("no unit `calculator` is hosted"), "{out}{err}");

    // What it said is what it waited for: once a calculator serves, the
    // loop takes the candidate up against it. 1.0.0, queued too and then
    // deployed directly, leaves the queue: it has nothing left to roll out.
    s.upload(&guests::UNIT_CALCULATOR_V1.load().unwrap(), "candidate");
    assert_eq!(queued(&s).len(), 2);
    s.upload(&guests::UNIT_CALCULATOR_V1.load().unwrap(), "deploy");
    // The deploy also wakes the loop, which may take 2.0.0 up at once.
    let q = queued(&s);
    assert!(q.iter().all(|c| c["version"] != "1.0.0") && q.len() <= 1, "{q:?}");
    let audit = s.get("/api/v1/audit?target=calculator&limit=50");
    let dropped = audit.as_array().unwrap().iter().find(|a| a["action"] == "candidate-withdrawn").cloned();
    assert!(dropped.is_some_and(|a| a.to_string().contains("deployed directly")), "{audit}");
    // The deploy's own trigger may have run the cycle that takes it up
    // already; either way one does, and it rolls out.
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    wait_for("calculator 2.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("2.0.0".into(), 10.0))
    });
    assert!(queued(&s).is_empty());
}

/// With replay required (the default), a candidate for a unit none of whose
/// requests is recorded yet waits in the queue and says so, instead of
/// being taken up only to be rejected for want of requests to replay; once
/// calls are recorded, the loop takes it up and replays them.
#[test]
fn a_candidate_waits_for_recorded_requests_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaizen.toml");
    std::fs::write(
        &path,
        "[loop]\nanalysis_ms = 100\n[telemetry]\nsample_requests_every = 5\n\
         [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\nstep_timeout_secs = 600\n",
    )
    .unwrap();
    let s = Server::start(dir.path(), &[], &["--config", &path.display().to_string()]);
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    let (ok, out, err) = s.cli(&["cycle"]);
    assert!(ok, "{out}{err}");
    let improvements = || s.get("/api/v1/improvements?target=echo").as_array().unwrap().clone();
    assert!(improvements().is_empty(), "taken up with nothing to replay: {:?}", improvements());
    let q = queued(&s);
    let waiting = q[0]["waiting"].as_str().unwrap_or_default();
    assert!(waiting.starts_with("no request of `echo` is recorded yet, and replay is required proof"), "{q:?}");
    let (ok, out, err) = s.cli(&["candidates", "list"]);
    assert!(ok && out.contains("no request of `echo` is recorded yet"), "{out}{err}");

    // Calls come, one in five keeps its request: the next cycle takes the
    // candidate up, and its proof replays what was recorded (echo answers
    // with its version, so the outputs differ: replay ran, and said so).
    for n in 0..10 {
        assert_eq!(s.invoke("echo", &format!("ping {n}")).0, 200);
    }
    wait_for("echo 2.0.0 to be taken up", Duration::from_secs(30), || {
        improvements().first().is_some_and(|i| i["state"] != "proposed" && i["state"] != "proving") || {
            s.cli(&["cycle"]);
            false
        }
    });
    let imp = &improvements()[0];
    let replay = imp["proof"].as_array().unwrap().iter().find(|p| p["step"] == "replay").cloned();
    assert!(
        replay.is_some_and(|p| p["result"] != "skipped" && p["detail"].as_str().unwrap().contains("(`ping ")),
        "{imp}"
    );
}
