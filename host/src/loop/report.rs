//! Step 9, report: the cycle's report is stored and the cycle's end
//! published (`failed` when part of the loop itself broke).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::attempt::Attempt;
use super::improve::broke;
use super::inaction::NotAttempted;
use crate::events::Event;
use crate::store::cycles::CycleRecord;
use crate::store::{self, now_ms};

/// The report of one cycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CycleReport {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub skipped: Option<String>,
    pub targets_sampled: usize,
    pub findings_total: usize,
    pub findings_new: usize,
    pub by_priority: BTreeMap<String, usize>,
    pub impact_total: f64,
    pub detector_errors: Vec<String>,
    pub attempts: Vec<Attempt>,
    /// Every finding of the cycle that led to no attempt, and why.
    #[serde(default)]
    pub not_attempted: Vec<NotAttempted>,
    /// Findings resolved this cycle (condition cleared, version retired).
    #[serde(default)]
    pub findings_resolved: usize,
    pub denied: Vec<String>,
    pub durations_ms: BTreeMap<String, u64>,
    pub next_interval_secs: f64,
    pub scale: String,
    pub critical_findings: usize,
    /// The cycle's findings in the order the loop took them (at most
    /// [`RANKED`]): impact × predicted success.
    #[serde(default)]
    pub ranking: Vec<Ranked>,
}

/// Findings listed in a report's ranking at most.
pub const RANKED: usize = 50;

/// One finding's place in the cycle's order, and why it stands there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub finding_id: i64,
    pub target: String,
    pub kind: String,
    pub impact: f64,
    pub prediction: Option<crate::store::findings::Prediction>,
    /// impact × predicted success / the overall success rate.
    pub score: f64,
    pub priority: String,
}

pub async fn report(ctx: &Ctx, r: &mut CycleReport) {
    r.finished_at = now_ms();
    let record = CycleRecord {
        id: 0,
        kind: r.kind.clone(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        report: serde_json::to_value(&*r).unwrap_or_default(),
    };
    if let Some(id) = ctx.write("cycle", &r.kind, store::cycles::insert(&ctx.db, &record)).await {
        r.id = id;
    }
    ctx.stats.cycles.fetch_add(1, Ordering::Relaxed);
    ctx.stats.last_cycle_at.store(r.finished_at as u64, Ordering::Relaxed);
    // A cycle "failed" when part of the loop itself broke (a detector or
    // a candidate generator erred, a record could not be written), not
    // when safety turned a change down.
    let errors: Vec<String> = r
        .detector_errors
        .iter()
        .cloned()
        .chain(r.attempts.iter().filter(|a| broke(a)).map(|a| a.result.to_string()))
        .collect();
    let event = Event::Cycle {
        id: r.id,
        kind: r.kind.clone(),
        findings: r.findings_total,
        attempts: r.attempts.len(),
        skipped: r.skipped.clone(),
        failed: !errors.is_empty(),
        errors,
    };
    ctx.publish("", event);
}
