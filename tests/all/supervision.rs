//! Supervised background tasks, through the real binary: a panic in the
//! loop, the telemetry writer or the watch folder is logged with its message, counted in
//! /metrics, named in /healthz (503 while the task is down) and in
//! `kaizen status`, and the task runs again after its backoff.
//!
//! The panics are made on demand with `KAIZEN_FAULT_INJECT`, honoured only
//! by a build with kaizen-host's `fault-injection` feature (tests have it,
//! the `kaizen` binary built for use does not): no input of a real
//! deployment makes these tasks panic, and a test must not wait for one.

use std::time::Duration;

use serde_json::Value;

use crate::kaizen_bin::{Server, wait_for, wasm_files};

fn task<'a>(tasks: &'a Value, name: &str) -> &'a Value {
    tasks.as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no task {name}: {tasks}"))
}

#[test]
fn a_panicking_task_is_logged_counted_shown_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let env = [("KAIZEN_FAULT_INJECT", "loop:3,telemetry-writer:1,watch-folder:1"), ("NO_COLOR", "1")];
    let s = Server::start_logged(&dir.path().join("data"), &env, &[], &log);
    let healthz = || {
        let r = s.http.get(format!("{}/healthz", s.url)).send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };

    // Three panics at 1, 2 and 4 s of backoff: the loop is down for seconds.
    let mut down = Value::Null;
    wait_for("/healthz to answer 503 naming the loop", Duration::from_secs(30), || {
        let (code, body) = healthz();
        let named = body["message"].as_str().is_some_and(|m| m.contains("loop is down"));
        if code == 503 && body["status"] == "unhealthy" && named {
            down = body;
        }
        !down.is_null()
    });
    let l = task(&down["tasks"], "loop");
    assert_eq!(l["state"], "restarting", "{down}");
    assert!(l["last_error"].as_str().unwrap().contains("fault injected into loop"), "{down}");
    assert!(l["restart_at"].as_i64().unwrap() >= l["since"].as_i64().unwrap(), "{down}");

    // Then it runs again and completes a cycle; /healthz is 200 but says
    // what happened.
    wait_for("the restarted loop to complete a cycle", Duration::from_secs(60), || {
        healthz().0 == 200 && s.get("/api/v1/status")["loop"]["cycles_completed"].as_u64() >= Some(1)
    });
    let (code, health) = healthz();
    assert_eq!((code, health["status"].as_str()), (200, Some("degraded")), "{health}");
    let message = health["message"].as_str().unwrap();
    assert!(message.contains("loop panicked 3 time(s)") && message.contains("runs again"), "{message}");

    // `kaizen status --json` names the task, its state, since when, its last
    // error and its restarts.
    let (ok, out, err) = s.cli(&["status", "--json"]);
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    let l = task(&status["tasks"], "loop");
    assert_eq!(
        (l["state"].as_str(), l["panics"].as_u64(), l["restarts"].as_u64()),
        (Some("running"), Some(3), Some(3))
    );
    assert_eq!(l["last_error"], "fault injected into loop (KAIZEN_FAULT_INJECT)");
    assert!(l["since"].as_i64().unwrap() >= l["last_panic_at"].as_i64().unwrap());
    let w = task(&status["tasks"], "telemetry-writer");
    assert_eq!(
        (w["state"].as_str(), w["panics"].as_u64(), w["restarts"].as_u64()),
        (Some("running"), Some(1), Some(1))
    );
    let f = task(&status["tasks"], "watch-folder");
    assert_eq!(
        (f["state"].as_str(), f["panics"].as_u64(), f["restarts"].as_u64()),
        (Some("running"), Some(1), Some(1))
    );
    for name in ["health", "telemetry-maintenance", "recovery-log"] {
        assert_eq!(task(&status["tasks"], name)["state"], "running", "{name}");
    }
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("3 of ") && out.contains("fault injected into loop (KAIZEN_FAULT_INJECT)"), "{out}");

    // The restarted writer commits what the call path records.
    for _ in 0..5 {
        assert_eq!(s.invoke("calculator", r#"{"op":"add","a":1,"b":2}"#).0, 200);
    }
    wait_for("the restarted telemetry writer to commit calls", Duration::from_secs(30), || {
        s.get("/api/v1/status")["telemetry"]["written"].as_u64() >= Some(5)
    });

    // The restarted watch folder still hears about new files.
    let watch = dir.path().join("data/watch");
    std::fs::write(watch.join("junk.wasm"), b"not a module").unwrap();
    wait_for("the restarted watch folder to reject a file", Duration::from_secs(30), || {
        wasm_files(&watch).is_empty() && watch.join("rejected/junk.wasm.error.txt").exists()
    });

    let metrics = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.admin).send().unwrap().text().unwrap();
    for line in [
        "kaizen_task_panics_total{task=\"loop\"} 3",
        "kaizen_task_restarts_total{task=\"loop\"} 3",
        "kaizen_task_panics_total{task=\"telemetry-writer\"} 1",
        "kaizen_task_panics_total{task=\"health\"} 0",
        "kaizen_task_up{task=\"loop\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "/metrics lacks `{line}`");
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let logged = |msg: &str| text.lines().filter(|l| l.contains("ERROR") && l.contains(msg)).count();
    assert_eq!(logged("background task panicked: fault injected into loop (KAIZEN_FAULT_INJECT)"), 3, "{text}");
    assert_eq!(logged("background task panicked: fault injected into telemetry-writer"), 1, "{text}");
    assert!(s.stop().success());
}
