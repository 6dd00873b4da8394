//! HTTP invoke throughput and tail latency on loopback: `kaizen serve`
//! invoking a trivial unit (echo) beside `wasmtime serve` running an
//! equivalent wasi:http hello-world component, measured in the same run by
//! the same load generator (keep-alive HTTP/1.1, a fixed number of
//! concurrent connections, closed loop), in two pairs: fresh instances
//! (Kaizen's default slot against `wasmtime serve`'s default) and warm
//! instances reused for up to 1000 requests (the slot's `instances` set to
//! warm, reuse 1000, against `wasmtime serve -O pooling-allocator
//! --max-instance-reuse-count 1000`). Kaizen records every call in each.
//!
//! `cargo bench --bench http` — needs `wasmtime` on PATH (or WASMTIME=path;
//! `cargo install wasmtime-cli`); without it only kaizen's figures print.
//! Knobs: HTTP_BENCH_SECS (default 8), HTTP_BENCH_CONNECTIONS (default 16),
//! KAIZEN_BIN (the `kaizen` to serve; default: the one built with the bench).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone)]
struct Target {
    name: String,
    url: String,
    body: Option<Vec<u8>>,
    token: Option<String>,
    expect: &'static [u8],
    /// The serving process, whose CPU time each run reads.
    pid: u32,
}

struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// The server's CPU time (every thread, user + system) per answered
    /// request: what the server itself spends, apart from the load
    /// generator it shares the cores with.
    server_cpu_us: f64,
}

/// CPU time of process `pid` so far (user + system), in µs, from
/// `/proc/PID/stat` (clock ticks of 1/100 s: over a run of seconds, well
/// within a percent).
fn cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    (ticks(11) + ticks(12)) * 1e6 / 100.0
}

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(120), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `kaizen serve` with the echo unit deployed, and how to set the
/// echo slot's instance mode.
struct Kaizen {
    url: String,
    admin: String,
}

impl Kaizen {
    fn instances(&self, mode: &str) {
        let r = reqwest::blocking::Client::new()
            .put(format!("{}/api/v1/deployments/echo/instances", self.url))
            .bearer_auth(&self.admin)
            .json(&serde_json::json!({"mode": mode, "reuse": 1000}))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "instance mode set: {}", r.status());
    }
}

fn start_kaizen(dir: &Path) -> (Proc, Kaizen, Target) {
    let bin = std::env::var("KAIZEN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kaizen").into());
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("KAIZEN_LOG", "warn")
        .env("KAIZEN_WATCH__ENABLED", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kaizen serve starts");
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(120)).expect("kaizen printed its address");
    let tokens: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).unwrap()).unwrap();
    let admin = tokens["admin"].as_str().unwrap().to_string();
    let echo = std::fs::read(kaizen_plugins::TEST_ECHO_V1.path).expect("echo guest built");
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/plugins?mode=deploy"))
        .bearer_auth(&admin)
        .body(echo)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "echo deployed");
    let target = Target {
        name: "kaizen serve (POST /api/v1/units/echo/invoke)".into(),
        url: format!("{url}/api/v1/units/echo/invoke"),
        body: Some(b"hello".to_vec()),
        token: Some(tokens["invoke"].as_str().unwrap().to_string()),
        expect: b"1.0.0:hello",
        pid: child.id(),
    };
    (Proc(child), Kaizen { url, admin }, target)
}

fn wasmtime_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WASMTIME") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("wasmtime")).find(|p| p.is_file())
}

/// Build the wasi:http hello world (once per run).
fn hello_http() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bench-guests");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root.join("benches/guests/hello-http/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap();
    assert!(st.success(), "hello-http guest builds");
    target_dir.join("wasm32-wasip2/release/hello_http.wasm")
}

/// `wasmtime serve` of `wasm` with `extra` options.
fn start_wasmtime(bin: &Path, wasm: &Path, name: &str, extra: &[&str]) -> (Proc, Target) {
    let port = free_port();
    let child = Command::new(bin)
        .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
        .args(extra)
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wasmtime serve starts");
    wait_listening(port);
    let target = Target {
        name: name.into(),
        url: format!("http://127.0.0.1:{port}/"),
        body: None,
        token: None,
        expect: b"1.0.0:hello",
        pid: child.id(),
    };
    (Proc(child), target)
}

/// Closed-loop load: `conns` connections, each sending its next request as
/// soon as the previous answer arrived, for `secs`.
fn load(t: &Target, conns: usize, secs: u64) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (pid, cpu_before) = (t.pid, cpu_us(t.pid));
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(conns).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let t = Arc::new((t.url.clone(), t.body.clone(), t.token.clone(), t.expect));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (client, t) = (client.clone(), t.clone());
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::with_capacity(100_000), 0u64);
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let mut req = match &t.1 {
                        Some(b) => client.post(&t.0).body(b.clone()),
                        None => client.get(&t.0),
                    };
                    if let Some(tok) = &t.2 {
                        req = req.bearer_auth(tok);
                    }
                    let ok = match req.send().await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| b.as_ref() == t.3),
                        _ => false,
                    };
                    if ok {
                        lat.push(start.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for task in tasks {
            let (l, e) = task.await.unwrap();
            all.extend(l);
            errors += e;
        }
        all.sort_unstable();
        let q = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
        };
        let server_cpu_us = (cpu_us(pid) - cpu_before) / all.len().max(1) as f64;
        Figures { rps: all.len() as f64 / secs as f64, p50_us: q(0.50), p99_us: q(0.99), errors, server_cpu_us }
    })
}

fn show(name: &str, f: &Figures) {
    println!(
        "{name:<56} {:>9.0} req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   server CPU {:>5.1} µs/req   errors {}",
        f.rps, f.p50_us, f.p99_us, f.server_cpu_us, f.errors
    )
}

/// Best round (by throughput) of each arm.
#[derive(Default)]
struct Best(Option<Figures>);

impl Best {
    fn offer(&mut self, f: Figures) {
        if self.0.as_ref().is_none_or(|b| f.rps > b.rps) {
            self.0 = Some(f);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` from tooling: nothing to list
    }
    let (secs, conns) = (env_num("HTTP_BENCH_SECS", 8), env_num("HTTP_BENCH_CONNECTIONS", 16) as usize);
    let dir = tempfile::tempdir().unwrap();
    let (_k, kaizen, fresh) = start_kaizen(dir.path());
    let warm = Target { name: "kaizen serve, echo slot warm (reuse 1000)".into(), ..fresh.clone() };
    let wasmtime = match wasmtime_bin() {
        Some(bin) => {
            let wasm = hello_http();
            let default = start_wasmtime(&bin, &wasm, "wasmtime serve (hello world), default", &[]);
            let reuse = start_wasmtime(
                &bin,
                &wasm,
                "wasmtime serve -O pooling-allocator, reuse 1000",
                &["-O", "pooling-allocator", "--max-instance-reuse-count", "1000"],
            );
            Some((default, reuse))
        }
        None => {
            println!("NOTICE: wasmtime not found (set WASMTIME or `cargo install wasmtime-cli`): kaizen only");
            None
        }
    };
    println!("HTTP invoke on loopback: {conns} connections, {secs} s per run, 2 rounds alternating");
    // Warm every arm (compiled caches, connection pools), then alternate.
    kaizen.instances("fresh");
    load(&fresh, conns, 1);
    kaizen.instances("warm");
    load(&warm, conns, 1);
    if let Some(((_, d), (_, r))) = &wasmtime {
        load(d, conns, 1);
        load(r, conns, 1);
    }
    let (mut kf, mut kw, mut wd, mut wr) = (Best::default(), Best::default(), Best::default(), Best::default());
    for _ in 0..2 {
        kaizen.instances("fresh");
        kf.offer(load(&fresh, conns, secs));
        if let Some(((_, d), _)) = &wasmtime {
            wd.offer(load(d, conns, secs));
        }
        kaizen.instances("warm");
        kw.offer(load(&warm, conns, secs));
        if let Some((_, (_, r))) = &wasmtime {
            wr.offer(load(r, conns, secs));
        }
    }
    println!("\n== HTTP invoke: figures measured in this run ==");
    let pair = |k: &Target, kb: &Best, w: Option<&Target>, wb: &Best, goal: &str| {
        let kf = kb.0.as_ref().unwrap();
        show(&k.name, kf);
        if let (Some(w), Some(wf)) = (w, wb.0.as_ref()) {
            show(&w.name, wf);
            println!(
                "  throughput kaizen / wasmtime serve = {:.2}x (goal {goal}); p99 kaizen / wasmtime serve = {:.2}x; \
                 server CPU per request kaizen / wasmtime serve = {:.2}x",
                kf.rps / wf.rps,
                kf.p99_us / wf.p99_us,
                kf.server_cpu_us / wf.server_cpu_us
            );
        }
    };
    pair(&fresh, &kf, wasmtime.as_ref().map(|((_, d), _)| d), &wd, "≥ 1.25x");
    pair(&warm, &kw, wasmtime.as_ref().map(|(_, (_, r))| r), &wr, "≥ 1.0x");
}
