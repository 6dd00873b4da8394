//! The watch folder against what operators and their tools really do:
//! writing in place slowly, dropping garbage, dropping thousands of bad
//! files in a row. Nothing half-read, nothing bad serving, nothing lost.

use std::io::Write;
use std::time::Duration;

use kaizen_plugins::{DETECTOR_ANOMALY, UNIT_CALCULATOR_V2};

use crate::kaizen_bin::{Server, wait_for, wasm_files};

#[test]
fn a_file_written_slowly_in_place_is_read_only_once_complete() {
    let dir = tempfile::tempdir().unwrap();
    // A stable window far longer than the pauses below, so that a busy
    // machine stretching a 120 ms sleep cannot make it look finished.
    let env = [("KAIZEN_WATCH__DEPLOY_UNITS", "true"), ("KAIZEN_WATCH__STABLE_MS", "2000")];
    let s = Server::start(dir.path(), &env, &[]);
    let bytes = UNIT_CALCULATOR_V2.load().unwrap();
    let path = dir.path().join("watch/calculator.wasm");
    let mut f = std::fs::File::create(&path).unwrap();
    // Written in place in 8 pieces with pauses shorter than the stable
    // window, as a slow copy would.
    for chunk in bytes.chunks(bytes.len() / 8 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(120));
    }
    drop(f);
    wait_for("the complete file to be deployed", Duration::from_secs(60), || {
        s.serving("calculator").as_deref() == Some("2.0.0")
    });
    let rejected = dir.path().join("watch/rejected");
    assert!(wasm_files(&rejected).is_empty(), "no partial read was rejected");
}

#[test]
fn bad_files_are_rejected_with_a_reason_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let watch = dir.path().join("watch");
    let v2 = UNIT_CALCULATOR_V2.load().unwrap();
    std::fs::write(watch.join("truncated.wasm"), &v2[..v2.len() / 2]).unwrap();
    std::fs::write(watch.join("text.wasm"), b"not a module").unwrap();
    std::fs::write(watch.join("notes.txt"), b"left alone").unwrap();
    wait_for("both bad files to be rejected", Duration::from_secs(60), || wasm_files(&watch).is_empty());
    let note = std::fs::read_to_string(watch.join("rejected/text.wasm.error.txt")).unwrap();
    assert!(note.contains("not a WebAssembly file"), "{note}");
    let note = std::fs::read_to_string(watch.join("rejected/truncated.wasm.error.txt")).unwrap();
    assert!(note.contains("invalid component"), "{note}");
    assert!(watch.join("notes.txt").exists(), "files that are not modules are not touched");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"));

    // A detector dropped twice: hot-loaded once, then a no-op.
    for name in ["anomaly-a.wasm", "anomaly-b.wasm"] {
        std::fs::write(watch.join(name), DETECTOR_ANOMALY.load().unwrap()).unwrap();
        wait_for("the detector file to be taken", Duration::from_secs(60), || !watch.join(name).exists());
    }
    let history = s.get("/api/v1/deployments/anomaly/history");
    assert_eq!(history.as_array().unwrap().len(), 1, "the same bytes again change nothing: {history}");
}

#[test]
fn a_thousand_bad_files_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let watch = dir.path().join("watch");
    let v2 = UNIT_CALCULATOR_V2.load().unwrap();
    for i in 0..1000 {
        let bytes: Vec<u8> = match i % 4 {
            0 => b"garbage".to_vec(),
            1 => v2[..(i * 37) % v2.len()].to_vec(),
            2 => b"\0asm\x0d\0\x01\0junk".to_vec(),
            _ => Vec::new(),
        };
        std::fs::write(watch.join(format!("bad-{i:04}.wasm")), bytes).unwrap();
    }
    wait_for("all thousand to be rejected", Duration::from_secs(300), || wasm_files(&watch).is_empty());
    let rejected = std::fs::read_dir(watch.join("rejected")).unwrap().count();
    assert_eq!(rejected, 2000, "each bad file and its .error.txt");
    assert_eq!(s.serving("calculator").as_deref(), Some("1.0.0"), "nothing bad ever serves");
    let (status, version, _) = s.invoke("calculator", r#"{"op":"mul","a":6,"b":7}"#);
    assert_eq!((status, version.as_str()), (200, "1.0.0"), "the host still serves");
    let metrics = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.admin).send().unwrap().text().unwrap();
    assert!(metrics.contains("kaizen_watch_rejected_total 1000"), "{metrics}");
    assert!(s.stop().success());
}
