//! `kaizen serve` end to end, as an operator runs it: start, invoke, drop a
//! new version in the watch folder, roll back with the CLI, pause / resume /
//! stop, restart and find the same versions serving and every level of
//! rollback kept; graceful shutdown
//! keeps every acknowledged telemetry record; the OpenAPI document, the
//! event stream and the metrics are served.

use std::io::BufRead;
use std::time::Duration;

use kaizen_host::events::{ControlAction, Envelope, Event};
use kaizen_plugins::{UNIT_CALCULATOR_V2, UNIT_CALCULATOR_V3};
use serde_json::json;

use crate::kaizen_bin::{Server, drop_file, wait_for, wasm_files};

const ADD: &str = r#"{"op":"add","a":2,"b":3}"#;

#[test]
fn operator_story_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("KAIZEN_WATCH__DEPLOY_UNITS", "true")], &[]);
    // The banner is read from the host's stdout by a thread of its own,
    // which may still be at its first line when the host answers /healthz.
    let banner_read = |s: &Server| {
        wait_for("the start banner to be read", Duration::from_secs(20), || {
            s.stdout.lock().iter().any(|l| l.starts_with("Dashboard:"))
        })
    };
    banner_read(&s);
    assert!(s.stdout.lock().iter().any(|l| l.contains("admin token:")), "first start shows the generated tokens");

    let (status, version, body) = s.invoke("calculator", ADD);
    assert_eq!((status, version.as_str(), body.as_str()), (200, "1.0.0", r#"{"result":5}"#));

    let watch = dir.path().join("watch");
    drop_file(&watch, "calculator-v2.wasm", &UNIT_CALCULATOR_V2.load().unwrap());
    wait_for("v2 from the watch folder to serve", Duration::from_secs(60), || {
        s.serving("calculator").as_deref() == Some("2.0.0")
    });
    // Taken out of the folder (under a hidden name, removed once recorded)
    // before it serves.
    let visible: Vec<String> = wasm_files(&watch).into_iter().filter(|n| !n.starts_with('.')).collect();
    assert!(visible.is_empty(), "an accepted file leaves the folder: {visible:?}");
    assert_eq!(s.invoke("calculator", ADD).1, "2.0.0");
    drop_file(&watch, "calculator-v3.wasm", &UNIT_CALCULATOR_V3.load().unwrap());
    wait_for("v3 from the watch folder to serve", Duration::from_secs(60), || {
        s.serving("calculator").as_deref() == Some("3.0.0")
    });

    let (ok, out, err) = s.cli(&["rollback", "calculator", "--reason", "operator test"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("3.0.0 → 2.0.0"), "{out}");
    assert_eq!(s.invoke("calculator", ADD).1, "2.0.0");
    let (ok, out, _) = s.cli(&["history", "calculator"]);
    assert!(ok && out.contains("rolled-back") && out.contains("operator test"), "{out}");
    // 3.0.0 again, deployed directly: 1.0.0 and 2.0.0 are what rollbacks
    // go back to, and a restart must keep both.
    let v3 = dir.path().join("calculator-v3.wasm");
    std::fs::write(&v3, UNIT_CALCULATOR_V3.load().unwrap()).unwrap();
    let (ok, out, err) = s.cli(&["deploy", "--now", v3.to_str().unwrap()]);
    assert!(ok && out.contains("calculator 3.0.0"), "{out}{err}");

    let pause = ["pause", "--reason", "schema migration"];
    for (cmd, state, why) in [
        (&pause[..], "paused", "schema migration"),
        (&["resume"], "running", "resume from the CLI"),
        (&["stop"], "stopped", "stop from the CLI"),
    ] {
        let (ok, out, err) = s.cli(cmd);
        assert!(ok, "{cmd:?}: {out}{err}");
        let status = s.get("/api/v1/status");
        assert_eq!((&status["state"], &status["control"]["reason"]), (&json!(state), &json!(why)), "after {cmd:?}");
    }
    let (ok, out, _) = s.cli(&["status"]);
    assert!(ok && out.contains("loop: stopped") && out.contains("calculator"), "{out}");
    let (ok, out, _) = s.cli(&["status", "--json"]);
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        status["slots"].as_array().unwrap().len(),
        20,
        "12 detectors, 5 strategies, 2 improvers, the calculator"
    );

    let exit = s.stop();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");

    let s = Server::start(dir.path(), &[], &[]);
    banner_read(&s);
    assert!(!s.stdout.lock().iter().any(|l| l.contains("admin token:")), "tokens are shown only once");
    assert_eq!(s.serving("calculator").as_deref(), Some("3.0.0"), "the deployed version still serves");
    assert_eq!(s.get("/api/v1/status")["state"], "stopped", "the emergency stop survives a restart");
    assert_eq!(s.invoke("calculator", ADD).1, "3.0.0");
    // Every level of rollback survives the restart, in its order.
    for (from, to) in [("3.0.0", "2.0.0"), ("2.0.0", "1.0.0")] {
        let (ok, out, err) = s.cli(&["rollback", "calculator", "--reason", "after the restart"]);
        assert!(ok && out.contains(&format!("{from} → {to}")), "{out}{err}");
        assert_eq!(s.invoke("calculator", ADD).1, to);
    }
    let (ok, out, err) = s.cli(&["rollback", "calculator"]);
    assert!(!ok && err.contains("no previous version"), "{out}{err}");
    assert_eq!(s.invoke("calculator", ADD).1, "1.0.0", "a refused rollback changes nothing");
    let (ok, _, _) = s.cli(&["stop", "--release"]);
    assert!(ok);
    assert!(s.stop().success());
}

#[test]
fn units_dropped_by_default_go_through_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    drop_file(&dir.path().join("watch"), "v3.wasm", &UNIT_CALCULATOR_V3.load().unwrap());
    wait_for("the candidate to be queued or tried", Duration::from_secs(60), || {
        let audit = s.get("/api/v1/audit?target=calculator");
        audit.as_array().unwrap().iter().any(|a| a["action"] == "candidate")
    });
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"), "a candidate does not replace what serves");
}

#[test]
fn graceful_shutdown_keeps_acknowledged_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let mut acked = 0;
    for batch in 0..20 {
        let executions: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                serde_json::json!({"target": "checkout", "version": "1.0.0", "started_at": kaizen_host::store::now_ms(),
                    "duration_ms": 1.5, "outcome": "ok", "message": format!("{batch}-{i}")})
            })
            .collect();
        let r = s
            .http
            .post(format!("{}/api/v1/telemetry", s.url))
            .bearer_auth(&s.invoke)
            .json(&serde_json::json!({ "executions": executions }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        acked += r.json::<serde_json::Value>().unwrap()["executions"].as_u64().unwrap();
    }
    let msgpack = rmp_serde::to_vec_named(&serde_json::json!({"executions": [{"target": "checkout", "version": "1.0.0",
        "started_at": kaizen_host::store::now_ms(), "duration_ms": 2.0, "outcome": "error", "error_class": "timeout"}]}))
    .unwrap();
    let r = s
        .http
        .post(format!("{}/api/v1/telemetry", s.url))
        .bearer_auth(&s.invoke)
        .header("content-type", "application/msgpack")
        .body(msgpack)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "MessagePack is accepted too");
    acked += 1;
    let mut served = 0;
    for _ in 0..50 {
        if s.invoke("calculator", ADD).0 == 200 {
            served += 1;
        }
    }
    assert!(s.stop().success());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ingested, calls) = rt.block_on(async {
        let db = kaizen_host::store::Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
        let count = |t: &'static str| {
            let db = db.clone();
            async move {
                let rows = kaizen_host::store::executions::recent(&db, t, 100_000).await.unwrap();
                rows.len() as u64
            }
        };
        (count("checkout").await, count("calculator").await)
    });
    assert_eq!(ingested, acked, "every acknowledged record is on disk after shutdown");
    assert!(calls >= served, "every answered call was recorded ({calls} recorded, {served} answered)");
}

#[test]
fn openapi_metrics_and_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/units/{unit}/invoke",
        "/api/v1/telemetry",
        "/api/v1/plugins",
        "/api/v1/deployments/{slot}/rollback",
        "/api/v1/control/{action}",
        "/api/v1/events",
        "/metrics",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    // The event stream's wire format is documented: the envelope, and one
    // variant of Event per kind.
    let schemas = &doc["components"]["schemas"];
    let envelope = schemas["Envelope"].to_string();
    for field in ["at", "target", "Event"] {
        assert!(envelope.contains(field), "the Envelope schema lacks {field}: {envelope}");
    }
    let kinds: Vec<&str> = schemas["Event"]["oneOf"]
        .as_array()
        .expect("Event is documented as one of its variants")
        .iter()
        .filter_map(|v| v["properties"]["kind"]["enum"][0].as_str())
        .collect();
    for kind in [
        "finding",
        "candidate",
        "generator-failed",
        "proof",
        "checkpoint",
        "canary-step",
        "verdict",
        "promoted",
        "rollout-frozen",
        "rollout-resumed",
        "rollout-aborted",
        "rollback",
        "rollback-failed",
        "rollback-request-denied",
        "rollback-request-failed",
        "improvement-ended",
        "deploy",
        "control",
        "force-breaker",
        "remediate",
        "health",
        "cycle",
        "watch",
    ] {
        assert!(kinds.contains(&kind), "the Event schema lacks the `{kind}` variant: {kinds:?}");
    }

    // Subscribe, then change the control state: the change arrives as an event.
    let events = s.http.get(format!("{}/api/v1/events?token={}", s.url, s.admin)).send().unwrap();
    assert_eq!(events.status(), 200);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(s.post("/api/v1/control/pause", serde_json::json!({"reason": "sse test"})).status(), 200);
    let mut reader = std::io::BufReader::new(events);
    let mut seen = String::new();
    let t = std::time::Instant::now();
    while !seen.contains("event: control") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended early");
        seen.push_str(&line);
        assert!(t.elapsed() < Duration::from_secs(30), "no control event: {seen}");
    }
    let mut data = String::new();
    reader.read_line(&mut data).unwrap();
    assert!(data.contains("sse test"), "{data}");
    // The data is an Envelope as documented: it reads back into the type.
    let got: Envelope = serde_json::from_str(data.trim().strip_prefix("data:").unwrap().trim()).unwrap();
    match got.event {
        Event::Control { action, reason, by, state } => {
            assert_eq!((action, reason.as_str(), by.as_str()), (ControlAction::Pause, "sse test", "api"));
            assert!(state.paused);
        }
        other => panic!("a control event was announced, got {other:?}"),
    }

    for _ in 0..5 {
        s.invoke("calculator", ADD);
    }
    s.invoke("calculator", r#"{"op":"div","a":1,"b":0}"#);
    let metrics = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.admin).send().unwrap().text().unwrap();
    let calls: u64 = metrics
        .lines()
        .find(|l| l.starts_with("kaizen_calls_total{unit=\"calculator\",version=\"1.0.0\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no calculator call counter in\n{metrics}"));
    assert!(calls >= 6, "{calls}");
    assert!(metrics.contains("kaizen_call_errors_total{unit=\"calculator\",version=\"1.0.0\",class=\"trap\"}"));
    assert!(metrics.contains("kaizen_call_duration_seconds_bucket{unit=\"calculator\",version=\"1.0.0\",le=\"+Inf\"}"));
    assert!(metrics.contains("kaizen_loop_paused 1"), "the pause shows in the metrics");
    assert!(metrics.contains("kaizen_telemetry_dropped_total 0"));
    assert!(metrics.contains("# TYPE kaizen_store_write_failures_total counter"), "failed writes are counted");
    // Every sample line is `name{labels} value` or `name value` with a number.
    for l in metrics.lines().filter(|l| !l.starts_with('#')) {
        let v = l.rsplit(' ').next().unwrap();
        assert!(v.parse::<f64>().is_ok(), "bad sample line: {l}");
    }
    assert!(s.stop().success(), "shutdown ends open event streams");
}

/// Two uploads of the same new module at once (`kaizen deploy X & kaizen
/// deploy X`) both succeed: the module store and the compiled cache are
/// written under unique temporary names and renamed into place.
#[test]
fn racing_uploads_of_one_new_module_both_succeed() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("own-cache");
        let cache = cache.to_str().unwrap();
        // A cache of its own, so the compiled artifact is written in the race too.
        let s = Server::start(dir.path(), &[("KAIZEN_RUNTIME__CACHE_DIR", cache)], &[]);
        let bytes = UNIT_CALCULATOR_V2.load().unwrap();
        let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
            let uploads: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let r = s
                            .http
                            .post(format!("{}/api/v1/plugins?mode=deploy", s.url))
                            .bearer_auth(&s.admin)
                            .body(bytes.clone())
                            .send()
                            .unwrap();
                        (r.status().as_u16(), r.text().unwrap())
                    })
                })
                .collect();
            uploads.into_iter().map(|u| u.join().unwrap()).collect()
        });
        for (status, body) in &statuses {
            assert_eq!(*status, 200, "round {round}: {body}");
        }
        assert_eq!(s.serving("calculator").as_deref(), Some("2.0.0"));
    }
}

/// A start that fails leaves no tokens nobody saw. A port in use fails it
/// before anything is written; a store that cannot be opened fails it
/// after the tokens were generated, and they are removed with it. The next
/// start generates its own and shows them.
#[test]
fn a_failed_start_leaves_no_tokens_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kaizen-data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let serve = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(crate::kaizen_bin::BIN)
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&data)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&[]);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!data.exists(), "a port in use fails the start before anything is written");

    drop(taken);
    let not_a_dir = dir.path().join("a-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let url = format!("sqlite://{}/kaizen.db", not_a_dir.display());
    let err = serve(&[("DATABASE_URL", url.as_str())]);
    assert!(err.contains("cannot open the host"), "{err}");
    assert!(!data.join("tokens.json").exists(), "tokens generated by a failed start are not kept");

    let s = Server::start(&data, &[], &[]);
    assert!(s.stdout.lock().iter().any(|l| l.contains("admin token:")), "the first start that serves shows its tokens");
    assert!(s.stop().success());
}

/// One data directory, one `kaizen serve`: a second start on it is refused
/// before it writes anything, naming where the first listens, and leaves
/// the first serving and findable (its `url` file stays). The lock dies
/// with its process: after kill -9 the directory starts again.
#[test]
fn a_second_serve_on_one_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[], &[]);
    let tokens = std::fs::read(dir.path().join("tokens.json")).unwrap();
    let out = std::process::Command::new(crate::kaizen_bin::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("is in use by another `kaizen serve` (listening at {})", s.url))
            && err.contains("--data-dir"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("tokens.json")).unwrap(), tokens, "the first's tokens stand");
    let url = std::fs::read_to_string(dir.path().join(kaizen_service::serve::URL_FILE)).unwrap();
    assert_eq!(url.trim(), s.url, "clients beside the data directory still find the first");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok, "{out}{err}");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));

    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"), "no stale lock after kill -9");
    assert!(s.stop().success());
}

/// A slot whose serving version's module is gone from the data directory
/// when the host starts serves nothing rather than the older version in
/// its history (which nobody chose now): its calls are answered 503 naming
/// why, `/healthz` and `kaizen status` say so, and deploying a version
/// brings it back. Calls to a unit that does not exist get a 404 and no
/// circuit breaker.
#[test]
fn a_unit_whose_module_is_gone_serves_nothing_until_deployed_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let v2 = UNIT_CALCULATOR_V2.load().unwrap();
    let sha = s.upload(&v2, "deploy")["sha256"].as_str().unwrap().to_string();
    assert_eq!(s.serving("calculator").as_deref(), Some("2.0.0"));
    let (status, _, _) = s.invoke("calculator", r#"{"op":"add","a":1,"b":2}"#);
    assert_eq!(status, 200);
    assert!(s.stop().success());
    let module = dir.path().join("modules").join(format!("{sha}.wasm"));
    std::fs::remove_file(&module).unwrap_or_else(|e| panic!("{}: {e}", module.display()));

    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(s.serving("calculator"), None, "1.0.0, the version before, is not served in its place");
    let (status, _, body) = s.invoke("calculator", r#"{"op":"add","a":1,"b":2}"#);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unit-not-restored") && body.contains(&sha) && body.contains("deploy a version"), "{body}");
    let health: serde_json::Value = s.http.get(format!("{}/healthz", s.url)).send().unwrap().json().unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["message"].as_str().unwrap().contains("slot calculator serves nothing"), "{health}");
    let (ok, out, err) = s.cli(&["status"]);
    assert!(ok && out.contains("slot calculator serves nothing") && out.contains(&sha[..12]), "{out}{err}");

    // A unit that never existed: 404, in plain words, and no breaker.
    let (status, _, body) = s.invoke("ghost", "x");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no unit named `ghost`") && !body.contains("not-found:"), "{body}");
    let breakers = s.get("/api/v1/breakers");
    assert!(breakers.as_array().unwrap().iter().all(|b| b["target"] != "ghost"), "{breakers}");

    s.deploy(v2);
    assert_eq!(s.serving("calculator").as_deref(), Some("2.0.0"));
    let (status, _, _) = s.invoke("calculator", r#"{"op":"add","a":1,"b":2}"#);
    assert_eq!(status, 200);
    let health: serde_json::Value = s.http.get(format!("{}/healthz", s.url)).send().unwrap().json().unwrap();
    assert_eq!(health["status"], "ready", "{health}");
    assert!(s.stop().success());
}

/// A breaker an operator forced open stays open across a restart, with
/// its reason and the rest of its time: a restart does not undo an
/// operator's decision. Closing it is kept too.
#[test]
fn a_breaker_forced_open_stays_open_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let (ok, out, err) = s.cli(&["breakers", "open", "calculator", "--for", "1h", "--reason", "upstream maintenance"]);
    assert!(ok, "{out}{err}");
    let refused = |s: &Server| {
        let (status, _, body) = s.invoke("calculator", r#"{"op":"add","a":1,"b":2}"#);
        (status, body.contains("circuit-open"))
    };
    assert_eq!(refused(&s), (503, true));
    assert!(s.stop().success());

    let s = Server::start(dir.path(), &[], &[]);
    let breakers = s.get("/api/v1/breakers");
    let calculator = breakers.as_array().unwrap().iter().find(|b| b["target"] == "calculator").cloned();
    let b = calculator.unwrap_or_else(|| panic!("no breaker for calculator after the restart: {breakers}"));
    let state = &b["breaker"];
    assert_eq!(
        (state["state"].as_str(), state["reason"].as_str()),
        (Some("open"), Some("upstream maintenance")),
        "{b}"
    );
    let left = state["remaining_ms"].as_u64().unwrap();
    assert!((3_000_000..=3_600_000).contains(&left), "{left} ms left of an hour: {b}");
    assert_eq!(refused(&s), (503, true), "the restart kept the breaker open");
    let (ok, out, err) = s.cli(&["breakers", "close", "calculator"]);
    assert!(ok, "{out}{err}");
    assert!(s.stop().success());

    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(refused(&s).0, 200, "closed by the operator before the restart, closed after it");
    assert!(s.stop().success());
}

/// With the bundled strategies on (the default), a unit failing a third
/// of its calls keeps answering the other two thirds: neither the host's
/// breaker nor the `circuit-breaker` strategy takes a chance run (11
/// failures in 20) for an outage. Ten failures in a row are one, and
/// the breaker's state says why in numbers. An operator's reset starts
/// the evidence afresh: the failures before it do not open the circuit
/// again on the next one.
#[test]
fn a_unit_failing_a_third_of_its_calls_is_not_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let (add, crash) = (r#"{"op":"add","a":1,"b":2}"#, r#"{"op":"div","a":1,"b":0}"#);
    // 11 failures in 34 calls, bunched as chance bunches them: 22 answer,
    // then 9 fail, 1 answers, 2 fail — 11 of the last 20, which opened
    // the breaker when it took the share as it came.
    let fails = |i: usize| matches!(i % 34, 22..=30 | 32..=33);
    let statuses: Vec<u16> = (0..238).map(|i| s.invoke("calculator", if fails(i) { crash } else { add }).0).collect();
    let refused = statuses.iter().filter(|&&c| c == 503).count();
    assert_eq!(refused, 0, "a unit failing a third of its calls was cut off {refused} times: {statuses:?}");
    assert_eq!(statuses.iter().filter(|&&c| c == 200).count(), 238 - 77);

    for _ in 0..10 {
        s.invoke("calculator", crash);
    }
    assert_eq!(s.invoke("calculator", add).0, 503, "ten failures in a row open the circuit");
    let breakers = s.get("/api/v1/breakers");
    let b = &breakers.as_array().unwrap().iter().find(|b| b["target"] == "calculator").unwrap()["breaker"];
    let reason = b["reason"].as_str().unwrap();
    assert!(reason.contains("of the last") && reason.contains("calls failed"), "{b}");

    // The operator resets it: one more failure is no reason to open it.
    let r = s.post("/api/v1/breakers/calculator", serde_json::json!({"state": "reset"}));
    assert_eq!(r.status(), 200);
    s.invoke("calculator", crash);
    assert_eq!(s.invoke("calculator", add).0, 200, "the failures before the reset were set aside");
    assert!(s.stop().success());
}
