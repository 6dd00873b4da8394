//! A slot's instance mode through the real binary: warm instances keep the
//! guest's state between calls up to `reuse` calls and are re-created after
//! a trap; fresh instances never share it; the API reads and changes the
//! mode; bad settings are refused at load naming the key.

use kaizen_plugins as guests;
use serde_json::json;

use crate::kaizen_bin::Server;

/// `counter` answers how many calls its instance has served.
fn deploy_counter(s: &Server) {
    s.deploy(guests::TEST_COUNTER.load().unwrap());
}

/// The answers of `n` calls in a row.
fn counts(s: &Server, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let (status, _, body) = s.invoke("counter", "next");
            assert_eq!(status, 200, "{body}");
            body.parse().unwrap_or_else(|_| panic!("a count, not {body:?}"))
        })
        .collect()
}

fn put(s: &Server, body: serde_json::Value) -> reqwest::blocking::Response {
    s.http
        .put(format!("{}/api/v1/deployments/counter/instances", s.url))
        .bearer_auth(&s.admin)
        .json(&body)
        .send()
        .unwrap()
}

#[test]
fn warm_instances_are_reused_up_to_reuse_calls_and_recreated_after_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kaizen.toml");
    // Health checks call `describe` on the serving version: none during the
    // test, so that every call an instance serves is one of ours.
    std::fs::write(&cfg, "[runtime.instances.counter]\nmode = \"warm\"\nreuse = 3\n\n[health]\ninterval_secs = 3600\n")
        .unwrap();
    let s = Server::start(dir.path(), &[], &["--config", cfg.to_str().unwrap()]);
    deploy_counter(&s);
    assert_eq!(s.get("/api/v1/deployments/counter/instances"), json!({"slot": "counter", "mode": "warm", "reuse": 3}));

    // One instance serves three calls, then a fresh one takes its place.
    assert_eq!(counts(&s, 7), [1, 2, 3, 1, 2, 3, 1], "state kept for `reuse` calls, then a fresh instance");

    // A trap drops the instance: nothing of it reaches the next call.
    assert_eq!(counts(&s, 1), [2]);
    let (status, _, body) = s.invoke("counter", "trap");
    assert_eq!(status, 502, "{body}");
    assert_eq!(counts(&s, 2), [1, 2], "after a trap the next call starts on a fresh instance");

    // Fresh: no call sees another's state.
    let r = put(&s, json!({"mode": "fresh"}));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap(), json!({"slot": "counter", "mode": "fresh", "reuse": 3}));
    assert_eq!(counts(&s, 4), [1, 1, 1, 1]);

    // Warm again with another reuse count.
    let r = put(&s, json!({"mode": "warm", "reuse": 2}));
    assert_eq!(r.status(), 200);
    assert_eq!(counts(&s, 5), [1, 2, 1, 2, 1]);

    // Bad changes are refused, naming what is wrong; the mode stays.
    let r = put(&s, json!({"mode": "warm", "reuse": 0}));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("`reuse` = 0: must be between 1 and 4294967295"));
    let r = put(&s, json!({"mode": "lukewarm"}));
    assert_eq!(r.status(), 422);
    assert!(r.text().unwrap().contains("lukewarm"));
    assert_eq!(s.get("/api/v1/deployments/counter/instances")["reuse"], 2);
    let r = s.http.get(format!("{}/api/v1/deployments/nothing/instances", s.url)).bearer_auth(&s.admin).send().unwrap();
    assert_eq!(r.status(), 404);
    s.stop();
}

#[test]
fn bad_instance_settings_are_refused_at_load_naming_the_key() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[runtime.instances.counter]\nmode = \"warm\"\nreuse = 0\n",
            &["`runtime.instances.counter.reuse` = 0: must be at least 1"],
        ),
        ("[runtime.instances.counter]\nmode = \"lukewarm\"\n", &["lukewarm", "runtime.instances.counter.mode"]),
        ("[runtime.instances.counter]\nmode = \"warm\"\nreuse = -1\n", &["runtime.instances.counter.reuse"]),
        ("[runtime.instances.counter]\nwarm = true\n", &["warm", "runtime.instances.counter"]),
    ];
    for (toml, wants) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kaizen.toml");
        std::fs::write(&file, toml).unwrap();
        let out = std::process::Command::new(crate::kaizen_bin::BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in *wants {
            assert!(err.contains(want), "{toml}: {want:?} not in {err}");
        }
        assert!(!err.contains("backtrace"), "{err}");
        assert!(!dir.path().join("kaizen.db").exists(), "nothing was opened for {toml}");
    }
}
