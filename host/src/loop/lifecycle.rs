//! How findings end by themselves, each cycle after the detectors ran: a
//! finding its detector ran without reporting for
//! `loop.resolve_after_cycles` cycles in a row resolves (`condition
//! cleared`); one about a unit version that no longer serves resolves at
//! once (`version retired`); a snooze that ran out opens the finding again.
//! A finding an improvement is under way for is left to that improvement.
//! Each change is audited and published; nothing unchanged is.

use std::collections::HashSet;

use super::{Ctx, CycleReport};
use crate::events::Event;
use crate::store::findings::{FindingRecord, FindingStatus};
use crate::store::{self, now_ms};

/// Why a finding resolved by itself.
pub const CONDITION_CLEARED: &str = "condition cleared";
pub const VERSION_RETIRED: &str = "version retired";
pub const SNOOZE_ENDED: &str = "snooze ended";

/// Apply the lifecycle to every current finding: `reported` are this
/// cycle's (updated in place when a snooze of theirs ended), `failed` the
/// detectors that could not run (their findings are not counted missed).
pub async fn sweep(ctx: &Ctx, reported: &mut [FindingRecord], failed: &HashSet<String>, r: &mut CycleReport) {
    let now = now_ms();
    for f in reported.iter_mut() {
        if snooze_ended(f, now) {
            change(ctx, f, FindingStatus::Open, SNOOZE_ENDED).await;
        }
    }
    let seen: HashSet<i64> = reported.iter().map(|f| f.id).collect();
    let resolve_after = i64::from(ctx.config.resolve_after_cycles);
    let Some(current) =
        ctx.check("finding", "current findings", store::findings::current(&ctx.db, resolve_after).await)
    else {
        return;
    };
    let mut missed = Vec::new();
    for mut f in current.into_iter().filter(|f| !seen.contains(&f.id) && f.status != FindingStatus::Addressed) {
        if let Some(version) = &f.version
            && !super::detect::serving(ctx, &f.target).is_some_and(|v| v.contains(version))
        {
            if f.status != FindingStatus::Closed {
                change(ctx, &mut f, FindingStatus::Resolved, VERSION_RETIRED).await;
                r.findings_resolved += 1;
            }
            continue;
        }
        if failed.contains(&f.detector) {
            continue;
        }
        missed.push(f.id);
        if f.missed + 1 >= resolve_after && f.status != FindingStatus::Closed {
            change(ctx, &mut f, FindingStatus::Resolved, CONDITION_CLEARED).await;
            r.findings_resolved += 1;
        } else if snooze_ended(&f, now) {
            change(ctx, &mut f, FindingStatus::Open, SNOOZE_ENDED).await;
        }
    }
    ctx.write("finding", "missed findings", store::findings::mark_missed(&ctx.db, &missed)).await;
}

fn snooze_ended(f: &FindingRecord, now: i64) -> bool {
    f.status == FindingStatus::Snoozed && f.snoozed_until.is_none_or(|until| until <= now)
}

/// Store, audit and publish `f`'s move to `status` for `reason`.
async fn change(ctx: &Ctx, f: &mut FindingRecord, status: FindingStatus, reason: &str) {
    let set = store::findings::set_state(&ctx.db, f.id, status, reason, None);
    if ctx.write("finding", &format!("finding {} {status}", f.id), set).await.is_none() {
        return;
    }
    f.status = status;
    f.reason = reason.into();
    f.snoozed_until = None;
    let action = if status == FindingStatus::Resolved { "finding-resolved" } else { "finding-reopened" };
    ctx.audit.record_event("loop", action, &f.target.clone(), Event::finding(f, false)).await;
}
