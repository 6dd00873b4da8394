//! The API refuses what it must, always with a JSON body carrying a stable
//! code, and a refusal never changes what serves.

use kaizen_plugins::TEST_UNKNOWN_WORLD;

use crate::kaizen_bin::Server;

fn code(r: reqwest::blocking::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(ct.starts_with("application/json"), "status {status} answered {ct}, not JSON");
    let body: serde_json::Value = r.json().unwrap();
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (status, body["code"].as_str().unwrap().to_string())
}

#[test]
fn tokens_names_sizes_and_modules_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[("KAIZEN_HTTP__MAX_BODY_BYTES", "2000000"), ("KAIZEN_HTTP__MAX_INVOKE_BYTES", "1024")],
        &[],
    );
    let url = |p: &str| format!("{}{p}", s.url);
    let h = &s.http;

    // Health needs no token; everything else does.
    assert_eq!(h.get(url("/healthz")).send().unwrap().status(), 200);
    assert_eq!(code(h.get(url("/api/v1/status")).send().unwrap()), (401, "unauthorized".into()));
    assert_eq!(code(h.get(url("/metrics")).send().unwrap()), (401, "unauthorized".into()));
    assert_eq!(
        code(h.get(url("/api/v1/status")).bearer_auth("wrong-token").send().unwrap()),
        (401, "unauthorized".into())
    );
    let invoke_only = h.post(url("/api/v1/control/pause")).bearer_auth(&s.invoke).send().unwrap();
    assert_eq!(code(invoke_only), (403, "forbidden".into()), "the invoke token cannot steer the loop");
    assert_eq!(s.get("/api/v1/status")["state"], "running");
    let r = h.post(url("/api/v1/units/calculator/invoke")).bearer_auth(&s.invoke).body(r#"{"op":"add","a":1,"b":1}"#);
    assert_eq!(r.send().unwrap().status(), 200, "the invoke token invokes");
    let (status, version, body) = s.invoke("calculator", r#"{"op":"pow","a":1,"b":1}"#);
    assert_eq!((status, version.as_str()), (422, "1.0.0"), "a failed call names the version that failed it: {body}");

    // Typed unit errors carry their class.
    let r = h.post(url("/api/v1/units/calculator/invoke")).bearer_auth(&s.invoke).body("{}").send().unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(
        (status, body["code"].as_str(), body["class"].as_str()),
        (422, Some("unit-error"), Some("invalid-input"))
    );
    let r = h.post(url("/api/v1/units/nosuch/invoke")).bearer_auth(&s.invoke).body("{}").send().unwrap();
    assert_eq!(code(r), (404, "unknown-unit".into()));

    // Names: no traversal, no control characters, no surprises.
    for bad in ["..%2F..%2Fetc", "Calc", "a%0Ab", "x%00"] {
        let r = h.post(url(&format!("/api/v1/units/{bad}/invoke"))).bearer_auth(&s.invoke).body("{}").send().unwrap();
        assert_eq!(code(r).0, 400, "{bad}");
        let r = h.post(url(&format!("/api/v1/deployments/{bad}/rollback"))).bearer_auth(&s.admin).send().unwrap();
        assert_eq!(code(r).0, 400, "{bad}");
    }

    // Sizes.
    let big = vec![b'x'; 4096];
    let r = h.post(url("/api/v1/units/calculator/invoke")).bearer_auth(&s.invoke).body(big).send().unwrap();
    assert_eq!(code(r), (413, "payload-too-large".into()));
    let huge = vec![0u8; 3_000_000];
    let r = h.post(url("/api/v1/plugins")).bearer_auth(&s.admin).body(huge).send().unwrap();
    assert_eq!(
        r.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close"),
        "a refusal of an unread body must tell the client not to reuse the connection"
    );
    assert_eq!(r.status(), 413, "uploads above the body limit are refused before they are read whole");
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("over the 2000000-byte limit (`http.max_body_bytes`)"),
        "{body}"
    );

    // Malformed input of other kinds.
    let r = h
        .post(url("/api/v1/telemetry"))
        .bearer_auth(&s.invoke)
        .header("content-type", "application/json")
        .body("{")
        .send();
    assert_eq!(code(r.unwrap()), (400, "invalid-telemetry".into()));
    let bad_record = serde_json::json!({"executions": [{"target": "ok", "version": "1.0.0", "started_at": kaizen_host::store::now_ms(), "duration_ms": 1.0, "outcome": "ok"},
        {"target": "../x", "outcome": "sideways"}]});
    let r = h.post(url("/api/v1/telemetry")).bearer_auth(&s.invoke).json(&bad_record).send().unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["details"][0]["index"], 1, "the bad record is named: {body}");
    let r =
        h.post(url("/api/v1/telemetry")).bearer_auth(&s.invoke).header("content-type", "text/csv").body("a,b").send();
    assert_eq!(code(r.unwrap()), (415, "unsupported-media-type".into()));
    let r = h
        .post(url("/api/v1/breakers/calculator"))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body("{\"state\":");
    assert_eq!(code(r.send().unwrap()).0, 400);
    let r = s.post("/api/v1/breakers/no-such-unit", serde_json::json!({"state": "open"}));
    assert_eq!(code(r), (404, "unknown-unit".into()), "no breaker is created for a name that is no unit");
    let listed = s.get("/api/v1/breakers");
    assert!(!listed.to_string().contains("no-such-unit"), "{listed}");
    assert_eq!(
        code(h.get(url("/api/v1/nothing-here")).bearer_auth(&s.admin).send().unwrap()),
        (404, "not-found".into())
    );
    assert_eq!(code(h.delete(url("/api/v1/plugins")).bearer_auth(&s.admin).send().unwrap()).0, 405);
    assert_eq!(code(s.post("/api/v1/control/explode", serde_json::json!({}))).0, 404);
    assert_eq!(
        code(h.get(url("/api/v1/cycles/999999")).bearer_auth(&s.admin).send().unwrap()),
        (404, "not-found".into())
    );

    // A module the contract refuses: named reason, nothing changes.
    let r = h.post(url("/api/v1/plugins")).bearer_auth(&s.admin).body(b"\0asm garbage".to_vec()).send().unwrap();
    assert_eq!(code(r), (422, "invalid-module".into()));
    let r =
        h.post(url("/api/v1/plugins")).bearer_auth(&s.admin).body(TEST_UNKNOWN_WORLD.load().unwrap()).send().unwrap();
    let body: serde_json::Value = r.json().unwrap();
    assert!(body["message"].as_str().unwrap().contains("targets no kaizen:plugin world"), "{body}");
    // A real module sent as a form (`curl -F`): told how to send it.
    let module = kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap();
    let mut form = b"--xyz\r\ncontent-disposition: form-data; name=\"file\"; filename=\"c.wasm\"\r\n\r\n".to_vec();
    form.extend_from_slice(&module);
    form.extend_from_slice(b"\r\n--xyz--\r\n");
    let r = h
        .post(url("/api/v1/plugins"))
        .bearer_auth(&s.admin)
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body(form)
        .send()
        .unwrap();
    let (status, body): (u16, serde_json::Value) = (r.status().as_u16(), r.json().unwrap());
    assert_eq!((status, body["code"].as_str()), (415, Some("unsupported-media-type")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("--data-binary"), "{body}");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));
    let r = s.post("/api/v1/deployments/calculator/rollback", serde_json::json!({}));
    assert_eq!(code(r), (409, "conflict".into()), "no previous version to roll back to");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));
    assert!(s.stop().success());
}

/// A misspelt field or query parameter is refused by name, never ignored:
/// ignored, `?mdoe=candidate` would deploy at once, `{"msec": 500}` would
/// open a breaker for the default 30 s, and `{"reasn": …}` would lose the
/// audit trail's reason. Nothing changes on a refusal.
#[test]
fn misspelt_fields_and_parameters_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let url = |p: &str| format!("{}{p}", s.url);
    let h = &s.http;
    let refused = |r: reqwest::blocking::Response, status: u16, field: &str| {
        let got = r.status().as_u16();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(got, status, "{field}: {body}");
        assert!(body["message"].as_str().unwrap().contains(&format!("`{field}`")), "names `{field}`: {body}");
    };

    refused(s.post("/api/v1/control/pause", serde_json::json!({"reasn": "deploy"})), 422, "reasn");
    assert_eq!(s.get("/api/v1/status")["state"], "running", "a refused pause paused nothing");
    let r = h.put(url("/api/v1/freeze")).bearer_auth(&s.admin).json(&serde_json::json!({"for_sec": 60})).send();
    refused(r.unwrap(), 422, "for_sec");
    let gates = s.get("/api/v1/status")["rollout_gates"].clone();
    assert!(gates.as_array().unwrap().iter().all(|g| g["state"] == "open"), "a refused freeze froze nothing: {gates}");
    refused(s.post("/api/v1/breakers/calculator", serde_json::json!({"state": "open", "msec": 500})), 422, "msec");
    let breakers = s.get("/api/v1/breakers");
    assert!(!breakers.to_string().contains("\"open\""), "a refused force opened nothing: {breakers}");
    let r = h
        .put(url("/api/v1/deployments/calculator/instances"))
        .bearer_auth(&s.admin)
        .json(&serde_json::json!({"mode": "fresh", "reuses": 5}))
        .send();
    refused(r.unwrap(), 422, "reuses");

    let module = kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap();
    let r = h
        .post(url("/api/v1/plugins?mdoe=candidate"))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(module)
        .send();
    refused(r.unwrap(), 400, "mdoe");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"), "a refused upload deployed nothing");
    refused(h.get(url("/api/v1/findings?limt=5")).bearer_auth(&s.admin).send().unwrap(), 400, "limt");

    let now = kaizen_host::store::now_ms();
    let batch = serde_json::json!({"executions": [{"target": "misspelt", "version": "1.0.0", "started_at": now,
        "duration_ms": 2.0, "outcome": "error", "errorclass": "dependency"}]});
    let r = h.post(url("/api/v1/telemetry")).bearer_auth(&s.invoke).json(&batch).send().unwrap();
    refused(r, 400, "errorclass");
    assert!(!s.get("/api/v1/units").to_string().contains("misspelt"), "a refused batch stored nothing");
    assert!(s.stop().success());
}

#[test]
fn bad_configuration_is_named_and_nothing_starts() {
    let err = crate::kaizen_bin::refused("[loop]\nintervl_secs = 3\n", &[]);
    assert!(err.contains("intervl_secs"), "{err}");
}

/// Settings outside their valid range are refused when loaded, each named
/// with its value and rule — not discovered later by a loop that panics on
/// them (`min > max`) or spins (`interval_secs = 0`).
#[test]
fn settings_out_of_range_are_refused_at_load_naming_key_value_and_rule() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[loop]\nmin_interval_secs = 10\nmax_interval_secs = 5\n",
            &["`loop.min_interval_secs` = 10: must be at most loop.max_interval_secs (5)"],
        ),
        ("[loop]\ninterval_secs = -2.0\n", &["`loop.interval_secs` = -2: must be a number greater than 0"]),
        ("[loop]\ninterval_secs = 0\n", &["`loop.interval_secs` = 0: must be a number greater than 0"]),
        (
            "[safety.limits]\ncanary_steps = [50.0, 10.0]\n[safety.limits.judge]\nalpha = 2.0\n",
            &["must end at 100", "steps must increase", "`safety.limits.judge.alpha` = 2"],
        ),
        ("[http]\nmax_invoke_bytes = 0\n", &["`http.max_invoke_bytes` = 0: must be at least 1"]),
        (
            "[safety.limits.judge]\nmin_samples = 100\nmax_samples = 10\n",
            &["`safety.limits.judge.min_samples` = 100: must be at most safety.limits.judge.max_samples (10)"],
        ),
    ];
    for (toml, words) in cases {
        let err = crate::kaizen_bin::refused(toml, &[]);
        for w in *words {
            assert!(err.contains(w), "{toml}: {err} lacks {w}");
            assert_eq!(err.matches(w).count(), 1, "{toml}: said more than once: {err}");
        }
    }
    // The same rule holds for the environment.
    let err = crate::kaizen_bin::refused("", &[("KAIZEN_RECOVERY__BREAKER__FAILURE_RATE", "1.5")]);
    assert!(err.contains("`recovery.breaker.failure_rate` = 1.5: must be greater than 0 and at most 1"), "{err}");
}

/// An operator's reason is kept in the audit trail and printed in tables,
/// the control state and the dashboard: one that would break a line or
/// rewrite a terminal (a control character), or run on for pages, is
/// refused with what was wrong, and the action is not taken. A long one in
/// any script within the limit is kept as it was written.
#[test]
fn reasons_are_one_line_of_printable_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let refused = |r: reqwest::blocking::Response, says: &str| {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(status, 422, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "says {says:?}: {body}");
    };

    refused(
        s.post("/api/v1/control/pause", serde_json::json!({"reason": "\u{1b}[2Jall clear"})),
        "U+001B at character 1",
    );
    assert_eq!(s.get("/api/v1/status")["state"], "running", "a refused pause paused nothing");
    let long = "x".repeat(1001);
    let r = s.http.put(format!("{}/api/v1/freeze", s.url)).bearer_auth(&s.admin);
    refused(r.json(&serde_json::json!({"for_secs": 60, "reason": long})).send().unwrap(), "1001 characters");
    let gates = s.get("/api/v1/status")["rollout_gates"].clone();
    assert!(gates.as_array().unwrap().iter().all(|g| g["state"] == "open"), "a refused freeze froze nothing: {gates}");
    let force = serde_json::json!({"state": "open", "reason": "two\nlines"});
    refused(s.post("/api/v1/breakers/calculator", force), "U+000A at character 4");
    assert!(!s.get("/api/v1/breakers").to_string().contains("\"open\""), "a refused force opened nothing");

    // Text that reads other than it is stored, or breaks a line to a
    // browser: refused too.
    refused(
        s.post("/api/v1/control/pause", serde_json::json!({"reason": "fine\u{202e}enif"})),
        "U+202E at character 5",
    );
    refused(s.post("/api/v1/control/pause", serde_json::json!({"reason": "one\u{2028}two"})), "U+2028");
    assert_eq!(s.get("/api/v1/status")["state"], "running");

    // Through the command: the server's words about what was typed (no
    // place in a JSON body the command built), exit status 1, no
    // backtrace.
    let (ok, out, err) = s.cli(&["pause", "--reason", "tab\there"]);
    assert!(!ok && err.contains("U+0009") && !err.contains("stack backtrace"), "{out}{err}");
    assert!(!err.contains("at line") && !err.contains("Failed to deserialize"), "{err}");
    assert_eq!(s.get("/api/v1/status")["state"], "running");
    let (ok, out, err) = s.cli(&["breakers", "open", "calculator", "--for", "367d"]);
    assert!(!ok && err.contains("`367d` is too long: a duration is at most a year (366d)"), "{out}{err}");

    // A reason of spaces is none: the action's own words stand.
    let r = s.post("/api/v1/control/stop", serde_json::json!({ "reason": "   " }));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    assert_eq!(s.get("/api/v1/status")["control"]["reason"], "stop requested through the API");
    let r = s.post("/api/v1/control/release", serde_json::json!(null));
    assert_eq!(r.status(), 200);

    // 1000 characters of two bytes each are within the limit, kept whole.
    let accented = "é".repeat(1000);
    let r = s.post("/api/v1/control/pause", serde_json::json!({ "reason": accented }));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let status = s.get("/api/v1/status");
    assert_eq!(status["state"], "paused");
    assert!(status.to_string().contains(&accented), "{status}");
    assert!(s.stop().success());
}
