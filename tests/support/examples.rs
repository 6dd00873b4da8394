//! Building the example plugins of `plugins/examples/` and the SDK test
//! guests of `tests/guests/` from source with their own toolchains; shared
//! by the tests (`tests/all/polyglot.rs`, `tests/all/sdks.rs`) and the
//! benches (`benches/polyglot.rs`).

#![allow(dead_code)] // each user takes what it needs

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kaizen");

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

/// Build `out` with `build` unless it is newer than every file under
/// `sources`: a guest is built once per change, not once per test (nextest
/// runs each test in a process of its own, several at a time). A lock file
/// beside `out` keeps two tests from building it at once, and `build`
/// writes to a temporary path renamed into place, so a test never reads a
/// file another is rewriting.
fn built_once(out: &Path, sources: &[PathBuf], build: impl FnOnce(&Path)) {
    let lock = std::fs::File::create(out.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let built = std::fs::metadata(out).and_then(|m| m.modified()).ok();
    if built.is_some_and(|b| sources.iter().all(|s| newest(s) <= b)) {
        return;
    }
    let tmp = out.with_extension(format!("{}.tmp.wasm", std::process::id()));
    build(&tmp);
    std::fs::rename(&tmp, out).unwrap();
}

/// The newest modification time of the files under `path`.
fn newest(path: &Path) -> std::time::SystemTime {
    let meta = std::fs::metadata(path).unwrap();
    if !meta.is_dir() {
        return meta.modified().unwrap();
    }
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "node_modules" && e.file_name() != "__pycache__")
        .map(|e| newest(&e.path()))
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
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

/// Build the Python detector with componentize-py, on the SDK of this
/// checkout.
pub fn build_python() -> Option<PathBuf> {
    if !toolchain("Python", have("componentize-py", "--version")) {
        return None;
    }
    let out = out_dir("python").join("error_budget.wasm");
    let sources = [examples().join("python-detector"), repo().join("sdk/python/src"), repo().join("wit/v0.2")];
    built_once(&out, &sources, |to| {
        run(Command::new("componentize-py")
            .args(["-d"])
            .arg(repo().join("wit/v0.2"))
            .args(["-w", "kaizen:plugin/detector", "componentize", "-p", ".", "-p"])
            .arg(repo().join("sdk/python/src"))
            .args(["app", "-o"])
            .arg(to)
            .current_dir(examples().join("python-detector"))
            .env("PYTHONDONTWRITEBYTECODE", "1"))
    });
    Some(out)
}

/// This checkout: the SDKs (`sdk/python`, `sdk/js`) and the test guests on
/// them (`tests/guests/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Build the Python test unit on the SDK (`tests/guests/python-unit`,
/// `speaker-py`) with componentize-py, the SDK taken from `sdk/python/src`.
pub fn build_python_sdk_guest() -> Option<PathBuf> {
    if !toolchain("Python", have("componentize-py", "--version")) {
        return None;
    }
    let out = out_dir("python-sdk").join("speaker_py.wasm");
    let sources = [repo().join("tests/guests/python-unit"), repo().join("sdk/python/src"), repo().join("wit/v0.2")];
    built_once(&out, &sources, |to| {
        run(Command::new("componentize-py")
            .arg("-d")
            .arg(repo().join("wit/v0.2"))
            .args(["-w", "kaizen:plugin/unit", "componentize", "-p"])
            .arg(repo().join("tests/guests/python-unit"))
            .arg("-p")
            .arg(repo().join("sdk/python/src"))
            .args(["app", "-o"])
            .arg(to)
            .env("PYTHONDONTWRITEBYTECODE", "1"))
    });
    Some(out)
}

/// The jco of the JavaScript example (installed there by npm if missing).
pub fn jco() -> Option<PathBuf> {
    let dir = examples().join("js-unit");
    if !toolchain("JavaScript", have("npm", "--version")) {
        return None;
    }
    if !dir.join("node_modules/.bin/jco").exists() || !dir.join("node_modules/kaizen-sdk").exists() {
        run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir));
    }
    Some(dir.join("node_modules/.bin/jco"))
}

/// Build the JavaScript test unit on the SDK (`tests/guests/js-unit`,
/// `speaker-js`): jco's QuickJS backend, bundled, against the SDK's WIT.
pub fn build_js_sdk_guest() -> Option<PathBuf> {
    let jco = jco()?;
    let out = out_dir("js-sdk").join("speaker_js.wasm");
    let sources = [repo().join("tests/guests/js-unit"), repo().join("sdk/js")];
    built_once(&out, &sources, |to| {
        run(Command::new(&jco)
            .args(["componentize", "unit.js", "--wit"])
            .arg(repo().join("sdk/js/wit"))
            .args(["--world-name", "unit", "--backend", "quickjs", "--backend-qjs-disable-async", "--bundle", "-o"])
            .arg(to)
            .current_dir(repo().join("tests/guests/js-unit")))
    });
    Some(out)
}

/// Build the JavaScript unit with jco's QuickJS backend, bundling the SDK
/// (`node_modules/kaizen-sdk`, linked from `sdk/js` by npm).
pub fn build_js() -> Option<PathBuf> {
    let dir = examples().join("js-unit");
    jco()?;
    let out = out_dir("js").join("slugify.wasm");
    built_once(&out, &[dir.clone(), repo().join("sdk/js")], |to| {
        run(Command::new("node_modules/.bin/jco")
            .args(["componentize", "unit.js", "--wit", "node_modules/kaizen-sdk/wit", "--world-name", "unit"])
            .args(["--backend", "quickjs", "--backend-qjs-disable-async", "--bundle", "-o"])
            .arg(to)
            .current_dir(&dir))
    });
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
