//! The loop making its own candidates, through the real `kaizen serve`: a
//! latency finding on the batcher unit leads the bundled tuner to propose
//! configs, each proven, canaried and judged, with nobody supplying a
//! candidate; an improver that traps, spins or proposes what the unit does
//! not allow is contained and audited, and the loop goes on without it.

use std::path::Path;
use std::time::Duration;

use kaizen_plugins as guests;
use serde_json::Value;

use crate::kaizen_bin::{Calls, Server, wait_for};

/// A fast loop, the product's judge, every request kept for replay, and a
/// p95 budget no unit meets (so the latency finding stands). The
/// self-watch keeps its default rollback limit: improvers' trials the judge
/// rolls back are exploration and must not pause the loop.
fn start(dir: &Path, extra: &str) -> Server {
    start_with(dir, "", extra)
}

/// [`start`] with `loop_keys` added to the `[loop]` table.
fn start_with(dir: &Path, loop_keys: &str, extra: &str) -> Server {
    let path = dir.join("kaizen.toml");
    std::fs::write(
        &path,
        format!(
            "[loop]\ninterval_secs = 1.0\nmin_interval_secs = 1.0\nmax_interval_secs = 2.0\n\
             window_secs = 5\nbaseline_secs = 10\n{loop_keys}\n\
             [telemetry]\nsample_requests_every = 1\n\
             [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\ncanary_steps = [10.0, 50.0, 100.0]\n\
             step_timeout_secs = 60\nbake_secs = 3\nholdback_percent = 10.0\nmin_executions = 20\n\
             [safety.limits.judge]\nmin_samples = 20\n\
             [safety.self_watch]\nmax_failure_rate = 1.0\n\
             [runtime.plugin_config.latency-budget]\nbatcher = 0.001\nknobbed = 0.0001\n{extra}"
        ),
    )
    .unwrap();
    Server::start(dir, &[], &["--config", path.to_str().unwrap()])
}

fn audit(s: &Server, target: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/audit?target={target}&limit=500")).as_array().unwrap().clone()
}

#[test]
fn a_latency_finding_leads_the_tuner_to_configs_proven_canaried_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    s.deploy(guests::UNIT_BATCHER.load().unwrap());
    let _traffic = Calls::start(&s, "batcher", |n| format!("{{\"seed\": {}}}", n % 500));
    let mut promoted = Value::Null;
    wait_for("a config the tuner proposed to be promoted", Duration::from_secs(300), || {
        let all = s.get("/api/v1/improvements?target=batcher&limit=100");
        promoted = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["source"] == "improver tuner" && i["state"] == "promoted")
            .cloned()
            .unwrap_or(Value::Null);
        !promoted.is_null()
    });
    // Nobody supplied a candidate: every improvement came from an improver
    // (the tuner; the fix library once a fix is known), each a config of the
    // module that serves, each through proof and the judge's canary steps.
    let all = s.get("/api/v1/improvements?target=batcher&limit=100");
    let all = all.as_array().unwrap();
    assert!(
        all.iter().all(|i| ["improver tuner", "improver fix-library"].contains(&i["source"].as_str().unwrap())),
        "{all:#?}"
    );
    assert!(promoted["finding_id"].as_i64().is_some(), "{promoted}");
    assert!(promoted["verdicts"].as_array().is_some_and(|v| !v.is_empty()), "{promoted}");
    let serving = s.serving("batcher").unwrap();
    assert!(serving.starts_with("1.0.0+config."), "{serving}");
    // The history names the config version as the runtime does, not by its
    // module's sha alone (the same on both sides of a change of config).
    let (ok, out, err) = s.cli(&["history", "batcher"]);
    assert!(ok && out.contains(&format!("{serving} (")), "{out}{err}");
    // The audit says what was proposed and why.
    let proposals: Vec<Value> = audit(&s, "batcher")
        .into_iter()
        .filter(|e| e["action"] == "proposal" && e["detail"]["improver"] == "tuner")
        .collect();
    assert!(!proposals.is_empty());
    let p = &proposals[0]["detail"];
    assert!(p["change"].as_str().unwrap().contains("chunk_size="), "{p}");
    assert!(p["rationale"].as_str().unwrap().starts_with("p95-ms for batcher (latency-over-budget)"), "{p}");

    // What fixed what, as the knowledge view tells it.
    let fixes = s.get("/api/v1/knowledge?target=batcher&kind=latency-over-budget");
    let fix = fixes.as_array().unwrap().iter().find(|f| f["id"] == promoted["candidate_sha"]).expect("the fix").clone();
    assert!(fix["change"].as_str().unwrap().starts_with("config cache_entries="), "{fix}");
    assert!(fix["promoted"].as_u64() >= Some(1) && !fix["rolled_back_since"].as_bool().unwrap(), "{fix}");
    assert!(fix["measured"].as_array().unwrap().iter().any(|m| m["metric"] == "p95-ms"), "{fix}");
    let (ok, out, err) = s.cli(&["knowledge", "batcher"]);
    assert!(ok && out.contains("latency-over-budget") && out.contains("improver tuner"), "{out}{err}");

    // The operator puts the plain module back (its defaults): the finding
    // recurs, and the fix library — asked before the tuner — brings back a
    // config that fixed it, with the judge's measurement as its evidence.
    let newest = |all: &Value| all.as_array().unwrap().iter().filter_map(|i| i["id"].as_i64()).max().unwrap_or(0);
    let before = newest(&s.get("/api/v1/improvements?target=batcher&limit=200"));
    s.deploy(guests::UNIT_BATCHER.load().unwrap());
    assert_eq!(s.serving("batcher").as_deref(), Some("1.0.0"));
    let mut again: Value;
    let waited = std::time::Instant::now();
    loop {
        let all = s.get("/api/v1/improvements?target=batcher&limit=200");
        again = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["source"] == "improver fix-library" && i["id"].as_i64() > Some(before))
            .cloned()
            .unwrap_or(Value::Null);
        if !again.is_null() {
            break;
        }
        // On a timeout, say what the loop did instead: CI's log shows only
        // this message.
        if waited.elapsed() > Duration::from_secs(180) {
            let since: Vec<String> = all
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["id"].as_i64() > Some(before))
                .map(|i| format!("{} {} {}: {}", i["id"], i["source"], i["state"], i["reason"]))
                .collect();
            let findings = s.get("/api/v1/findings?limit=20");
            let cycle = s.get("/api/v1/cycles?limit=1");
            panic!(
                "timed out after 180s waiting for the fix library to bring a known fix back\n\
                 improvements since: {since:#?}\nknowledge: {:#}\nfindings: {findings:#}\nlast cycle: {cycle:#}",
                s.get("/api/v1/knowledge?target=batcher")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let fixes = s.get("/api/v1/knowledge?target=batcher&kind=latency-over-budget");
    assert!(
        fixes.as_array().unwrap().iter().any(|f| f["id"] == again["candidate_sha"]),
        "{again} is not among the known fixes {fixes:#}"
    );
    let proposal = audit(&s, "batcher")
        .into_iter()
        .find(|e| e["action"] == "proposal" && e["detail"]["improver"] == "fix-library")
        .expect("the fix library's proposal is audited");
    let rationale = proposal["detail"]["rationale"].as_str().unwrap();
    assert!(rationale.contains("fixed it before") && rationale.contains("p95-ms"), "{rationale}");

    // The operator aborts that rollout: the loop does not propose the same
    // change again at once (as it would not after the judge rolled it back).
    let id = again["id"].as_i64().unwrap();
    wait_for("the known fix's canary", Duration::from_secs(120), || {
        let all = s.get("/api/v1/improvements?target=batcher&limit=200");
        let state = all.as_array().unwrap().iter().find(|i| i["id"].as_i64() == Some(id)).unwrap()["state"].clone();
        assert!(["proving", "waiting", "canary"].contains(&state.as_str().unwrap()), "{state}");
        state == "canary"
    });
    let (ok, out, err) = s.cli(&["abort", "batcher", "--reason", "keep the module's own values"]);
    assert!(ok && out.contains("aborted"), "{out}{err}");
    wait_for("the fix library's proposal of it again to be refused", Duration::from_secs(120), || {
        audit(&s, "batcher").iter().any(|e| {
            e["action"] == "proposal-refused"
                && e["detail"]["improver"] == "fix-library"
                && e["detail"]["reason"].as_str().unwrap().contains("was aborted by an operator")
        })
    });
    let retried: Vec<Value> = s
        .get("/api/v1/improvements?target=batcher&limit=200")
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"].as_i64() > Some(id) && i["candidate_sha"] == again["candidate_sha"])
        .cloned()
        .collect();
    assert!(retried.is_empty(), "{retried:#?}");
}

/// `nudge` misbehaving as `mode` says, under a short deadline; the bundled
/// tuner (asked after it, in name order) still proposes.
fn misbehaving(mode: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[runtime.plugin_config.nudge]\nmode = \"{mode}\"\n\
         [runtime.plugin_limits.nudge]\ndeadline = 300\n"
    );
    let s = start(dir.path(), &extra);
    s.deploy(guests::TEST_NUDGE_IMPROVER.load().unwrap());
    s.deploy(guests::TEST_KNOBBED.load().unwrap());
    let _traffic = Calls::start(&s, "knobbed", |n| format!("call {n}"));
    wait_for("the tuner's proposal after nudge's", Duration::from_secs(120), || {
        audit(&s, "knobbed").iter().any(|e| e["action"] == "proposal" && e["detail"]["improver"] == "tuner")
    });
    assert_eq!(s.http.get(format!("{}/healthz", s.url)).send().unwrap().status(), 200, "the host still serves");
    audit(&s, "knobbed").into_iter().filter(|e| e["actor"] == "nudge").collect()
}

#[test]
fn an_improver_that_traps_spins_or_oversteps_is_contained_and_audited() {
    let trapped = misbehaving("trap");
    assert!(
        trapped.iter().any(|e| e["action"] == "improver-failed"
            && e["detail"]["error"].as_str().unwrap().contains("nudge was told to trap")),
        "{trapped:#?}"
    );
    let spun = misbehaving("spin");
    assert!(
        spun.iter().any(|e| e["action"] == "improver-failed"
            && e["detail"]["error"].as_str().unwrap().contains("deadline of 300 ms exceeded")),
        "{spun:#?}"
    );
    let overstepped = misbehaving("out-of-bounds");
    let refused: Vec<&str> = overstepped
        .iter()
        .filter(|e| e["action"] == "proposal-refused")
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert!(refused.iter().any(|r| r.contains("above the maximum")), "{overstepped:#?}");
    let unknown = misbehaving("unknown-module");
    assert!(
        unknown.iter().any(|e| e["action"] == "proposal-refused"
            && e["detail"]["reason"].as_str().unwrap().contains("is not one `knobbed` keeps")),
        "{unknown:#?}"
    );
}

/// The fix library as the host runs it (the real component, in the
/// sandbox): given a target whose trial history shows a config promoted
/// after a `latency-over-budget` finding, a recurrence of that kind gets
/// that config proposed again, with the judge's measurement as evidence;
/// another kind gets nothing.
#[test]
fn the_fix_library_re_proposes_a_known_fix_when_its_finding_recurs() {
    use kaizen_host::runtime::blocking::block_on;
    use kaizen_host::runtime::types::{
        Category, Change, Effect, Finding, ImprovementInput, Risk, Setting, Severity, Trial, TunableValue, Verdict,
    };

    let (_dir, rt) = crate::common::runtime();
    let library = crate::common::install(&rt, &guests::IMPROVER_FIX_LIBRARY);
    let fix = Change::Config(vec![Setting { name: "chunk_size".into(), value: TunableValue::Integer(64) }]);
    let trial = |change: Change, kind: &str, verdict| Trial {
        change,
        baseline_config: vec![],
        verdict,
        effects: vec![Effect {
            metric: "p95-ms".into(),
            candidate: 0.9,
            baseline: 1.5,
            change: -0.4,
            lower: -0.45,
            upper: -0.35,
        }],
        finding_kind: kind.into(),
        ended_at_ms: 1,
        reason: "promoted".into(),
    };
    let input = |kind: &str| ImprovementInput {
        now_ms: 2,
        finding: Finding {
            target: "batcher".into(),
            kind: kind.into(),
            severity: Severity::Medium,
            confidence: 0.9,
            summary: "over budget again".into(),
            evidence: vec![],
            expected_gain_pct: 30.0,
            risk: Risk::Low,
            category: Category::Performance,
        },
        tunables: vec![],
        modules: vec![],
        trials: vec![
            trial(Change::Config(vec![]), "latency-over-budget", Verdict::RolledBack),
            trial(fix.clone(), "latency-over-budget", Verdict::Promoted),
        ],
        seed: 3,
    };
    let proposals = block_on(library.improve(&input("latency-over-budget"))).unwrap();
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    assert_eq!(proposals[0].change, fix);
    assert!(
        proposals[0].rationale.contains("fixed it before (1 time(s); p95-ms -40.0 %"),
        "{}",
        proposals[0].rationale
    );
    assert!(block_on(library.improve(&input("low-success-rate"))).unwrap().is_empty());
}

/// The tuner on `knobbed`, allowed only `spin` and only from 100 000 rounds
/// up (every such config is slower, with the same answers): each trial
/// passes its proof and is rolled back by the judge on the canary. After
/// `loop.max_improver_trials` of them against the version serving, the
/// improvers are no longer asked about it (audited once), and those
/// rollbacks — exploration — never paused the loop through the self-watch
/// (default limit: half of at least four outcomes).
#[test]
fn improvers_stop_after_their_trial_budget_and_exploration_does_not_pause_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(
        dir.path(),
        "max_improver_trials = 4",
        "[loop.tuning.knobbed]\nallow = [\"spin\"]\nbounds.spin = [100000, 1000000]\n",
    );
    s.deploy(guests::TEST_KNOBBED.load().unwrap());
    let _traffic = Calls::start(&s, "knobbed", |n| format!("call {n}"));
    wait_for("the improvers' trial budget to be spent", Duration::from_secs(240), || {
        audit(&s, "knobbed").iter().any(|e| e["action"] == "improvers-spent")
    });
    let spent: Vec<Value> = audit(&s, "knobbed").into_iter().filter(|e| e["action"] == "improvers-spent").collect();
    assert_eq!(spent.len(), 1, "audited once: {spent:#?}");
    assert_eq!(
        (spent[0]["detail"]["trials"].as_u64(), spent[0]["detail"]["version"].as_str()),
        (Some(4), Some("1.0.0"))
    );
    let trials = s.get("/api/v1/improvements?target=knobbed&limit=100");
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 4, "{trials:#?}");
    assert!(trials.iter().all(|t| t["source"] == "improver tuner" && t["state"] == "rolled-back"), "{trials:#?}");
    // The loop goes on cycling, with nothing new to try on this version.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(s.get("/api/v1/improvements?target=knobbed&limit=100").as_array().unwrap().len(), 4);
    let status = s.get("/api/v1/status");
    assert_eq!(status["state"], "running", "{status:#}");
    assert_eq!(s.serving("knobbed").as_deref(), Some("1.0.0"));
}

/// An operator's candidate the loop took up while a finding was open is
/// the operator's change, not a fix the loop found (the contract: a
/// trial's finding kind is empty for an operator's change). When another
/// version replaces it and the finding recurs, the fix library does not
/// bring it back — it did not fix the finding, which stayed: two
/// identical versions of `noisy`, each failing 2 % of calls, would
/// otherwise be proposed in turn for ever.
#[test]
fn an_operators_change_is_not_proposed_back_as_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaizen.toml");
    std::fs::write(
        &path,
        "bundled = false\n\
         [loop]\ninterval_secs = 1.0\nmin_interval_secs = 1.0\nmax_interval_secs = 2.0\nwindow_secs = 5\nbaseline_secs = 10\n\
         [telemetry]\nsample_requests_every = 1\n\
         [safety.limits]\nrequired_proof = [\"validation\", \"replay\"]\ncanary_steps = [50.0, 100.0]\n\
         step_timeout_secs = 60\nbake_secs = 2\nholdback_percent = 10.0\nmin_executions = 20\n\
         [safety.limits.judge]\nmin_samples = 20\n\
         [safety.self_watch]\nmax_rollback_rate = 1.0\nmax_failure_rate = 1.0\n\
         [recovery]\nenabled = false\n\
         [runtime.grants.noisy]\ncapabilities = [\"random\"]\n\
         [runtime.plugin_config.noisy]\nerror_percent = 2\n\
         [runtime.plugin_config.low-success-rate]\nthreshold = 0.995\n",
    )
    .unwrap();
    // No bundled plugins, so no seed unit (the harness asks for one).
    let s = Server::start(dir.path(), &[("KAIZEN_SEED_UNIT", "false")], &["--config", path.to_str().unwrap()]);
    s.deploy(guests::DETECTOR_LOW_SUCCESS_RATE.load().unwrap());
    s.deploy(guests::IMPROVER_FIX_LIBRARY.load().unwrap());
    s.deploy(guests::TEST_NOISY_V1.load().unwrap());
    let _traffic = Calls::start(&s, "noisy", |n| format!("call {n}"));
    wait_for("noisy's low success rate to be found", Duration::from_secs(60), || {
        s.get("/api/v1/findings?limit=50").as_array().unwrap().iter().any(|f| f["target"] == "noisy")
    });

    let sha = s.upload(&guests::TEST_NOISY_V2.load().unwrap(), "candidate")["sha256"].as_str().unwrap().to_string();
    let mut promoted = Value::Null;
    wait_for("the operator's noisy 2.0.0 to be promoted", Duration::from_secs(180), || {
        let all = s.get("/api/v1/improvements?target=noisy");
        let imp = all.as_array().unwrap().iter().find(|i| i["candidate_sha"] == sha.as_str()).cloned();
        if let Some(i) =
            imp.as_ref().filter(|i| !["proving", "canary", "baking"].contains(&i["state"].as_str().unwrap()))
        {
            assert_eq!(i["state"], "promoted", "{i}");
            promoted = i.clone();
        }
        !promoted.is_null()
    });
    assert!(promoted["finding_id"].is_i64(), "the cycle took the candidate up for noisy's finding: {promoted}");

    // The operator puts 1.0.0 back; the finding stays. Cycles look at it
    // and have nothing to try.
    s.deploy(guests::TEST_NOISY_V1.load().unwrap());
    let deployed_at = kaizen_host::store::now_ms();
    wait_for("cycles after the deploy that found noisy with no candidate", Duration::from_secs(60), || {
        let cycles = s.get("/api/v1/cycles?limit=20");
        cycles.as_array().unwrap().iter().filter(|c| c["started_at"].as_i64() > Some(deployed_at)).count() >= 3
    });
    let proposals: Vec<Value> = audit(&s, "noisy").into_iter().filter(|e| e["actor"] == "fix-library").collect();
    assert!(proposals.is_empty(), "the fix library proposed an operator's change as a fix: {proposals:#?}");
    let after: Vec<Value> = s
        .get("/api/v1/improvements?target=noisy")
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["created_at"].as_i64() > Some(deployed_at))
        .cloned()
        .collect();
    assert!(after.is_empty(), "{after:#?}");
}

/// A candidate an improver made that the safety controller then turns
/// down (here: larger than `max_change_bytes`) is not queued as if an
/// operator had supplied it: queued, it would be taken up in a later cycle
/// and proven against whatever serves then, not the version it was made
/// for. The tuner proposes again from what serves each time.
#[test]
fn an_improvers_candidate_turned_down_is_not_queued_as_an_operators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kaizen.toml");
    std::fs::write(
        &path,
        "[loop]\ninterval_secs = 1.0\nmin_interval_secs = 1.0\nmax_interval_secs = 2.0\n\
         window_secs = 5\nbaseline_secs = 10\n\
         [telemetry]\nsample_requests_every = 1\n\
         [safety.limits]\nrequired_proof = [\"validation\"]\nmin_executions = 20\nmax_change_bytes = 1024\n\
         [runtime.plugin_config.latency-budget]\nbatcher = 0.001\n",
    )
    .unwrap();
    let s = Server::start(dir.path(), &[], &["--config", path.to_str().unwrap()]);
    s.deploy(guests::UNIT_BATCHER.load().unwrap());
    let _traffic = Calls::start(&s, "batcher", |n| format!("{{\"seed\": {}}}", n % 500));
    wait_for("two accepted proposals of the tuner", Duration::from_secs(120), || {
        audit(&s, "batcher").iter().filter(|e| e["action"] == "proposal" && e["detail"]["improver"] == "tuner").count()
            >= 2
    });
    let queued = s.get("/api/v1/candidates");
    assert!(queued.as_array().unwrap().is_empty(), "nothing the tuner made waits in the queue: {queued:#}");
    let cycles = s.get("/api/v1/cycles?limit=20");
    assert!(cycles.to_string().contains("1024"), "the cycles say the candidate is over the limit: {cycles:#}");
    let improvements = s.get("/api/v1/improvements?target=batcher");
    assert!(improvements.as_array().unwrap().is_empty(), "{improvements:#}");
}

/// batcher's own bytes under another version: the one place they name
/// their version patched (a string of the same length keeps the component
/// valid). Another build of the same code, as an operator would deploy.
fn batcher_as(version: &str) -> Vec<u8> {
    let mut bytes = guests::UNIT_BATCHER.load().unwrap();
    let at: Vec<usize> = bytes.windows(5).enumerate().filter(|(_, w)| w == b"1.0.0").map(|(i, _)| i).collect();
    assert_eq!(at.len(), 1, "batcher names its version once");
    assert_eq!(version.len(), 5);
    bytes[at[0]..at[0] + 5].copy_from_slice(version.as_bytes());
    bytes
}

/// Under a change freeze, candidates wait proven. The operator then
/// deploys another build of the unit directly: the tuner's waiting config
/// of the old module ends aborted (made for a version that no longer
/// serves) and the operator's own queued `kaizen tune` of the old module
/// is withdrawn — neither brings the old module back once the freeze is
/// lifted.
#[test]
fn candidates_made_for_a_replaced_module_do_not_bring_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    s.deploy(guests::UNIT_BATCHER.load().unwrap());
    let (ok, out, err) = s.cli(&["freeze", "--for", "1h", "--reason", "hold everything"]);
    assert!(ok, "{out}{err}");
    let _traffic = Calls::start(&s, "batcher", |n| format!("{{\"seed\": {}}}", n % 500));
    let mut waiting = Value::Null;
    wait_for("a tuner's proven config to wait for the freeze", Duration::from_secs(180), || {
        let all = s.get("/api/v1/improvements?target=batcher&limit=100");
        waiting = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["source"] == "improver tuner" && i["state"] == "proposed")
            .cloned()
            .unwrap_or(Value::Null);
        !waiting.is_null()
    });
    let (ok, out, err) = s.cli(&["tune", "batcher", "chunk_size=64"]);
    assert!(ok, "{out}{err}");

    s.deploy(batcher_as("1.0.1"));
    assert_eq!(s.serving("batcher").as_deref(), Some("1.0.1"));
    let id = waiting["id"].as_i64().unwrap();
    wait_for("the tuner's waiting config to end", Duration::from_secs(60), || {
        let all = s.get("/api/v1/improvements?target=batcher&limit=100");
        all.as_array().unwrap().iter().any(|i| i["id"].as_i64() == Some(id) && i["state"] == "aborted")
    });
    let all = s.get("/api/v1/improvements?target=batcher&limit=100");
    let ended = all.as_array().unwrap().iter().find(|i| i["id"].as_i64() == Some(id)).unwrap();
    let reason = ended["reason"].as_str().unwrap();
    assert!(reason.contains("1.0.1 serves now, not the 1.0.0 it was made for"), "{reason}");
    wait_for("the operator's tune of 1.0.0 to be withdrawn", Duration::from_secs(60), || {
        audit(&s, "batcher").iter().any(|e| {
            e["action"] == "candidate-withdrawn"
                && e["detail"]["reason"].as_str().unwrap().contains("a config of batcher 1.0.0, which no longer serves")
        })
    });
    let queued = s.get("/api/v1/candidates");
    assert!(queued.as_array().unwrap().is_empty(), "{queued:#}");

    // With the freeze lifted the loop goes on — from 1.0.1.
    let (ok, out, err) = s.cli(&["freeze", "--lift"]);
    assert!(ok, "{out}{err}");
    std::thread::sleep(Duration::from_secs(10));
    let serving = s.serving("batcher").unwrap();
    assert!(serving.starts_with("1.0.1"), "{serving}");
    let all = s.get("/api/v1/improvements?target=batcher&limit=100");
    let module = |sha: &Value| sha.as_str().unwrap().split('+').next().unwrap().to_string();
    let old = module(&waiting["candidate_sha"]);
    let over: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"].as_i64() > Some(id) && module(&i["candidate_sha"]) == old)
        .collect();
    assert!(over.is_empty(), "nothing of the replaced module is tried again: {over:#?}");
}
