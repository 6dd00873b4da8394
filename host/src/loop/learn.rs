//! Learning from outcomes: each detector's precision (findings that led to
//! a promoted improvement against those acted on), the plugin priorities
//! derived from it, the next cycle interval and the rollout scale decision.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::sample::Sample;
use super::{Ctx, CycleReport};
use crate::store::findings::FindingStatus;
use crate::store::improvements::ImprovementState;
use crate::store::priorities::Priority;
use crate::store::{self, Db, now_ms};

/// Step 8: learn from the outcomes so far, pace the next cycle and decide
/// the rollout scale. Returns the next interval.
pub async fn learn(ctx: &Ctx, sample: &Sample, r: &mut CycleReport) -> f64 {
    let learned = match from_history(&ctx.db).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the loop's history to learn from: {e}");
            Learned::default()
        }
    };
    for p in &learned.priorities {
        ctx.write("priority", &p.plugin, store::priorities::upsert(&ctx.db, p)).await;
    }
    *ctx.weights.lock() = learned.weights.clone();
    let open = store::findings::list(&ctx.db, Some(FindingStatus::Open.as_str()), 1000).await;
    let backlog = open.map(|v| v.len()).unwrap_or(0) + ctx.candidates.len();
    let pace = Pace {
        load: sample.calls as f64 / ctx.config.window_secs.max(1) as f64,
        trust: learned.trust,
        error_rate: if sample.calls > 0 { sample.failures as f64 / sample.calls as f64 } else { 0.0 },
        backlog,
    };
    let next =
        next_interval(ctx.config.interval_secs, ctx.config.min_interval_secs, ctx.config.max_interval_secs, &pace);
    r.next_interval_secs = next;
    let limits = &ctx.safety.config().limits;
    r.scale = scale_decision(backlog, limits.concurrent_rollouts, ctx.safety.rollouts_in_flight(), true).into();
    next
}

/// What one learning pass concluded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Detector → (acted on, promoted).
    pub detectors: HashMap<String, (u64, u64)>,
    /// Detector → weight used for prioritising its findings.
    pub weights: HashMap<String, f64>,
    /// Promoted / (promoted + rolled back + failed) over recent improvements.
    pub trust: f64,
    /// The plugin priorities the precision calls for (to be stored).
    pub priorities: Vec<Priority>,
}

/// Recompute detector precision and priorities from the stored history
/// (reads only; the priorities are the caller's to store).
pub async fn from_history(db: &Db) -> store::Result<Learned> {
    let improvements = store::improvements::list(db, None, 500).await?;
    let mut out = Learned { trust: 0.5, ..Default::default() };
    let (mut good, mut judged) = (0u64, 0u64);
    for (i, imp) in improvements.iter().enumerate() {
        let settled = imp.state.settled();
        if i < 10 && settled {
            judged += 1;
            good += u64::from(imp.state == ImprovementState::Promoted);
        }
        let Some(fid) = imp.finding_id else { continue };
        let Some(f) = store::findings::get(db, fid).await? else { continue };
        if settled {
            let e = out.detectors.entry(f.detector.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(imp.state == ImprovementState::Promoted);
        }
    }
    if judged > 0 {
        out.trust = good as f64 / judged as f64;
    }
    for (detector, (acted, promoted)) in &out.detectors {
        // Laplace-smoothed precision mapped to a 0.5..1.5 weight, so one
        // outcome moves a detector a little and many move it a lot.
        let precision = (*promoted as f64 + 1.0) / (*acted as f64 + 2.0);
        let weight = 0.5 + precision;
        let confidence = *acted as f64 / (*acted as f64 + 5.0);
        out.weights.insert(detector.clone(), weight);
        out.priorities.push(Priority {
            plugin: detector.clone(),
            weight,
            confidence,
            reason: format!("{promoted} of {acted} finding(s) acted on led to a promoted improvement"),
            updated_at: now_ms(),
        });
    }
    Ok(out)
}

/// Inputs of the interval computation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    /// Calls per second across all targets in the window.
    pub load: f64,
    pub trust: f64,
    /// Failed share of calls in the window.
    pub error_rate: f64,
    /// Open findings plus queued candidates.
    pub backlog: usize,
}

/// The next interval: shorter with a backlog and with errors to fix,
/// longer when the loop's recent changes did badly (low trust) or the
/// service is very busy (changes are costlier); clamped to the bounds.
pub fn next_interval(base: f64, min: f64, max: f64, p: &Pace) -> f64 {
    let backlog = 1.0 / (1.0 + p.backlog as f64 / 4.0);
    let errors = if p.error_rate > 0.05 { 0.5 } else { 1.0 };
    let trust = 1.5 - p.trust.clamp(0.0, 1.0);
    let load = if p.load > 1000.0 { 1.2 } else { 1.0 };
    (base * backlog * errors * trust * load).clamp(min, max)
}

/// Scale of rollout concurrency the backlog and latency call for.
pub fn scale_decision(backlog: usize, concurrency: usize, in_flight: usize, latency_ok: bool) -> &'static str {
    if backlog > concurrency.max(1) * 2 && latency_ok {
        "scale_up"
    } else if backlog == 0 && in_flight == 0 {
        "scale_down"
    } else {
        "steady"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_reacts_and_stays_in_bounds() {
        let calm = Pace { load: 10.0, trust: 0.5, error_rate: 0.0, backlog: 0 };
        let busy = Pace { backlog: 8, error_rate: 0.2, ..calm };
        assert_eq!(next_interval(30.0, 5.0, 300.0, &calm), 30.0);
        assert!(next_interval(30.0, 5.0, 300.0, &busy) < 10.0);
        assert_eq!(next_interval(30.0, 20.0, 300.0, &busy), 20.0);
        let distrusted = Pace { trust: 0.0, ..calm };
        assert_eq!(next_interval(30.0, 5.0, 300.0, &distrusted), 45.0);
    }

    #[test]
    fn scale() {
        assert_eq!(scale_decision(5, 1, 1, true), "scale_up");
        assert_eq!(scale_decision(5, 1, 1, false), "steady");
        assert_eq!(scale_decision(0, 1, 0, true), "scale_down");
    }
}
