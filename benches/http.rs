//! HTTP invoke throughput and tail latency on loopback: `kaizen serve`
//! invoking a trivial unit (echo) beside `wasmtime serve` running an
//! equivalent wasi:http hello-world component, measured in the same run by
//! the same load generator (keep-alive HTTP/1.1, a fixed number of
//! concurrent connections, closed loop).
//!
//! `cargo bench --bench http` — needs `wasmtime` on PATH (or WASMTIME=path;
//! `cargo install wasmtime-cli`); without it only kaizen's figures print.
//! Knobs: HTTP_BENCH_SECS (default 8), HTTP_BENCH_CONNECTIONS (default 16).

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

struct Target {
    name: &'static str,
    url: String,
    body: Option<Vec<u8>>,
    token: Option<String>,
    expect: &'static [u8],
}

struct Figures {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
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

fn start_kaizen(dir: &Path) -> (Proc, Target) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaizen"))
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
        name: "kaizen serve (POST /api/v1/units/echo/invoke)",
        url: format!("{url}/api/v1/units/echo/invoke"),
        body: Some(b"hello".to_vec()),
        token: Some(tokens["invoke"].as_str().unwrap().to_string()),
        expect: b"1.0.0:hello",
    };
    (Proc(child), target)
}

fn wasmtime_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WASMTIME") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("wasmtime")).find(|p| p.is_file())
}

fn start_wasmtime(bin: &Path) -> (Proc, Target) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target/bench-guests");
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root.join("benches/guests/hello-http/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap();
    assert!(st.success(), "hello-http guest builds");
    let wasm = target_dir.join("wasm32-wasip2/release/hello_http.wasm");
    let port = free_port();
    let child = Command::new(bin)
        .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
        .arg(&wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wasmtime serve starts");
    wait_listening(port);
    let target = Target {
        name: "wasmtime serve (wasi:http hello world)",
        url: format!("http://127.0.0.1:{port}/"),
        body: None,
        token: None,
        expect: b"1.0.0:hello",
    };
    (Proc(child), target)
}

/// Closed-loop load: `conns` connections, each sending its next request as
/// soon as the previous answer arrived, for `secs`.
fn load(t: &Target, conns: usize, secs: u64) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
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
        Figures { rps: all.len() as f64 / secs as f64, p50_us: q(0.50), p99_us: q(0.99), errors }
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` from tooling: nothing to list
    }
    let (secs, conns) = (env_num("HTTP_BENCH_SECS", 8), env_num("HTTP_BENCH_CONNECTIONS", 16) as usize);
    let dir = tempfile::tempdir().unwrap();
    let (_k, kaizen) = start_kaizen(dir.path());
    let wasmtime = match wasmtime_bin() {
        Some(bin) => Some(start_wasmtime(&bin)),
        None => {
            println!("NOTICE: wasmtime not found (set WASMTIME or `cargo install wasmtime-cli`): kaizen only");
            None
        }
    };
    println!("HTTP invoke on loopback: {conns} connections, {secs} s per run, 2 rounds alternating");
    // Warm both (compiled caches, connection pools), then alternate.
    load(&kaizen, conns, 1);
    if let Some((_, w)) = &wasmtime {
        load(w, conns, 1);
    }
    let (mut k_best, mut w_best): (Option<Figures>, Option<Figures>) = (None, None);
    for _ in 0..2 {
        let f = load(&kaizen, conns, secs);
        if k_best.as_ref().is_none_or(|b| f.rps > b.rps) {
            k_best = Some(f);
        }
        if let Some((_, w)) = &wasmtime {
            let f = load(w, conns, secs);
            if w_best.as_ref().is_none_or(|b| f.rps > b.rps) {
                w_best = Some(f);
            }
        }
    }
    let show = |name: &str, f: &Figures| {
        println!(
            "{name:<48} {:>9.0} req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   errors {}",
            f.rps, f.p50_us, f.p99_us, f.errors
        )
    };
    let k = k_best.unwrap();
    show(kaizen.name, &k);
    if let (Some((_, wt)), Some(w)) = (&wasmtime, &w_best) {
        show(wt.name, w);
        println!(
            "throughput kaizen / wasmtime serve = {:.2}x (goal ≥ 0.8x); p99 kaizen / wasmtime serve = {:.2}x",
            k.rps / w.rps,
            k.p99_us / w.p99_us
        );
    }
}
