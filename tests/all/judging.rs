//! The judge as a user meets it — through the real `kaizen serve`, real
//! units and real HTTP traffic on loopback: identical candidates survive a
//! machine that slows down at random moments (promotion included), a unit
//! with transient errors can still be updated through replay, a candidate
//! that refuses every request is stopped before it takes the traffic, a
//! long pause does not wear the judge down, and a slower candidate — or one
//! slower in its tail alone — is rolled back.
//!
//! The judge keys and the step's running time (`step_timeout_secs`) are
//! the product's defaults except `min_samples`, which only lets a verdict
//! come sooner (a floor, not a level): what passes here passes for a user
//! with the default settings.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kaizen_plugins as guests;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::kaizen_bin::{Server, wait_for};

/// The product's default running time of a judged step, seconds.
fn step_secs() -> u64 {
    kaizen_host::safety::Limits::default().step_timeout_secs
}

/// Improvement states a rollout may still leave.
const RUNNING: [&str; 5] = ["proposed", "proving", "canary", "baking", "frozen"];

/// Short timings, the product's judge, and every call's request kept for
/// replay. The self-watch is opened wide: it would pause the loop after a
/// run of rollbacks, and these tests count every rollout's end themselves.
fn config(dir: &Path, extra: &str) -> String {
    config_with(dir, "", extra)
}

/// [`config`] with `judge` added to the judge's keys.
fn config_with(dir: &Path, judge: &str, extra: &str) -> String {
    let path = dir.join("kaizen.toml");
    let step = step_secs();
    std::fs::write(
        &path,
        format!(
            "[telemetry]\nsample_requests_every = 1\n\
             [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\ncanary_steps = [10.0, 50.0, 100.0]\n\
             step_timeout_secs = {step}\nbake_secs = 4\nholdback_percent = 10.0\n\
             [safety.limits.judge]\nmin_samples = 20\n{judge}\
             [safety.self_watch]\nmax_rollback_rate = 1.0\nmax_failure_rate = 1.0\n\
             [runtime.grants.noisy]\ncapabilities = [\"random\"]\n{extra}"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn start(dir: &Path, extra: &str) -> Server {
    let cfg = config(dir, extra);
    Server::start(dir, &[], &["--config", &cfg])
}

/// Upload `bytes` with `mode`; the answer's body, after checking its
/// `result`.
fn upload(s: &Server, bytes: &[u8], mode: &str, result: &str) -> Value {
    let r = s
        .http
        .post(format!("{}/api/v1/plugins?mode={mode}", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    assert_eq!((status, body["result"].as_str()), (200, Some(result)), "upload ({mode}): {body}");
    body
}

fn improvements(s: &Server, target: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/improvements?target={target}&limit=200")).as_array().unwrap().clone()
}

/// Steady calls from a few client threads, each request different (so that
/// replay has many distinct recorded requests), until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    /// Calls answered 422 (the unit refused the request).
    refused: Arc<AtomicU64>,
    since: Instant,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(s: &Server, unit: &str, clients: usize) -> Traffic {
        let (stop, calls, refused) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let threads = (0..clients)
            .map(|c| {
                let (stop, calls, refused): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>) =
                    (stop.clone(), Arc::clone(&calls), Arc::clone(&refused));
                let (url, token) = (format!("{}/api/v1/units/{unit}/invoke", s.url), s.invoke.clone());
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = format!("{{\"client\":{c},\"n\":{n}}}");
                        if let Ok(r) = http.post(&url).bearer_auth(&token).body(body).send() {
                            calls.fetch_add(1, Ordering::Relaxed);
                            refused.fetch_add(u64::from(r.status() == 422), Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Traffic { stop, calls, refused, since: Instant::now(), threads }
    }

    fn per_second(&self) -> f64 {
        self.calls.load(Ordering::Relaxed) as f64 / self.since.elapsed().as_secs_f64()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Two busy-looping shells: the whole (two-core) machine slows down, both
/// arms alike. Killed when dropped, a failing test included.
struct Hog(Vec<Child>);

impl Hog {
    fn start() -> Hog {
        Hog((0..2)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("sh starts")
            })
            .collect())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How long a hog runs.
const HOG: Duration = Duration::from_secs(3);

/// When a rollout's hog starts.
#[derive(Debug, Clone, Copy)]
enum HogAt {
    /// This long after the candidate was uploaded.
    After(Duration),
    /// The moment the improvement is seen baking: right at promotion.
    Promotion,
}

/// How one rollout ended.
struct Ended {
    version: String,
    state: String,
    reason: String,
    took: Duration,
    hog: String,
    /// Each verdict of the judge, as "phase percent: reason".
    verdicts: Vec<String>,
}

/// Hand `bytes` to the loop as a candidate of `target` and watch its
/// improvement until it ends, with a hog started at `hog` (if ever reached).
fn roll(s: &Server, target: &str, bytes: &[u8], hog: Option<HogAt>) -> Ended {
    let last = improvements(s, target).iter().filter_map(|i| i["id"].as_i64()).max().unwrap_or(0);
    let t = Instant::now();
    let up = upload(s, bytes, "candidate", "candidate");
    let (sha, version) = (up["sha256"].as_str().unwrap().to_string(), up["version"].as_str().unwrap().to_string());
    let mut running: Option<(Hog, Instant)> = None;
    let mut fired = String::from("-");
    loop {
        // Two judged steps, proof and the bake.
        let most = Duration::from_secs(2 * step_secs() + 60);
        assert!(t.elapsed() < most, "{target} {version}'s rollout did not end within {most:?}");
        let imp = improvements(s, target)
            .into_iter()
            .find(|i| i["candidate_sha"] == sha.as_str() && i["id"].as_i64() > Some(last));
        let state = imp.as_ref().map(|i| i["state"].as_str().unwrap().to_string()).unwrap_or_default();
        if running.as_ref().is_some_and(|(_, since)| since.elapsed() >= HOG) {
            running = None;
        }
        let due = match hog {
            Some(HogAt::After(d)) => t.elapsed() >= d,
            Some(HogAt::Promotion) => state == "baking",
            None => false,
        };
        if due && fired == "-" {
            fired =
                format!("{:.1} s, {}", t.elapsed().as_secs_f64(), if state.is_empty() { "submitted" } else { &state });
            running = Some((Hog::start(), Instant::now()));
        }
        if let Some(imp) = imp.filter(|_| !state.is_empty() && !RUNNING.contains(&state.as_str())) {
            return Ended {
                version,
                state,
                reason: imp["reason"].as_str().unwrap_or_default().to_string(),
                took: t.elapsed(),
                hog: fired,
                verdicts: imp["verdicts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        let (phase, reason) = (v["phase"].as_str(), v["judgement"]["reason"].as_str());
                        format!("{} {}%: {}", phase.unwrap_or("?"), v["percent"], reason.unwrap_or("?"))
                    })
                    .collect(),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Print one line per rollout: its end state, how long it took, when the
/// hog started, and why it ended.
fn table(title: &str, ended: &[Ended]) {
    println!("{title}");
    println!("{:>3}  {:<8} {:<13} {:>7}  {:<20} reason", "#", "version", "state", "took", "hog at");
    for (i, e) in ended.iter().enumerate() {
        println!(
            "{:>3}  {:<8} {:<13} {:>6.1}s  {:<20} {}",
            i + 1,
            e.version,
            e.state,
            e.took.as_secs_f64(),
            e.hog,
            e.reason
        );
        for v in &e.verdicts {
            println!("{:>5}{v}", "");
        }
    }
}

/// Alternate two behaviour-identical versions of `target` through the loop
/// `rounds` times under `traffic`, with a hog at a random moment of each
/// rollout (every third one right at promotion).
fn identical_rounds(s: &Server, target: &str, versions: [&[u8]; 2], rounds: usize, traffic: &Traffic) -> Vec<Ended> {
    let seed: u64 = rand::rng().random();
    println!("hog moments drawn with seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ended = Vec::new();
    for i in 0..rounds {
        // Upload whichever of the two does not serve now.
        let bytes = if s.serving(target).as_deref() == Some("1.0.0") { versions[1] } else { versions[0] };
        let hog =
            if i % 3 == 0 { HogAt::Promotion } else { HogAt::After(Duration::from_millis(rng.random_range(0..8000))) };
        let e = roll(s, target, bytes, Some(hog));
        println!(
            "rollout {} of {target} {}: {} after {:.1} s ({:.0} calls/s so far)",
            i + 1,
            e.version,
            e.state,
            e.took.as_secs_f64(),
            traffic.per_second()
        );
        ended.push(e);
    }
    ended
}

fn count(ended: &[Ended], state: &str) -> usize {
    ended.iter().filter(|e| e.state == state).count()
}

#[test]
fn identical_candidates_survive_a_busy_machine() {
    let t = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    upload(&s, &guests::TEST_BUSY_V1.load().unwrap(), "deploy", "deployed");
    let traffic = Traffic::start(&s, "busy", 3);
    // Recorded calls for replay to compare.
    std::thread::sleep(Duration::from_secs(2));
    let (v1, v2) = (guests::TEST_BUSY_V1.load().unwrap(), guests::TEST_BUSY_V2.load().unwrap());
    let ended = identical_rounds(&s, "busy", [&v1, &v2], 20, &traffic);
    let rate = traffic.per_second();
    drop(traffic);
    table(&format!("busy: 20 identical candidates, {rate:.0} calls/s, {:.0} s", t.elapsed().as_secs_f64()), &ended);
    let (promoted, rolled_back) = (count(&ended, "promoted"), count(&ended, "rolled-back"));
    assert!(rolled_back <= 1, "{rolled_back} of 20 identical candidates were rolled back (see the table)");
    assert!(promoted >= 19, "only {promoted} of 20 identical candidates were promoted (see the table)");
}

#[test]
fn a_unit_with_transient_errors_can_be_updated() {
    let t = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    upload(&s, &guests::TEST_NOISY_V1.load().unwrap(), "deploy", "deployed");
    // A sub-millisecond unit: judged against a matched control, each arm
    // with a tenth of the calls at 10 %, a step may take 1 500 calls of
    // each. More clients bring those calls sooner (a client waits on its
    // answer far longer than the unit works) and keep the machine busier:
    // a harsher test, not an easier one.
    let traffic = Traffic::start(&s, "noisy", 12);
    // Calls recorded beforehand: replay (required) has its 200 requests.
    std::thread::sleep(Duration::from_secs(3));
    let (v1, v2) = (guests::TEST_NOISY_V1.load().unwrap(), guests::TEST_NOISY_V2.load().unwrap());
    let ended = identical_rounds(&s, "noisy", [&v1, &v2], 20, &traffic);
    let rate = traffic.per_second();
    drop(traffic);
    table(&format!("noisy: 20 identical candidates, {rate:.0} calls/s, {:.0} s", t.elapsed().as_secs_f64()), &ended);
    let (promoted, rolled_back) = (count(&ended, "promoted"), count(&ended, "rolled-back"));
    let rejected = ended.iter().filter(|e| e.state == "rejected").map(|e| &e.reason).collect::<Vec<_>>();
    assert!(rejected.is_empty(), "identical candidates rejected by proof: {rejected:?}");
    assert!(rolled_back <= 1, "{rolled_back} of 20 identical candidates were rolled back (see the table)");
    assert!(
        promoted >= 19,
        "only {promoted} of 20 identical candidates of a unit with 1 % transient errors were promoted (see the table)"
    );
}

#[test]
fn a_candidate_refusing_every_request_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    upload(&s, &guests::TEST_NOISY_V1.load().unwrap(), "deploy", "deployed");
    let traffic = Traffic::start(&s, "noisy", 3);
    std::thread::sleep(Duration::from_secs(3));
    let e = roll(&s, "noisy", &guests::TEST_NOISY_V3.load().unwrap(), None);
    let refused = traffic.refused.load(Ordering::Relaxed);
    let rate = traffic.per_second();
    drop(traffic);
    table(&format!("noisy 3.0.0 (refuses every request), {rate:.0} calls/s; {refused} calls answered 422"), &[e]);
    let imp = improvements(&s, "noisy").into_iter().next().unwrap();
    let units = s.get("/api/v1/units");
    let strict: Vec<&Value> =
        units.as_array().unwrap().iter().filter(|u| u["unit"] == "noisy" && u["version"] == "3.0.0").collect();
    println!("the unit's statistics of 3.0.0: {strict:?}");

    // Failed at proof, or by the judge at the first canary step.
    let state = imp["state"].as_str().unwrap();
    assert!(["rejected", "rolled-back"].contains(&state), "noisy 3.0.0 ended {state}: {}", imp["reason"]);
    let later: Vec<&Value> =
        imp["verdicts"].as_array().unwrap().iter().filter(|v| v["phase"] != "canary" || v["percent"] != 10.0).collect();
    assert!(later.is_empty(), "judged beyond the first canary step: {later:?}");

    // Rolled back: 1.0.0 answers every call again.
    assert_eq!(s.serving("noisy").as_deref(), Some("1.0.0"));
    assert!(s.canary("noisy").is_none(), "no split left");
    let answers: Vec<(u16, String, String)> = (0..50).map(|i| s.invoke("noisy", &format!("after {i}"))).collect();
    assert!(answers.iter().all(|a| a.1 == "1.0.0"), "{answers:?}");
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    assert!(ok >= 45, "only {ok} of 50 calls answered after the rollback: {answers:?}");

    // The version that refused the calls it took does not look healthy: its
    // refusals show (the contract's success rate leaves invalid-input out).
    for u in strict.iter().filter(|u| u["calls"].as_u64() > Some(0)) {
        assert!(u["rejection_rate"].as_f64().unwrap() > 0.99, "3.0.0 refused every call it took, yet: {u}");
    }
}

#[test]
fn an_identical_candidate_paused_for_a_minute_is_promoted() {
    let dir = tempfile::tempdir().unwrap();
    // No live traffic while the candidate is proven: the shadow step gives
    // up after a second instead of ten.
    let s = start(dir.path(), "[loop.prove]\nshadow_secs = 1\n");
    upload(&s, &guests::TEST_BUSY_V1.load().unwrap(), "deploy", "deployed");
    // Calls recorded for replay; then quiet, so that the rollout waits at
    // 10 % for evidence until the loop is paused.
    let recording = Traffic::start(&s, "busy", 3);
    std::thread::sleep(Duration::from_secs(2));
    drop(recording);
    upload(&s, &guests::TEST_BUSY_V2.load().unwrap(), "candidate", "candidate");
    wait_for("busy 2.0.0 at 10 %", Duration::from_secs(60), || s.canary("busy") == Some(("2.0.0".into(), 10.0)));
    assert_eq!(s.post("/api/v1/control/pause", json!({"reason": "hold at 10 %"})).status(), 200);

    // A minute paused with traffic flowing: the judge keeps looking.
    let traffic = Traffic::start(&s, "busy", 3);
    let paused = Instant::now();
    while paused.elapsed() < Duration::from_secs(60) {
        let imp = &improvements(&s, "busy")[0];
        assert_eq!(imp["state"], "canary", "ended during the pause after {:?}: {imp}", paused.elapsed());
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(s.canary("busy"), Some(("2.0.0".into(), 10.0)), "held at 10 %");
    assert_eq!(improvements(&s, "busy")[0]["reason"], "loop paused: holding at 10%");

    assert_eq!(s.post("/api/v1/control/resume", json!({"reason": "go"})).status(), 200);
    let resumed = Instant::now();
    // The rest of the 10 % step, the 50 % step and the bake.
    let rest = Duration::from_secs(2 * step_secs() + 30);
    wait_for("busy 2.0.0's rollout to end after the resume", rest, || {
        !RUNNING.contains(&improvements(&s, "busy")[0]["state"].as_str().unwrap())
    });
    let rate = traffic.per_second();
    drop(traffic);
    let imp = &improvements(&s, "busy")[0];
    println!(
        "after a 60 s pause at 10 %: {} {:.1} s after the resume ({rate:.0} calls/s): {}",
        imp["state"],
        resumed.elapsed().as_secs_f64(),
        imp["reason"]
    );
    assert_eq!(imp["state"], "promoted", "{imp}");
    assert_eq!(s.serving("busy").as_deref(), Some("2.0.0"));
}

/// Serve `busy` 1.0.0 (with `extra` config) under steady traffic, roll out
/// `candidate`, described as `what`, and check that it was rolled back and
/// 1.0.0 serves alone again. The data directory (first, so that it
/// outlives the server), the server and how the rollout ended, for the
/// caller's own checks.
fn a_regression_rolled_back(extra: &str, candidate: &[u8], what: &str) -> (tempfile::TempDir, Server, Ended) {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), extra);
    upload(&s, &guests::TEST_BUSY_V1.load().unwrap(), "deploy", "deployed");
    let traffic = Traffic::start(&s, "busy", 3);
    std::thread::sleep(Duration::from_secs(2));
    let e = roll(&s, "busy", candidate, None);
    let rate = traffic.per_second();
    drop(traffic);
    table(&format!("busy {} ({what}), {rate:.0} calls/s", e.version), std::slice::from_ref(&e));
    assert_eq!(e.state, "rolled-back", "{}", e.reason);
    assert_eq!(s.serving("busy").as_deref(), Some("1.0.0"));
    assert!(s.canary("busy").is_none(), "no split left");
    (dir, s, e)
}

#[test]
fn a_slower_candidate_is_rolled_back() {
    let (_dir, s, e) = a_regression_rolled_back("", &guests::TEST_BUSY_V3.load().unwrap(), "20 % more work");
    assert!(e.reason.to_lowercase().contains("latency"), "the reason names latency: {}", e.reason);
    let (status, version, body) = s.invoke("busy", "after");
    assert_eq!((status, version.as_str()), (200, "1.0.0"), "{body}");
}

/// A candidate slower in its slow mode alone: `busy` with one call in ten
/// (by request) doing five times the work, and 4.0.0 doing 30 % more work
/// there — its p95 and up slower, its p50 unchanged. Judged on the shift of
/// the whole distribution it would pass; the p95 guard rolls it back.
#[test]
fn a_candidate_slower_only_in_its_tail_is_rolled_back() {
    let (_dir, s, e) = a_regression_rolled_back(
        "[runtime.plugin_config.busy]\ntail_every = \"10\"\n",
        &guests::TEST_BUSY_V4.load().unwrap(),
        "30 % more work in the slow mode",
    );
    let imp = improvements(&s, "busy").into_iter().next().unwrap();
    let decided: Vec<&Value> =
        imp["verdicts"].as_array().unwrap().iter().filter(|v| v["judgement"]["verdict"] == "fail").collect();
    assert_eq!(decided.len(), 1, "one failed step: {:?}", e.verdicts);
    assert_eq!(decided[0]["judgement"]["decided_by"], "p95", "the tail decided: {:?}", e.verdicts);
}

/// A sub-millisecond unit (`busy` with a tenth of its work: calls of a few
/// hundred µs) is judged against a matched control, with no absolute floor:
/// identical candidates are promoted, since both judged arms run equally
/// seldom, and 3.0.0's 20 % more work — a few tens of µs per call, under
/// the 50 µs floor that judging against the serving version's own calls
/// needs — is rolled back. The matched control is chosen below a 5 ms
/// median here, not the default 1 ms: on a busy two-core machine these
/// calls' median reaches 1–2 ms, and whether a rollout got a control then
/// hung on the machine, not on the judge this test is about.
#[test]
fn a_sub_millisecond_unit_is_judged_against_a_matched_control() {
    let t = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        dir.path(),
        "matched_control_below_ms = 5.0\n",
        "[runtime.plugin_config.busy]\nwork = \"100000\"\n",
    );
    let s = Server::start(dir.path(), &[], &["--config", &cfg]);
    upload(&s, &guests::TEST_BUSY_V1.load().unwrap(), "deploy", "deployed");
    let traffic = Traffic::start(&s, "busy", 3);
    std::thread::sleep(Duration::from_secs(2));
    let (v1, v2) = (guests::TEST_BUSY_V1.load().unwrap(), guests::TEST_BUSY_V2.load().unwrap());
    let mut ended = identical_rounds(&s, "busy", [&v1, &v2], 6, &traffic);
    let identical = ended.len();
    let serving = s.serving("busy").unwrap();
    ended.push(roll(&s, "busy", &guests::TEST_BUSY_V3.load().unwrap(), None));
    let rate = traffic.per_second();
    drop(traffic);
    let took = t.elapsed().as_secs_f64();
    table(&format!("busy (work 100 000): 6 identical candidates, then 3.0.0; {rate:.0} calls/s, {took:.0} s"), &ended);
    let promoted = count(&ended[..identical], "promoted");
    assert!(promoted >= 5, "only {promoted} of {identical} identical candidates were promoted (see the table)");
    // The bake's verdict names its other arm, the holdback.
    let against_control = ended[..identical]
        .iter()
        .flat_map(|e| &e.verdicts)
        .all(|v| v.contains("matched-control calls") || v.contains("holdback calls"));
    assert!(against_control, "every step was judged against a matched control or the holdback (see the table)");
    let slower = &ended[identical];
    assert_eq!(slower.state, "rolled-back", "3.0.0: {}", slower.reason);
    assert!(slower.reason.contains("slower"), "the reason names the slowdown: {}", slower.reason);
    assert_eq!(s.serving("busy"), Some(serving), "the version serving before 3.0.0 serves again");
}
