//! The Python and JavaScript SDKs (`sdk/python`, `sdk/js`) through a real
//! host: a unit on each (`tests/guests/`), built from source with its
//! toolchain, deployed to `kaizen serve` and called over HTTP. A raised
//! `UnitError` answers its class and message; any other exception answers
//! `internal` with its message while its traceback or stack lands in the
//! host's log under the call's id; printed output is logged, bounded; a
//! structured log line carries its fields as JSON fields; a request nested
//! 100 000 deep is the caller's `invalid-input`, not a trap.
//!
//! Outside CI a missing toolchain skips its language with a notice; in CI it
//! fails (as `polyglot.rs`).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::examples::{build_js_sdk_guest, build_python_sdk_guest};
use crate::kaizen_bin::{Server, wait_for};

/// Invoke `unit` with `body`; (status, call id, answer as JSON).
fn call(s: &Server, unit: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, String, Value) {
    let r =
        s.http.post(format!("{}/api/v1/units/{unit}/invoke", s.url)).bearer_auth(&s.invoke).body(body).send().unwrap();
    let id = r.headers().get("x-kaizen-call-id").expect("every call names its id").to_str().unwrap().to_string();
    (r.status().as_u16(), id, r.json().unwrap())
}

/// The log's JSON lines of `target` for call `id`: their `fields`.
fn logged(log: &Path, target: &str, id: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == target && l["fields"]["call"] == id)
        .map(|l| l["fields"].clone())
        .collect()
}

fn says(line: &Value, text: &str) -> bool {
    line["message"].as_str().is_some_and(|m| m.contains(text))
}

/// Everything the SDK promises an author, on the unit `unit` in `wasm`;
/// `frames` are words of the exception's traceback or stack (the functions
/// it went through).
fn the_sdk_keeps_its_promises(wasm: &Path, unit: &str, exception: &str, frames: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let s = Server::start_logged(&dir.path().join("data"), &[("NO_COLOR", "1")], &[], &log);
    wait_for("the host to be ready", Duration::from_secs(60), || {
        s.http.get(format!("{}/healthz", s.url)).send().is_ok_and(|r| r.status() == 200)
    });
    s.deploy(std::fs::read(wasm).unwrap());

    let (status, _, body) = call(&s, unit, json!({"op": "echo", "n": [1, "é"]}).to_string());
    assert_eq!((status, &body), (200, &json!({"op": "echo", "n": [1, "é"]})));

    // A raised UnitError: its class and message, the caller's fault.
    let (status, _, e) = call(&s, unit, json!({"op": "refuse", "why": "no widgets today"}).to_string());
    assert_eq!((status, e["class"].as_str()), (422, Some("invalid-input")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("no widgets today"), "{e}");

    // Any other exception: `internal` with its message, the traceback in
    // the log under the call's id.
    let (status, crashed, e) = call(&s, unit, json!({"op": "crash", "why": "gears jammed"}).to_string());
    assert_eq!((status, e["class"].as_str()), (502, Some("internal")), "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(&format!("{exception}: gears jammed")), "{e}");
    wait_for("the exception's traceback in the log", Duration::from_secs(10), || {
        logged(&log, "kaizen::guest", &crashed).iter().any(|l| says(l, "gears jammed"))
    });
    let lines = logged(&log, "kaizen::guest", &crashed);
    for frame in frames {
        assert!(lines.iter().any(|l| says(l, frame) && l["stream"] == "stderr"), "no `{frame}` in {lines:#?}");
    }
    assert!(lines.iter().all(|l| l["plugin"] == unit && l["version"] == "1.0.0"), "{lines:#?}");

    // Printed output: logged line by line with the call's id, bounded.
    let (status, said, _) = call(&s, unit, json!({"op": "say", "lines": 3}).to_string());
    assert_eq!(status, 200);
    // 1000 lines of 64 bytes: four times the 16 KiB a call may log.
    let (status, flooded, _) = call(&s, unit, json!({"op": "say", "lines": 1000}).to_string());
    assert_eq!(status, 200);
    let (status, ordered, _) = call(&s, unit, json!({"op": "log", "order": "A-42"}).to_string());
    assert_eq!(status, 200);
    wait_for("the structured line in the log", Duration::from_secs(10), || {
        !logged(&log, "kaizen::plugin", &ordered).is_empty()
    });
    let lines = logged(&log, "kaizen::guest", &said);
    let line = |i: usize| format!("{unit} line {i:06}");
    for i in 0..3 {
        assert!(lines.iter().any(|l| says(l, &line(i)) && l["stream"] == "stdout"), "{lines:#?}");
    }
    assert!(lines.iter().any(|l| says(l, &format!("{unit} said 3 lines")) && l["stream"] == "stderr"), "{lines:#?}");
    let lines = logged(&log, "kaizen::guest", &flooded);
    let printed = lines.iter().filter(|l| says(l, &format!("{unit} line"))).count();
    assert_eq!(printed, 16 * 1024 / 64, "16 KiB of 64-byte lines, no more");
    assert!(lines.iter().any(|l| says(l, "[output truncated")), "the cut is marked");

    // A structured line: each field a JSON field of the line.
    let lines = logged(&log, "kaizen::plugin", &ordered);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(says(&lines[0], "order placed"), "{}", lines[0]);
    assert_eq!(lines[0]["fields"], json!({"order": "A-42", "attempt": "1"}), "{}", lines[0]);

    // Nested 100 000 deep, in either encoding: refused before parsing.
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut deep_msgpack = vec![0x91u8; 100_000];
    deep_msgpack.push(0x01);
    for (encoding, body) in [("JSON", deep_json.into_bytes()), ("MessagePack", deep_msgpack)] {
        let (status, _, e) = call(&s, unit, body);
        assert_eq!((status, e["class"].as_str()), (422, Some("invalid-input")), "{encoding}: {e}");
        let expected = format!("{encoding} request nested deeper than 128 levels");
        assert!(e["message"].as_str().unwrap().contains(&expected), "{e}");
    }

    // None of the caller's mistakes counted against the unit; the crash did.
    let units = s.get("/api/v1/units");
    let u = units.as_array().unwrap().iter().find(|u| u["unit"] == unit).expect("the unit is listed");
    let n = |k: &str| u[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {u}"));
    assert_eq!((n("caller_errors_total"), n("unit_errors_total")), (3, 1), "{u}");
}

#[test]
fn a_python_unit_on_the_sdk_answers_typed_errors_and_logs_what_it_prints() {
    let Some(wasm) = build_python_sdk_guest() else { return };
    let frames = ["Traceback (most recent call last)", "in turn_the_gears", "in jam", "RuntimeError: gears jammed"];
    the_sdk_keeps_its_promises(&wasm, "speaker-py", "RuntimeError", &frames);
}

#[test]
fn a_javascript_unit_on_the_sdk_answers_typed_errors_and_logs_what_it_prints() {
    let Some(wasm) = build_js_sdk_guest() else { return };
    let frames = ["RangeError: gears jammed", "at jam", "at turnTheGears"];
    the_sdk_keeps_its_promises(&wasm, "speaker-js", "RangeError", &frames);
}

/// The packages' own tests, natively: `python -m unittest` in `sdk/python`
/// and `node --test` in `sdk/js` (no WebAssembly).
#[test]
fn the_sdk_packages_pass_their_own_tests() {
    use crate::examples::{have, repo, run, toolchain};
    use std::process::Command;
    if toolchain("Python", have("python3", "--version")) {
        run(Command::new("python3")
            .args(["-m", "unittest", "discover", "-s", "tests"])
            .current_dir(repo().join("sdk/python"))
            .env("PYTHONPATH", repo().join("sdk/python/src"))
            .env("PYTHONDONTWRITEBYTECODE", "1"));
    }
    if toolchain("JavaScript", have("node", "--version")) {
        run(Command::new("node").arg("--test").current_dir(repo().join("sdk/js")));
    }
}
