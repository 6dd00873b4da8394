//! The real `kaizen` binary as a test drives it: `kaizen serve` on a free
//! loopback port over a temporary data directory, a blocking HTTP client,
//! and the CLI's client commands pointed at it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kaizen");

/// A running `kaizen serve`. Killed when dropped (tests that check
/// shutdown call [`Server::stop`]).
pub struct Server {
    pub child: Option<Child>,
    pub url: String,
    pub admin: String,
    pub invoke: String,
    pub metrics: String,
    pub http: reqwest::blocking::Client,
    /// Everything the process printed on stdout after the address line.
    pub stdout: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Server {
    /// Start over `data_dir` with extra `env` (config overrides) and `args`.
    pub fn start(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let s = Server::spawn(data_dir, env, args, Stdio::inherit());
        wait_for("the host to be ready", Duration::from_secs(60), || {
            s.http.get(format!("{}/healthz", s.url)).send().is_ok_and(|r| r.status() == 200)
        });
        s
    }

    /// Start like [`Server::start`] with the log (stderr) written to `log`,
    /// and return as soon as the host listens, without waiting for
    /// `/healthz` to answer 200.
    pub fn start_logged(data_dir: &Path, env: &[(&str, &str)], args: &[&str], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("the log file can be created");
        Server::spawn(data_dir, env, args, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, env: &[(&str, &str)], args: &[&str], stderr: Stdio) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("KAIZEN_RUNTIME__CACHE_DIR", crate::common::shared_cache())
            .env("KAIZEN_WATCH__STABLE_MS", "300")
            .env("KAIZEN_WATCH__RESCAN_MS", "200")
            .env("KAIZEN_LOG", "info")
            // The tests drive the demo's seed unit, calculator 1.0.0, which
            // a plain `kaizen serve` does not deploy.
            .env("KAIZEN_SEED_UNIT", "true")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kaizen serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let keep = lines.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                    sent = true;
                }
                keep.lock().push(line);
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(120)).expect("kaizen serve printed its address");
        let tokens: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data_dir.join("tokens.json")).expect("tokens.json written")).unwrap();
        Server {
            child: Some(child),
            url,
            admin: tokens["admin"].as_str().unwrap().into(),
            invoke: tokens["invoke"].as_str().unwrap().into(),
            metrics: tokens["metrics"].as_str().unwrap().into(),
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
            stdout: lines,
        }
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.admin).send().unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().unwrap()
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> reqwest::blocking::Response {
        self.http.post(format!("{}{path}", self.url)).bearer_auth(&self.admin).json(&body).send().unwrap()
    }

    /// Upload a module with `?mode=deploy` (it serves at once) and check
    /// that it was taken: 200, or the test fails with the server's words.
    pub fn deploy(&self, module: Vec<u8>) {
        self.upload(&module, "deploy");
    }

    /// Upload a module with `?mode=MODE` (`deploy`, `candidate`, `auto`),
    /// check that it was taken (200, or the test fails with the server's
    /// words) and return the answer's body.
    pub fn upload(&self, module: &[u8], mode: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}/api/v1/plugins?mode={mode}", self.url))
            .bearer_auth(&self.admin)
            .header("content-type", "application/wasm")
            .body(module.to_vec())
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Invoke `unit` with the invoke token; (status, version, body).
    pub fn invoke(&self, unit: &str, body: &str) -> (u16, String, String) {
        let r = self
            .http
            .post(format!("{}/api/v1/units/{unit}/invoke", self.url))
            .bearer_auth(&self.invoke)
            .body(body.to_string())
            .send()
            .unwrap();
        let version = r.headers().get("x-kaizen-version").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (r.status().as_u16(), version, r.text().unwrap())
    }

    /// The version slot `name` serves, per the API.
    pub fn serving(&self, name: &str) -> Option<String> {
        let plugins = self.get("/api/v1/plugins");
        plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["current"]["version"].as_str().unwrap().into())
    }

    /// The slot's canary as (version, percent), per the API.
    pub fn canary(&self, slot: &str) -> Option<(String, f64)> {
        let plugins = self.get("/api/v1/plugins");
        let p = plugins.as_array().unwrap().iter().find(|p| p["name"] == slot)?.clone();
        let c = p["canary"].as_object()?;
        Some((c["version"].as_str()?.to_string(), c["percent"].as_f64()?))
    }

    /// Run a CLI client command against this host; (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("KAIZEN_URL", &self.url)
            .env("KAIZEN_ADMIN_TOKEN", &self.admin)
            .env_remove("KAIZEN_INVOKE_TOKEN")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// SIGTERM, then wait for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "kaizen serve did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll `ok` until it holds, failing the test after `within`.
pub fn wait_for(what: &str, within: Duration, ok: impl FnMut() -> bool) {
    wait_for_or(what, within, ok, String::new);
}

/// [`wait_for`], and on a timeout the panic also says what `explain`
/// finds: where the thing waited for stood instead.
pub fn wait_for_or(what: &str, within: Duration, mut ok: impl FnMut() -> bool, explain: impl FnOnce() -> String) {
    let t = Instant::now();
    while !ok() {
        if t.elapsed() >= within {
            panic!("timed out after {within:?} waiting for {what}{}", explain());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Put `bytes` in `dir` under `name` the way a careful copy tool does:
/// write a temporary name, then rename.
pub fn drop_file(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The `.wasm` files (not folders) left in `dir`.
pub fn wasm_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm"))
        .collect()
}

/// Start `kaizen serve` with `toml` as its config file (and `env`) over an
/// empty data directory, and check that it refuses to start the way an
/// operator needs: exit status 1, no backtrace for an ordinary error, and
/// nothing opened (no store file). Returns what it printed on stderr, for
/// the caller to check that the offending key and rule are named.
pub fn refused(toml: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kaizen.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{toml} {env:?} was not refused: {err}");
    assert!(!err.to_lowercase().contains("backtrace"), "an ordinary error prints no backtrace: {err}");
    assert!(!dir.path().join("kaizen.db").exists(), "nothing was opened");
    err
}

/// Calls to `unit` from two client threads until dropped, call `n`
/// asking `body(n)` (each request its own, so replay has many).
pub struct Calls(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Calls {
    pub fn start(s: &Server, unit: &str, body: fn(u64) -> String) -> Calls {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2u64)
            .map(|c| {
                let stop = stop.clone();
                let (url, token) = (format!("{}/api/v1/units/{unit}/invoke", s.url), s.invoke.clone());
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let _ = http.post(&url).bearer_auth(&token).body(body(c * 1_000_000 + n)).send();
                    }
                })
            })
            .collect();
        Calls(stop, threads)
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}
