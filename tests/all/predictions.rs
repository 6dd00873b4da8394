//! Predicted success through the real `kaizen serve`: a unit whose
//! candidates keep failing their proof gets a lower predicted success for
//! its findings, and its finding sinks below another target's finding of
//! the same kind and lower impact; each attempt stores the prediction it
//! began with.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::{Value, json};

use crate::kaizen_bin::{Server, wait_for};

/// Only the low-success-rate detector (so every finding is of one kind),
/// `noisy` failing 45 % of its calls, every request kept for replay, and
/// no scheduled cycle in the test's time: cycles run on uploads and when
/// asked for.
fn config(dir: &Path) -> String {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        "bundled = false\n\
         [loop]\ninterval_secs = 3600.0\nmin_interval_secs = 3600.0\nmax_interval_secs = 3600.0\n\
         [telemetry]\nsample_requests_every = 1\n\
         [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\n\
         [safety.self_watch]\nmax_rollback_rate = 1.0\nmax_failure_rate = 1.0\n\
         [recovery]\nenabled = false\n\
         [runtime.grants.noisy]\ncapabilities = [\"random\"]\n\
         [runtime.plugin_config.noisy]\nerror_percent = 45\n",
    )
    .unwrap();
    path.display().to_string()
}

/// The cycle's ranking: (target, score, prediction) in the loop's order.
fn ranking(s: &Server) -> Vec<(String, f64, Value)> {
    let report: Value = s.post("/api/v1/cycles", json!(null)).json().unwrap();
    report["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["target"].as_str().unwrap().to_string(), r["score"].as_f64().unwrap(), r["prediction"].clone()))
        .collect()
}

fn rejected(s: &Server) -> usize {
    let all = s.get("/api/v1/improvements?target=noisy");
    all.as_array().unwrap().iter().filter(|i| i["state"] == "rejected").count()
}

#[test]
fn failed_attempts_lower_a_targets_predicted_success_and_its_findings_sink() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    // No bundled plugins, so no seed unit (the harness asks for one).
    let s = Server::start(dir.path(), &[("KAIZEN_SEED_UNIT", "false")], &["--config", &cfg]);
    s.upload(&guests::DETECTOR_LOW_SUCCESS_RATE.load().unwrap(), "deploy");
    s.upload(&guests::TEST_NOISY_V1.load().unwrap(), "deploy");
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");

    // noisy: 600 real calls, 45 % failing (no recovery: every call reaches
    // it). echo: 400 pushed calls, 40 % failing. The same kind of finding on
    // both; noisy's impact is the higher (more calls, more failing), by
    // less than the 3× its record will cost it.
    for i in 0..600 {
        s.invoke("noisy", &format!("{{\"n\":{i}}}"));
    }
    let now = kaizen_host::store::now_ms();
    let executions: Vec<Value> = (0..400)
        .map(|i| {
            let failed = i % 5 < 2;
            json!({"target": "echo", "version": "1.0.0", "started_at": now - i, "duration_ms": 1.0,
                   "outcome": if failed { "error" } else { "ok" }, "error_class": if failed { Some("internal") } else { None }})
        })
        .collect();
    let r = s
        .http
        .post(format!("{}/api/v1/telemetry", s.url))
        .bearer_auth(&s.invoke)
        .json(&json!({ "executions": executions }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());

    wait_for("noisy's calls to be counted", Duration::from_secs(30), || {
        let units = s.get("/api/v1/units");
        units.as_array().unwrap().iter().any(|u| u["unit"] == "noisy" && u["calls"].as_u64() >= Some(600))
    });

    // Without history: even odds for both, noisy first by impact.
    let first = ranking(&s);
    assert_eq!(first.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["noisy", "echo"], "{first:?}");
    assert_eq!(first[0].2["p"], 0.5);
    assert_eq!(first[1].2["p"], 0.5);

    // Four candidates from the API for noisy, each refusing every request:
    // each fails its replay.
    for n in 1..=4 {
        let up = s.upload(&guests::TEST_NOISY_V3.load().unwrap(), "candidate");
        assert_eq!(up["result"], "candidate", "{up}");
        wait_for(&format!("rejection {n}"), Duration::from_secs(60), || rejected(&s) == n);
    }
    let improvements = s.get("/api/v1/improvements?target=noisy");
    let newest = &improvements[0];
    assert_eq!(newest["source"], "api");
    assert_eq!(newest["prediction"]["failures"], 3, "the 4th attempt began with three failures behind it: {newest}");
    assert!(newest["prediction"]["p"].as_f64().unwrap() < 0.2, "{newest}");

    // noisy's finding now ranks below echo's, its impact unchanged.
    let after = ranking(&s);
    assert_eq!(after.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["echo", "noisy"], "{after:?}");
    let noisy = &after[1].2;
    assert_eq!((noisy["successes"].as_u64(), noisy["failures"].as_u64()), (Some(0), Some(4)), "{noisy}");
    assert!(noisy["p"].as_f64().unwrap() < 0.1 && noisy["high"].as_f64().unwrap() < 0.35, "{noisy}");
    let findings = s.get("/api/v1/findings?limit=10");
    let shown = findings.as_array().unwrap().iter().find(|f| f["target"] == "noisy").unwrap();
    assert_eq!(shown["prediction"]["failures"], 4, "the prediction is stored with the finding: {shown}");
    let (ok, out, _) = s.cli(&["findings", "list"]);
    assert!(ok && out.contains("SUCCESS") && out.contains(", 0 of 4)"), "{out}");
}
