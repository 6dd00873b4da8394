//! Scheduling by the hours of the day, through the real `kaizen serve` and
//! a pushed history: with no rollout window, a day-long cycle interval is
//! moved to the quiet hour; a proven candidate does not start its canary in
//! an hour that historically brings too few calls for a verdict, and says
//! when the next hour with enough starts.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::json;

use crate::kaizen_bin::{Server, wait_for, wait_for_or};

const HOUR_MS: i64 = 3_600_000;

fn start(dir: &Path, extra: &str) -> Server {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        format!(
            "[telemetry]\nhistory_days = 4\nhistory_refresh_secs = 1\n\
             [safety.limits]\nrequired_proof = [\"validation\"]\n{extra}"
        ),
    )
    .unwrap();
    Server::start(dir, &[], &["--config", &path.display().to_string()])
}

/// Stop `s` (its recorder writes every pushed record on the way out) and
/// start it again on the same data: the first cycle after the start reads
/// the whole history, as a host with history would.
fn restart(s: Server, dir: &Path, extra: &str) -> Server {
    assert!(s.stop().success());
    let s = start(dir, extra);
    wait_for("the first cycle", Duration::from_secs(60), || {
        s.get("/api/v1/status")["loop"]["cycles_completed"].as_u64() >= Some(1)
    });
    s
}

/// Push three days of `echo` calls: `busy` per hour, except `quiet` per
/// hour in the hours of day `quiet_hours`.
fn push_history(s: &Server, busy: usize, quiet: usize, quiet_hours: &[i64]) {
    let now = kaizen_host::store::now_ms();
    let this_hour = now - now.rem_euclid(HOUR_MS);
    let mut executions = Vec::new();
    for back in 1..=72 {
        let hour_start = this_hour - back * HOUR_MS;
        let n = if quiet_hours.contains(&(hour_start.rem_euclid(86_400_000) / HOUR_MS)) { quiet } else { busy };
        for i in 0..n {
            executions.push(json!({"target": "echo", "version": "1.0.0",
                "started_at": hour_start + (i as i64 * HOUR_MS / n as i64), "duration_ms": 1.0, "outcome": "ok"}));
        }
    }
    for batch in executions.chunks(5000) {
        let r = s
            .http
            .post(format!("{}/api/v1/telemetry", s.url))
            .bearer_auth(&s.invoke)
            .json(&json!({ "executions": batch }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    }
}

fn hour_of(ms: i64) -> i64 {
    ms.rem_euclid(86_400_000) / HOUR_MS
}

#[test]
fn a_day_long_interval_moves_cycles_to_the_quiet_hour() {
    let dir = tempfile::tempdir().unwrap();
    let day = "[loop]\ninterval_secs = 86400.0\nmin_interval_secs = 86400.0\nmax_interval_secs = 86400.0\n";
    let s = start(dir.path(), day);
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    let quiet = (hour_of(kaizen_host::store::now_ms()) + 7) % 24;
    push_history(&s, 30, 1, &[quiet]);
    let s = restart(s, dir.path(), day);
    wait_for("the next cycle to be moved to the quiet hour", Duration::from_secs(60), || {
        s.get("/api/v1/status")["loop"]["quiet_hour"].as_i64() == Some(quiet)
    });
    let l = &s.get("/api/v1/status")["loop"];
    let at = l["next_cycle_at"].as_i64().unwrap();
    let ahead = at - kaizen_host::store::now_ms();
    assert_eq!((hour_of(at), at.rem_euclid(HOUR_MS)), (quiet, 0), "{l}");
    assert!((11 * HOUR_MS..=36 * HOUR_MS).contains(&ahead), "within half to one and a half intervals: {l}");
    let (_, out, _) = s.cli(&["status"]);
    assert!(out.contains(&format!("moved to the quiet hour {quiet:02}:00 UTC")), "{out}");
}

#[test]
fn a_canary_waits_for_an_hour_that_brings_it_enough_calls() {
    let dir = tempfile::tempdir().unwrap();
    // A one-hour step at 50 %, and a judge needing 30 calls per arm: an
    // hour needs 60 calls for the canary to reach a verdict.
    let limits = "canary_steps = [50.0, 100.0]\nstep_timeout_secs = 3600\n[safety.limits.judge]\nmin_samples = 30\n";
    let s = start(dir.path(), limits);
    s.upload(&guests::TEST_ECHO_V1.load().unwrap(), "deploy");
    // This hour and the next are quiet (2 calls an hour), the rest busy
    // (200): the candidate waits for the hour after next, whenever in
    // this hour the test runs.
    let now_hour = hour_of(kaizen_host::store::now_ms());
    push_history(&s, 200, 2, &[now_hour, (now_hour + 1) % 24]);
    let s = restart(s, dir.path(), limits);
    let body = s.upload(&guests::TEST_ECHO_V2.load().unwrap(), "candidate");
    assert_eq!(body["result"], "candidate", "{body}");
    // On a timeout, says where the improvement stood instead (rolled out,
    // still proving, never opened) and the loop's state.
    wait_for_or(
        "the proven candidate to wait",
        Duration::from_secs(60),
        || {
            s.get("/api/v1/improvements?target=echo")
                .as_array()
                .unwrap()
                .first()
                .is_some_and(|i| i["state"] == "proposed")
        },
        || {
            let imps = s.get("/api/v1/improvements?target=echo");
            format!(": {imps}\nstatus: {}", s.get("/api/v1/status")["loop"])
        },
    );
    let imp = &s.get("/api/v1/improvements?target=echo")[0];
    let reason = imp["reason"].as_str().unwrap();
    let next = (now_hour + 2) % 24;
    assert!(
        reason.contains("historically brings")
            && reason.contains("the judge needs 30")
            && (reason.contains(&format!("({next:02}:00 UTC)"))
                || reason.contains(&format!("({:02}:00 UTC)", (next + 1) % 24))),
        "{imp}"
    );
    assert_eq!(s.canary("echo"), None, "no canary in a quiet hour");
    let status = s.get("/api/v1/status");
    assert_eq!(status["waiting"][0]["improvement"], imp["id"], "{status}");
}
