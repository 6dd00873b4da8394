//! The store on both backends: migrations apply (and re-apply as a no-op)
//! and every table round-trips through its repository.

use std::collections::BTreeMap;

use kaizen_host::store::aggregates::StoredBucket;
use kaizen_host::store::audit::AuditEvent;
use kaizen_host::store::control::ControlState;
use kaizen_host::store::cycles::CycleRecord;
use kaizen_host::store::deployments::{DeployState, Deployment};
use kaizen_host::store::executions::{Execution, Outcome};
use kaizen_host::store::findings::{FindingRecord, FindingStatus};
use kaizen_host::store::improvements::{Improvement, ImprovementState};
use kaizen_host::store::metrics::Metric;
use kaizen_host::store::modules::ModuleRecord;
use kaizen_host::store::priorities::Priority;
use kaizen_host::store::recovery_log::RecoveryEntry;
use kaizen_host::store::*;
use serde_json::json;

use crate::common::{PgDatabase, sqlite_db};

pub fn exec(target: &str, i: i64, outcome: Outcome) -> Execution {
    Execution {
        target: target.into(),
        version: "1.0.0".into(),
        started_at: 1_000 + i,
        duration_us: 100 + i,
        outcome,
        error_class: (outcome == Outcome::Error).then(|| "trap".into()),
        message: Some(format!("seq={i}")),
        request: (i % 2 == 0).then(|| rmp_serde::to_vec(&json!({"op": "add", "a": i})).unwrap()),
    }
}

async fn round_trip_every_table(db: &Db) {
    // Migrations again: a no-op.
    db.migrate().await.unwrap();

    let m = ModuleRecord {
        sha256: "ab".repeat(32),
        name: "calculator".into(),
        kind: "unit".into(),
        version: "1.0.0".into(),
        description: "calc".into(),
        size: 1234,
        path: "/data/modules/ab.wasm".into(),
        added_at: 5,
    };
    modules::put(db, &m).await.unwrap();
    modules::put(db, &m).await.unwrap(); // idempotent
    assert_eq!(modules::get(db, &m.sha256).await.unwrap(), Some(m.clone()));
    assert_eq!(modules::by_name(db, "calculator").await.unwrap(), vec![m.clone()]);
    assert_eq!(modules::all(db).await.unwrap().len(), 1);
    // A version's bytes never change: other bytes under it are refused,
    // naming both; an explicit replacement takes them and says what it
    // replaced, and from then on the replaced bytes are the ones refused.
    let other =
        ModuleRecord { sha256: "ef".repeat(32), path: "/data/modules/ef.wasm".into(), added_at: 6, ..m.clone() };
    match modules::put(db, &other).await {
        Err(StoreError::VersionTaken(t)) => {
            assert_eq!((t.existing_sha256, t.sha256), (m.sha256.clone(), other.sha256.clone()))
        }
        r => panic!("other bytes under calculator 1.0.0 were not refused: {r:?}"),
    }
    assert_eq!(modules::by_name(db, "calculator").await.unwrap(), vec![m.clone()], "nothing recorded");
    assert_eq!(modules::replace(db, &other).await.unwrap(), Some(m.clone()));
    assert_eq!(modules::replace(db, &other).await.unwrap(), None, "the same bytes again replace nothing");
    modules::put(db, &other).await.unwrap();
    assert!(matches!(modules::put(db, &m).await, Err(StoreError::VersionTaken(_))));
    assert_eq!(modules::get(db, &m.sha256).await.unwrap(), Some(m.clone()), "the replaced bytes stay findable");

    let mut d = Deployment {
        slot: "calculator".into(),
        kind: "unit".into(),
        current_sha: m.sha256.clone(),
        previous_sha: None,
        candidate_sha: Some("cd".repeat(32)),
        canary_percent: 10.0,
        control_percent: 10.0,
        holdback_percent: 5.0,
        rollback_chain: vec!["ab".repeat(32)],
        state: DeployState::Canary,
        reason: "canary step 1".into(),
        updated_at: 10,
    };
    deployments::record(db, &d, "cd", Some(&m.sha256)).await.unwrap();
    d.state = DeployState::RolledBack;
    d.candidate_sha = None;
    d.canary_percent = 0.0;
    d.rollback_chain = vec!["ef".repeat(32), "ab".repeat(32)];
    deployments::record(db, &d, "cd", None).await.unwrap();
    assert_eq!(deployments::get(db, "calculator").await.unwrap(), Some(d.clone()));
    assert_eq!(deployments::all(db).await.unwrap(), vec![d.clone()]);
    let h = deployments::history(db, "calculator", 10).await.unwrap();
    assert_eq!(h.iter().map(|e| e.state).collect::<Vec<_>>(), vec![DeployState::RolledBack, DeployState::Canary]);
    assert_eq!(h[1].from_sha.as_deref(), Some(m.sha256.as_str()));
    // Versions come from the modules table, where the module is known.
    assert_eq!((h[1].version.as_deref(), h[1].from_version.as_deref()), (None, Some("1.0.0")));

    let batch: Vec<Execution> =
        (0..2500).map(|i| exec("calculator", i, if i % 5 == 0 { Outcome::Error } else { Outcome::Ok })).collect();
    executions::insert_batch(db, &batch).await.unwrap();
    assert_eq!(executions::count(db).await.unwrap(), 2500);
    let recent = executions::recent(db, "calculator", 3).await.unwrap();
    assert_eq!(recent[0].execution, batch[2499]);
    let replay = executions::replayable(db, "calculator", 10).await.unwrap();
    assert!(replay.iter().all(|r| r.execution.request.is_some()));
    let page = executions::range(db, 1_000, 1_010, 0, 100).await.unwrap();
    assert_eq!(page.iter().map(|r| r.execution.clone()).collect::<Vec<_>>(), batch[..10].to_vec());
    // What the hourly rollups page through: row order, after a row.
    let timings = executions::durations_after(db, page[1].id, 3).await.unwrap();
    let want: Vec<(i64, i64)> = batch[2..5].iter().map(|e| (e.started_at, e.duration_us)).collect();
    assert_eq!(timings.iter().map(|t| (t.started_at, t.duration_us)).collect::<Vec<_>>(), want);
    assert!(timings.iter().all(|t| t.target == batch[2].target && t.id > page[1].id));
    assert_eq!(executions::delete_before(db, 1_000 + 500, i64::MAX).await.unwrap(), 500);
    assert_eq!(executions::count(db).await.unwrap(), 2000);
    // A live request's sample id: the newest row after a mark that kept it.
    let mark = executions::last_id(db).await.unwrap();
    let request = batch[2498].request.clone().unwrap();
    assert_eq!(executions::newest_with_request(db, "calculator", mark, &request).await.unwrap(), None, "none since");
    let kept = executions::newest_with_request(db, "calculator", 0, &request).await.unwrap();
    assert_eq!(kept, Some(recent[1].id), "the row that kept it");
    executions::insert_batch(db, &batch[2498..2499]).await.unwrap();
    assert_eq!(executions::newest_with_request(db, "calculator", mark, &request).await.unwrap(), Some(mark + 1));
    // Retention goes in row order: a straggler (written late, started
    // early) waits for the rows written before it, then goes with them.
    let mut late = exec("calculator", 0, Outcome::Ok);
    late.message = Some("straggler".into());
    executions::insert_batch(db, &[late]).await.unwrap();
    assert_eq!(executions::delete_before(db, 1_000 + 600, i64::MAX).await.unwrap(), 100);
    assert_eq!(executions::count(db).await.unwrap(), 1_902, "the straggler waits");
    // A row dated past the latest start allowed (a clock that jumped)
    // holds nothing up: the rows written after it still go when due.
    let mut ahead = exec("calculator", 0, Outcome::Ok);
    ahead.started_at = 1_000_000;
    executions::insert_batch(db, &[ahead]).await.unwrap();
    executions::insert_batch(db, &batch[..10]).await.unwrap();
    assert_eq!(executions::delete_before(db, 1_000 + 2_600, 10_000).await.unwrap(), 1_913, "all older: all go");
    assert_eq!(executions::count(db).await.unwrap(), 0);
    assert_eq!(executions::delete_before(db, 0, i64::MAX).await.unwrap(), 0, "an empty table");
    executions::insert_batch(db, &batch[..2000]).await.unwrap();

    let points = vec![Metric {
        name: "queue".into(),
        value: 3.5,
        at: 100,
        tags: BTreeMap::from([("target".into(), "calculator".into())]),
    }];
    metrics::insert_batch(db, &points).await.unwrap();
    assert_eq!(metrics::since(db, 0, 10).await.unwrap(), points);
    // A pass takes the newest points when there are more than it takes.
    let later = Metric { at: 200, value: 4.5, ..points[0].clone() };
    metrics::insert_batch(db, std::slice::from_ref(&later)).await.unwrap();
    assert_eq!(metrics::newest_since(db, 0, 1).await.unwrap(), vec![later.clone()]);
    assert_eq!(metrics::newest_since(db, 0, 10).await.unwrap(), vec![points[0].clone(), later]);

    let f = FindingRecord {
        id: 0,
        target: "calculator".into(),
        kind: "low-success-rate".into(),
        detector: "low-success-rate".into(),
        severity: "high".into(),
        confidence: 0.9,
        summary: "50% success".into(),
        evidence: vec![("success_rate".into(), "0.5".into())],
        expected_gain_pct: 50.0,
        risk: "low".into(),
        category: "reliability".into(),
        impact: 1234.5,
        priority: "high".into(),
        status: FindingStatus::Open,
        occurrences: 1,
        first_seen: 1,
        last_seen: 1,
        version: None,
        reason: String::new(),
        previous: None,
        missed: 0,
        snoozed_until: None,
        changed_at: 0,
        inaction: None,
        prediction: Some(kaizen_host::store::findings::Prediction {
            p: 0.25,
            low: 0.05,
            high: 0.6,
            successes: 1,
            failures: 3,
        }),
    };
    let (id, new) = findings::upsert_open(db, &f).await.unwrap();
    assert!(new);
    let (id2, new2) = findings::upsert_open(db, &FindingRecord { last_seen: 9, ..f.clone() }).await.unwrap();
    assert_eq!((id2, new2), (id, false), "open finding deduplicated");
    let stored = findings::get(db, id).await.unwrap().unwrap();
    assert_eq!((stored.occurrences, stored.last_seen), (2, 9));
    assert_eq!(stored.evidence, f.evidence);
    findings::set_status(db, id, FindingStatus::Resolved).await.unwrap();
    assert_eq!(findings::list(db, Some("open"), 10).await.unwrap().len(), 0);
    assert_eq!(findings::list(db, None, 10).await.unwrap()[0].status, "resolved");
    // After resolution the same finding opens a new occurrence linked to
    // the old; one about another version is another finding.
    let v1 = FindingRecord { version: Some("1.0.0".into()), last_seen: 20, ..f.clone() };
    let out = findings::upsert_open_all(db, &[f.clone(), v1.clone()], 2).await.unwrap();
    assert!(out[0].new && out[1].new, "{out:?}");
    assert_eq!((out[0].previous, out[1].previous), (Some(id), None));
    let (again, v1_id) = (out[0].id, out[1].id);
    assert_eq!(findings::get(db, v1_id).await.unwrap().unwrap().version.as_deref(), Some("1.0.0"));
    // Closed stays current (updated, not reopened) until missed twice.
    findings::set_state(db, again, FindingStatus::Closed, "closed by api: known", None).await.unwrap();
    let out = findings::upsert_open_all(db, std::slice::from_ref(&f), 2).await.unwrap();
    assert_eq!((out[0].id, out[0].new, out[0].status), (again, false, FindingStatus::Closed));
    assert_eq!(out[0].reason, "closed by api: known");
    findings::mark_missed(db, &[again, again]).await.unwrap();
    let current: Vec<i64> = findings::current(db, 2).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(current, vec![v1_id], "a closed finding missed twice is no longer current");
    let out = findings::upsert_open_all(db, std::slice::from_ref(&f), 2).await.unwrap();
    assert!(out[0].new && out[0].previous == Some(again), "{out:?}");
    // Snoozes, and the reason for no attempt.
    findings::set_state(db, v1_id, FindingStatus::Snoozed, "snoozed", Some(99)).await.unwrap();
    findings::set_inaction(db, &[(v1_id, Some("not a hosted unit (telemetry only)".into()))]).await.unwrap();
    let snoozed = findings::get(db, v1_id).await.unwrap().unwrap();
    assert_eq!((snoozed.status, snoozed.snoozed_until), (FindingStatus::Snoozed, Some(99)));
    assert_eq!(snoozed.inaction.as_deref(), Some("not a hosted unit (telemetry only)"));

    // The candidate queue: the same bytes for a target once, oldest first;
    // a candidate leaves it when an improvement for it is opened.
    let queued = |target: &str, sha: &str, at: i64| candidate_queue::Queued {
        target: target.into(),
        sha256: sha.into(),
        source: "api".into(),
        queued_at: at,
    };
    let (cd, ef) = ("cd".repeat(32), "ef".repeat(32));
    candidate_queue::enqueue(db, &queued("calculator", &cd, 1)).await.unwrap();
    candidate_queue::enqueue(db, &queued("echo", &cd, 2)).await.unwrap();
    candidate_queue::enqueue(db, &queued("calculator", &ef, 3)).await.unwrap();
    candidate_queue::enqueue(db, &queued("calculator", &cd, 4)).await.unwrap();
    assert_eq!(
        candidate_queue::list(db).await.unwrap(),
        vec![queued("calculator", &cd, 1), queued("echo", &cd, 2), queued("calculator", &ef, 3)]
    );
    candidate_queue::remove(db, "echo", &cd).await.unwrap();

    let mut imp = Improvement {
        id: 0,
        finding_id: Some(id),
        target: "calculator".into(),
        candidate_sha: "cd".repeat(32),
        baseline_sha: Some(m.sha256.clone()),
        source: "watch".into(),
        state: ImprovementState::Proving,
        reason: String::new(),
        proof: json!([{"step": "validation", "passed": true}]),
        verdicts: json!([]),
        created_at: 1,
        updated_at: 1,
        prediction: Some(kaizen_host::store::findings::Prediction {
            p: 0.5,
            low: 0.05,
            high: 0.95,
            successes: 0,
            failures: 0,
        }),
    };
    imp.id = improvements::insert(db, &imp).await.unwrap();
    assert_eq!(candidate_queue::list(db).await.unwrap(), vec![queued("calculator", &ef, 3)]);
    // Cut short, it ends and its candidate is queued again in one write, in
    // the place it had: before ef, which came after it.
    (imp.state, imp.reason) = (ImprovementState::Aborted, "interrupted by a restart".into());
    assert!(improvements::end_and_requeue(db, &imp, &queued("calculator", &cd, 10)).await.unwrap());
    assert_eq!(improvements::get(db, imp.id).await.unwrap(), Some(imp.clone()));
    // Settled now: a second try writes nothing and queues nothing twice.
    let mut late = imp.clone();
    late.reason = "a late retry".into();
    assert!(!improvements::end_and_requeue(db, &late, &queued("calculator", &cd, 11)).await.unwrap());
    assert_eq!(improvements::get(db, imp.id).await.unwrap(), Some(imp.clone()));
    assert_eq!(
        candidate_queue::list(db).await.unwrap(),
        vec![queued("calculator", &cd, 2), queued("calculator", &ef, 3)]
    );
    candidate_queue::remove(db, "calculator", &cd).await.unwrap();
    imp.state = ImprovementState::RolledBack;
    imp.verdicts = json!([{"verdict": "fail", "p_value": 0.001}]);
    improvements::update(db, &imp).await.unwrap();
    assert_eq!(improvements::get(db, imp.id).await.unwrap(), Some(imp.clone()));
    assert_eq!(improvements::list(db, Some("calculator"), 5).await.unwrap(), vec![imp]);

    for (strategy, outcome) in [("backoff-retry", "recovered"), ("backoff-retry", "failed"), ("fallback", "recovered")]
    {
        let e = RecoveryEntry {
            id: 0,
            target: "calculator".into(),
            version: "1.0.0".into(),
            error_class: "dependency".into(),
            strategy: strategy.into(),
            action: "retry(1000)".into(),
            attempt: 1,
            outcome: outcome.into(),
            added_ms: 1000.5,
            at: 3,
        };
        recovery_log::append(db, &e).await.unwrap();
    }
    assert_eq!(recovery_log::recent(db, Some("calculator"), 10).await.unwrap().len(), 3);
    assert_eq!(
        recovery_log::success_counts(db, "calculator", "dependency").await.unwrap(),
        vec![("backoff-retry".into(), 2, 1), ("fallback".into(), 1, 1)]
    );

    let p = Priority {
        plugin: "anomaly".into(),
        weight: 0.8,
        confidence: 0.4,
        reason: "2 of 5 findings led nowhere".into(),
        updated_at: 4,
    };
    priorities::upsert(db, &p).await.unwrap();
    priorities::upsert(db, &Priority { weight: 0.7, ..p.clone() }).await.unwrap();
    assert_eq!(priorities::all(db).await.unwrap(), vec![Priority { weight: 0.7, ..p }]);

    let a = AuditEvent {
        id: 0,
        at: 7,
        actor: "loop".into(),
        action: "rollback".into(),
        target: "calculator".into(),
        detail: json!({"why": "p95 +300%"}),
    };
    let aid = audit::append(db, &a).await.unwrap();
    assert_eq!(audit::recent(db, Some("calculator"), 5).await.unwrap(), vec![AuditEvent { id: aid, ..a }]);

    let c =
        CycleRecord { id: 0, kind: "scheduled".into(), started_at: 1, finished_at: 2, report: json!({"findings": 3}) };
    let cid = cycles::insert(db, &c).await.unwrap();
    assert_eq!(cycles::recent(db, 5).await.unwrap(), vec![CycleRecord { id: cid, ..c }]);

    let initial = control::get(db).await.unwrap();
    assert!(initial.enabled && !initial.paused && !initial.stopped);
    let s = ControlState {
        enabled: true,
        paused: false,
        stopped: true,
        reason: "incident 42".into(),
        by_whom: "operator:ana".into(),
        updated_at: 8,
        freeze_until: Some(1_900_000_000_000),
        freeze_reason: Some("release weekend".into()),
        state_changed_at: 7,
        pause_hold: None,
        stop_hold: Some(control::Hold { reason: "incident 42".into(), by_whom: "operator:ana".into(), at: 7 }),
        disable_hold: None,
    };
    control::set(db, &s).await.unwrap();
    assert_eq!(control::get(db).await.unwrap(), s);

    // Breaker forces: per host, replaced by a later force of the same
    // breaker, lapsed ones left out, cleared on close.
    let forced = |target: &str, until_ms: i64, reason: &str| breaker_forces::Forced {
        target: target.into(),
        until_ms,
        reason: reason.into(),
    };
    breaker_forces::set(db, "", &forced("calculator", 5_000, "maintenance"), 1_000).await.unwrap();
    breaker_forces::set(db, "", &forced("calculator", 9_000, "maintenance, longer"), 1_100).await.unwrap();
    breaker_forces::set(db, "", &forced("batcher", 1_500, "brief"), 1_200).await.unwrap();
    breaker_forces::set(db, "host-b", &forced("calculator", 9_000, "on b only"), 1_200).await.unwrap();
    let here = breaker_forces::current(db, "", 2_000).await.unwrap();
    assert_eq!(here, vec![forced("calculator", 9_000, "maintenance, longer")]);
    breaker_forces::clear(db, "", "calculator").await.unwrap();
    assert!(breaker_forces::current(db, "", 2_000).await.unwrap().is_empty());
    assert_eq!(breaker_forces::current(db, "host-b", 2_000).await.unwrap().len(), 1);
    // Two safety controllers on one store (two hosts of a fleet), each
    // with its own copy of the state: each change applies to the stored
    // state, so the second keeps the first's.
    let one = kaizen_host::safety::Safety::load(db.clone(), Default::default()).await.unwrap();
    let two = kaizen_host::safety::Safety::load(db.clone(), Default::default()).await.unwrap();
    one.release_stop("a", "all clear").await.unwrap();
    two.pause("b", "maintenance").await.unwrap();
    let stored = control::get(db).await.unwrap();
    assert!(stored.paused && !stored.stopped, "the release made elsewhere is kept: {stored:?}");
    assert_eq!(two.state(), stored, "the controller that wrote holds what it wrote");
    one.emergency_stop("a", "incident 43").await.unwrap();
    two.resume("b", "maintenance over").await.unwrap();
    let stored = control::get(db).await.unwrap();
    assert!(!stored.paused && stored.stopped, "the stop made elsewhere is kept: {stored:?}");
    // Each switch keeps its own reason: a pause under the stop shows the
    // stop's (the stop decides the state), a second pause keeps the first
    // one's, and lifting the stop shows the pause's, not the lifting's.
    let paused = two.pause("b", "deploy window").await.unwrap();
    assert_eq!((paused.reason.as_str(), paused.by_whom.as_str()), ("incident 43", "a"), "{paused:?}");
    let again = two.pause("c", "pause from the CLI").await.unwrap();
    assert_eq!(again, paused, "a pause of a paused loop changes nothing");
    let released = one.release_stop("a", "all clear").await.unwrap();
    assert!(released.paused && !released.stopped, "{released:?}");
    assert_eq!((released.reason.as_str(), released.by_whom.as_str()), ("deploy window", "b"), "{released:?}");
    assert_eq!(Some(released.state_changed_at), released.pause_hold.as_ref().map(|h| h.at), "{released:?}");
    assert_eq!(released.stop_hold, None, "a lifted switch holds nothing");
    // A freeze (which has its own reason) keeps the switches' and its time.
    let frozen = two.freeze(2_000_000_000_000, "d", "release weekend").await.unwrap();
    assert_eq!((frozen.reason.as_str(), frozen.by_whom.as_str()), ("deploy window", "b"), "{frozen:?}");
    assert_eq!(frozen.state_changed_at, released.state_changed_at, "{frozen:?}");
    // With every switch lifted, the reason is the last lifting's.
    let resumed = two.resume("b", "window over").await.unwrap();
    assert_eq!((resumed.reason.as_str(), resumed.pause_hold.as_ref()), ("window over", None), "{resumed:?}");
    assert_eq!(frozen.freeze_reason.as_deref(), Some("release weekend"), "{frozen:?}");
    control::set(db, &s).await.unwrap();

    let b = StoredBucket {
        target: "calculator".into(),
        version: "1.0.0".into(),
        bucket_start: 10_000,
        bucket: vec![1, 2, 3],
    };
    aggregates::upsert(db, "", std::slice::from_ref(&b)).await.unwrap();
    aggregates::upsert(db, "", &[StoredBucket { bucket: vec![4], ..b.clone() }]).await.unwrap();
    assert_eq!(aggregates::since(db, "", 0).await.unwrap(), vec![StoredBucket { bucket: vec![4], ..b.clone() }]);
    // Each host restores its own checkpoints; the others' are its peers'.
    aggregates::upsert(db, "b", &[StoredBucket { bucket: vec![5], ..b.clone() }]).await.unwrap();
    assert!(aggregates::since(db, "a", 0).await.unwrap().is_empty());
    assert_eq!(aggregates::since(db, "b", 0).await.unwrap(), vec![StoredBucket { bucket: vec![5], ..b.clone() }]);
    let (peers, _) = aggregates::peers_since(db, "a", 0, 0).await.unwrap();
    assert_eq!(peers, vec![("b".to_string(), StoredBucket { bucket: vec![5], ..b.clone() })]);
    assert!(aggregates::peers_since(db, "b", 0, 0).await.unwrap().0.is_empty(), "'' is no host's peer");
    assert_eq!(aggregates::delete_before(db, 20_000).await.unwrap(), 2, "every host's old buckets");

    // What /metrics counts, from the tables above: one rollback in the
    // history (the canary entry is neither a swap nor a rollback); every
    // finding occurrence recorded above, and every report of each.
    let t = kaizen_host::store::tallies::count(db).await.unwrap();
    let all = findings::list(db, None, 1000).await.unwrap();
    let reports: i64 = all.iter().map(|f| f.occurrences).sum();
    assert!(all.len() >= 2 && reports > all.len() as i64, "the findings above: {all:?}");
    assert_eq!((t.swaps, t.rollbacks, t.findings, t.finding_reports), (0, 1, all.len() as i64, reports));
}

#[tokio::test]
async fn sqlite_migrations_apply_and_every_table_round_trips() {
    let (dir, db) = sqlite_db().await;
    round_trip_every_table(&db).await;
    db.close().await;
    // Reopening an existing file applies nothing new and keeps the data.
    let db = Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
    assert_eq!(executions::count(&db).await.unwrap(), 2000);
}

#[tokio::test]
async fn postgres_migrations_apply_and_every_table_round_trips() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let db = Db::connect(&pg.url).await.unwrap();
    assert_eq!(db.backend(), "postgres");
    round_trip_every_table(&db).await;
    db.close().await;
    let db = Db::connect(&pg.url).await.unwrap();
    assert_eq!(executions::count(&db).await.unwrap(), 2000);
    db.close().await;
}

/// A follower's submission that a leader took but did not mark (it died in
/// between) is not taken again once an improvement for it was opened —
/// judged by the database's clock, whatever the leader's says: one whose
/// clock ran an hour behind does not retake it, one an hour ahead does not
/// hide a later submission of the same bytes.
#[tokio::test]
async fn a_submission_taken_but_not_marked_is_judged_by_the_databases_clock() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let db = Db::connect(&pg.url).await.unwrap();
    let Db::Postgres(pool) = &db else { unreachable!() };
    let hour = 3_600_000;
    let open = |sha: &str, host_clock: i64| Improvement {
        id: 0,
        finding_id: None,
        target: "calculator".into(),
        candidate_sha: sha.into(),
        baseline_sha: None,
        source: "api (on follower)".into(),
        state: ImprovementState::Proving,
        reason: String::new(),
        proof: json!([]),
        verdicts: json!([]),
        created_at: host_clock,
        updated_at: host_clock,
        prediction: None,
    };
    let listed = || async { fleet::submissions(pool).await.unwrap().into_iter().map(|s| s.0).collect::<Vec<_>>() };
    let (m, n) = ("aa".repeat(32), "bb".repeat(32));

    // Taken, not marked; the leader's clock an hour behind the database's.
    let first = fleet::submit(pool, &n, "api", "follower").await.unwrap();
    assert_eq!(listed().await, vec![first]);
    improvements::insert(&db, &open(&n, now_ms() - hour)).await.unwrap();
    assert_eq!(listed().await, Vec::<i64>::new(), "taken once: not taken again");

    // Taken, not marked, and the same bytes submitted again later; the
    // leader's clock an hour ahead.
    let taken = fleet::submit(pool, &m, "api", "follower").await.unwrap();
    improvements::insert(&db, &open(&m, now_ms() + hour)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let again = fleet::submit(pool, &m, "api", "follower").await.unwrap();
    assert_eq!(listed().await, vec![again], "#{taken} was taken; #{again} came after and waits");
    db.close().await;
}

#[tokio::test]
async fn bad_database_urls_are_named() {
    let err = Db::connect("mysql://x").await.unwrap_err();
    assert!(err.to_string().contains("mysql://x"), "{err}");
}
