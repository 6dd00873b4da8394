//! A fleet of three real `kaizen serve` processes (release build) on one
//! PostgreSQL database on loopback, all on this machine's cores:
//! - propagation: from the leader's commit of a new desired state (its
//!   deploy answered) to every follower serving it, over 200 changes;
//! - failover: from kill -9 of the leader to another host leading, over 20
//!   trials, at the default 5 s lease;
//! - calls failed during those failovers, under 300 calls/s offered across
//!   the three hosts (the killed host's own calls counted apart: a load
//!   balancer sends them elsewhere once its health check fails).
//!
//! Run: `KAIZEN_TEST_POSTGRES=postgres://USER:PASS@127.0.0.1:5432/postgres
//! cargo bench --bench fleet` (a database is created for the run and
//! dropped after it). `--changes N`, `--failovers N` to change the counts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_kaizen");
const ADD: &str = r#"{"op":"add","a":2,"b":3}"#;

struct Proc {
    child: Child,
    url: String,
    admin: String,
    invoke: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, db: &str) -> Proc {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", db, "--data-dir"])
        .arg(dir)
        .env("KAIZEN_LOG", "warn")
        .env("KAIZEN_SEED_UNIT", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kaizen serve starts");
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in out.lines().map_while(Result::ok) {
            if !sent && let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
                sent = true;
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(120)).expect("kaizen serve printed its address");
    let tokens: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).unwrap()).unwrap();
    let p = Proc {
        child,
        url,
        admin: tokens["admin"].as_str().unwrap().into(),
        invoke: tokens["invoke"].as_str().unwrap().into(),
    };
    let http = client();
    let t = Instant::now();
    while !http.get(format!("{}/healthz", p.url)).send().is_ok_and(|r| r.status() == 200) {
        assert!(t.elapsed() < Duration::from_secs(60), "host ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn leading(http: &reqwest::blocking::Client, p: &Proc) -> bool {
    http.get(format!("{}/api/v1/fleet", p.url))
        .bearer_auth(&p.admin)
        .send()
        .ok()
        .and_then(|r| r.json::<serde_json::Value>().ok())
        .is_some_and(|f| f["leading"] == true)
}

fn version_served(http: &reqwest::blocking::Client, p: &Proc) -> Option<String> {
    let r =
        http.post(format!("{}/api/v1/units/calculator/invoke", p.url)).bearer_auth(&p.invoke).body(ADD).send().ok()?;
    r.headers().get("x-kaizen-version").and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let Ok(admin) = std::env::var("KAIZEN_TEST_POSTGRES") else {
        eprintln!("set KAIZEN_TEST_POSTGRES (an admin URL of a PostgreSQL server on loopback) to run the fleet bench");
        return;
    };
    let (changes, failovers) = (arg("--changes", 200), arg("--failovers", 20));
    let name = format!("kaizen_bench_fleet_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let sql = |q: String| {
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable");
            sqlx::query(&q).execute(&mut c).await.map(|_| ())
        })
    };
    sql(format!("CREATE DATABASE {name}")).unwrap();
    let db = format!("{}/{name}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut hosts: Vec<Option<Proc>> = dirs.iter().map(|d| Some(start(d.path(), &db))).collect();
    let http = client();
    let v1 = kaizen_plugins::UNIT_CALCULATOR_V1.load().unwrap();
    let v2 = kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap();

    // Propagation: alternate 1.0.0 and 2.0.0 on the leader; after each
    // deploy is answered (committed), poll every follower until it serves it.
    let mut lags = Vec::new();
    for i in 0..changes {
        let leader = hosts.iter().flatten().find(|p| leading(&http, p)).expect("a leader");
        let (bytes, version) = if i % 2 == 0 { (&v2, "2.0.0") } else { (&v1, "1.0.0") };
        let r = http
            .post(format!("{}/api/v1/plugins?mode=deploy", leader.url))
            .bearer_auth(&leader.admin)
            .header("content-type", "application/wasm")
            .body(bytes.clone())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "deploy: {}", r.text().unwrap());
        let committed = Instant::now();
        let followers: Vec<&Proc> = hosts.iter().flatten().filter(|p| p.url != leader.url).collect();
        let mut last = Duration::ZERO;
        std::thread::scope(|s| {
            let seen: Vec<_> = followers
                .iter()
                .map(|f| {
                    s.spawn(|| {
                        let http = client();
                        while version_served(&http, f).as_deref() != Some(version) {
                            assert!(committed.elapsed() < Duration::from_secs(30), "follower never served {version}");
                        }
                        committed.elapsed()
                    })
                })
                .collect();
            for h in seen {
                last = last.max(h.join().unwrap());
            }
        });
        lags.push(last);
    }
    lags.sort();

    // Failover under 300 calls/s offered across the hosts.
    let stop = Arc::new(AtomicBool::new(false));
    let targets: Arc<Mutex<Vec<(String, String)>>> =
        Arc::new(Mutex::new(hosts.iter().flatten().map(|p| (p.url.clone(), p.invoke.clone())).collect()));
    // Every address a killed host had (a restarted host listens on another).
    let dead: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let (ok, failed, failed_on_killed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let senders: Vec<_> = (0..3)
        .map(|h| {
            let (stop, targets, dead, failures) = (stop.clone(), targets.clone(), dead.clone(), failures.clone());
            let (ok, failed, failed_on_killed) = (ok.clone(), failed.clone(), failed_on_killed.clone());
            std::thread::spawn(move || {
                let http = client();
                let period = Duration::from_micros(1_000_000 / 100);
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let (url, token) = targets.lock()[h].clone();
                    let r =
                        http.post(format!("{url}/api/v1/units/calculator/invoke")).bearer_auth(&token).body(ADD).send();
                    let answer = match r {
                        Ok(r) if r.status().is_success() => Ok(()),
                        Ok(r) => Err(format!("{} {}", r.status(), r.text().unwrap_or_default())),
                        Err(e) => Err(e.to_string()),
                    };
                    match answer {
                        Ok(()) => _ = ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) if dead.lock().contains(&url) => _ = failed_on_killed.fetch_add(1, Ordering::Relaxed),
                        Err(why) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().push(format!("{url}: {why}"));
                        }
                    }
                    next += period;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
            })
        })
        .collect();
    let mut takeovers = Vec::new();
    for _ in 0..failovers {
        let i = hosts.iter().position(|p| p.as_ref().is_some_and(|p| leading(&http, p))).expect("a leader");
        dead.lock().insert(hosts[i].as_ref().unwrap().url.clone());
        let mut gone = hosts[i].take().unwrap();
        let t = Instant::now();
        gone.child.kill().unwrap();
        gone.child.wait().unwrap();
        while !hosts.iter().flatten().any(|p| leading(&http, p)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        takeovers.push(t.elapsed());
        drop(gone);
        let p = start(dirs[i].path(), &db);
        targets.lock()[i] = (p.url.clone(), p.invoke.clone());
        hosts[i] = Some(p);
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    takeovers.sort();
    drop(hosts);
    let _ = sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));

    println!("\n== Kaizen fleet: 3 hosts, one PostgreSQL, loopback ==");
    println!(
        "desired state committed → every follower serving it, {} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 ≤ 100 ms)",
        lags.len(),
        percentile(&lags, 0.5).as_secs_f64() * 1e3,
        percentile(&lags, 0.99).as_secs_f64() * 1e3,
        lags.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "kill -9 of the leader → another host leads, {} trials, 5 s lease: p50 {:.2} s, max {:.2} s = {:.2}× the lease (goal ≤ lease + 1 s = 1.2×)",
        takeovers.len(),
        percentile(&takeovers, 0.5).as_secs_f64(),
        takeovers.last().unwrap().as_secs_f64(),
        takeovers.last().unwrap().as_secs_f64() / 5.0
    );
    println!(
        "calls at 300/s offered over the failovers: {} answered, {} failed on the surviving hosts (goal 0), {} failed on the killed host while it was down",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        failed_on_killed.load(Ordering::Relaxed)
    );
    for f in failures.lock().iter().take(5) {
        println!("  failed: {f}");
    }
}
