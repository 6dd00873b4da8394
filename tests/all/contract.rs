//! Contract versions side by side: plugins built against `kaizen:plugin@0.1.0`
//! (with wit-bindgen alone, as authors did before 0.2) and against 0.2.0
//! (the SDK) load in one host and answer; a version the host does not load
//! is refused naming it; a capability is given only when declared and
//! granted.

use kaizen_host::runtime::bindings::Contract;
use kaizen_host::runtime::blocking::block_on;
use kaizen_host::runtime::types::{
    Category, Change, DetectionInput, ErrorClass, Failure, Finding, ImprovementInput, IntegerRange, LatencyStats,
    RecoveryAction, Risk, Setting, Severity, TargetStats, Tunable, TunableState, TunableType, TunableValue,
    WindowStats,
};
use kaizen_host::runtime::{LoadReason, validate};
use kaizen_host::{Grants, RuntimeConfig};
use kaizen_plugins as guests;

use crate::common::{ctx, install, runtime, runtime_with};
use crate::kaizen_bin::{BIN, Server, refused};

fn window(executions: u64, failures: u64) -> WindowStats {
    WindowStats {
        duration_secs: 60.0,
        executions,
        failures,
        success_rate: (executions - failures) as f64 / executions as f64,
        latency: LatencyStats { p50_ms: 1.0, p95_ms: 2.0, p99_ms: 3.0, mean_ms: 1.2, stddev_ms: 0.5 },
        throughput: executions as f64 / 60.0,
        errors: vec![],
    }
}

/// A target failing 80 % of 500 calls: every bundled reliability detector
/// and the 0.1 fixture report it.
fn failing_target() -> DetectionInput {
    DetectionInput {
        now_ms: 1_700_000_000_000,
        targets: vec![TargetStats {
            target: "calculator".into(),
            version: "1.0.0".into(),
            current: window(500, 400),
            baseline: Some(window(500, 0)),
        }],
        metrics: vec![],
    }
}

fn finding() -> Finding {
    Finding {
        target: "batcher".into(),
        kind: "latency-regression".into(),
        severity: Severity::High,
        confidence: 0.9,
        summary: "slow".into(),
        evidence: vec![],
        expected_gain_pct: 20.0,
        risk: Risk::Low,
        category: Category::Performance,
    }
}

#[test]
fn a_plugin_of_each_kind_from_each_contract_version_loads_side_by_side_and_answers() {
    let (_dir, rt) = runtime();

    // Units.
    let old_unit = install(&rt, &guests::TEST_CONTRACT_V01_UNIT);
    let new_unit = install(&rt, &guests::TEST_ECHO_V1);
    assert_eq!((old_unit.contract(), new_unit.contract()), (Contract::V0_1, Contract::V0_2));
    assert_eq!(block_on(rt.call_unit("legacy-echo", &ctx(), b"hi")).unwrap().output, b"0.1:attempt1:hi");
    assert_eq!(block_on(rt.call_unit("echo", &ctx(), b"hi")).unwrap().output, b"1.0.0:hi");
    let err = block_on(rt.call_unit("legacy-echo", &ctx(), b"")).unwrap_err();
    assert_eq!((err.class, err.message.as_str()), (ErrorClass::InvalidInput, "empty request"));

    // Detectors: the 0.1 finding arrives with the category its kind says.
    let old_detector = install(&rt, &guests::TEST_CONTRACT_V01_DETECTOR);
    let new_detector = install(&rt, &guests::DETECTOR_LOW_SUCCESS_RATE);
    assert_eq!((old_detector.contract(), new_detector.contract()), (Contract::V0_1, Contract::V0_2));
    let old = block_on(old_detector.detect(&failing_target())).unwrap();
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!((old[0].kind.as_str(), old[0].category), ("latency-regression", Category::Performance));
    assert_eq!(old[0].evidence[0].value, "400");
    let new = block_on(new_detector.detect(&failing_target())).unwrap();
    assert!(!new.is_empty() && new.iter().all(|f| f.category == Category::Reliability), "{new:?}");

    // Recovery strategies.
    let old_recovery = install(&rt, &guests::TEST_CONTRACT_V01_RECOVERY);
    let new_recovery = install(&rt, &guests::RECOVERY_BACKOFF_RETRY);
    assert_eq!((old_recovery.contract(), new_recovery.contract()), (Contract::V0_1, Contract::V0_2));
    assert_eq!(block_on(old_recovery.handles()).unwrap(), vec![ErrorClass::Dependency]);
    let failure = |attempt| Failure {
        target: "calculator".into(),
        version: "1.0.0".into(),
        error_class: ErrorClass::Dependency,
        message: "db down".into(),
        attempt,
        elapsed_ms: 1,
        remaining_ms: 1_000,
        recent: vec![],
    };
    assert_eq!(block_on(old_recovery.decide(&failure(2))).unwrap(), RecoveryAction::Retry(6));
    assert_eq!(
        block_on(old_recovery.decide(&failure(3))).unwrap(),
        RecoveryAction::GiveUp("legacy-retry gave up: db down".into())
    );
    assert!(matches!(block_on(new_recovery.decide(&failure(1))).unwrap(), RecoveryAction::Retry(_)));

    // Improvers exist since 0.2.
    let improver = install(&rt, &guests::TEST_NUDGE_IMPROVER);
    assert_eq!(improver.contract(), Contract::V0_2);
    let chunk = Tunable {
        name: "chunk_size".into(),
        type_: TunableType::Integer(IntegerRange { min: 1, max: 4096 }),
        default: TunableValue::Integer(8),
        unit: "items".into(),
        description: String::new(),
        canary_safe: true,
    };
    let input = ImprovementInput {
        now_ms: 0,
        finding: finding(),
        tunables: vec![TunableState { tunable: chunk, current: TunableValue::Integer(8) }],
        modules: vec![],
        trials: vec![],
        seed: 7,
    };
    let proposals = block_on(improver.improve(&input)).unwrap();
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    assert_eq!(
        proposals[0].change,
        Change::Config(vec![Setting { name: "chunk_size".into(), value: TunableValue::Integer(16) }])
    );
    // Asked the wrong question, a plugin answers with a clear error.
    assert!(block_on(old_unit.detect(&failing_target())).unwrap_err().message.contains("not a detector"));
}

#[test]
fn a_unit_declares_its_tunables_and_the_host_checks_them() {
    let (_dir, rt) = runtime();
    let batcher = install(&rt, &guests::UNIT_BATCHER);
    let names: Vec<&str> = batcher.info().tunables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chunk_size", "cache_entries"]);
    let chunk = &batcher.info().tunables[0];
    assert_eq!(validate::check_value(&chunk.type_, &TunableValue::Integer(64)), Ok(()));
    assert_eq!(
        validate::check_value(&chunk.type_, &TunableValue::Integer(5000)),
        Err("5000 is above the maximum 4096".into())
    );
    assert_eq!(validate::check_value(&chunk.type_, &TunableValue::Boolean(true)), Err("true is not an integer".into()));
    // Answers do not depend on the knobs.
    let out = block_on(rt.call_unit("batcher", &ctx(), br#"{"items": 10, "distinct": 5, "seed": 1}"#)).unwrap();
    assert_eq!(String::from_utf8(out.output).unwrap(), r#"{"checksum":4590193566977211849,"items":10}"#);
}

#[test]
fn a_module_of_a_contract_version_the_host_does_not_load_is_refused_naming_it() {
    let (_dir, rt) = runtime();
    let bytes = guests::TEST_CONTRACT_V09_UNIT.load().unwrap();
    let err = rt.load("future.wasm", &bytes).unwrap_err();
    assert!(matches!(err.reason, LoadReason::UnsupportedContract { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("kaizen:plugin@0.9.0") && text.contains("0.1.0, 0.2.0"), "{text}");

    // The same through the real binary: `plugin check` and an upload.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("future.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new(BIN).args(["plugin", "check"]).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("refused") && stdout.contains("0.9.0"), "{stdout}");

    let s = Server::start(dir.path(), &[], &[]);
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?mode=deploy", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().unwrap();
    assert!((400..500).contains(&status) && body.contains("kaizen:plugin@0.9.0"), "{status} {body}");
}

#[test]
fn plugin_check_says_which_contract_version_a_module_targets() {
    let dir = tempfile::tempdir().unwrap();
    let check = |guest: &guests::Guest| -> serde_json::Value {
        let file = dir.path().join(format!("{}.wasm", guest.package));
        std::fs::write(&file, guest.load().unwrap()).unwrap();
        let out = std::process::Command::new(BIN).args(["plugin", "check", "--json"]).arg(&file).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let old = check(&guests::TEST_CONTRACT_V01_UNIT);
    assert_eq!((old["contract"].as_str(), old["world"].as_str()), (Some("0.1.0"), Some("unit")));
    let new = check(&guests::UNIT_BATCHER);
    assert_eq!(new["contract"], "0.2.0");
    assert_eq!(new["tunables"][0]["name"], "chunk_size");
    let clock = check(&guests::TEST_CLOCK_DECLARED);
    assert_eq!(clock["capabilities"], serde_json::json!(["wall-clock", "random"]));

    // And in words.
    let file = dir.path().join("batcher-words.wasm");
    std::fs::write(&file, guests::UNIT_BATCHER.load().unwrap()).unwrap();
    let out = std::process::Command::new(BIN).args(["plugin", "check"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kaizen:plugin/unit@0.2.0"), "{text}");
    assert!(text.contains("tunable      chunk_size = 1 items (integer 1..=4096)"), "{text}");
}

/// Seconds and random hex a `clock` unit answered.
fn clock_reading(rt: &kaizen_host::Runtime) -> (u64, String) {
    let out = block_on(rt.call_unit("clock", &ctx(), b"now")).unwrap().output;
    let text = String::from_utf8(out).unwrap();
    let (secs, hex) = text.split_once(' ').unwrap();
    (secs.parse().unwrap(), hex.to_string())
}

#[test]
fn a_capability_is_given_only_when_declared_and_granted() {
    // Declared, not granted: refused at load, naming the capability and
    // where to grant it.
    let (_dir, rt) = runtime();
    let err = rt.load("clock.wasm", &guests::TEST_CLOCK_DECLARED.load().unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err.reason, LoadReason::CapabilityNotGranted { .. }), "{text}");
    assert!(text.contains("`wall-clock`") && text.contains("[runtime.grants.clock]"), "{text}");

    // Declared and granted: the real clock, fresh randomness per instance.
    let (_dir, rt) = runtime_with(|c: &mut RuntimeConfig| {
        c.grants.insert(
            "clock".into(),
            Grants { capabilities: vec!["wall-clock".into(), "random".into()], ..Grants::default() },
        );
    });
    install(&rt, &guests::TEST_CLOCK_DECLARED);
    let (secs, first) = clock_reading(&rt);
    assert!(secs > 1_700_000_000, "the real wall clock: {secs}");
    let (_, second) = clock_reading(&rt);
    assert_ne!(first, second, "a fresh instance draws fresh randomness");

    // Not declared (a 0.2 plugin): neither, whatever the grants say.
    let (_dir, rt) = runtime_with(|c: &mut RuntimeConfig| {
        c.grants.insert("clock".into(), Grants { capabilities: vec!["wall-clock".into()], ..Grants::default() });
    });
    install(&rt, &guests::TEST_CLOCK_UNDECLARED);
    let (secs, first) = clock_reading(&rt);
    assert_eq!(secs, 0, "a withheld wall clock reads the Unix epoch");
    assert_eq!(clock_reading(&rt).1, first, "withheld randomness is the same fixed sequence each call");
}

#[test]
fn kaizen_serve_refuses_a_module_asking_for_an_ungranted_capability() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?mode=deploy", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(guests::TEST_CLOCK_DECLARED.load().unwrap())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().unwrap();
    assert!((400..500).contains(&status) && body.contains("wall-clock"), "{status} {body}");
    assert!(s.serving("clock").is_none());
}

#[test]
fn grants_and_category_weights_are_checked_when_loaded() {
    let err = refused("[runtime.grants.fetcher]\ncapabilities = [\"http:example.com/path\"]\n", &[]);
    assert!(err.contains("runtime.grants.fetcher.capabilities") && err.contains("must name one host"), "{err}");
    let err = refused("[runtime.grants.fetcher]\ncapabilities = [\"http:example.com:99999\"]\n", &[]);
    assert!(err.contains("example.com:99999"), "{err}");
    let err = refused("[runtime.grants.reader]\ncapabilities = [\"directory:/data\"]\n", &[]);
    assert!(err.contains("read_only_dirs has no entry") && err.contains("/data"), "{err}");
    let err = refused("[runtime.grants.x]\ncapabilities = [\"telepathy\"]\n", &[]);
    assert!(err.contains("\"telepathy\""), "{err}");
    let err = refused("[loop.category_weights]\nsecurity = -1\n", &[]);
    assert!(err.contains("loop.category_weights.security"), "{err}");
}

/// An HTTP server on loopback answering `200 hello` to every request, one
/// connection at a time, and counting the connections it accepted. It
/// lives as long as the test process.
fn hello_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ =
                reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
        }
    });
    (port, accepted)
}

#[test]
fn outgoing_http_reaches_only_the_declared_and_granted_hosts() {
    let fetch = |rt: &kaizen_host::Runtime, url: String| block_on(rt.call_unit("fetcher", &ctx(), url.as_bytes()));

    // Declared, not granted: refused at load, naming the capability.
    let (_dir, rt) = runtime();
    let err = rt.load("fetcher.wasm", &guests::TEST_FETCHER.load().unwrap()).unwrap_err();
    assert!(err.to_string().contains("`http:127.0.0.1`"), "{err}");

    // Granted: the request goes out and the answer comes back.
    let (_dir, rt) = runtime_with(|c: &mut RuntimeConfig| {
        c.grants.insert("fetcher".into(), Grants { capabilities: vec!["http:127.0.0.1".into()], ..Grants::default() });
    });
    install(&rt, &guests::TEST_FETCHER);
    let (port, served) = hello_server();
    let out = fetch(&rt, format!("http://127.0.0.1:{port}/status")).unwrap().output;
    assert_eq!(String::from_utf8_lossy(&out), "200 hello");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A host it did not declare (the same machine by another name) is
    // denied before any connection is opened.
    let (other, untouched) = hello_server();
    let err = fetch(&rt, format!("http://localhost:{other}/")).unwrap_err();
    assert_eq!(err.class, ErrorClass::InvalidInput, "{err:?}");
    assert!(err.message.contains("HttpRequestDenied"), "{}", err.message);
    assert_eq!(untouched.load(std::sync::atomic::Ordering::SeqCst), 0, "no connection to an undeclared host");
}
