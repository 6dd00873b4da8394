//! Step 4, improve: each target's top finding the loop may act on, then the
//! candidates queued for targets with no such finding (in the order they
//! came), each given one attempt (take a candidate, prove it, start its
//! rollout) within the safety limits. Every finding that leads to no attempt gets its reason
//! ([`NoAttempt`]), in the report and on the finding.

use std::collections::HashMap;

use super::attempt::{Attempt, AttemptResult, Tried};
use super::inaction::{NoAttempt, NotAttempted};
use super::sample::Sample;
use super::{CycleReport, Loop};
use crate::runtime::types::PluginKind;
use crate::store::{self, findings::FindingRecord, findings::FindingStatus};

/// `order` lists units with queued candidates in the queue's order
/// ([`super::queue::Refilled::units`]).
pub async fn improve(lp: &Loop, findings: &[FindingRecord], sample: &Sample, order: &[String], r: &mut CycleReport) {
    let ctx = &lp.ctx;
    let mut started = 0;
    lp.start_waiting(&mut started, r).await;
    // The finding that had its target's turn this cycle.
    let mut turn: HashMap<String, (i64, String)> = HashMap::new();
    let mut reasons: Vec<(i64, Option<String>)> = Vec::new();
    for f in findings {
        let why = match why_not(lp, f, &turn) {
            // The improvement under way holds its target's turn: nothing
            // else is tried on it while its rollout decides.
            Some(NoAttempt::Addressed) => {
                turn.insert(f.target.clone(), (f.id, f.kind.clone()));
                Some(NoAttempt::Addressed)
            }
            Some(why) => Some(why),
            None => {
                turn.insert(f.target.clone(), (f.id, f.kind.clone()));
                let executions = sample.load.get(&f.target).copied().unwrap_or(0);
                match lp.attempt(&f.target, Some(f), started, executions).await {
                    Tried::Attempted(a) => {
                        record(a, &mut started, r);
                        None
                    }
                    Tried::Not(why) => Some(why),
                }
            }
        };
        reasons.push((f.id, why.as_ref().map(ToString::to_string)));
        if let Some(why) = why {
            r.not_attempted.push(NotAttempted::new(f.id, &f.target, &f.kind, why));
        }
    }
    // In the order their oldest candidates came, the order the queue's
    // listing forecasts ([`Loop::queued`]); then any other unit with a
    // candidate in memory (queued since, or the table unread).
    let units: Vec<String> = ctx.runtime.slots_of(PluginKind::Unit).iter().map(|s| s.name().to_string()).collect();
    let in_line = order.iter().filter(|t| units.contains(t)).chain(units.iter().filter(|u| !order.contains(u)));
    for target in in_line {
        if ctx.candidates.has(target) && !turn.contains_key(target) {
            let executions = sample.load.get(target).copied().unwrap_or(0);
            if let Tried::Attempted(a) = lp.attempt(target, None, started, executions).await {
                record(a, &mut started, r);
            }
        }
    }
    ctx.write("finding", "reasons for no attempt", store::findings::set_inaction(&ctx.db, &reasons)).await;
}

/// Why `f` gets no attempt before one is tried: its state, another finding
/// of its target having had the turn, or its target.
fn why_not(lp: &Loop, f: &FindingRecord, turn: &HashMap<String, (i64, String)>) -> Option<NoAttempt> {
    match f.status {
        FindingStatus::Addressed => return Some(NoAttempt::Addressed),
        FindingStatus::Snoozed => return Some(NoAttempt::Snoozed { until: f.snoozed_until.unwrap_or_default() }),
        FindingStatus::Closed => return Some(NoAttempt::Closed),
        _ => {}
    }
    if let Some((finding, kind)) = turn.get(&f.target) {
        return Some(NoAttempt::OtherFindingFirst { finding: *finding, kind: kind.clone() });
    }
    match lp.ctx.runtime.slot(&f.target) {
        None => Some(NoAttempt::NotHosted),
        Some(slot) if slot.kind() != PluginKind::Unit => {
            Some(NoAttempt::NotAUnit { kind: crate::runtime::validate::world_name(slot.kind()).into() })
        }
        Some(_) => None,
    }
}

fn record(a: Attempt, started: &mut usize, r: &mut CycleReport) {
    if a.improvement_id.is_some() {
        *started += 1;
    }
    if matches!(a.result, AttemptResult::Denied(_)) {
        r.denied.push(format!("{}: {}", a.target, a.result));
    }
    r.attempts.push(a);
}

/// Whether an attempt's result means part of the loop broke (not that
/// safety or a proof turned a change down).
pub fn broke(a: &Attempt) -> bool {
    matches!(a.result, AttemptResult::GeneratorFailed(_) | AttemptResult::Failed(_))
}
