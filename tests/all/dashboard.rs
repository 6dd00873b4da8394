//! The dashboard in a real headless Chromium (driven over WebDriver by
//! chromedriver): the page loads with the token from its URL fragment,
//! shows a unit's call count rising while calls are made, and its pause
//! button pauses the loop.

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
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
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

        c.find(Locator::Css("#btn-pause")).await.unwrap().click().await.unwrap();
        wait_text(&c, "#loop-state", "the paused state", |t| t == "paused").await;
        c.close().await.unwrap();
    });
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
    let status = s.get("/api/v1/status");
    assert_eq!(status["state"], "paused", "the button paused the loop");
    assert!(status["control"]["reason"].as_str().unwrap().contains("dashboard"));
}
