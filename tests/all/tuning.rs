//! Config candidates through the real `kaizen serve`: an operator's new
//! tunable values go the way a new module version goes — proof (replay of
//! recorded requests), canary steps under the judge, promotion or rollback —
//! and the exact prior config serves again after a rollback and after a
//! restart.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::{Value, json};

use crate::kaizen_bin::{Calls, Server, wait_for};

/// Short timings, the product's judge, every request kept for replay.
fn start(dir: &Path) -> Server {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        "[telemetry]\nsample_requests_every = 1\n\
         [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\ncanary_steps = [10.0, 50.0, 100.0]\n\
         step_timeout_secs = 60\nbake_secs = 4\nholdback_percent = 10.0\n\
         [safety.limits.judge]\nmin_samples = 20\n\
         [safety.self_watch]\nmax_rollback_rate = 1.0\nmax_failure_rate = 1.0\n\
         [loop.tuning.knobbed]\nbounds.spin = [0, 5000]\n",
    )
    .unwrap();
    Server::start(dir, &[], &["--config", path.to_str().unwrap()])
}

fn tune(s: &Server, unit: &str, settings: Value) -> (u16, Value) {
    let r = s.post(&format!("/api/v1/units/{unit}/tune"), json!({ "settings": settings }));
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// The improvement of candidate `id` on knobbed once it has ended.
fn ended(s: &Server, id: &str) -> Value {
    let mut found = Value::Null;
    wait_for(&format!("the rollout of {id} to end"), Duration::from_secs(240), || {
        let all = s.get("/api/v1/improvements?target=knobbed&limit=50");
        found = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| {
                i["candidate_sha"] == id
                    && !["proposed", "proving", "canary", "baking", "frozen"]
                        .contains(&i["state"].as_str().unwrap_or(""))
            })
            .cloned()
            .unwrap_or(Value::Null);
        !found.is_null()
    });
    found
}

#[test]
fn a_config_candidate_is_judged_like_a_version_and_a_bad_one_rolls_back_to_the_exact_prior_config() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    s.deploy(guests::TEST_KNOBBED.load().unwrap());
    let traffic = Calls::start(&s, "knobbed", |n| format!("call {n}"));
    std::thread::sleep(Duration::from_secs(2));

    // Refused before anything is queued, each naming what was wrong.
    let (status, body) = tune(&s, "knobbed", json!({"no_such": 1}));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`no_such` is not a tunable of `knobbed` (its tunables: spin, fail_pct, format)"),
        "{body}"
    );
    let (status, body) = tune(&s, "knobbed", json!({"fail_pct": 101}));
    assert!(status == 422 && body["message"].as_str().unwrap().contains("101 is above the maximum 100"), "{body}");
    let (status, body) = tune(&s, "knobbed", json!({"spin": 9000}));
    assert!(
        status == 422 && body["message"].as_str().unwrap().contains("outside loop.tuning.knobbed.bounds (0 to 5000)"),
        "{body}"
    );
    let (status, body) = tune(&s, "knobbed", json!({"format": "json"}));
    assert!(status == 422 && body["message"].as_str().unwrap().contains("not safe to canary"), "{body}");
    let (status, body) = tune(&s, "nobody", json!({"spin": 1}));
    assert_eq!(status, 404, "{body}");

    // From the CLI: a refusal in words, then a harmless change, proven,
    // canaried and promoted.
    let (ok, out, err) = s.cli(&["tune", "knobbed", "spin=lots"]);
    assert!(!ok && err.contains("`spin` of `knobbed`: value \"lots\" is not an integer"), "{out}{err}");
    let (ok, out, err) = s.cli(&["tune", "knobbed", "=5"]);
    assert!(!ok && err.contains("`=5` names no tunable"), "{out}{err}");
    let (ok, out, err) = s.cli(&["tune", "knobbed", "spin=1", "spin=2"]);
    assert!(!ok && err.contains("`spin` is given twice"), "{out}{err}");
    let (ok, out, err) = s.cli(&["tune", "knobbed", "spin=10", "--json"]);
    assert!(ok, "{out}{err}");
    let tuned: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tuned["result"], "candidate", "{tuned}");
    let good = tuned["version"].as_str().unwrap().to_string();
    assert!(good.starts_with("1.0.0+config."), "{tuned}");
    let imp = ended(&s, tuned["id"].as_str().unwrap());
    assert_eq!(imp["state"], "promoted", "{imp}");
    assert_eq!(s.serving("knobbed").as_deref(), Some(good.as_str()));

    // A change that breaks the unit: stopped, and the promoted config
    // (not the module's defaults) serves again.
    let (status, body) = tune(&s, "knobbed", json!({"fail_pct": 100}));
    assert_eq!((status, body["result"].as_str()), (202, Some("candidate")), "{body}");
    assert_eq!(body["settings"], json!({"fail_pct": "100", "format": "plain", "spin": "10"}), "{body}");
    let imp = ended(&s, body["id"].as_str().unwrap());
    assert!(["rejected", "rolled-back"].contains(&imp["state"].as_str().unwrap()), "{imp}");
    assert_eq!(s.serving("knobbed").as_deref(), Some(good.as_str()));
    drop(traffic);
    let answers: Vec<(u16, String, String)> = (0..20).map(|i| s.invoke("knobbed", &format!("after {i}"))).collect();
    assert!(answers.iter().all(|a| a.0 == 200 && a.1 == good), "{answers:?}");

    // After a restart: the same config version, read back by its sha256.
    drop(s);
    let s = start(dir.path());
    assert_eq!(s.serving("knobbed").as_deref(), Some(good.as_str()));
    let (status, version, body) = s.invoke("knobbed", "hello");
    assert_eq!((status, version.as_str(), body.as_str()), (200, good.as_str(), "hello"));
}
