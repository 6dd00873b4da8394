//! The improvement loop end to end: real plugins, a real SQLite file, live
//! traffic from a thread, the real judge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kaizen_host::invoke::{CallListener, CallRecord};
use kaizen_host::runtime::blobs::sha256_hex;
use kaizen_host::store::{self, deployments::DeployState};
use kaizen_plugins as guests;

use crate::common::{deploy, host_with, test_host_config, traffic};

async fn deploy_detectors(host: &kaizen_host::host::Host) {
    for g in guests::BUNDLED.iter().filter(|g| g.group == "detectors") {
        deploy(host, g).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_story_v1_detected_v2_promoted_v3_rolled_back() {
    let (_dir, host) = host_with(|_| {}).await;
    deploy_detectors(&host).await;
    let v1 = deploy(&host, &guests::UNIT_CALCULATOR_V1).await;
    let traffic = traffic(&host);
    traffic.wait_for(300).await;
    host.telemetry.recorder().flush().await;

    // v2 is dropped in as a candidate; the cycle finds v1's failures.
    let v2_bytes = guests::UNIT_CALCULATOR_V2.load().unwrap();
    let v2 = host.runtime.load("calculator-v2.wasm", &v2_bytes).unwrap();
    host.improve.submit(v2.clone(), "test").await.unwrap();
    let report = host.improve.run_cycle("manual").await;
    assert!(report.skipped.is_none(), "{report:?}");
    let findings = store::findings::list(&host.db, None, 50).await.unwrap();
    assert!(
        findings.iter().any(|f| f.kind == "low-success-rate" && f.target == "calculator"),
        "{findings:?} {:?}",
        report.detector_errors
    );
    let attempt = report.attempts.iter().find(|a| a.target == "calculator").expect("an attempt on calculator");
    assert_eq!(attempt.result, "rolling out", "{attempt:?}");
    let steps: Vec<(&str, &str)> = attempt.proof.iter().map(|s| (s.step.as_str(), s.result.as_str())).collect();
    assert_eq!(
        &steps[..3],
        &[("validation", "passed"), ("synthetic", "passed"), ("replay", "passed")],
        "{:?}",
        attempt.proof
    );
    host.improve.wait_rollouts().await;

    let slot = host.runtime.slot("calculator").unwrap();
    let imp = &store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0];
    assert_eq!(slot.current().id(), v2.id(), "v2 promoted: {} {} {}", imp.state, imp.reason, imp.verdicts);
    assert_eq!(imp.state, "promoted", "{imp:?}");
    let audit: Vec<String> =
        store::audit::recent(&host.db, Some("calculator"), 100).await.unwrap().into_iter().map(|e| e.action).collect();
    for action in ["candidate", "proof", "checkpoint", "canary-step", "promoted"] {
        assert!(audit.iter().any(|a| a == action), "audit lacks {action}: {audit:?}");
    }
    let cycles = store::cycles::recent(&host.db, 5).await.unwrap();
    assert!(cycles[0].report["attempts"][0]["proof"].as_array().unwrap().len() >= 3);

    // Success rate rises: v2's window against v1's.
    traffic.wait_for(300).await;
    let now = store::now_ms();
    let agg = host.telemetry.aggregates();
    let (w1, w2) = (
        agg.window("calculator", Some("1.0.0"), 0, now + 1).unwrap(),
        agg.window("calculator", Some("2.0.0"), 0, now + 1).unwrap(),
    );
    assert!(w1.success_rate < 0.7, "v1 {}", w1.success_rate);
    assert_eq!(w2.success_rate, 1.0);
    assert!(host.improve.stats().improvements_deployed >= 1);

    // The slow v3: the judge fails it at the first canary step.
    let v3 = host.runtime.load("calculator-v3.wasm", &guests::UNIT_CALCULATOR_V3.load().unwrap()).unwrap();
    host.improve.submit(v3.clone(), "test").await.unwrap();
    let report = host.improve.run_cycle("manual").await;
    assert_eq!(report.attempts.iter().find(|a| a.target == "calculator").unwrap().result, "rolling out");
    host.improve.wait_rollouts().await;
    assert_eq!(slot.current().id(), v2.id(), "back on v2");
    assert!(slot.serving().canary.is_none());
    assert_eq!(
        sha256_hex(&host.runtime.blobs().get(slot.current().id()).unwrap()),
        sha256_hex(&v2_bytes),
        "exact bytes"
    );
    let imp = &store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0];
    assert_eq!(imp.state, "rolled-back");
    let verdict = &imp.verdicts[0]["judgement"];
    assert_eq!(verdict["verdict"], "fail");
    // Failed on a latency objective whose lower bound alone is a slowdown:
    // the candidate is shown slower than 1×. (The judge fails as soon as
    // that is shown, so against a matched control, whose calls are as few
    // as the candidate's, the bound at that moment is often 1× itself.)
    let decided = verdict["decided_by"].as_str().unwrap();
    let objective = verdict["objectives"].as_array().unwrap().iter().find(|o| o["name"] == decided).unwrap();
    assert_eq!(objective["kind"], "latency", "{verdict}");
    assert!(objective["estimate"].as_f64().unwrap() > 2.0, "{verdict}");
    assert!(objective["low"].as_f64().unwrap() >= 1.0, "{verdict}");
    assert!(verdict["reason"].as_str().unwrap().contains("slower"), "{verdict}");
    let d = store::deployments::get(&host.db, "calculator").await.unwrap().unwrap();
    assert_eq!((d.state, d.current_sha.as_str()), (DeployState::RolledBack, v2.id()));
    // What the slot would go back to next is on record too: a restart
    // restores it, and `kaizen rollback` still has 1.0.0 to go back to.
    assert_eq!(d.previous_sha.as_deref(), Some(v1.id()), "{d:?}");
    let history: Vec<String> = slot.history().iter().map(|p| p.id().to_string()).collect();
    assert_eq!(history.last(), Some(&v1.id().to_string()));
    assert_eq!(d.rollback_chain, history, "every level a rollback can go back to is on record, in its order");

    // What fixed v1's failures, as the knowledge view tells it: v2, held
    // until an operator takes it back.
    let v2_fix = |fixes: Vec<kaizen_host::r#loop::knowledge::Fix>| fixes.into_iter().find(|f| f.id == v2.id()).unwrap();
    let fixes = kaizen_host::r#loop::knowledge::fixes(&host.db, &host.runtime, Some("calculator"), None).await.unwrap();
    assert!(!v2_fix(fixes).rolled_back_since);
    host.rollback("calculator", "test", "operator takes 2.0.0 back").await.unwrap();
    assert_eq!(slot.current().id(), v1.id());
    let fixes = kaizen_host::r#loop::knowledge::fixes(&host.db, &host.runtime, Some("calculator"), None).await.unwrap();
    assert!(v2_fix(fixes).rolled_back_since, "an operator's rollback takes the fix back");
    drop(traffic);
}

/// Counts calls answered by one version.
struct CountFor(String, AtomicU64);

impl CallListener for CountFor {
    fn on_call(&self, r: &CallRecord) {
        if r.sha256 == self.0 {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_fails_replay_never_receives_live_traffic() {
    let (_dir, host) = host_with(|_| {}).await;
    deploy(&host, &guests::UNIT_CALCULATOR_V2).await;
    let traffic = traffic(&host);
    traffic.wait_for(200).await;
    host.telemetry.recorder().flush().await;

    // v1 as a "new" version: it crashes on requests v2 answers.
    let bad = host.runtime.load("calculator-v1.wasm", &guests::UNIT_CALCULATOR_V1.load().unwrap()).unwrap();
    let counter = Arc::new(CountFor(bad.id().into(), AtomicU64::new(0)));
    host.invoker.listen("calculator", counter.clone());
    host.improve.submit(bad.clone(), "test").await.unwrap();
    let report = host.improve.run_cycle("manual").await;
    let a = report.attempts.iter().find(|a| a.target == "calculator").unwrap();
    assert!(a.result.to_string().starts_with("rejected: replay failed"), "{a:?}");
    let last = a.proof.last().unwrap();
    assert_eq!((last.step.as_str(), last.result.as_str()), ("replay", "failed"));
    // 2.0.0 refuses a division by zero; 1.0.0 crashes on it.
    assert!(last.detail.starts_with("trap on "), "{}", last.detail);
    assert!(
        last.detail.contains(": 2.0.0 refused it (invalid-input), 1.0.0 failed it (trap) on 4 of 4 runs"),
        "{}",
        last.detail
    );
    host.improve.wait_rollouts().await;
    traffic.wait_for(100).await;
    assert_eq!(counter.1.load(Ordering::Relaxed), 0, "no live call reached the rejected candidate");
    assert_eq!(store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0].state, "rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_stop_freezes_a_canary_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_host_config(dir.path());
    // A judge that never decides: the canary stays at its first step.
    config.safety.limits.judge.min_samples = 1_000_000;
    config.safety.limits.judge.max_samples = 1_000_000;
    let (host, _) = kaizen_host::host::Host::open(config.clone()).await.unwrap();
    let v2 = deploy(&host, &guests::UNIT_CALCULATOR_V2).await;
    let traffic = traffic(&host);
    traffic.wait_for(100).await;
    host.telemetry.recorder().flush().await;
    let v3 = host.runtime.load("v3", &guests::UNIT_CALCULATOR_V3.load().unwrap()).unwrap();
    host.improve.submit(v3.clone(), "test").await.unwrap();
    host.improve.run_cycle("manual").await;
    let slot = host.runtime.slot("calculator").unwrap();
    while slot.serving().canary.is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    host.safety.emergency_stop("operator:test", "incident drill").await.unwrap();
    // The rollout holds at its step (it carries on once the stop is released).
    let t = std::time::Instant::now();
    while store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0].state != "frozen" {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "the rollout was not frozen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let frozen = slot.serving();
    let c = frozen.canary.as_ref().expect("split frozen in place");
    assert_eq!((c.plugin.id(), c.percent), (v3.id(), 10.0));
    assert_eq!(frozen.current.id(), v2.id());
    // Nothing further changes: a cycle is skipped, the split stays.
    let r = host.improve.run_cycle("manual").await;
    assert!(r.skipped.as_deref().unwrap_or("").contains("emergency stop"), "{r:?}");
    assert_eq!(slot.serving().canary.as_ref().unwrap().percent, 10.0);
    assert_eq!(store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0].state, "frozen");
    drop(traffic);
    host.shutdown().await.unwrap();
    drop(host);

    // Restart over the same data directory.
    let (host, restored) = kaizen_host::host::Host::open(config).await.unwrap();
    assert_eq!((restored.resumed.rollouts, restored.errors.len()), (1, 0), "{restored:?}");
    assert!(host.safety.state().stopped, "the stop survives a restart");
    let serving = host.runtime.slot("calculator").unwrap().serving();
    assert_eq!(serving.current.id(), v2.id());
    assert_eq!(
        serving.canary.as_ref().map(|c| (c.plugin.id().to_string(), c.percent)),
        Some((v3.id().to_string(), 10.0))
    );
    assert!(host.improve.run_cycle("manual").await.skipped.is_some());
}

/// A proof cut short by a restart gives its candidate back the place it
/// had — first in its unit's line, before a candidate uploaded after it —
/// and a store that refuses that write once loses nothing: the improvement
/// stays open and the next cycle writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_cut_short_by_a_restart_queues_its_candidate_first_and_a_refused_write_loses_nothing() {
    use kaizen_host::store::candidate_queue;
    use kaizen_host::store::improvements::{self, Improvement, ImprovementState};

    let dir = tempfile::tempdir().unwrap();
    let config = test_host_config(dir.path());
    let (host, _) = kaizen_host::host::Host::open(config.clone()).await.unwrap();
    deploy(&host, &guests::UNIT_CALCULATOR_V1).await;
    let v2 = host.runtime.load("v2", &guests::UNIT_CALCULATOR_V2.load().unwrap()).unwrap();
    let v3 = host.runtime.load("v3", &guests::UNIT_CALCULATOR_V3.load().unwrap()).unwrap();
    host.improve.submit(v2.clone(), "test").await.unwrap();
    host.improve.submit(v3.clone(), "test").await.unwrap();
    // The loop took 2.0.0 up (its row leaves the queue with the opening of
    // its improvement) and the host stopped while proving it.
    let now = store::now_ms();
    let proving = Improvement {
        id: 0,
        finding_id: None,
        target: "calculator".into(),
        candidate_sha: v2.id().into(),
        baseline_sha: Some(host.runtime.slot("calculator").unwrap().current().id().into()),
        source: "test".into(),
        state: ImprovementState::Proving,
        reason: String::new(),
        proof: serde_json::json!([]),
        verdicts: serde_json::json!([]),
        created_at: now,
        updated_at: now,
        prediction: None,
    };
    let id = improvements::insert(&host.db, &proving).await.unwrap();
    let shas = |rows: Vec<candidate_queue::Queued>| rows.into_iter().map(|q| q.sha256).collect::<Vec<_>>();
    assert_eq!(shas(candidate_queue::list(&host.db).await.unwrap()), vec![v3.id().to_string()]);
    // The store refuses every new queue row for now.
    let store::Db::Sqlite(pool) = &host.db else { unreachable!("the test host's store is SQLite") };
    sqlx::query(
        "CREATE TRIGGER refuse_rows BEFORE INSERT ON candidate_queue BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(pool)
    .await
    .unwrap();
    host.shutdown().await.unwrap();
    drop(host);

    // The restart cannot queue 2.0.0 again: its improvement stays open on
    // disk, said in the start's report, and 3.0.0 waits as before.
    let (host, restored) = kaizen_host::host::Host::open(config).await.unwrap();
    let resumed = &restored.resumed;
    assert!(
        resumed.errors.iter().any(|e| e.contains(&format!("improvement {id}'s candidate could not be queued again"))),
        "{restored:?}"
    );
    let still = improvements::get(&host.db, id).await.unwrap().unwrap();
    assert_eq!(still.state, ImprovementState::Proving, "nothing changed on disk: {still:?}");
    assert_eq!(shas(candidate_queue::list(&host.db).await.unwrap()), vec![v3.id().to_string()]);
    assert_eq!(host.improve.stats().candidates_queued, 1);

    // The store takes writes again: the next cycle ends the improvement,
    // queues 2.0.0 first and takes it up before 3.0.0, uploaded after it.
    let store::Db::Sqlite(pool) = &host.db else { unreachable!() };
    sqlx::query("DROP TRIGGER refuse_rows").execute(pool).await.unwrap();
    let traffic = traffic(&host);
    traffic.wait_for(200).await;
    host.telemetry.recorder().flush().await;
    let report = host.improve.run_cycle("manual").await;
    let ended = improvements::get(&host.db, id).await.unwrap().unwrap();
    assert_eq!(ended.state, ImprovementState::Aborted, "{ended:?}");
    assert!(ended.reason.starts_with("interrupted by a restart"), "{}", ended.reason);
    let attempt = report.attempts.iter().find(|a| a.target == "calculator").expect("an attempt on calculator");
    assert!(attempt.candidate.as_deref().is_some_and(|c| c.starts_with("2.0.0 ")), "{attempt:?}");
    assert_eq!(shas(candidate_queue::list(&host.db).await.unwrap()), vec![v3.id().to_string()]);
    host.improve.wait_rollouts().await;
    drop(traffic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume() {
    let (_dir, host) = host_with(|_| {}).await;
    host.safety.pause("operator:test", "maintenance").await.unwrap();
    let r = host.improve.run_cycle("manual").await;
    assert!(r.skipped.as_deref().unwrap().contains("paused: maintenance"), "{r:?}");
    host.safety.resume("operator:test", "done").await.unwrap();
    assert!(host.improve.run_cycle("manual").await.skipped.is_none());
    let audit: Vec<String> =
        store::audit::recent(&host.db, None, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(audit.contains(&"pause".to_string()) && audit.contains(&"resume".to_string()));
    assert_eq!(host.improve.stats().cycles_completed, 2);
}

/// A host serving three units — calculator, echo and hostile — whose
/// rollouts never end by themselves (no verdict without a million calls),
/// proven by validation alone (their calls are ingested telemetry or none,
/// with no requests to replay), with the loop's per-cycle and concurrent
/// limits under test.
async fn three_units_with_rollouts_held(
    improvements_per_cycle: usize,
    concurrent_rollouts: usize,
) -> (tempfile::TempDir, Arc<kaizen_host::host::Host>) {
    let (dir, host) = host_with(|c| {
        c.safety.limits.improvements_per_cycle = improvements_per_cycle;
        c.safety.limits.concurrent_rollouts = concurrent_rollouts;
        c.safety.limits.min_executions = 0;
        c.safety.limits.required_proof = vec!["validation".into()];
        c.safety.limits.judge.min_samples = 1_000_000;
        c.safety.limits.judge.max_samples = 1_000_000;
    })
    .await;
    for g in [&guests::UNIT_CALCULATOR_V1, &guests::TEST_ECHO_V1, &guests::TEST_HOSTILE] {
        deploy(&host, g).await;
    }
    (dir, host)
}

/// Queue the second version of each of `units` (of
/// [`three_units_with_rollouts_held`]), in that order.
async fn queue_second_versions(host: &kaizen_host::host::Host, units: [&str; 3]) {
    for name in units {
        let g = match name {
            "calculator" => &guests::UNIT_CALCULATOR_V2,
            "echo" => &guests::TEST_ECHO_V2,
            _ => &guests::TEST_HOSTILE_V2,
        };
        let p = host.runtime.load(name, &g.load().unwrap()).unwrap();
        host.improve.submit(p, "test").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn improvements_per_cycle_limit_is_respected() {
    let (_dir, host) = three_units_with_rollouts_held(2, 10).await;
    // Each of the three units with findings (failures ingested for the
    // version each serves: detectors look only at versions that serve) and
    // a queued candidate.
    deploy_detectors(&host).await;
    let now = store::now_ms();
    let mut execs = Vec::new();
    for target in ["calculator", "echo", "hostile"] {
        for i in 0..100 {
            let version = if target == "hostile" { "0.1.0" } else { "1.0.0" };
            execs.push(serde_json::json!({"target": target, "version": version, "started_at": now - 1000 + i, "duration_ms": 1.0,
                "outcome": if i % 2 == 0 { "error" } else { "ok" }, "error_class": if i % 4 == 0 { "internal" } else { "dependency" }}));
        }
    }
    let body = serde_json::json!({ "executions": execs }).to_string();
    host.telemetry
        .ingest(body.as_bytes(), kaizen_host::telemetry::ingest::Format::Json, &Default::default())
        .await
        .unwrap();
    queue_second_versions(&host, ["calculator", "echo", "hostile"]).await;
    let report = host.improve.run_cycle("manual").await;
    assert!(report.findings_total >= 10, "{} findings", report.findings_total);
    let started: Vec<_> = report.attempts.iter().filter(|a| a.improvement_id.is_some()).collect();
    assert_eq!(started.len(), 2, "{:?}", report.attempts);
    // The third target's finding is turned down before any candidate is
    // taken: no attempt, and the finding says which limit and why.
    let denied: Vec<_> = report
        .not_attempted
        .iter()
        .filter(|n| {
            n.reason.starts_with("denied by limit safety.limits.improvements_per_cycle")
                && n.reason.contains("already started this cycle (limit 2)")
        })
        .map(|n| n.target.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(denied.len(), 1, "the third target is denied by the limit: {:?}", report.not_attempted);
    assert_eq!(host.improve.stats().candidates_queued, 1, "its candidate stays queued");
    // The two rollouts could not finish (no verdict without a million
    // calls): aborted, they end.
    for a in &started {
        host.abort_rollout(&a.target, "test", "end of test", std::time::Duration::from_secs(30)).await.unwrap();
    }
    host.improve.wait_rollouts().await;
}

/// Candidates of different units are taken up in the order they came, and
/// the queue's listing says so before a cycle does: the second waits for
/// a later cycle (one improvement per cycle), the third for a rollout to
/// end (two at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_candidates_of_other_units_wait_for_the_cycle_and_rollout_limits() {
    let (_dir, host) = three_units_with_rollouts_held(1, 2).await;
    // Queued in another order than the units were deployed in.
    queue_second_versions(&host, ["hostile", "echo", "calculator"]).await;
    let waiting = |q: Vec<kaizen_host::r#loop::queue::QueuedCandidate>| -> Vec<(String, String)> {
        q.into_iter().map(|c| (c.target, c.waiting)).collect()
    };
    let q = waiting(host.improve.queued().await.unwrap());
    assert_eq!(q.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["hostile", "echo", "calculator"], "{q:?}");
    assert!(q[0].1.starts_with("taken up by the next cycle"), "{q:?}");
    assert!(
        q[1].1.starts_with("taken up by a later cycle: 1 candidate(s) of other units start before it")
            && q[1].1.contains("a cycle starts at most 1 (safety.limits.improvements_per_cycle)"),
        "{q:?}"
    );
    // The two before it will hold both rollout permits.
    assert!(
        q[2].1.starts_with("after a rollout ends: 2 candidate(s) of other units start before it,")
            && q[2].1.contains("at most 2 rollout(s) run at once (safety.limits.concurrent_rollouts)"),
        "{q:?}"
    );

    let first = host.improve.run_cycle("manual").await;
    let started: Vec<&str> =
        first.attempts.iter().filter(|a| a.improvement_id.is_some()).map(|a| a.target.as_str()).collect();
    assert_eq!(started, ["hostile"], "the oldest candidate is taken up first: {:?}", first.attempts);
    let q = waiting(host.improve.queued().await.unwrap());
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0].0, "echo");
    assert!(q[0].1.starts_with("taken up by the next cycle"), "{q:?}");
    assert_eq!(q[1].0, "calculator");
    assert!(
        q[1].1.starts_with(
            "after a rollout ends: 1 candidate(s) of other units start before it and 1 rollout(s) are in flight"
        ) && q[1].1.contains("at most 2 rollout(s) run at once (safety.limits.concurrent_rollouts)"),
        "{q:?}"
    );

    let second = host.improve.run_cycle("manual").await;
    let started: Vec<&str> =
        second.attempts.iter().filter(|a| a.improvement_id.is_some()).map(|a| a.target.as_str()).collect();
    assert_eq!(started, ["echo"], "{:?}", second.attempts);
    let q = waiting(host.improve.queued().await.unwrap());
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].1.starts_with("2 rollout(s) in flight (limit 2)"), "{q:?}");
    for target in ["hostile", "echo"] {
        host.abort_rollout(target, "test", "end of test", std::time::Duration::from_secs(30)).await.unwrap();
    }
    host.improve.wait_rollouts().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_command_supplies_the_candidate_and_its_failures_are_recorded() {
    let v2_path = guests::UNIT_CALCULATOR_V2.path;
    let (_dir, host) = host_with(|c| {
        // The generator reads the finding on stdin and writes a module; here
        // it "generates" the fixed calculator by copying it.
        c.improve.generator = Some(kaizen_host::r#loop::candidates::GeneratorConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!("cat > \"$KAIZEN_OUTPUT.finding.json\" && cp '{v2_path}' \"$KAIZEN_OUTPUT\""),
            ],
            timeout_secs: 30,
        });
    })
    .await;
    deploy_detectors(&host).await;
    deploy(&host, &guests::UNIT_CALCULATOR_V1).await;
    let traffic = traffic(&host);
    traffic.wait_for(300).await;
    host.telemetry.recorder().flush().await;
    let report = host.improve.run_cycle("manual").await;
    let a = report.attempts.iter().find(|a| a.target == "calculator").unwrap();
    assert_eq!(a.result, "rolling out", "{a:?}");
    assert!(a.candidate.as_deref().unwrap().starts_with("2.0.0"));
    host.improve.wait_rollouts().await;
    let imp = &store::improvements::list(&host.db, Some("calculator"), 1).await.unwrap()[0];
    assert_eq!((imp.source.as_str(), imp.state.as_str()), ("generator", "promoted"), "{imp:?}");
    drop(traffic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_generator_is_recorded_and_changes_nothing() {
    let (_dir, host) = host_with(|c| {
        c.improve.generator = Some(kaizen_host::r#loop::candidates::GeneratorConfig {
            command: vec!["sh".into(), "-c".into(), "echo 'model unavailable' >&2; exit 3".into()],
            timeout_secs: 30,
        });
    })
    .await;
    deploy_detectors(&host).await;
    let v1 = deploy(&host, &guests::UNIT_CALCULATOR_V1).await;
    let traffic = traffic(&host);
    traffic.wait_for(300).await;
    host.telemetry.recorder().flush().await;
    let report = host.improve.run_cycle("manual").await;
    let a = report.attempts.iter().find(|a| a.target == "calculator").unwrap();
    assert!(
        a.result.to_string().contains("generator failed") && a.result.to_string().contains("model unavailable"),
        "{a:?}"
    );
    let audit = store::audit::recent(&host.db, Some("calculator"), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "generator-failed"));
    assert_eq!(host.runtime.slot("calculator").unwrap().current().id(), v1.id());
    drop(traffic);
}

#[tokio::test]
async fn self_watch_pauses_the_loop_when_it_keeps_rolling_back() {
    let (_dir, host) = host_with(|_| {}).await;
    use kaizen_host::safety::Outcome;
    for o in [Outcome::Promoted, Outcome::RolledBack, Outcome::RolledBack] {
        assert_eq!(host.safety.record_outcome(o).await.unwrap(), None);
    }
    let why = host.safety.record_outcome(Outcome::RolledBack).await.unwrap().expect("paused");
    assert!(why.contains("3 of the last 4 improvements were rolled back"), "{why}");
    let state = host.safety.state();
    assert!(state.paused && state.by_whom == "safety");
    assert!(host.improve.run_cycle("manual").await.skipped.unwrap().contains("self-watch"));
}

/// A detector that returns 5 000 findings a pass made each cycle take
/// 8–12 s (one store write each). Its findings are capped per pass, the
/// excess reported as one finding about the detector, and the rest
/// written in one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_detector_is_capped_and_named() {
    let (_dir, host) = host_with(|c| c.improve.max_findings_per_detector = 50).await;
    deploy(&host, &guests::UNIT_CALCULATOR_V1).await;
    deploy(&host, &guests::TEST_FLOOD_DETECTOR).await;
    let report = host.improve.run_cycle("manual").await;
    assert_eq!(report.findings_total, 51, "50 kept and one about the detector: {report:?}");
    let findings = kaizen_host::store::findings::list(&host.db, None, 1000).await.unwrap();
    let flood = findings.iter().find(|f| f.kind == "detector-flood").expect("the flood is reported");
    assert_eq!(flood.target, "flood");
    assert!(
        flood.summary.contains("returned 5000 findings") && flood.summary.contains("first 50"),
        "{}",
        flood.summary
    );
    assert_eq!(findings.iter().filter(|f| f.kind.starts_with("flood-")).count(), 50);
    // The next pass updates the same open findings: nothing new.
    let again = host.improve.run_cycle("manual").await;
    assert_eq!((again.findings_total, again.findings_new), (51, 0));
}
