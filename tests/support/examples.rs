//! Building the example plugins of `plugins/examples/` from source with
//! their own toolchains; shared by the tests (`tests/all/polyglot.rs`) and
//! the loading-cost bench (`benches/polyglot.rs`).

#![allow(dead_code)] // each user takes what it needs

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kaizen");

/// The WIT folder the examples are written against: contract 0.1.0. They
/// stay 0.1 plugins on purpose — the host must keep loading what authors
/// built before 0.2 — while `kaizen plugin new` scaffolds the current one.
pub fn wit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(kaizen_host::runtime::bindings::v0_1::WIT_DIR)
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/examples")
}

pub fn out_dir(lang: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("polyglot").join(lang);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// Whether `lang`'s toolchain is here; in CI it must be.
pub fn toolchain(lang: &str, ok: bool) -> bool {
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must build the {lang} example: .ci/run installs its toolchain");
        eprintln!("NOTICE: {lang} example skipped: its toolchain is not installed (see plugins/examples/README.md)");
    }
    ok
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Build the Python detector with componentize-py.
pub fn build_python() -> Option<PathBuf> {
    if !toolchain("Python", have("componentize-py", "--version")) {
        return None;
    }
    let out = out_dir("python").join("error_budget.wasm");
    run(Command::new("componentize-py")
        .args(["-d"])
        .arg(wit())
        .args(["-w", "kaizen:plugin/detector", "componentize", "app", "-o"])
        .arg(&out)
        .current_dir(examples().join("python-detector"))
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    Some(out)
}

/// Build the JavaScript unit with jco's QuickJS backend.
pub fn build_js() -> Option<PathBuf> {
    let dir = examples().join("js-unit");
    if !toolchain("JavaScript", have("npm", "--version")) {
        return None;
    }
    if !dir.join("node_modules/.bin/jco").exists() {
        run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir));
    }
    let out = out_dir("js").join("slugify.wasm");
    run(Command::new("node_modules/.bin/jco")
        .args(["componentize", "unit.js", "--wit"])
        .arg(wit())
        .args(["--world-name", "unit"])
        .args(["--backend", "quickjs", "--backend-qjs-disable-async", "-o"])
        .arg(&out)
        .current_dir(&dir));
    Some(out)
}

/// Build the C strategy: bindings and component by `kaizen plugin`, the
/// core module by clang against wasi-libc.
pub fn build_c() -> Option<PathBuf> {
    let wasi_libc = Path::new("/usr/lib/wasm32-wasi/libc.a").exists();
    if !toolchain("C", have("clang", "--version") && wasi_libc) {
        return None;
    }
    let dir = out_dir("c");
    run(Command::new(BIN).args(["plugin", "bindings", "recovery", "--out"]).arg(&dir));
    let core = dir.join("core.wasm");
    run(Command::new("clang")
        .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall", "-Werror", "-I"])
        .arg(&dir)
        .arg("-o")
        .arg(&core)
        .arg(examples().join("c-recovery/strategy.c"))
        .arg(dir.join("recovery.c"))
        .arg(dir.join("recovery_component_type.o")));
    let out = dir.join("jittered_retry.wasm");
    run(Command::new(BIN).args(["plugin", "componentize"]).arg(&core).arg("-o").arg(&out));
    Some(out)
}
