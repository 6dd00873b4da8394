//! The `kaizen` command as an operator uses it, through the real binary
//! against a real `kaizen serve`: a client run beside the host's data
//! directory finds it, output piped into a reader that stops early ends
//! quietly, ordinary errors print no backtrace, history shows versions and
//! dates, the metrics token reads `/metrics` and nothing else, the metrics
//! agree with the history, plugin configuration takes numbers, and a plain
//! `kaizen serve` deploys no crashing seed unit.

use std::process::{Command, Stdio};

use kaizen_plugins::{UNIT_CALCULATOR_V1, UNIT_CALCULATOR_V2};

use crate::kaizen_bin::{BIN, Server};

const ADD: &str = r#"{"op":"add","a":2,"b":3}"#;

/// `kaizen ARGS` run in `cwd` with none of the client's variables set, as
/// a newcomer types it; (success, stdout, stderr).
fn kaizen_in(cwd: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("KAIZEN_URL")
        .env_remove("KAIZEN_ADMIN_TOKEN")
        .env_remove("KAIZEN_INVOKE_TOKEN")
        .env_remove("KAIZEN_DATA_DIR")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// What a metric reads in a Prometheus text document.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The demo keeps its data in `./kaizen-demo`; a client command run from
/// the same directory finds that host (its URL and its tokens) with no
/// flags and no variables — and shows versions and dates, severity and
/// priority, and every call counted once.
#[test]
fn a_client_run_beside_the_demo_finds_it_and_speaks_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("kaizen-demo"), &[], &[]);
    let (ok, out, err) = kaizen_in(dir.path(), &["status"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("loop: running: it detects, proves and rolls out improvements (as it started; nobody has"),
        "{out}"
    );
    assert!(!out.contains("initial state"), "{out}");
    for _ in 0..20 {
        assert_eq!(s.invoke("calculator", ADD).0, 200);
    }
    for _ in 0..5 {
        assert_eq!(s.invoke("calculator", "not json").0, 422);
    }
    let (ok, out, err) = kaizen_in(dir.path(), &["status"]);
    assert!(ok, "{out}{err}");
    let header = out.lines().find(|l| l.starts_with("UNIT ")).unwrap_or_else(|| panic!("no units table: {out}"));
    for col in ["CALLS", "ANSWERED", "CALLER ERRORS", "UNIT ERRORS", "UNIT SUCCESS"] {
        assert!(header.contains(col), "{header}");
    }
    let row: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("UNIT "))
        .find(|l| l.starts_with("calculator "))
        .unwrap_or_else(|| panic!("no calculator row: {out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..7], ["calculator", "1.0.0", "yes", "25", "20", "5", "0"], "{out}");
    assert_eq!(row[7..9], ["100.0", "%"], "the refusals are the callers' errors, counted apart: {out}");
    assert_eq!(row[9..], ["25", "0", "0"], "each call made once (attempts = calls), none recovered or refused: {out}");
    let (ok, out, err) = kaizen_in(dir.path(), &["units"]);
    assert!(ok, "{out}{err}");
    let last_minute: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("last 60 s:"))
        .find(|l| l.starts_with("calculator "))
        .unwrap_or_else(|| panic!("no last-minute row: {out}"))
        .split_whitespace()
        .collect();
    assert_eq!(last_minute[..6], ["calculator", "1.0.0", "25", "20", "5", "0"], "{out}");

    let v2 = dir.path().join("calculator-v2.wasm");
    std::fs::write(&v2, UNIT_CALCULATOR_V2.load().unwrap()).unwrap();
    // A refusal names the file it is about.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a module").unwrap();
    let (ok, out, err) = kaizen_in(dir.path(), &["deploy", "--now", junk.to_str().unwrap()]);
    assert!(
        !ok && err.contains("junk.wasm was not deployed: ") && err.contains("not a WebAssembly file"),
        "{out}{err}"
    );
    let (ok, out, err) = kaizen_in(dir.path(), &["deploy", "--now", v2.to_str().unwrap()]);
    assert!(ok && out.contains("calculator 2.0.0"), "{out}{err}");
    let (ok, out, err) = kaizen_in(dir.path(), &["rollback", "calculator", "--reason", "back to one"]);
    assert!(ok && out.contains("2.0.0 → 1.0.0"), "{out}{err}");
    let (ok, out, err) = kaizen_in(dir.path(), &["history", "calculator"]);
    assert!(ok, "{out}{err}");
    let rolled = out.lines().find(|l| l.contains("rolled-back")).unwrap_or_else(|| panic!("{out}"));
    // The rollback's row names the version it restored, then the one it
    // took back (FROM), as every row names what serves after it.
    let (to, from) = (rolled.find("1.0.0 ("), rolled.find("2.0.0 ("));
    assert!(to.is_some() && from > to && rolled.contains("back to one"), "the history names versions: {out}");
    let year = rolled.split('-').next().unwrap();
    assert!(year.len() == 4 && year.parse::<u32>().is_ok_and(|y| y >= 2024), "the history dates its entries: {out}");
    assert!(out.lines().any(|l| l.contains("active") && l.contains("1.0.0 (")), "{out}");
    // A misspelt slot is an error, not a slot without deployments.
    let (ok, out, err) = kaizen_in(dir.path(), &["history", "calculater"]);
    assert!(!ok && err.contains("no slot named `calculater`"), "{out}{err}");
    // So is asking what fixed it, unlike a unit's own name.
    let (ok, out, err) = kaizen_in(dir.path(), &["knowledge", "calculater"]);
    assert!(!ok && err.contains("no unit named `calculater`"), "{out}{err}");
    let (ok, out, err) = kaizen_in(dir.path(), &["knowledge", "calculator"]);
    assert!(ok && out.contains("calculator"), "{out}{err}");

    // Stopped, the host takes its address back: the client says how to
    // point it elsewhere instead of talking to a stale port.
    assert!(s.stop().success());
    assert!(!dir.path().join("kaizen-demo/url").exists());
}

/// `kaizen status | head -1`: the reader stops after one line and closes
/// the pipe. The command ends quietly with status 0 — no panic, no
/// backtrace. (The pipe is closed before the command writes, so the
/// broken pipe is certain, not a race.)
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    for args in [&["status"][..], &["history", "calculator"], &["status", "--json"], &["openapi"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .env("KAIZEN_URL", &s.url)
            .env("KAIZEN_ADMIN_TOKEN", &s.admin)
            .env("RUST_BACKTRACE", "1")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} into a closed pipe: {:?} {err}", out.status);
        assert!(err.is_empty(), "{args:?} into a closed pipe said: {err}");
    }
    // The same as a shell runs it, whatever the timing.
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &format!("'{BIN}' status | head -1")])
        .env("KAIZEN_URL", &s.url)
        .env("KAIZEN_ADMIN_TOKEN", &s.admin)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.starts_with("loop: running") && err.is_empty(), "{stdout}{err}");
}

/// An unreachable host, a bad token, no token at all: one line saying what
/// is wrong, exit status 1 — never a backtrace, even with RUST_BACKTRACE=1.
#[test]
fn ordinary_errors_print_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("kaizen-data"), &[], &[]);
    let empty = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str, &str); 4] = [
        (&["status", "--url", "http://127.0.0.1:1", "--token", "0123456789abcdef"], "cannot reach the host", ""),
        (&["status", "--url", &s.url, "--token", "not-a-token-of-this-host"], "401 unauthorized: unknown token", ""),
        (&["invoke", "calculator", "{}", "--url", &s.url, "--token", &s.metrics], "403 forbidden", ""),
        (&["status"], "no token", "kaizen-demo"),
    ];
    for (args, says, also) in cases {
        for backtrace in ["1", "full"] {
            let out = Command::new(BIN)
                .args(args)
                .current_dir(empty.path())
                .env_remove("KAIZEN_URL")
                .env_remove("KAIZEN_ADMIN_TOKEN")
                .env_remove("KAIZEN_INVOKE_TOKEN")
                .env_remove("KAIZEN_DATA_DIR")
                .env("RUST_BACKTRACE", backtrace)
                .env("RUST_LIB_BACKTRACE", "1")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.starts_with("error: ") && err.contains(says) && err.contains(also), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line, no backtrace: {err}");
            assert!(!err.contains("backtrace") && !err.contains("panicked"), "{args:?}: {err}");
        }
    }
    // A URL that cannot be one is named when read, not as "cannot reach".
    for (url, says) in [("", "it is empty"), ("nonsense", "is not a URL"), ("ftp://h", "is not an http(s) URL")] {
        let out = Command::new(BIN)
            .args(["status", "--token", "0123456789abcdef"])
            .current_dir(empty.path())
            .env("KAIZEN_URL", url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "KAIZEN_URL={url:?}: {err}");
        assert!(err.contains("--url") && err.contains(says) && err.contains("http://127.0.0.1:7700"), "{url:?}: {err}");
        assert!(!err.contains("cannot reach") && !err.contains("backtrace"), "{url:?}: {err}");
    }
}

/// A Prometheus scraper holds the metrics token: it reads `/metrics` and
/// nothing else, and the invoke token may not read `/metrics`. Swaps and
/// rollbacks are counted from the store, so they agree with the history
/// and the audit trail and survive a restart. Also: a plain `kaizen serve`
/// deploys no seed unit, and plugin configuration written as TOML numbers
/// and booleans is taken.
#[test]
fn metrics_answer_the_metrics_token_only_and_agree_with_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kaizen.toml");
    std::fs::write(
        &config,
        "[runtime.plugin_config.circuit-breaker]\nfailure_rate = 0.8\nmin_calls = 10\n\
         [runtime.plugin_config.slow-p99]\nenabled = true\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let config_arg = ["--config", config.to_str().unwrap()];
    let s = Server::start(&data, &[("KAIZEN_SEED_UNIT", "false")], &config_arg);
    assert_eq!(s.serving("calculator"), None, "a plain serve deploys no crashing seed unit");
    assert!(s.serving("circuit-breaker").is_some(), "the bundled strategies are deployed");

    let get = |path: &str, token: &str| {
        let r = s.http.get(format!("{}{path}", s.url)).bearer_auth(token).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, text) = get("/metrics", &s.metrics);
    assert_eq!(status, 200, "{text}");
    assert_eq!(metric(&text, "kaizen_rollbacks_total"), Some(0.0), "{text}");
    let (status, body) = get("/metrics", &s.invoke);
    assert_eq!(status, 403, "the invoke token may not read /metrics: {body}");
    assert!(body.contains("metrics or the admin token"), "{body}");
    assert_eq!(get("/metrics", "").0, 401);
    for path in ["/api/v1/status", "/api/v1/audit", "/api/v1/events", "/openapi.json"] {
        assert_eq!(get(path, &s.metrics).0, 403, "the metrics token on {path}");
    }
    let r = s.http.post(format!("{}/api/v1/control/pause", s.url)).bearer_auth(&s.metrics).send().unwrap();
    assert_eq!(r.status().as_u16(), 403, "the metrics token may not steer the loop");
    let r = s
        .http
        .post(format!("{}/api/v1/units/calculator/invoke", s.url))
        .bearer_auth(&s.metrics)
        .body(ADD)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "the metrics token may not invoke");

    // Deploy 1.0.0, then 2.0.0, roll back to 1.0.0.
    for v in [&UNIT_CALCULATOR_V1, &UNIT_CALCULATOR_V2] {
        s.deploy(v.load().unwrap());
    }
    assert_eq!(s.invoke("calculator", ADD).1, "2.0.0");
    let r = s.post("/api/v1/deployments/calculator/rollback", serde_json::json!({"reason": "test"}));
    assert_eq!(r.status().as_u16(), 200);

    let history = s.get("/api/v1/deployments/calculator/history");
    let count = |state: &str| history.as_array().unwrap().iter().filter(|h| h["state"] == state).count() as f64;
    assert_eq!((count("active"), count("rolled-back")), (2.0, 1.0), "{history}");
    assert_eq!(
        (&history[0]["version"], &history[0]["from_version"]),
        (&serde_json::json!("1.0.0"), &serde_json::json!("2.0.0")),
        "the entry names the version restored, and the one taken back as what served before: {history}"
    );
    let text = get("/metrics", &s.metrics).1;
    assert_eq!(metric(&text, "kaizen_rollbacks_total"), Some(1.0), "{text}");
    let audit = s.get("/api/v1/audit?target=calculator");
    let rollbacks = audit.as_array().unwrap().iter().filter(|a| a["action"] == "rollback").count() as f64;
    assert_eq!(metric(&text, "kaizen_rollbacks_total"), Some(rollbacks), "metrics agree with the audit trail");
    let swaps = metric(&text, "kaizen_swaps_total").unwrap();
    assert!(swaps >= 17.0, "15 bundled plugins and two calculator deploys: {swaps}");
    assert!(s.stop().success());

    let s = Server::start(&data, &[("KAIZEN_SEED_UNIT", "false")], &config_arg);
    let r = s.http.get(format!("{}/metrics", s.url)).bearer_auth(&s.metrics).send().unwrap();
    let text = r.text().unwrap();
    assert_eq!(metric(&text, "kaizen_rollbacks_total"), Some(1.0), "counted from the store, across a restart");
    assert_eq!(metric(&text, "kaizen_swaps_total"), Some(swaps), "{text}");
}

/// The seed unit is a bundled plugin: asking for it with the bundled
/// plugins off is refused at start instead of starting without it.
#[test]
fn the_seed_unit_without_the_bundled_plugins_is_refused() {
    let err = crate::kaizen_bin::refused("bundled = false\n", &[("KAIZEN_SEED_UNIT", "true")]);
    assert!(err.contains("seed_unit = true needs bundled = true"), "{err}");
    // The demo, which tells its story with them, says so too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kaizen.toml");
    std::fs::write(&file, "bundled = false\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the demo needs the bundled plugins") && err.contains("kaizen.toml"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
}

/// Plugin configuration is text to the plugin: a TOML list (or table) is
/// refused at start, naming the key, and nothing starts.
#[test]
fn plugin_config_that_is_not_a_string_number_or_boolean_is_refused() {
    let err = crate::kaizen_bin::refused("[runtime.plugin_config.slow-p99]\nbudget_ms = [50, 60]\n", &[]);
    assert!(
        err.contains("runtime.plugin_config.slow-p99.budget_ms") && err.contains("a string, a number or a boolean"),
        "{err}"
    );
}

/// A pause and an emergency stop on together each keep their own reason:
/// lifting the stop shows the pause's, not the lifting's, across a
/// restart; pausing a paused loop shows who paused it and why.
#[test]
fn layered_switches_each_keep_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let run = |s: &Server, args: &[&str]| {
        let (ok, out, err) = s.cli(args);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    let out = run(&s, &["pause", "--reason", "deploy window"]);
    assert!(out.starts_with("loop paused") && out.contains("deploy window"), "{out}");
    let out = run(&s, &["pause", "--reason", "second thoughts"]);
    assert!(out.contains("deploy window") && !out.contains("second thoughts"), "already paused, and why: {out}");
    let out = run(&s, &["stop", "--reason", "incident 7"]);
    assert!(out.starts_with("loop stopped") && out.contains("incident 7"), "{out}");
    let out = run(&s, &["stop", "--release", "--reason", "all clear"]);
    assert!(out.starts_with("loop paused") && out.contains("deploy window"), "the pause's reason is back: {out}");
    assert!(!out.contains("all clear"), "{out}");
    assert!(s.stop().success());

    let s = Server::start(dir.path(), &[], &[]);
    let out = run(&s, &["status"]);
    assert!(out.starts_with("loop: paused") && out.contains("deploy window"), "kept across a restart: {out}");
    let out = run(&s, &["resume", "--reason", "window over"]);
    assert!(out.starts_with("loop running") && out.contains("window over"), "{out}");
    // Resume does not lift a stop, and says what does.
    run(&s, &["stop", "--reason", "incident 8"]);
    let out = run(&s, &["resume"]);
    assert!(out.starts_with("loop stopped") && out.contains("`kaizen stop --release` lifts it"), "{out}");
    assert!(s.stop().success());
}
