//! Notifications reach a real HTTP receiver on loopback; a receiver that is
//! down is retried with backoff, recorded as failed, and slows nothing.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::kaizen_bin::{Server, wait_for};

/// A receiver on loopback that records every JSON body POSTed to it.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                    let keep = keep.clone();
                    async move {
                        keep.lock().push(v);
                        "ok"
                    }
                }),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (format!("http://{addr}/hook"), got)
}

#[test]
fn webhooks_deliver_and_a_dead_receiver_is_retried_then_recorded() {
    let (up, got) = receiver();
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kaizen.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nurl = \"{up}\"\nevents = [\"emergency-stop\", \"rollback\", \"promotion\"]\n\n\
             [[webhooks]]\nurl = \"{down}\"\nmax_attempts = 3\nbackoff_ms = 1000\ntimeout_ms = 500\n"
        ),
    )
    .unwrap();
    let s =
        Server::start(dir.path(), &[("KAIZEN_WATCH__DEPLOY_UNITS", "true")], &["--config", config.to_str().unwrap()]);

    assert_eq!(s.post("/api/v1/control/stop", serde_json::json!({"reason": "webhook test"})).status(), 200);
    assert_eq!(s.post("/api/v1/control/release", serde_json::json!({})).status(), 200);
    s.deploy(kaizen_plugins::UNIT_CALCULATOR_V2.load().unwrap());
    assert_eq!(s.post("/api/v1/deployments/calculator/rollback", serde_json::json!({"reason": "hook"})).status(), 200);
    // The dead receiver's retries take at least 1 + 2 s per event: had the
    // API waited on delivery, they would be settled by now.
    let d = s.get("/api/v1/webhooks/deliveries");
    let last_down = d.as_array().unwrap().iter().find(|x| x["url"] == down.as_str()).cloned();
    assert!(
        last_down.as_ref().is_none_or(|x| x["status"] == "pending"),
        "the API waited for a dead receiver: {last_down:?}"
    );

    wait_for("both notifications at the live receiver", Duration::from_secs(30), || got.lock().len() >= 2);
    let events: Vec<String> = got.lock().iter().map(|v| v["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(events, ["emergency-stop", "rollback"], "only the subscribed events, in order");
    let rb = got.lock()[1].clone();
    assert_eq!(rb["target"], "calculator");
    assert_eq!((rb["detail"]["from"].as_str(), rb["detail"]["to"].as_str()), (Some("2.0.0"), Some("1.0.0")));

    wait_for("the dead receiver's deliveries to be given up", Duration::from_secs(60), || {
        let d = s.get("/api/v1/webhooks/deliveries");
        d.as_array().unwrap().iter().filter(|x| x["url"] == down.as_str() && x["status"] == "failed").count() >= 2
    });
    let d = s.get("/api/v1/webhooks/deliveries");
    for x in d.as_array().unwrap() {
        if x["url"] == down.as_str() {
            assert_eq!(x["attempts"], 3, "{x}");
            assert!(x["last_error"].as_str().unwrap().contains("cannot reach"), "{x}");
        } else {
            assert_eq!(x["status"], "delivered", "{x}");
        }
    }
    assert!(s.stop().success());
}

/// A receiver that takes the connection but never answers is recorded as
/// timed out — saying so, not as a failure to send.
#[test]
fn a_receiver_that_never_answers_is_recorded_as_timed_out() {
    // Bound but never accepted: the kernel completes the handshake, the
    // request is sent, and no answer ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kaizen.toml");
    std::fs::write(
        &config,
        format!("[[webhooks]]\nurl = \"{url}\"\nevents = [\"emergency-stop\"]\nmax_attempts = 1\ntimeout_ms = 300\n"),
    )
    .unwrap();
    let s = Server::start(dir.path(), &[], &["--config", config.to_str().unwrap()]);
    assert_eq!(s.post("/api/v1/control/stop", serde_json::json!({"reason": "timeout test"})).status(), 200);
    wait_for("the delivery to be given up", Duration::from_secs(30), || {
        s.get("/api/v1/webhooks/deliveries").as_array().unwrap().iter().any(|x| x["status"] == "failed")
    });
    let d = s.get("/api/v1/webhooks/deliveries");
    let x = &d.as_array().unwrap()[0];
    assert_eq!(
        x["last_error"].as_str(),
        Some("receiver did not answer within 300 ms (timeout_ms)"),
        "the record says it timed out: {x}"
    );
    drop(silent);
    assert!(s.stop().success());
}
