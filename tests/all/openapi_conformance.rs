//! The API does what its document says. schemathesis (PyPI) fuzzes the real
//! binary through its served `/openapi.json` with every check on and the
//! admin token; the focused tests pin each promise a client relies on:
//! the token answers, name patterns, nullable bodies, maps-not-arrays and
//! unique operation ids.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kaizen_bin::Server;

/// The pinned version `.ci/run` installs.
const SCHEMATHESIS: &str = "4.32.5";

/// Test cases per operation: enough to reach every documented status and
/// boundary, few enough for a 2-core machine.
const MAX_EXAMPLES: &str = "25";

/// The longest the fuzzing run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// schemathesis' `st`, if installed; in CI it must be (.ci/run installs it).
fn schemathesis() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|d| d.join("st")).find(|p| {
            p.is_file()
                && Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("version"))
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the OpenAPI conformance test: .ci/run installs schemathesis=={SCHEMATHESIS}"
        );
        eprintln!(
            "NOTICE: OpenAPI conformance test skipped: schemathesis is missing (pip install schemathesis=={SCHEMATHESIS})"
        );
    }
    found
}

fn config_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml")
}

/// Every documented operation: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

/// `path` with its parameters filled in: a name where a name goes, an
/// integer where an integer goes.
fn filled(path: &str, op: &Value, name: &str) -> String {
    let mut out = path.to_string();
    for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
        let n = p["name"].as_str().unwrap();
        let value = match p["schema"]["type"].as_str() {
            Some("integer") => "1".to_string(),
            _ if p["schema"]["$ref"].is_string() => "pause".to_string(),
            _ => name.to_string(),
        };
        out = out.replace(&format!("{{{n}}}"), &value);
    }
    out
}

fn send(s: &Server, method: &str, path: &str, token: Option<&str>) -> reqwest::blocking::Response {
    let mut r = s.http.request(method.parse().unwrap(), format!("{}{path}", s.url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn error_code(r: reqwest::blocking::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_string(), body["message"].as_str().unwrap_or("").to_string())
}

/// schemathesis, every check on, against the served document of a fresh
/// host: zero failures.
#[test]
fn schemathesis_finds_no_disagreement() {
    let Some(st) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    // schemathesis keeps its example database in the working directory:
    // a temporary one, so a run leaves nothing in the checkout.
    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(st)
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(config_file())
        .arg("--no-color")
        .args(["run", &format!("{}/openapi.json", s.url)])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES, "--workers", "1", "--request-timeout", "20"])
        .args(["-H", &format!("Authorization: Bearer {}", s.admin)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let report = format!("{out}\n{err}");
    let status = status.unwrap_or_else(|| panic!("schemathesis ran over {RUN_LIMIT:?}:\n{report}"));
    eprintln!("schemathesis took {:.0?}", started.elapsed());
    // The failures first: a long report is cut in the middle by CI's log.
    let failures = report.find("= FAILURES =").map_or("", |at| &report[at..]);
    let failures = failures.find("= WARNINGS =").map_or(failures, |end| &failures[..end]);
    assert!(
        status.success(),
        "schemathesis found disagreements between the document and the server:\n{failures}\n\nthe whole report:\n{report}"
    );
    assert!(!report.contains("No operations"), "schemathesis tested nothing:\n{report}");
    assert!(s.stop().success());
}

/// Each operation id names one operation; every operation that takes a
/// token documents 401 (and 403 where only the admin token will do), and
/// the server answers exactly that.
#[test]
fn every_operation_is_named_once_and_answers_its_documented_token_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    let ops = operations(&doc);
    let mut ids: Vec<&str> = ops.iter().map(|(_, _, op)| op["operationId"].as_str().unwrap()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "operation ids are used twice: {ids:?}");
    for (method, path, op) in &ops {
        let schemes: Vec<String> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.as_object().unwrap().keys().cloned())
            .collect();
        let responses = op["responses"].as_object().unwrap();
        let url = filled(path, op, "calculator");
        if schemes.is_empty() {
            assert_eq!(path, "/healthz", "only /healthz is public");
            assert_eq!(send(&s, method, &url, None).status(), 200);
            continue;
        }
        let admin_only = !schemes.iter().any(|s| s == "invoke");
        let documented: &[&str] = if admin_only { &["401", "403"] } else { &["401"] };
        for status in documented {
            assert_eq!(
                responses.get(*status).map(|r| &r["content"]["application/json"]["schema"]["$ref"]),
                Some(&json!("#/components/schemas/ErrorBody")),
                "{method} {path} documents no {status} with the error body"
            );
        }
        assert_eq!(error_code(send(&s, method, &url, None)).0, 401, "{method} {path} without a token");
        assert_eq!(error_code(send(&s, method, &url, Some("not-a-token"))).0, 401, "{method} {path}, unknown token");
        assert_eq!(responses.contains_key("403"), admin_only, "{method} {path}: 403 documented iff admin-only");
        if admin_only {
            let (status, code, _) = error_code(send(&s, method, &url, Some(&s.invoke)));
            assert_eq!((status, code.as_str()), (403, "forbidden"), "{method} {path} with the invoke token");
        }
    }
    assert!(s.stop().success());
}

/// Every path parameter that names a plugin, slot or unit carries the
/// naming rule as its `pattern`, and the server answers a name outside it
/// with the documented 400.
#[test]
fn names_in_paths_follow_their_documented_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().unwrap();
            if !["unit", "slot", "name", "target"].contains(&name) {
                continue;
            }
            assert_eq!(p["schema"]["pattern"], "^[a-z][a-z0-9-]{0,63}$", "{method} {path}: `{name}` has no pattern");
            assert!(op["responses"]["400"].is_object(), "{method} {path}: 400 for a bad name is not documented");
            for bad in ["Calculator", "9lives", "a_b", &"x".repeat(65)] {
                let url = filled(&path, &op, bad);
                let mut r = s.http.request(method.parse().unwrap(), format!("{}{url}", s.url)).bearer_auth(&s.admin);
                // A body valid for the route, so that only the name is wrong:
                // `null` where the body is optional, else a breaker reset.
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                if body.is_object() {
                    let optional = body["oneOf"].as_array().is_some_and(|o| o.iter().any(|s| s["type"] == "null"));
                    r = r.json(&if optional { json!(null) } else { json!({"state": "reset"}) });
                }
                let (status, _, message) = error_code(r.send().unwrap());
                assert_eq!(status, 400, "{method} {url}: {message}");
                assert!(message.contains("name"), "the refusal says what was wrong: {message}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} name checks: the named path parameters went missing");
    assert!(s.stop().success());
}

/// Bodies documented as `oneOf[null, Reason]` and not required accept no
/// body, an empty one and `null`; a reason still reaches the audit trail.
#[test]
fn optional_bodies_accept_null_and_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    for path in ["/api/v1/control/{action}", "/api/v1/deployments/{slot}/rollback"] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{path}: the reason is optional");
        let schema = body["content"]["application/json"]["schema"].to_string();
        assert!(schema.contains("\"null\"") && schema.contains("Reason"), "{path}: {schema}");
    }
    let post = |path: &str, ct: Option<&str>, body: &'static str| {
        let mut r = s.http.post(format!("{}{path}", s.url)).bearer_auth(&s.admin).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send().unwrap()
    };
    let json = Some("application/json");
    for (ct, body) in [(json, "null"), (json, ""), (None, ""), (json, r#"{"reason": null}"#)] {
        let r = post("/api/v1/control/pause", ct, body);
        assert_eq!(r.status(), 200, "pause with {ct:?} {body:?}: {}", r.text().unwrap());
        let r = post("/api/v1/control/resume", ct, body);
        assert_eq!(r.status(), 200, "resume with {ct:?} {body:?}");
    }
    // Whitespace alone is no JSON text: refused as malformed, and nothing changes.
    for body in ["\t", " \n"] {
        let (status, code, message) = error_code(post("/api/v1/control/pause", json, body));
        assert_eq!((status, code.as_str()), (400, "bad-request"), "pause with {body:?}: {message}");
    }
    assert_eq!(s.get("/api/v1/status")["state"], "running", "a refused pause paused nothing");
    // The rollback gets past its body to the real answer: nothing to roll back to.
    let (status, code, _) = error_code(post("/api/v1/deployments/calculator/rollback", json, "null"));
    assert_eq!((status, code.as_str()), (409, "conflict"));
    let r = post("/api/v1/control/pause", json, r#"{"reason": "maintenance window"}"#);
    assert!(r.json::<Value>().unwrap()["paused"].as_bool().unwrap());
    let audit = s.get("/api/v1/audit");
    assert!(audit.to_string().contains("maintenance window"), "{audit}");
    // What the document does not allow is still refused, each with its status.
    assert_eq!(error_code(post("/api/v1/control/resume", json, "{")).0, 400);
    assert_eq!(error_code(post("/api/v1/control/resume", json, r#"{"reason": 5}"#)).0, 422);
    assert_eq!(error_code(post("/api/v1/control/resume", json, r#"["why"]"#)).0, 422);
    assert_eq!(error_code(post("/api/v1/control/resume", Some("text/plain"), "why")).0, 415);
    assert!(s.stop().success());
}

/// A batch and its records are maps of named fields, as documented: the
/// positional-array form serde would take is refused, saying why, and
/// nothing of it is stored. So are other bodies that are not maps.
#[test]
fn bodies_that_are_arrays_are_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    let schema = &doc["components"]["schemas"]["IngestBatch"];
    assert_eq!(schema["type"], "object", "{schema}");
    let now = kaizen_host::store::now_ms();
    let record =
        json!({"target": "array-form", "version": "1.0.0", "started_at": now, "duration_ms": 2.0, "outcome": "ok"});
    let positional = json!(["array-form", "1.0.0", now, 2.0, "ok"]);
    let ingest = |body: &Value| {
        s.http.post(format!("{}/api/v1/telemetry", s.url)).bearer_auth(&s.invoke).json(body).send().unwrap()
    };
    for (body, what) in [
        (json!([[record.clone()], []]), "a telemetry batch as a map"),
        (json!({"executions": [positional]}), "an execution as a map"),
        (json!({"metrics": [["q", 1.0, now, {}]]}), "a metric as a map"),
    ] {
        let (status, code, message) = error_code(ingest(&body));
        assert_eq!((status, code.as_str()), (400, "invalid-telemetry"), "{body}: {message}");
        assert!(message.contains(what), "the refusal names what was expected ({what}): {message}");
    }
    let r = s
        .http
        .post(format!("{}/api/v1/telemetry", s.url))
        .bearer_auth(&s.invoke)
        .header("content-type", "application/msgpack")
        .body(rmp_serde::to_vec(&(vec![record.clone()], Vec::<Value>::new())).unwrap())
        .send()
        .unwrap();
    assert_eq!(error_code(r).0, 400, "a MessagePack array is refused too");
    let units = s.get("/api/v1/units");
    assert!(!units.to_string().contains("array-form"), "a refused batch left records: {units}");
    // The same batch as maps is stored.
    let r = ingest(&json!({"executions": [record]}));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["executions"], 1);
    let r = s.post("/api/v1/breakers/calculator", json!(["open", 1000, "why"]));
    assert_eq!(error_code(r).0, 422, "a breaker force is a map too");
    assert!(s.stop().success());
}

/// Query values outside their schema are answered 400, as documented:
/// an unknown upload `mode`, a finding `status` that is none, a `limit`
/// that is no integer, a `target` outside the naming rule.
#[test]
fn query_values_outside_their_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let doc = s.get("/openapi.json");
    let upload = &doc["paths"]["/api/v1/plugins"]["post"];
    assert!(upload["responses"]["400"].is_object());
    let mode = upload["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "mode").unwrap();
    assert_eq!(mode["schema"]["enum"], json!(["auto", "deploy", "candidate"]), "{mode}");
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?mode=sideways", s.url))
        .bearer_auth(&s.admin)
        .body(b"\0asm".to_vec())
        .send()
        .unwrap();
    let (status, _, message) = error_code(r);
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("sideways") || message.contains("unknown variant"), "{message}");
    for path in ["/api/v1/findings?status=sideways", "/api/v1/cycles?limit=many", "/api/v1/audit?target=Bad_Name"] {
        let (status, _, message) = error_code(send(&s, "GET", path, Some(&s.admin)));
        assert_eq!(status, 400, "{path}: {message}");
        let op = if path.starts_with("/api/v1/findings") {
            "/api/v1/findings"
        } else if path.starts_with("/api/v1/cycles") {
            "/api/v1/cycles"
        } else {
            "/api/v1/audit"
        };
        assert!(doc["paths"][op]["get"]["responses"]["400"].is_object(), "{op} does not document its 400");
    }
    assert_eq!(send(&s, "GET", "/api/v1/findings?status=open", Some(&s.admin)).status(), 200);
    assert!(s.stop().success());
}
