//! What a guest prints reaches the host's log: its stdout and stderr, line
//! by line, with the plugin, its version and the call's id (the id the
//! invoke answered with), bounded per call with the cut marked; and a
//! trap's error carries the last lines it printed.

use std::time::Duration;

use kaizen_plugins::TEST_CHATTY;

use crate::kaizen_bin::{Server, wait_for};

/// Invoke `chatty` with `request`; (status, call id, body).
fn call(s: &Server, request: &str) -> (u16, String, String) {
    let r = s
        .http
        .post(format!("{}/api/v1/units/chatty/invoke", s.url))
        .bearer_auth(&s.invoke)
        .body(request.to_string())
        .send()
        .unwrap();
    let id = r.headers().get("x-kaizen-call-id").expect("every call names its id").to_str().unwrap().to_string();
    (r.status().as_u16(), id, r.text().unwrap())
}

#[test]
fn guest_output_is_logged_per_call_bounded_and_kept_with_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let s = Server::start_logged(&dir.path().join("data"), &[("NO_COLOR", "1")], &[], &log);
    wait_for("the host to be ready", Duration::from_secs(60), || {
        s.http.get(format!("{}/healthz", s.url)).send().is_ok_and(|r| r.status() == 200)
    });
    s.deploy(TEST_CHATTY.load().unwrap());

    let (status, short, body) = call(&s, "talk:3");
    assert_eq!((status, body.as_str()), (200, "said 3"));
    // 1000 lines of 64 bytes: four times the 16 KiB a call may log.
    let (status, long, _) = call(&s, "talk:1000");
    assert_eq!(status, 200);
    let (status, trapped, body) = call(&s, "trap");
    assert_eq!(status, 502, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["class"], "trap", "{e}");
    let message = e["message"].as_str().unwrap();
    for part in
        ["chatty asked to trap", "last output of the guest", "stdout before the trap 3", "stderr before the trap 3"]
    {
        assert!(message.contains(part), "`{part}` is missing from the trap's error: {message}");
    }
    assert_ne!(short, long, "each call has an id of its own");

    // The log is JSON lines: a guest's line is `{"target": "kaizen::guest",
    // "fields": {"message", "plugin", "version", "call", "stream"}}`.
    let of = |id: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&log).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["target"] == "kaizen::guest" && l["fields"]["call"] == id)
            .map(|l| l["fields"].clone())
            .collect()
    };
    let says = |l: &serde_json::Value, text: &str| l["message"].as_str().is_some_and(|m| m.contains(text));
    wait_for("the trapped call's unfinished line in the log", Duration::from_secs(10), || {
        of(&trapped).iter().any(|l| says(l, "unfinished stdout line"))
    });

    let lines = of(&short);
    assert_eq!(lines.len(), 4, "three stdout lines and one stderr line: {lines:#?}");
    assert!(says(&lines[0], "chatty line 000000") && lines[0]["stream"] == "stdout", "{}", lines[0]);
    assert!(lines.iter().all(|l| l["plugin"] == "chatty" && l["version"] == "0.1.0"), "{lines:#?}");
    assert!(lines.iter().any(|l| says(l, "chatty said 3 lines") && l["stream"] == "stderr"), "{lines:#?}");

    let lines = of(&long);
    let printed = lines.iter().filter(|l| says(l, "chatty line")).count();
    assert_eq!(printed, 16 * 1024 / 64, "16 KiB of 64-byte lines, no more");
    assert!(lines.iter().any(|l| says(l, "chatty line 000255")), "the last line within the bound");
    assert!(!lines.iter().any(|l| says(l, "chatty line 000256")), "nothing past the bound");
    // The rest is counted: 744 lines of 64 bytes and the stderr line.
    let cut = (1000 - 256) * 64 + "chatty said 1000 lines\n".len();
    let tail = &lines[250..];
    assert!(lines.iter().any(|l| says(l, "[output truncated")), "the cut is marked: {tail:#?}");
    assert!(lines.iter().any(|l| says(l, &format!("{cut} bytes of this call's output were not logged"))), "{tail:#?}");

    // Every attempt recovery made for the trapped call logs under its id.
    let lines = of(&trapped);
    for part in ["stdout before the trap 1", "stderr before the trap 3", "panicked at", "unfinished stdout line"] {
        assert!(lines.iter().any(|l| says(l, part)), "`{part}` is not in the log: {lines:#?}");
    }
}
