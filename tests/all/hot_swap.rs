//! Hot swap under load: concurrent callers, hundreds of swaps and rollbacks,
//! zero failed calls, every answer from exactly one of the two versions, and
//! rollbacks that restore the exact prior bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kaizen_host::runtime::blobs::sha256_hex;
use kaizen_host::runtime::blocking::block_on;
use kaizen_plugins as guests;

use crate::common::{ctx, install, runtime};

#[test]
fn swaps_and_rollbacks_under_load_fail_no_call() {
    swaps_and_rollbacks_under_load(false);
}

#[test]
fn swaps_and_rollbacks_under_load_fail_no_call_on_warm_instances() {
    swaps_and_rollbacks_under_load(true);
}

/// Callers are tasks on a multi-threaded tokio runtime awaiting their calls,
/// as the service's handlers do, while this thread swaps and rolls back.
fn swaps_and_rollbacks_under_load(warm: bool) {
    let (_dir, rt) = runtime();
    let v1_bytes = guests::TEST_ECHO_V1.load().unwrap();
    let v2_bytes = guests::TEST_ECHO_V2.load().unwrap();
    let v1 = install(&rt, &guests::TEST_ECHO_V1);
    let v2 = rt.load("echo-v2", &v2_bytes).unwrap();
    assert_ne!(v1.id(), v2.id());
    v1.set_warm(warm);
    v2.set_warm(warm);
    let slot = rt.slot("echo").unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let (answered_v1, answered_v2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let callers: Vec<_> = (0..4)
        .map(|i| {
            let (rt, stop, calls) = (rt.clone(), stop.clone(), calls.clone());
            let (a1, a2) = (answered_v1.clone(), answered_v2.clone());
            tokio.spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let req = format!("caller{i}");
                    match rt.call_unit("echo", &ctx(), req.as_bytes()).await {
                        Ok(served) => {
                            let text = String::from_utf8(served.output).unwrap();
                            // The answer comes from the guest itself, and must
                            // agree with the version the host says served it.
                            let expected = format!("{}:{req}", served.plugin.version());
                            if text != expected {
                                failures.push(format!("mixed answer {text:?} from {}", served.plugin.version()));
                            }
                            match served.plugin.version() {
                                "1.0.0" => a1.fetch_add(1, Ordering::Relaxed),
                                "2.0.0" => a2.fetch_add(1, Ordering::Relaxed),
                                other => {
                                    failures.push(format!("unknown version {other}"));
                                    0
                                }
                            };
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                failures
            })
        })
        .collect();

    for _ in 0..100 {
        slot.swap(v2.clone()).unwrap();
        assert_eq!(slot.current().id(), v2.id());
        let rb = slot.rollback().unwrap();
        assert_eq!(rb.from.id(), v2.id());
        // The prior bytes, exactly: what serves hashes to what was loaded,
        // and the module store holds those bytes.
        assert_eq!(slot.current().id(), sha256_hex(&v1_bytes));
        assert_eq!(rt.blobs().get(slot.current().id()).unwrap(), v1_bytes);
        std::thread::yield_now();
    }
    // Make sure calls overlapped the swaps: wait for a good number of calls.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while calls.load(Ordering::Relaxed) < 400 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = callers.into_iter().flat_map(|h| tokio.block_on(h).unwrap()).collect();
    assert!(failures.is_empty(), "{} failed calls, e.g. {:?}", failures.len(), &failures[..failures.len().min(3)]);
    let total = calls.load(Ordering::Relaxed);
    assert!(total >= 400, "{total} calls");
    assert_eq!(answered_v1.load(Ordering::Relaxed) + answered_v2.load(Ordering::Relaxed), total);
}

#[test]
fn canary_split_routes_the_configured_share() {
    let (_dir, rt) = runtime();
    install(&rt, &guests::TEST_ECHO_V1);
    let v2 = rt.load("echo-v2", &guests::TEST_ECHO_V2.load().unwrap()).unwrap();
    let slot = rt.slot("echo").unwrap();
    slot.set_canary(v2.clone(), 10.0).unwrap();
    let n = 2000;
    let to_v2 = (0..n).filter(|_| slot.route().version() == "2.0.0").count();
    // Hash-spread counter: the share holds closely over any long run.
    assert!((150..=250).contains(&to_v2), "{to_v2} of {n} went to the canary");
    assert_eq!(slot.promote_canary().unwrap().id(), v2.id());
    assert_eq!(slot.current().version(), "2.0.0");
    assert_eq!(slot.history()[0].version(), "1.0.0");
}

/// A rollout's matched control: a separately loaded copy of the serving
/// version, given the canary's share, answering as that version; the rest
/// stays on the version itself. Only a control copy of the version it
/// stands beside is accepted.
#[test]
fn a_matched_control_takes_the_canarys_share_and_answers_as_the_baseline() {
    let (_dir, rt) = runtime();
    let v1 = install(&rt, &guests::TEST_ECHO_V1);
    let v2 = rt.load("echo-v2", &guests::TEST_ECHO_V2.load().unwrap()).unwrap();
    let slot = rt.slot("echo").unwrap();
    let claim = slot.claim("test rollout", &[v1.id()]).unwrap();

    let wrong = Arc::new(v2.control_copy());
    let refused = claim.split(&v1, &v2, 10.0, Some(&wrong)).unwrap_err();
    assert!(refused.to_string().contains("control copy of 1.0.0"), "{refused}");
    assert!(claim.split(&v1, &v2, 10.0, Some(&v1)).is_err(), "the serving version itself is not a control");

    let control = rt.control_of(&v1, &v2).unwrap();
    assert!(control.is_control() && control.id() == v1.id() && !Arc::ptr_eq(&control, &v1));
    claim.split(&v1, &v2, 10.0, Some(&control)).unwrap();
    let n = 4000;
    let (mut to_v2, mut to_control) = (0, 0);
    for _ in 0..n {
        let p = slot.route();
        to_v2 += usize::from(p.id() == v2.id());
        to_control += usize::from(p.is_control());
    }
    assert!((320..=480).contains(&to_v2), "{to_v2} of {n} went to the canary");
    assert!((320..=480).contains(&to_control), "{to_control} of {n} went to the control");
    assert_eq!(block_on(control.invoke(&ctx(), b"x")).unwrap(), b"1.0.0:x");

    // At 50 % the control takes the other half: nothing is left to 1.0.0.
    claim.split(&v1, &v2, 50.0, Some(&control)).unwrap();
    assert!((0..n).map(|_| slot.route()).all(|p| p.id() == v2.id() || p.is_control()));

    // A config candidate runs on the serving version's module: its control
    // shares that module too, so both judged arms are as warm.
    let settings = [("greeting".to_string(), "hi".to_string())].into_iter().collect();
    let config = rt.with_config(&v1, kaizen_host::runtime::ConfigVersion::new(settings)).unwrap();
    let twin = rt.control_of(&v1, &config).unwrap();
    assert!(twin.is_control() && twin.id() == v1.id());
    claim.split(&v1, &config, 10.0, Some(&twin)).unwrap();
    drop(claim);
}

#[test]
fn rollback_to_a_version_no_longer_in_memory_reloads_its_bytes() {
    let (_dir, rt) = runtime();
    let v1 = install(&rt, &guests::TEST_ECHO_V1);
    let v1_sha = v1.id().to_string();
    drop(v1);
    let v2 = rt.load("echo-v2", &guests::TEST_ECHO_V2.load().unwrap()).unwrap();
    rt.install(v2).unwrap();
    // Forget the in-memory history, as after a restart.
    let fresh = rt.load("echo-v2", &guests::TEST_ECHO_V2.load().unwrap()).unwrap();
    let slot = rt.slot("echo").unwrap();
    slot.restore(fresh).unwrap();
    let rb = rt.rollback_to("echo", &v1_sha).unwrap();
    assert_eq!(rb.to.id(), v1_sha);
    assert_eq!(block_on(rt.call_unit("echo", &ctx(), b"x")).unwrap().output, b"1.0.0:x");
}

#[test]
fn installing_the_same_bytes_twice_changes_nothing() {
    let (_dir, rt) = runtime();
    install(&rt, &guests::TEST_ECHO_V1);
    let again = rt.load("echo-v1", &guests::TEST_ECHO_V1.load().unwrap()).unwrap();
    assert!(matches!(rt.install(again).unwrap(), kaizen_host::runtime::Installed::Unchanged));
    assert!(rt.slot("echo").unwrap().history().is_empty());
}
