//! Self-healing calls with real strategy plugins on the call path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kaizen_host::SandboxLimits;
use kaizen_host::host::{Host, HostConfig};
use kaizen_host::invoke::{CallListener, CallRecord};
use kaizen_host::runtime::types::{CallContext, ErrorClass};
use kaizen_host::store::executions::Outcome;
use kaizen_host::store::recovery_log;
use kaizen_plugins as guests;

use crate::common::{deploy, host_with};

fn cfg(c: &mut HostConfig, plugin: &str, pairs: &[(&str, &str)]) {
    c.runtime.plugin_config.insert(plugin.into(), pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
}

fn ctx(deadline_ms: u64) -> CallContext {
    CallContext { attempt: 1, scope_pct: None, deadline_ms }
}

/// Calls are awaited, as the call path runs them.
async fn call(host: &Arc<Host>, name: &str, req: &[u8], deadline_ms: u64) -> Result<Vec<u8>, kaizen_host::CallError> {
    host.invoker.call(name, &ctx(deadline_ms), req).await.map(|a| a.output)
}

async fn log(host: &Arc<Host>, target: &str) -> Vec<recovery_log::RecoveryEntry> {
    host.invoker.healer().unwrap().flush().await;
    let mut v = recovery_log::recent(&host.db, Some(target), 100).await.unwrap();
    v.reverse();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_turns_a_flaky_dependency_into_a_success() {
    let (_dir, host) = host_with(|c| cfg(c, "backoff-retry", &[("base_ms", "20"), ("jitter_pct", "0")])).await;
    deploy(&host, &guests::TEST_FLAKY).await;
    deploy(&host, &guests::RECOVERY_BACKOFF_RETRY).await;
    let seen = Arc::new(Seen::default());
    host.invoker.listen("flaky", seen.clone());
    let started = Instant::now();
    assert_eq!(call(&host, "flaky", b"hello", 5_000).await.unwrap(), b"hello");
    assert!(started.elapsed() >= Duration::from_millis(60), "waited 20 ms then 40 ms");
    // Listeners (the judge's collector among them) see the call once, as
    // its caller got it, with its attempts.
    let calls = seen.0.lock().clone();
    assert_eq!(calls.len(), 1, "one call, not one per attempt: {calls:?}");
    let c = &calls[0];
    assert_eq!((c.outcome, c.attempts, c.recovered), (Outcome::Ok, 3, true), "{c:?}");
    assert!(c.latency_ms >= 60.0, "the call's latency is what its caller waited: {c:?}");
    let entries = log(&host, "flaky").await;
    let seen: Vec<(&str, &str, &str, i64)> =
        entries.iter().map(|e| (e.strategy.as_str(), e.action.as_str(), e.outcome.as_str(), e.attempt)).collect();
    assert_eq!(
        seen,
        vec![("backoff-retry", "retry(20ms)", "failed", 1), ("backoff-retry", "retry(40ms)", "recovered", 2)]
    );
    assert!(entries[0].added_ms >= 20.0 && entries[1].added_ms >= 40.0, "{entries:?}");
    assert!(entries.iter().all(|e| e.error_class == "dependency" && e.version == "0.1.0"));
}

/// A crash retried and crashing again is one failed call with two
/// attempts, for the listeners and for the detectors' aggregates alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_fails_on_its_retry_too_is_one_failed_call() {
    let (_dir, host) = host_with(|_| {}).await;
    deploy(&host, &guests::TEST_HOSTILE).await;
    deploy(&host, &guests::RECOVERY_CLEAR_CACHE_RETRY).await;
    let seen = Arc::new(Seen::default());
    host.invoker.listen("hostile", seen.clone());
    let from = kaizen_host::store::now_ms();
    let e = call(&host, "hostile", b"trap", 5_000).await.unwrap_err();
    assert!(matches!(e.class, ErrorClass::Trap(_)), "{e}");
    assert_eq!(log(&host, "hostile").await[0].action, "clear-cache-retry(0ms)", "it was retried");
    let calls = seen.0.lock().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].outcome, calls[0].attempts, calls[0].recovered), (Outcome::Error, 2, false));
    let counts = host.telemetry.aggregates().counts("hostile", None, from - 60_000, kaizen_host::store::now_ms() + 1);
    assert_eq!((counts.calls, counts.attempts, counts.unit_errors, counts.recovered), (1, 2, 1, 0), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reduce_scope_retry_succeeds_on_a_large_input() {
    let (_dir, host) = host_with(|_| {}).await;
    deploy(&host, &guests::TEST_SCOPED).await;
    deploy(&host, &guests::RECOVERY_REDUCE_SCOPE).await;
    let big = serde_json::to_vec(&vec![1.0; 200]).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&call(&host, "scoped", &big, 5_000).await.unwrap()).unwrap();
    assert_eq!(
        (out["sum"].as_f64(), out["items"].as_u64()),
        (Some(100.0), Some(100)),
        "half the scope was asked for and served"
    );
    let e = &log(&host, "scoped").await[0];
    assert_eq!(
        (e.error_class.as_str(), e.action.as_str(), e.outcome.as_str()),
        ("too-large", "retry-reduced-scope(50%, 0ms)", "recovered")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_always_fails_is_answered_by_its_fallback() {
    let (_dir, host) = host_with(|c| cfg(c, "fallback", &[("unit", "echo")])).await;
    deploy(&host, &guests::TEST_FAILING).await;
    deploy(&host, &guests::TEST_ECHO_V1).await;
    deploy(&host, &guests::RECOVERY_FALLBACK).await;
    assert_eq!(call(&host, "failing", b"req", 5_000).await.unwrap(), b"1.0.0:req");
    let e = &log(&host, "failing").await[0];
    assert_eq!(
        (e.strategy.as_str(), e.action.as_str(), e.outcome.as_str()),
        ("fallback", "fallback(echo)", "recovered")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_fallbacks_are_tried_best_record_first() {
    // `chatty` traps on `trap`; `echo` answers anything. Listed worst first.
    let (_dir, host) = host_with(|c| cfg(c, "fallback", &[("unit.failing", "chatty, echo")])).await;
    deploy(&host, &guests::TEST_FAILING).await;
    deploy(&host, &guests::TEST_CHATTY).await;
    deploy(&host, &guests::TEST_ECHO_V1).await;
    deploy(&host, &guests::RECOVERY_FALLBACK).await;

    // No record yet: the listed order; chatty fails, echo answers.
    assert_eq!(call(&host, "failing", b"trap", 5_000).await.unwrap(), b"1.0.0:trap");
    let first = log(&host, "failing").await;
    let tried: Vec<(&str, &str)> = first.iter().map(|e| (e.action.as_str(), e.outcome.as_str())).collect();
    assert_eq!(
        tried,
        [
            ("fallback(chatty) 1 of 2 by record (chatty 50 % of 0, echo 50 % of 0)", "failed"),
            ("fallback(echo) 2 of 2 by record (chatty 50 % of 0, echo 50 % of 0)", "recovered"),
        ]
    );
    // From then on echo's record puts it first, and chatty is not tried.
    for _ in 0..3 {
        assert_eq!(call(&host, "failing", b"trap", 5_000).await.unwrap(), b"1.0.0:trap");
    }
    let all = log(&host, "failing").await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert_eq!(all[2].action, "fallback(echo) 1 of 2 by record (echo 67 % of 1, chatty 33 % of 1)");
    assert_eq!(all[4].action, "fallback(echo) 1 of 2 by record (echo 80 % of 3, chatty 33 % of 1)");
    assert!(all[2..].iter().all(|e| e.outcome == "recovered"));
    let order = host.invoker.healer().unwrap().ordered_fallbacks("failing", &ErrorClass::Internal, &["chatty", "echo"]);
    assert_eq!(order.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(), ["echo", "chatty"]);
}

/// Every call record a listener is given.
#[derive(Default)]
struct Seen(parking_lot::Mutex<Vec<CallRecord>>);

impl CallListener for Seen {
    fn on_call(&self, r: &CallRecord) {
        self.0.lock().push(r.clone());
    }
}

struct Invocations(AtomicU64);

impl CallListener for Invocations {
    fn on_call(&self, _: &CallRecord) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_opens_fails_fast_probes_and_closes() {
    let (_dir, host) = host_with(|c| {
        c.recovery.breaker.min_calls = 4;
        c.recovery.breaker.failure_rate = 0.5;
        c.recovery.breaker.cooldown_ms = 300;
    })
    .await;
    deploy(&host, &guests::TEST_HOSTILE).await;
    let count = Arc::new(Invocations(AtomicU64::new(0)));
    host.invoker.listen("hostile", count.clone());
    for _ in 0..4 {
        let e = call(&host, "hostile", b"trap", 5_000).await.unwrap_err();
        assert!(matches!(e.class, ErrorClass::Trap(_)));
    }
    assert_eq!(count.0.load(Ordering::Relaxed), 4);
    for _ in 0..5 {
        let e = call(&host, "hostile", b"ok", 5_000).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::CircuitOpen, "{e}");
        assert!(e.message.contains("circuit of `hostile` is open"));
    }
    assert_eq!(count.0.load(Ordering::Relaxed), 4, "fail-fast calls never reach the unit");
    // The refusals are counted apart from the calls made, so that a
    // caller's error is never invisible.
    let counted = host.telemetry.calls().snapshot();
    let hostile = counted.iter().find(|c| c.unit == "hostile").expect("hostile counted");
    assert_eq!((hostile.calls, hostile.refused), (4, 5), "{hostile:?}");
    let now = kaizen_host::store::now_ms();
    let w = host.telemetry.aggregates().counts("hostile", None, now - 60_000, now + 1);
    assert_eq!((w.calls, w.unit_errors, w.refused), (4, 4, 5), "{w:?}");
    let state = host.invoker.healer().unwrap().breakers();
    assert!(matches!(state[0].1, kaizen_host::recovery::breaker::BreakerState::Open { .. }), "{state:?}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(call(&host, "hostile", b"probe", 5_000).await.unwrap(), b"probe", "half-open probe goes through");
    assert_eq!(count.0.load(Ordering::Relaxed), 5);
    assert_eq!(call(&host, "hostile", b"again", 5_000).await.unwrap(), b"again", "closed again");
    // An operator can force it open.
    host.invoker.healer().unwrap().force("hostile", kaizen_host::recovery::Force::Open { ms: 60_000 }, "operator");
    assert_eq!(call(&host, "hostile", b"x", 5_000).await.unwrap_err().class, ErrorClass::CircuitOpen);
}

/// The `circuit-breaker` strategy opens the circuit on a run of failures;
/// once it has closed again, one failure does not reopen it: the failures
/// that opened it are evidence already acted upon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_closed_again_is_not_reopened_by_the_failures_that_opened_it() {
    let (_dir, host) = host_with(|c| {
        cfg(c, "circuit-breaker", &[("min_calls", "4"), ("failure_rate", "0.5"), ("cooldown_ms", "300")]);
        // Only the strategy opens this circuit.
        c.recovery.breaker.min_calls = 20;
    })
    .await;
    deploy(&host, &guests::TEST_HOSTILE).await;
    deploy(&host, &guests::RECOVERY_CIRCUIT_BREAKER).await;
    for _ in 0..4 {
        assert!(matches!(call(&host, "hostile", b"trap", 5_000).await.unwrap_err().class, ErrorClass::Trap(_)));
    }
    let e = call(&host, "hostile", b"ok", 5_000).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::CircuitOpen, "4 of 4 failed: the strategy opened it: {e}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(call(&host, "hostile", b"probe", 5_000).await.unwrap(), b"probe", "the probe closes it");
    assert!(matches!(call(&host, "hostile", b"trap", 5_000).await.unwrap_err().class, ErrorClass::Trap(_)));
    assert_eq!(
        call(&host, "hostile", b"ok", 5_000).await.unwrap(),
        b"ok",
        "one failure after closing (1 of 2 calls) does not reopen it"
    );
    let entries = log(&host, "hostile").await;
    let opened = entries.iter().filter(|e| e.outcome == "circuit-opened").count();
    assert_eq!(opened, 1, "opened once: {entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_cuts_off_a_strategy_that_would_retry_forever() {
    let (_dir, host) = host_with(|c| {
        cfg(c, "chaos", &[("delay_ms", "20")]);
        c.recovery.max_attempts = 1_000;
    })
    .await;
    deploy(&host, &guests::TEST_FAILING).await;
    deploy(&host, &guests::TEST_CHAOS_STRATEGY).await;
    let deadline = 200;
    let started = Instant::now();
    let err = call(&host, "failing", b"x", deadline).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.class, ErrorClass::Internal);
    // Retries stop when the next delay no longer fits, and the last call gets
    // only the time left; the slack covers thread scheduling on a busy host.
    assert!(took <= Duration::from_millis(deadline + 100), "the caller waited {took:?} with a {deadline} ms deadline");
    let entries = log(&host, "failing").await;
    assert!(entries.len() >= 5, "it retried while the deadline allowed: {}", entries.len());
    assert_eq!(entries.last().unwrap().outcome, "budget-exhausted");

    // The attempt budget cuts it off too, long before any deadline.
    let (_dir2, host) = host_with(|c| {
        cfg(c, "chaos", &[("delay_ms", "1")]);
        c.recovery.max_attempts = 3;
    })
    .await;
    deploy(&host, &guests::TEST_FAILING).await;
    deploy(&host, &guests::TEST_CHAOS_STRATEGY).await;
    assert!(call(&host, "failing", b"x", 60_000).await.is_err());
    assert_eq!(log(&host, "failing").await.len(), 2, "two retries, three attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_that_traps_or_loops_is_contained_and_the_next_one_used() {
    for mode in ["trap", "loop"] {
        let (_dir, host) = host_with(|c| {
            cfg(c, "chaos", &[("mode", mode)]);
            cfg(c, "fallback", &[("unit", "echo")]);
            c.runtime
                .plugin_limits
                .insert("chaos".into(), SandboxLimits { deadline: Duration::from_millis(100), ..Default::default() });
        })
        .await;
        deploy(&host, &guests::TEST_FLAKY).await;
        deploy(&host, &guests::TEST_ECHO_V1).await;
        deploy(&host, &guests::TEST_CHAOS_STRATEGY).await;
        deploy(&host, &guests::RECOVERY_FALLBACK).await;
        // "chaos" sorts before "fallback", so it is asked first.
        assert_eq!(call(&host, "flaky", b"hi", 5_000).await.unwrap(), b"1.0.0:hi", "{mode}");
        let entries = log(&host, "flaky").await;
        assert_eq!(entries[0].strategy, "chaos");
        let expected = if mode == "trap" { "strategy-error: trap" } else { "strategy-error: timeout" };
        assert!(entries[0].outcome.starts_with(expected), "{mode}: {}", entries[0].outcome);
        assert_eq!((entries[1].strategy.as_str(), entries[1].outcome.as_str()), ("fallback", "recovered"));
    }
}

/// A strategy cannot shut a unit off for good: its circuit is opened for
/// `recovery.max_open_ms` at most, and the recovery log says it was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_opens_a_circuit_for_the_configured_maximum_at_most() {
    let (_dir, host) = host_with(|c| {
        cfg(c, "chaos", &[("mode", "open-forever")]);
        c.recovery.max_open_ms = 60_000;
    })
    .await;
    deploy(&host, &guests::TEST_FAILING).await;
    deploy(&host, &guests::TEST_CHAOS_STRATEGY).await;
    assert!(call(&host, "failing", b"x", 5_000).await.is_err());
    let entries = log(&host, "failing").await;
    assert_eq!(entries[0].outcome, "circuit-opened");
    assert!(
        entries[0].action.contains("capped at 60000ms by recovery.max_open_ms"),
        "the log says the request was cut: {}",
        entries[0].action
    );
    let h = host.invoker.healer().unwrap();
    let open = h.breakers().into_iter().find(|(t, _)| t == "failing").map(|(_, s)| s);
    match open {
        Some(kaizen_host::recovery::breaker::BreakerState::Open { remaining_ms, .. }) => {
            assert!(remaining_ms <= 60_000, "{remaining_ms}")
        }
        other => panic!("the circuit is open: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_order_follows_measured_success() {
    let (_dir, host) = host_with(|c| {
        cfg(c, "backoff-retry", &[("base_ms", "5"), ("jitter_pct", "0"), ("max_attempts", "1")]);
        cfg(c, "fallback", &[("unit", "echo")]);
        cfg(c, "flaky", &[("fail_attempts", "100")]);
    })
    .await;
    deploy(&host, &guests::TEST_FLAKY).await;
    deploy(&host, &guests::TEST_ECHO_V1).await;
    deploy(&host, &guests::RECOVERY_BACKOFF_RETRY).await;
    deploy(&host, &guests::RECOVERY_FALLBACK).await;
    let h = host.invoker.healer().unwrap().clone();
    async fn order(h: &kaizen_host::recovery::Healer) -> Vec<String> {
        let ordered = h.ordered_strategies("flaky", &ErrorClass::Dependency).await;
        ordered.into_iter().map(|(p, _)| p.name().to_string()).collect()
    }
    assert_eq!(order(&h).await, vec!["backoff-retry", "fallback"], "untried: by name");
    for _ in 0..3 {
        // First call: backoff's one retry fails, it passes, the fallback
        // answers. From then on the fallback is asked first.
        assert_eq!(call(&host, "flaky", b"x", 5_000).await.unwrap(), b"1.0.0:x");
    }
    assert_eq!(order(&h).await, vec!["fallback", "backoff-retry"], "the strategy that worked goes first");
    let rates = h.success_rates();
    assert!(rates.contains(&("flaky".into(), "dependency".into(), "fallback".into(), 3, 3)), "{rates:?}");
    assert!(rates.contains(&("flaky".into(), "dependency".into(), "backoff-retry".into(), 1, 0)), "{rates:?}");
    // Measured, and stored: a restarted host orders the same way.
    h.flush().await;
    let (host2, _) = Host::open(HostConfig { ..host_config_of(&host) }).await.unwrap();
    assert_eq!(order(host2.invoker.healer().unwrap()).await, vec!["fallback", "backoff-retry"]);
}

fn host_config_of(host: &Arc<Host>) -> HostConfig {
    let mut c = crate::common::test_host_config(host.runtime.data_dir());
    cfg(&mut c, "fallback", &[("unit", "echo")]);
    c
}
