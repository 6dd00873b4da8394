//! Guests on the async runtime: a call is a future on the worker that awaits
//! it. A guest asleep in WASI is cut at its deadline in wall-clock time (and
//! so is a graceful shutdown waiting for it); a spinning guest yields every
//! epoch slice, so the other calls on its worker go on meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kaizen_host::runtime::types::ErrorClass;
use kaizen_host::{Runtime, SandboxLimits};
use kaizen_plugins as guests;

use crate::common::{ctx, install, runtime_with};
use crate::kaizen_bin::Server;

/// What the hostile unit is asked to sleep: far past any deadline here.
const SLEEP_MS: u64 = 8_000;

fn hostile_with_deadline(deadline: Duration) -> (tempfile::TempDir, Arc<Runtime>) {
    runtime_with(|c| {
        c.plugin_limits.insert("hostile".into(), SandboxLimits { deadline, ..Default::default() });
    })
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Today's complaint, reversed: a unit sleeping 8 s under a 500 ms deadline
/// answered after 8 s; it now gets its `timeout` at the deadline, and its
/// instance (warm or fresh) is never entered again.
fn asleep_past_the_deadline(warm: bool) {
    let (_dir, rt) = hostile_with_deadline(Duration::from_millis(500));
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    hostile.set_warm(warm);
    let tokio = multi_thread();
    if warm {
        assert_eq!(tokio.block_on(hostile.invoke(&ctx(), b"hi")).unwrap(), b"hi");
        assert_eq!(hostile.warm_count(), 1);
    }
    let request = format!("sleep:{SLEEP_MS}");
    let started = Instant::now();
    let err = tokio.block_on(hostile.invoke(&ctx(), request.as_bytes())).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    assert!(err.message.contains("500 ms"), "{err}");
    assert!(took >= Duration::from_millis(500), "cut before its deadline: {took:?}");
    assert!(took < Duration::from_millis(SLEEP_MS / 2), "answered when the guest woke, not at its deadline: {took:?}");
    // The instance cut mid-sleep was dropped, not kept for the next call.
    assert_eq!(hostile.warm_count(), 0);
    assert_eq!(tokio.block_on(hostile.invoke(&ctx(), b"after")).unwrap(), b"after");
    // And a sleep within the deadline still answers.
    assert_eq!(tokio.block_on(hostile.invoke(&ctx(), b"sleep:20")).unwrap(), b"slept");
}

#[test]
fn a_guest_asleep_past_its_deadline_times_out_at_the_deadline() {
    asleep_past_the_deadline(false);
}

#[test]
fn a_warm_guest_asleep_past_its_deadline_times_out_and_is_dropped() {
    asleep_past_the_deadline(true);
}

/// On a current-thread runtime every call shares the one worker. A guest
/// spinning on a warm instance yields every slice, so calls of another unit
/// are answered while it spins, each waiting about a slice, not its 2 s.
#[test]
fn a_spinning_guest_does_not_hold_up_other_calls_on_its_worker() {
    let spin_deadline = Duration::from_secs(2);
    let (_dir, rt) = hostile_with_deadline(spin_deadline);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    install(&rt, &guests::TEST_ECHO_V1);
    hostile.set_warm(true);
    let one_worker = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    one_worker.block_on(async {
        assert_eq!(hostile.invoke(&ctx(), b"warm up").await.unwrap(), b"warm up");
        assert_eq!(hostile.warm_count(), 1);
        let spinning = {
            let hostile = hostile.clone();
            tokio::spawn(async move { hostile.invoke(&ctx(), b"loop").await })
        };
        // The spinner has taken the warm instance once it runs.
        while hostile.warm_count() == 1 {
            tokio::task::yield_now().await;
        }
        let mut longest = Duration::ZERO;
        for i in 0..20 {
            let t = Instant::now();
            let req = format!("call {i}");
            let served = rt.call_unit("echo", &ctx(), req.as_bytes()).await.unwrap();
            assert_eq!(served.output, format!("1.0.0:{req}").into_bytes());
            longest = longest.max(t.elapsed());
        }
        assert!(!spinning.is_finished(), "the other calls were answered while the guest still spun");
        // A guest that never yielded would hold each call for its whole
        // deadline; one that yields every slice holds it about a slice.
        assert!(longest < spin_deadline / 8, "a call waited {longest:?} behind the spinning guest");
        let err = spinning.await.unwrap().unwrap_err();
        assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    });
    assert_eq!(hostile.warm_count(), 0, "the instance cut at its deadline is not kept");
}

/// The real binary: SIGTERM while a call sleeps past its deadline. The
/// caller gets its 504 at the deadline, and the graceful shutdown, which
/// waits for in-flight calls, ends soon after instead of when the guest
/// would have woken.
#[test]
fn sigterm_during_a_call_asleep_past_its_deadline_exits_at_the_deadline() {
    const DEADLINE_MS: u64 = 1_000;
    const SLEEP_MS: u64 = 30_000;
    // What shutdown may take beyond the deadline: the server's own steps
    // (stop the loop, flush telemetry), with room for a loaded machine.
    const GRACE: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let deadline = DEADLINE_MS.to_string();
    let s = Server::start(dir.path(), &[("KAIZEN_RUNTIME__PLUGIN_LIMITS__HOSTILE__DEADLINE", &deadline)], &[]);
    s.deploy(guests::TEST_HOSTILE.load().unwrap());

    let (url, token, http) = (s.url.clone(), s.invoke.clone(), s.http.clone());
    let call = std::thread::spawn(move || {
        let t = Instant::now();
        let r = http
            .post(format!("{url}/api/v1/units/hostile/invoke"))
            .bearer_auth(token)
            .header("x-kaizen-deadline-ms", DEADLINE_MS.to_string())
            .body(format!("sleep:{SLEEP_MS}"))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap(), t.elapsed())
    });
    // Let the call reach the guest, then ask the server to stop.
    std::thread::sleep(Duration::from_millis(300));
    let sigterm = Instant::now();
    let exit = s.stop();
    let stopping = sigterm.elapsed();
    let (status, body, answered_after) = call.join().unwrap();

    assert!(exit.success(), "kaizen serve exited with {exit}");
    assert_eq!(status, 504, "the caller gets its timeout: {body}");
    assert!(body.contains("timeout"), "{body}");
    assert!(answered_after < Duration::from_millis(SLEEP_MS / 2), "answered when the guest woke: {answered_after:?}");
    let bound = Duration::from_millis(DEADLINE_MS) + GRACE;
    assert!(stopping < bound, "shutdown took {stopping:?}, more than the deadline plus {GRACE:?}");
}
