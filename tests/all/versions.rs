//! A plugin version names one build for good: other bytes under a version
//! the host already has are refused on every way a module arrives (the
//! API, `kaizen deploy`, the watch folder, the bundle at start) unless an
//! operator replaces the version explicitly, which is audited.

use std::time::Duration;

use kaizen_plugins::UNIT_CALCULATOR_V1;
use sha2::{Digest, Sha256};

use crate::kaizen_bin::{Server, wait_for, wasm_files};

/// The same component with a custom section appended: still valid, same
/// name and version, other bytes — what a rebuild without a version bump
/// gives.
fn rebuilt(mut bytes: Vec<u8>, tag: &str) -> Vec<u8> {
    let name = b"kaizen-test-rebuild";
    let payload = tag.as_bytes();
    let len = 1 + name.len() + payload.len();
    assert!(len < 128 && name.len() < 128, "one-byte LEB128 sizes");
    bytes.push(0);
    bytes.push(len as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn upload(s: &Server, query: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?{query}", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn serving_sha(s: &Server, name: &str) -> String {
    let plugins = s.get("/api/v1/plugins");
    let p = plugins.as_array().unwrap().iter().find(|p| p["name"] == name).expect("the slot exists");
    p["current"]["sha256"].as_str().unwrap().to_string()
}

#[test]
fn other_bytes_under_a_known_version_are_refused_unless_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let original = UNIT_CALCULATOR_V1.load().unwrap();
    let other = rebuilt(original.clone(), "one");
    let (old_sha, new_sha) = (sha(&original), sha(&other));
    assert_eq!(serving_sha(&s, "calculator"), old_sha);

    // Directly and as a candidate for the loop: refused, naming what to do.
    for query in ["mode=deploy", "mode=auto", "mode=candidate"] {
        let (status, body) = upload(&s, query, &other);
        assert_eq!(status, 409, "{query}: {body}");
        assert_eq!(body["code"], "version-exists", "{body}");
        let msg = body["message"].as_str().unwrap();
        for part in ["calculator 1.0.0", &old_sha[..12], &new_sha[..12], "bump the version", "--replace"] {
            assert!(msg.contains(part), "{query}: `{part}` is missing from: {msg}");
        }
    }
    // The serving version never noticed.
    let (status, version, body) = s.invoke("calculator", r#"{"op":"add","a":2,"b":3}"#);
    assert_eq!((status, version.as_str()), (200, "1.0.0"), "{body}");
    assert_eq!(serving_sha(&s, "calculator"), old_sha);
    let versions = s.get("/api/v1/plugins/calculator/versions");
    assert_eq!(versions.as_array().unwrap().len(), 1, "nothing was recorded: {versions}");

    // The same bytes again are no conflict.
    let (status, body) = upload(&s, "mode=deploy", &original);
    assert_eq!((status, body["result"].as_str()), (200, Some("unchanged")), "{body}");

    // `kaizen deploy` says the same, and with --replace takes the module.
    let file = dir.path().join("calculator-rebuilt.wasm");
    std::fs::write(&file, &other).unwrap();
    let path = file.to_str().unwrap();
    let (ok, out, err) = s.cli(&["deploy", path, "--now"]);
    assert!(!ok, "refused without --replace: {out}");
    assert!(err.contains("bump the version") && err.contains(&new_sha[..12]), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    let (ok, out, err) = s.cli(&["deploy", path, "--now", "--replace"]);
    assert!(ok, "accepted with --replace: {out} {err}");
    assert_eq!(serving_sha(&s, "calculator"), new_sha);
    let (status, version, body) = s.invoke("calculator", r#"{"op":"add","a":2,"b":3}"#);
    assert_eq!((status, version.as_str()), (200, "1.0.0"), "{body}");

    // Audited: who, and both sha256s.
    let audit = s.get("/api/v1/audit?target=calculator");
    let replaced = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "replace-version")
        .unwrap_or_else(|| panic!("no replace-version record: {audit}"));
    assert_eq!(replaced["actor"], "api", "{replaced}");
    assert_eq!(replaced["detail"]["version"], "1.0.0", "{replaced}");
    assert_eq!(replaced["detail"]["replaced_sha256"], old_sha.as_str(), "{replaced}");
    assert_eq!(replaced["detail"]["sha256"], new_sha.as_str(), "{replaced}");

    // From now on the replaced bytes are the ones that conflict.
    let (status, body) = upload(&s, "mode=deploy", &original);
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&format!("sha256 {} there", &new_sha[..12])), "{body}");
}

#[test]
fn the_watch_folder_rejects_other_bytes_under_a_known_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("KAIZEN_WATCH__DEPLOY_UNITS", "true")], &[]);
    let original = UNIT_CALCULATOR_V1.load().unwrap();
    let watch = dir.path().join("watch");
    crate::kaizen_bin::drop_file(&watch, "calculator.wasm", &rebuilt(original.clone(), "watch"));
    wait_for("the file to be rejected", Duration::from_secs(60), || wasm_files(&watch).is_empty());
    let note = std::fs::read_to_string(watch.join("rejected/calculator.wasm.error.txt")).unwrap();
    assert!(note.contains("calculator 1.0.0") && note.contains("bump the version"), "{note}");
    assert_eq!(serving_sha(&s, "calculator"), sha(&original));
}

#[test]
fn a_bundled_plugin_is_not_deployed_over_other_bytes_of_its_version() {
    let dir = tempfile::tempdir().unwrap();
    // No seed unit: calculator 1.0.0's slot stays empty while other bytes
    // under its version are recorded (handed to the loop as a candidate).
    let s = Server::start(dir.path(), &[("KAIZEN_SEED_UNIT", "false")], &[]);
    let other = rebuilt(UNIT_CALCULATOR_V1.load().unwrap(), "first");
    let (status, body) = upload(&s, "mode=candidate", &other);
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.stop().code(), Some(0));

    // The next start brings the seed unit from the bundle: refused, said
    // in the log, and the host serves on.
    let log = dir.path().join("serve.log");
    let s = Server::start_logged(dir.path(), &[], &[], &log);
    wait_for("the host to answer", Duration::from_secs(60), || {
        s.http.get(format!("{}/healthz", s.url)).send().is_ok_and(|r| r.status() == 200)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("unit-calculator-v1 not deployed")
            && text.contains("calculator 1.0.0 is already registered")
            && text.contains(&sha(&other)[..12]),
        "{text}"
    );
    assert!(s.serving("calculator").is_none(), "the refused bundle does not serve");
    assert!(s.serving("anomaly").is_some(), "the other bundled plugins do");
}
