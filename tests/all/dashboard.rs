//! The dashboard in a real headless Chromium (driven over WebDriver by
//! chromedriver): the page loads with the token from its URL fragment,
//! shows a unit's call count rising while calls are made, and its pause
//! button pauses the loop; and an operator's story told in screenshots
//! (`target/screenshots/dashboard-*.png`) with the page's DOM checked at
//! each step.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

use crate::kaizen_bin::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is installed; in CI it must be (.ci/run installs it).
fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the browser test: .ci/run installs chromium and chromium-driver"
    );
    eprintln!(
        "NOTICE: dashboard browser test skipped: {CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)"
    );
    false
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> (Driver, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), port)
}

/// A WebDriver session on a headless Chromium with its own profile.
async fn session(port: u16, profile: &Path) -> fantoccini::Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session")
}

async fn text(c: &fantoccini::Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Poll the page until `css`'s text satisfies `ok`.
async fn wait_text(c: &fantoccini::Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        if let Some(s) = text(c, css).await
            && ok(&s)
        {
            return s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the page never showed {what} (last: {:?})", text(c, css).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn dashboard_shows_calls_rising_and_pauses_the_loop() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let (_driver, port) = start_driver();

    // Calls made from another thread while the page is watched.
    let calling = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let (calling, stop) = (calling.clone(), stop.clone());
        let (url, token) = (s.url.clone(), s.invoke.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            while !stop.load(Ordering::Relaxed) {
                if calling.load(Ordering::Relaxed) {
                    let _ = http
                        .post(format!("{url}/api/v1/units/calculator/invoke"))
                        .bearer_auth(&token)
                        .body(r#"{"op":"add","a":1,"b":2}"#)
                        .send();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let page_url = format!("{}/dashboard#token={}", s.url, s.admin);
    rt.block_on(async {
        let c = session(port, profile.path()).await;
        c.goto(&page_url).await.unwrap();
        wait_text(&c, "#loop-state", "the loop running", |t| t == "running").await;
        assert!(
            !c.current_url().await.unwrap().as_str().contains("token="),
            "the token is taken out of the address bar"
        );

        // No calls yet: the calculator has no row or a zero count.
        let count = |t: &str| t.trim().parse::<u64>().unwrap_or(0);
        let before = text(&c, r#"tr[data-unit="calculator"] .calls-total"#).await.map_or(0, |t| count(&t));
        calling.store(true, Ordering::Relaxed);
        let first =
            wait_text(&c, r#"tr[data-unit="calculator"] .calls-total"#, "calls counted", |t| count(t) > before).await;
        let second = wait_text(&c, r#"tr[data-unit="calculator"] .calls-total"#, "the count rising", |t| {
            count(t) > count(&first)
        })
        .await;
        assert!(count(&second) > count(&first));
        calling.store(false, Ordering::Relaxed);
        // Calls an open breaker refused have a column of their own.
        let refused = text(&c, r#"tr[data-unit="calculator"] .refused"#).await;
        assert_eq!(refused.as_deref().map(str::trim), Some("0"), "a refused column, none refused");

        c.find(Locator::Css("#btn-pause")).await.unwrap().click().await.unwrap();
        wait_text(&c, "#loop-state", "the paused state", |t| t == "paused").await;

        // A candidate queued while the loop is paused says what it waits
        // for, and a click withdraws it.
        off_runtime(|| s.upload(&kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap(), "candidate"));
        let waiting = r#"#candidates tr[data-unit="calculator"][data-version="2.0.0"] .waiting"#;
        wait_text(&c, waiting, "the queued candidate and what it waits for", |t| {
            t.contains("the loop is paused: pause from the dashboard")
        })
        .await;
        c.find(Locator::Css(r#"#candidates button[data-withdraw="calculator"]"#)).await.unwrap().click().await.unwrap();
        wait_text(&c, "#candidates tbody", "the candidate withdrawn", |t| t.trim() == "none").await;
        c.close().await.unwrap();
    });
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
    let status = s.get("/api/v1/status");
    assert_eq!(status["state"], "paused", "the button paused the loop");
    assert!(status["control"]["reason"].as_str().unwrap().contains("dashboard"));
    assert_eq!(s.get("/api/v1/candidates"), serde_json::json!([]), "the click withdrew the candidate");
    let audit = s.get("/api/v1/audit?target=calculator&limit=50").to_string();
    assert!(audit.contains("candidate-withdrawn") && audit.contains("withdrawn from the dashboard"), "{audit}");
}

/// Run the blocking HTTP client's `f` on a thread of its own: it may not
/// run (nor drop its runtime) inside the test's async block.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().unwrap())
}

/// Where the story's screenshots go: `target/screenshots/` (kept by CI with
/// the rest of the target directory), or under `CARGO_TARGET_DIR` when set.
fn screenshots_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &fantoccini::Client, name: &str) -> Vec<u8> {
    let png = c.screenshot().await.expect("a screenshot");
    let path = screenshots_dir().join(format!("dashboard-{name}.png"));
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    png
}

/// Run `js` (a function body) in the page and return its value.
async fn js(c: &fantoccini::Client, js: &str) -> serde_json::Value {
    c.execute(js, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{js}"))
}

/// Poll until the script `js` returns `true`.
async fn wait_js(c: &fantoccini::Client, what: &str, script: &str) {
    let t = Instant::now();
    while js(c, script).await != serde_json::Value::Bool(true) {
        assert!(t.elapsed() < Duration::from_secs(45), "the page never showed {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every table no wider than its section, and every cell whose text is cut
/// carrying the whole of it as its title: what is wrong, as sentences.
const CLIPPED: &str = r#"
const bad = [];
if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
  bad.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px in ${document.documentElement.clientWidth}, past its right edge: ` +
    [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .slice(0, 8).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.getAttribute("class")} "${e.textContent.slice(0, 60)}"`).join(", "));
for (const t of document.querySelectorAll("table")) {
  const box = t.closest("section").getBoundingClientRect(), r = t.getBoundingClientRect();
  if (r.right > box.right + 1 || t.scrollWidth > t.clientWidth + 1) bad.push(`table ${t.id || t.rows[0]?.textContent} is wider than its section`);
  for (const c of t.querySelectorAll("td, th"))
    if (c.scrollWidth > c.clientWidth + 1 && !c.title) bad.push(`a cut cell without a title: ${c.textContent}`);
}
return bad;"#;

/// Axes of chart `id`: tick labels on the time axis, on the value axis, and
/// the value axis' unit.
const AXES: &str = r#"
const id = arguments[0], svg = document.getElementById(id);
const texts = (sel) => [...svg.querySelectorAll(sel)].map((t) => t.textContent);
return { x: texts(".axis-x text.tick"), y: texts(".axis-y text.tick"), unit: texts(".axis-y .axis-unit"),
  y2: texts(".axis-y2 text.tick"), unit2: texts(".axis-y2 .axis-unit"), lines: svg.querySelectorAll("path.line").length,
  bars: svg.querySelectorAll(".bars rect").length };"#;

async fn axes(c: &fantoccini::Client, id: &str) -> serde_json::Value {
    c.execute(AXES, vec![serde_json::json!(id)]).await.unwrap()
}

/// The operator's story in a 1 400 px wide browser, with a screenshot at
/// each step (`target/screenshots/dashboard-*.png`): a fresh page that is
/// drawn before the host answers anything, charts with time and value axes
/// filled from the host's history, a crashing unit's finding with its
/// status, severity, priority and version, acknowledged through the API;
/// the recovery log grouped with counts; a deployment and its rollback; and
/// the host stopping, which the page says.
#[test]
fn dashboard_tells_the_story_and_says_when_the_host_is_gone() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Cycles only when the test runs one, over a short window of 1 s
    // buckets; the circuit breaker left open to one in ten crashes (it
    // would stop the calls the charts are to show).
    let config = dir.path().join("kaizen.toml");
    std::fs::write(
        &config,
        "[loop]\ninterval_secs = 3600.0\nmin_interval_secs = 3600.0\nmax_interval_secs = 3600.0\n\
         window_secs = 10\nbaseline_secs = 10\n[telemetry]\nbucket_secs = 1\n\
         [runtime.plugin_config.circuit-breaker]\nfailure_rate = 0.9\n",
    )
    .unwrap();
    let mut s = Server::start(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    let (_driver, port) = start_driver();

    // Calls before the page opens (the charts must show them from history);
    // one in ten divides by zero, which crashes the seed calculator 1.0.0.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            let (url, token) = (s.url.clone(), s.invoke.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let _ = http
                        .post(format!("{url}/api/v1/units/calculator/invoke"))
                        .bearer_auth(&token)
                        .body(if n % 10 == 0 {
                            format!(r#"{{"op":"div","a":{i},"b":0}}"#)
                        } else {
                            format!(r#"{{"op":"add","a":{i},"b":{n}}}"#)
                        })
                        .send();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    crate::kaizen_bin::wait_for("calls recorded", Duration::from_secs(30), || {
        s.get("/api/v1/units").as_array().is_some_and(|u| u.iter().any(|u| u["calls_total"].as_u64() > Some(50)))
    });
    // A cycle sees the crashes: a finding on calculator 1.0.0.
    let mut finding = None;
    crate::kaizen_bin::wait_for("a finding on the calculator", Duration::from_secs(40), || {
        let f = s.get("/api/v1/findings?limit=50");
        finding = f.as_array().unwrap().iter().find(|f| f["target"] == "calculator").map(|f| f["id"].as_i64().unwrap());
        if finding.is_none() {
            s.post("/api/v1/cycles", serde_json::Value::Null);
        }
        finding.is_some()
    });
    let finding = finding.unwrap();
    // The series the charts are drawn from: the crashes counted as the
    // unit's errors, apart from what it answered.
    let h = s.get("/api/v1/history?minutes=5");
    let calc = h["units"].as_array().unwrap().iter().find(|u| u["unit"] == "calculator").expect("calculator's series");
    let sum = |k: &str| calc["points"].as_array().unwrap().iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert!(sum("unit_errors") > 0 && sum("successes") > sum("unit_errors"), "{calc}");
    assert_eq!(sum("calls"), sum("successes") + sum("caller_errors") + sum("unit_errors"));
    // Five minutes of 1 s buckets in at most 120 intervals of whole buckets,
    // one after the other, the last one holding now.
    let (points, step) = (calc["points"].as_array().unwrap(), h["step_secs"].as_f64().unwrap());
    assert!(points.len() <= 120 && step >= 1.0 && step.fract() == 0.0, "{} points of {step} s", points.len());
    let at: Vec<i64> = points.iter().map(|p| p["at"].as_i64().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[1] - w[0] == (step * 1000.0) as i64), "{at:?}");
    assert!(at[0] == h["from"].as_i64().unwrap() && *at.last().unwrap() <= h["to"].as_i64().unwrap());
    let r = s.http.get(format!("{}/api/v1/history?minutes=0", s.url)).bearer_auth(&s.admin).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("minutes must be between 1 and 360"));

    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let page_url = format!("{}/dashboard#token={}", s.url, s.admin);
    rt.block_on(async {
        let c = session(port, profile.path()).await;
        // 1 400 px wide, and tall enough for the whole page in each screenshot.
        c.set_window_size(1400, 2000).await.unwrap();
        // What an empty page of the dashboard's colour weighs as a
        // screenshot, to tell a drawn page from a blank one.
        c.goto("data:text/html,<body style='background:%230f1419'></body>").await.unwrap();
        let blank = c.screenshot().await.unwrap().len();

        // 1. A fresh page: drawn at once, before any answer from the host.
        c.goto(&page_url).await.unwrap();
        let fresh = shot(&c, "1-fresh").await;
        assert!(fresh.len() > blank * 3, "the fresh page's screenshot is as bare as a blank page ({} vs {blank} bytes)", fresh.len());
        let a = axes(&c, "chart-rate").await;
        assert!(a["x"].as_array().unwrap().len() >= 3, "time axis ticks on a fresh page: {a}");
        assert!(a["y"].as_array().unwrap().len() >= 2, "value axis ticks on a fresh page: {a}");
        assert_eq!(a["unit"], serde_json::json!(["calls/s"]));
        assert!(c.find(Locator::Css("header")).await.unwrap().is_displayed().await.unwrap());

        // 2. The history since before the page opened fills the charts, and
        // the finding shows its state, severity, priority and version.
        wait_js(&c, "the calls made before it opened", "return document.querySelectorAll('#chart-rate path.line').length > 0").await;
        let row = format!(r#"#findings tr[data-id="{finding}"]"#);
        wait_text(&c, &format!("{row} .status"), "the finding open", |t| t == "open").await;
        let heads = text(&c, "#findings thead").await.unwrap();
        for col in ["status", "severity", "priority", "version"] {
            assert!(heads.contains(col), "findings have a {col} column: {heads}");
        }
        assert_eq!(text(&c, &format!("{row} .version")).await.as_deref(), Some("1.0.0"));
        for (chart, unit) in [("chart-rate", "calls/s"), ("chart-success", "%"), ("chart-latency", "ms")] {
            let a = axes(&c, chart).await;
            assert_eq!(a["unit"], serde_json::json!([unit]), "{chart}: {a}");
            let x = a["x"].as_array().unwrap();
            assert!(x.len() >= 3 && x.iter().all(|t| t.as_str().unwrap().contains(':')), "{chart}'s time axis: {a}");
            assert!(a["lines"].as_u64() > Some(0), "{chart} draws the history: {a}");
        }
        let trust = axes(&c, "chart-trust").await;
        assert_eq!((&trust["unit"], &trust["unit2"]), (&serde_json::json!(["% kept"]), &serde_json::json!(["calls/s watched"])));
        assert!(trust["bars"].as_u64() > Some(0), "the calls the loop watched: {trust}");
        let clipped = js(&c, CLIPPED).await;
        assert_eq!(clipped, serde_json::json!([]), "at 1400 px");
        shot(&c, "2-finding").await;

        // 3. Acknowledged through the API: the page's state cell follows.
        let r = off_runtime(|| {
            s.post(&format!("/api/v1/findings/{finding}/acknowledge"), serde_json::json!({"reason": "seen, fix on its way"}))
                .status()
        });
        assert_eq!(r, 200);
        wait_text(&c, &format!("{row} .status"), "the finding acknowledged", |t| t == "acknowledged").await;

        // 4. The recovery log, grouped: fewer rows than entries, with counts.
        wait_js(&c, "a recovery group of several entries",
            "return [...document.querySelectorAll('#recovery tr.group')].some((g) => Number(g.dataset.count) > 1)").await;
        let entries = off_runtime(|| s.get("/api/v1/recovery?limit=1000").as_array().unwrap().len());
        let groups = js(&c, "return [...document.querySelectorAll('#recovery tr.group')].map((g) => Number(g.dataset.count))").await;
        let counts: Vec<u64> = groups.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert!(counts.len() < entries, "{entries} entries in {} rows: not grouped", counts.len());
        let big = js(&c, "const g = [...document.querySelectorAll('#recovery tr.group')].find((g) => Number(g.dataset.count) > 1); g.click(); return Number(g.dataset.count)").await;
        let big = big.as_u64().unwrap().min(50);
        wait_js(&c, "a group's entries", &format!("return document.querySelectorAll('#recovery tr.member').length >= {big}")).await;

        // 5. A deployment and its rollback.
        off_runtime(|| {
            s.deploy(kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap());
            let r = s.post("/api/v1/deployments/calculator/rollback", serde_json::json!({"reason": "back to 1.0.0"}));
            assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        });
        wait_js(&c, "the deployment and the rollback",
            "return !!document.querySelector('#history tr[data-action=\"deploy\"]') && !!document.querySelector('#history tr[data-action=\"rollback\"]')").await;
        let clipped = js(&c, CLIPPED).await;
        assert_eq!(clipped, serde_json::json!([]), "at 1400 px, every table full");
        shot(&c, "3-rollback").await;

        // 6. The host stops: the page says so.
        stop.store(true, Ordering::Relaxed);
        let mut child = s.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        wait_text(&c, "#conn", "the host disconnected", |t| t == "disconnected").await;
        let banner = c.find(Locator::Css("#banner")).await.unwrap();
        assert!(banner.is_displayed().await.unwrap(), "the disconnected banner shows");
        assert!(banner.text().await.unwrap().contains("does not answer"));
        shot(&c, "4-disconnected").await;
        c.close().await.unwrap();
    });
    for t in callers {
        t.join().unwrap();
    }
}

/// On a fleet's member the page lists the fleet's hosts: who leads at which
/// epoch, and each host's role; on a lone SQLite host the section stays
/// hidden (the other tests' pages).
#[test]
fn a_fleet_members_page_lists_the_hosts_and_the_leader() {
    if !browser_available() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = rt.block_on(crate::common::PgDatabase::create()) else { return };
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(da.path(), &[], &["--database-url", &db.url]);
    let b = Server::start(dbb.path(), &[], &["--database-url", &db.url]);
    let leader = a.get("/api/v1/fleet")["this_host"].as_str().unwrap().to_string();
    let (_driver, port) = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let page_url = format!("{}/dashboard#token={}", b.url, b.admin);
    rt.block_on(async {
        let c = session(port, profile.path()).await;
        c.set_window_size(1400, 1000).await.unwrap();
        c.goto(&page_url).await.unwrap();
        wait_text(&c, "#fleet-lease", "who leads", |t| t == format!("{leader} leads at epoch 1")).await;
        wait_js(
            &c,
            "both hosts with their roles",
            &format!(
                "return document.querySelectorAll('#fleet tbody tr').length === 2 \
                 && document.querySelector('#fleet tr[data-host=\"{leader}\"]')?.dataset.role === 'leader' \
                 && !!document.querySelector('#fleet tr[data-role=\"follower\"]') \
                 && !document.getElementById('fleet-section').hidden"
            ),
        )
        .await;
        let follower = text(&c, "#fleet tr[data-role=\"follower\"] td").await.unwrap();
        assert!(follower.ends_with("(this host)"), "the page's own host is marked: {follower}");
        // What each host serves, as it reported in its heartbeat.
        wait_js(
            &c,
            "each host's serving versions",
            "const cells = [...document.querySelectorAll('#fleet td.serving')].map((td) => td.textContent); \
             return cells.length === 2 && cells.every((t) => t.includes('calculator 1.0.0'))",
        )
        .await;
        js(&c, "document.getElementById('fleet-section').scrollIntoView(); return true").await;
        shot(&c, "5-fleet").await;
        c.close().await.unwrap();
    });
}

/// A page opened in the middle of a rollout shows it at once — which unit,
/// which improvement and candidate — rather than "none" until a verdict
/// happens to arrive on the event stream.
#[test]
fn a_page_opened_mid_rollout_shows_the_rollout() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The rollout holds calculator at 10 %.
    let s = crate::candidate_queue::start(dir.path(), &[]);
    s.upload(&kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap(), "candidate");
    crate::kaizen_bin::wait_for("calculator 2.0.0 at 10 %", Duration::from_secs(60), || {
        s.canary("calculator") == Some(("2.0.0".into(), 10.0))
    });
    let (_driver, port) = start_driver();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = session(port, profile.path()).await;
        c.goto(&format!("{}/dashboard#token={}", s.url, s.admin)).await.unwrap();
        let shown = wait_text(&c, "#rollout", "the rollout in flight", |t| t.contains("calculator")).await;
        assert!(shown.contains("improvement") && shown.contains("2.0.0"), "{shown}");
        c.close().await.unwrap();
    });
    let (ok, out, err) = s.cli(&["abort", "calculator"]);
    assert!(ok, "{out}{err}");
}
