//! Deeply nested requests are the caller's mistake: the SDK's payload
//! decoder (and so every bundled unit) refuses nesting beyond its limit as
//! `invalid-input` before any recursive parser sees it, instead of
//! exhausting the wasm stack and trapping against the unit.

use crate::kaizen_bin::Server;

/// `{"op": "add", "a": [[[…1…]]], "b": 1}` with `depth` levels in all.
fn nested_json(depth: usize) -> String {
    let inner = depth - 1;
    format!(r#"{{"op": "add", "a": {}1{}, "b": 1}}"#, "[".repeat(inner), "]".repeat(inner))
}

/// `depth` one-element MessagePack arrays around a 1.
fn nested_msgpack(depth: usize) -> Vec<u8> {
    let mut v = vec![0x91; depth];
    v.push(0x01);
    v
}

fn invoke_bytes(s: &Server, unit: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let r =
        s.http.post(format!("{}/api/v1/units/{unit}/invoke", s.url)).bearer_auth(&s.invoke).body(body).send().unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

#[test]
fn a_request_nested_100_000_deep_is_invalid_input_not_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    for body in [nested_json(100_000).into_bytes(), nested_msgpack(100_000)] {
        let (status, e) = invoke_bytes(&s, "calculator", body);
        assert_eq!(status, 422, "{e}");
        assert_eq!(e["class"], "invalid-input", "{e}");
        assert!(e["message"].as_str().unwrap().contains("nested deeper than 128 levels"), "{e}");
    }
    // At the limit it is an ordinary request (here of the wrong shape).
    let (status, e) = invoke_bytes(&s, "calculator", nested_json(128).into_bytes());
    assert_eq!((status, e["class"].as_str()), (422, Some("invalid-input")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("expected {op, a, b}"), "{e}");
    let (status, _, body) = s.invoke("calculator", r#"{"op": "add", "a": 2, "b": 3}"#);
    assert_eq!((status, body.as_str()), (200, r#"{"result":5}"#));

    // Counted as the caller's errors, none against the unit.
    let units = s.get("/api/v1/units");
    let calc = units.as_array().unwrap().iter().find(|u| u["unit"] == "calculator").expect("calculator");
    let n = |k: &str| calc[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {calc}"));
    assert_eq!((n("calls_total"), n("caller_errors_total"), n("unit_errors_total")), (4, 3, 0), "{calc}");
}

#[test]
fn the_nesting_limit_is_the_units_setting() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KAIZEN_RUNTIME__PLUGIN_CONFIG__CALCULATOR__PAYLOAD_MAX_DEPTH", "2")];
    let s = Server::start(dir.path(), &env, &[]);
    let (status, e) = invoke_bytes(&s, "calculator", nested_json(3).into_bytes());
    assert_eq!((status, e["class"].as_str()), (422, Some("invalid-input")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("nested deeper than 2 levels"), "{e}");
    let (status, _, body) = s.invoke("calculator", r#"{"op": "mul", "a": 4, "b": 5}"#);
    assert_eq!((status, body.as_str()), (200, r#"{"result":20}"#));
}
