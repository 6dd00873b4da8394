//! Tools for plugin authors and operators that run without a host:
//! `kaizen plugin new` scaffolds a crate that builds and passes its own
//! test, `kaizen plugin check` judges the result, `kaizen backtest` replays
//! recorded executions through the detectors. The scaffolded unit of every
//! language is then deployed to a real host, which must answer a request
//! nested 100 000 deep with the caller's `invalid-input`, not a trap.

use std::path::Path;
use std::process::Command;

use crate::kaizen_bin::BIN;

fn kaizen(args: &[&str]) -> (bool, String, String) {
    // `plugin check` caches compiled modules: in the tests' cache, not the
    // user's.
    let out = Command::new(BIN).args(args).env("KAIZEN_CACHE_DIR", crate::common::shared_cache()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A CSV of one call per second for `secs` seconds starting at `t0`;
/// calls after `bad_from` fail every other time.
fn csv(path: &Path, t0: i64, secs: i64, bad_from: i64) {
    let mut s = String::from("target,version,started_at,duration_ms,outcome,error_class\n");
    for i in 0..secs {
        for k in 0..5 {
            let fail = i >= bad_from && k % 2 == 0;
            let (outcome, class) = if fail { ("error", "timeout") } else { ("ok", "") };
            s.push_str(&format!(
                "checkout,1.4.0,{},{:.2},{outcome},{class}\n",
                t0 + i * 1000 + k * 150,
                2.0 + (k as f64) * 0.1
            ));
        }
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn backtest_finds_the_bad_period_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000;
    let bad = dir.path().join("bad.csv");
    csv(&bad, t0, 900, 600);
    let (ok, out, err) =
        kaizen(&["backtest", "--csv", bad.to_str().unwrap(), "--window", "60", "--baseline", "300", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["executions"], 4500);
    let low = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "low-success-rate")
        .unwrap_or_else(|| panic!("no low-success-rate finding: {out}"));
    assert_eq!(low["target"], "checkout");
    let first = low["first_at"].as_i64().unwrap();
    assert!(first > t0 + 600_000, "found only once the failures started (+{} s)", (first - t0) / 1000);

    let good = dir.path().join("good.csv");
    csv(&good, t0, 900, i64::MAX);
    let (ok, out, err) = kaizen(&["backtest", "--csv", good.to_str().unwrap(), "--window", "60", "--baseline", "300"]);
    assert!(ok, "{err}");
    assert!(!out.contains("low-success-rate") && !out.contains("recurring-error"), "{out}");

    std::fs::write(dir.path().join("broken.csv"), "target,version,started_at,duration_ms,outcome\nx,1,5,1.0,maybe\n")
        .unwrap();
    let (ok, _, err) = kaizen(&["backtest", "--csv", dir.path().join("broken.csv").to_str().unwrap()]);
    assert!(!ok && err.contains("row 2") && err.contains("maybe"), "{err}");
    // A metrics file given as executions: its header is named, not read as
    // "nothing recorded".
    std::fs::write(dir.path().join("metrics.csv"), "name,value,timestamp_ms\n").unwrap();
    let (ok, _, err) = kaizen(&["backtest", "--csv", dir.path().join("metrics.csv").to_str().unwrap()]);
    assert!(!ok && err.contains("no column `target`") && err.contains("name,value,timestamp_ms"), "{err}");
    // A window of no time is refused by name, not run.
    let (ok, out, err) = kaizen(&["backtest", "--csv", good.to_str().unwrap(), "--window", "0"]);
    assert!(!ok && out.is_empty() && err.contains("--window") && err.contains("'0'"), "{out}{err}");
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_passes_its_test() {
    let dir = tempfile::tempdir().unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (kind, name) in [("unit", "greeter"), ("detector", "slow-p95"), ("recovery", "patient-retry")] {
        let crate_dir = dir.path().join(name);
        let (ok, out, err) = kaizen(&["plugin", "new", kind, name, "--dir", crate_dir.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        let test = Command::new(&cargo)
            .arg("test")
            .arg("--quiet")
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(test.status.success(), "{kind}: cargo test failed:\n{}", String::from_utf8_lossy(&test.stderr));
        let build = Command::new(&cargo)
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(build.status.success(), "{kind}: wasm build failed:\n{}", String::from_utf8_lossy(&build.stderr));
        let wasm = target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")));
        let (ok, out, err) = kaizen(&["plugin", "check", wasm.to_str().unwrap(), "--json"]);
        assert!(ok, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["accepted"].as_bool(), v["world"].as_str(), v["name"].as_str()),
            (Some(true), Some(kind), Some(name))
        );
        if kind == "unit" {
            refuses_deep_nesting(&std::fs::read(&wasm).unwrap(), name);
        }
    }
    let (ok, _, err) = kaizen(&["plugin", "new", "unit", "Bad_Name"]);
    assert!(!ok && err.contains("invalid plugin name"), "{err}");
    let (ok, _, err) =
        kaizen(&["plugin", "new", "unit", "greeter", "--dir", dir.path().join("greeter").to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");
}

/// Deploy the scaffolded unit `name` to a real host and call it with a
/// request nested 100 000 deep, then with a good one.
fn refuses_deep_nesting(component: &[u8], name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::kaizen_bin::Server::start(dir.path(), &[], &[]);
    s.deploy(component.to_vec());
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, _, body) = s.invoke(name, &deep);
    let e: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: {status} {body}"));
    assert_eq!((status, e["class"].as_str()), (422, Some("invalid-input")), "{name}: {e}");
    assert!(e["message"].as_str().unwrap().contains("nested deeper than 128 levels"), "{name}: {e}");
    let (status, _, body) = s.invoke(name, r#"{"name": "Ada"}"#);
    assert_eq!(status, 200, "{name}: {body}");
    assert!(body.contains("Hello, Ada!"), "{name}: {body}");
}

/// Scaffold `kind` plugins in `lang`, run `steps` in each (its own test and
/// its build), have the host check the component, and have a real host
/// refuse deep nesting in the unit.
fn scaffold_builds_and_checks(lang: &str, steps: impl Fn(&str, &Path) -> Vec<Command>) {
    use crate::examples::run;
    let dir = tempfile::tempdir().unwrap();
    for kind in ["detector", "recovery", "unit"] {
        let name = format!("{lang}-{kind}");
        let crate_dir = dir.path().join(&name);
        let (ok, out, err) =
            kaizen(&["plugin", "new", kind, &name, "--lang", lang, "--dir", crate_dir.to_str().unwrap()]);
        assert!(ok, "{out}{err}");
        for mut cmd in steps(kind, &crate_dir) {
            run(cmd.current_dir(&crate_dir));
        }
        let wasm = std::fs::read_dir(&crate_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "wasm"))
            .unwrap_or_else(|| panic!("{lang} {kind}: no component built"));
        let (ok, out, err) = kaizen(&["plugin", "check", wasm.to_str().unwrap(), "--json"]);
        assert!(ok, "{lang} {kind}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((v["world"].as_str(), v["name"].as_str()), (Some(kind), Some(name.as_str())));
        if kind == "unit" {
            refuses_deep_nesting(&std::fs::read(&wasm).unwrap(), &name);
        }
        if kind == "recovery" {
            retries_then_passes(&std::fs::read(&wasm).unwrap(), &name);
        }
    }
}

/// The scaffolded strategy `name`, loaded by the host and asked as the call
/// path asks: a timeout is retried after 50 ms twice, then passed on (its
/// `u64` delay crosses the boundary both ways).
fn retries_then_passes(component: &[u8], name: &str) {
    use kaizen_host::runtime::blocking::block_on;
    use kaizen_host::runtime::types::{ErrorClass, Failure, RecoveryAction};
    let (_dir, rt) = crate::common::runtime_with(|_| {});
    let p = rt.load(name, component).unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let failure = |attempt| Failure {
        target: "api".into(),
        version: "1.0.0".into(),
        error_class: ErrorClass::Timeout,
        message: "slow".into(),
        attempt,
        elapsed_ms: 10,
        remaining_ms: 1000,
        recent: vec![],
    };
    assert_eq!(block_on(p.handles()).unwrap(), vec![ErrorClass::Timeout, ErrorClass::Dependency], "{name}");
    assert_eq!(block_on(p.decide(&failure(1))).unwrap(), RecoveryAction::Retry(50), "{name}");
    assert_eq!(block_on(p.decide(&failure(3))).unwrap(), RecoveryAction::Pass, "{name}");
}

#[test]
fn plugin_new_in_python_builds_and_passes_its_test() {
    if !crate::examples::toolchain("Python", crate::examples::have("componentize-py", "--version")) {
        return;
    }
    scaffold_builds_and_checks("python", |kind, _| {
        let world = format!("kaizen:plugin/{kind}");
        let mut bindings = Command::new("componentize-py");
        bindings.args(["-d", "wit", "-w", &world, "bindings", "."]);
        let mut test = Command::new("python3");
        test.args(["-m", "unittest", "test_app"]).env("PYTHONDONTWRITEBYTECODE", "1");
        let mut build = Command::new("componentize-py");
        build.args(["-d", "wit", "-w", &world, "componentize", "app", "-o", "out.wasm"]);
        vec![bindings, test, build]
    });
}

#[test]
fn plugin_new_in_js_builds_and_passes_its_test() {
    if !crate::examples::toolchain("JavaScript", crate::examples::have("npm", "--version")) {
        return;
    }
    scaffold_builds_and_checks("js", |_, _| {
        let mut install = Command::new("npm");
        install.args(["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]);
        let mut test = Command::new("npm");
        test.arg("test");
        let mut build = Command::new("npm");
        build.args(["run", "build"]);
        vec![install, test, build]
    });
}

#[test]
fn plugin_new_in_c_builds_and_passes_its_test() {
    let libc = Path::new("/usr/lib/wasm32-wasi/libc.a").exists();
    if !crate::examples::toolchain("C", crate::examples::have("clang", "--version") && libc) {
        return;
    }
    scaffold_builds_and_checks("c", |_, _| {
        let mut make = Command::new("make");
        make.args(["test", &format!("KAIZEN={BIN}")]);
        vec![make]
    });
}

/// `kaizen plugin check` keeps what it compiled in the platform's cache
/// directory (here `$XDG_CACHE_HOME`), or in `KAIZEN_CACHE_DIR`, and says
/// whether it found it there; `--no-cache` neither reads nor writes it.
#[test]
fn plugin_check_caches_the_compiled_module_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("calculator.wasm");
    std::fs::write(&wasm, kaizen_plugins::UNIT_CALCULATOR_V1.load().unwrap()).unwrap();
    let xdg = dir.path().join("xdg-cache");
    let check = |env: &[(&str, &Path)], extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["plugin", "check", wasm.to_str().unwrap()])
            .args(extra)
            .env_remove("KAIZEN_CACHE_DIR")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let entries = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);

    let platform = xdg.join("kaizen/compiled");
    let first = check(&[("XDG_CACHE_HOME", &xdg)], &[]);
    assert!(first.contains(&format!("cache        miss: compiled and stored ({})", platform.display())), "{first}");
    assert_eq!(entries(&platform), 1, "one compiled module in {}", platform.display());
    let second = check(&[("XDG_CACHE_HOME", &xdg)], &[]);
    assert!(second.contains(&format!("cache        hit ({})", platform.display())), "{second}");
    let fresh = check(&[("XDG_CACHE_HOME", &xdg)], &["--no-cache", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!((v["accepted"].as_bool(), v["cache"].as_str()), (Some(true), Some("off")), "{v}");

    let own = dir.path().join("own-cache");
    let v: serde_json::Value =
        serde_json::from_str(&check(&[("XDG_CACHE_HOME", &xdg), ("KAIZEN_CACHE_DIR", &own)], &["--json"])).unwrap();
    assert_eq!(v["cache"], "miss", "{v}");
    assert_eq!((entries(&own), entries(&platform)), (1, 1), "KAIZEN_CACHE_DIR wins over the platform's directory");
}
