//! Learning from outcomes: each detector's precision (findings that led to
//! a promoted improvement against those acted on), the plugin priorities
//! derived from it, the next cycle interval and the rollout scale decision.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::store::priorities::Priority;
use crate::store::{self, Db, now_ms};

/// What one learning pass concluded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Detector → (acted on, promoted).
    pub detectors: HashMap<String, (u64, u64)>,
    /// Detector → weight used for prioritising its findings.
    pub weights: HashMap<String, f64>,
    /// Promoted / (promoted + rolled back + failed) over recent improvements.
    pub trust: f64,
}

/// Recompute detector precision and priorities from the stored history.
pub async fn learn(db: &Db) -> store::Result<Learned> {
    let improvements = store::improvements::list(db, None, 500).await?;
    let mut out = Learned { trust: 0.5, ..Default::default() };
    let (mut good, mut judged) = (0u64, 0u64);
    for (i, imp) in improvements.iter().enumerate() {
        let settled = matches!(imp.state.as_str(), "promoted" | "rolled-back" | "rejected" | "failed");
        if i < 10 && settled {
            judged += 1;
            good += u64::from(imp.state == "promoted");
        }
        let Some(fid) = imp.finding_id else { continue };
        let Some(f) = store::findings::get(db, fid).await? else { continue };
        if settled {
            let e = out.detectors.entry(f.detector.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(imp.state == "promoted");
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
        store::priorities::upsert(
            db,
            &Priority {
                plugin: detector.clone(),
                weight,
                confidence,
                reason: format!("{promoted} of {acted} finding(s) acted on led to a promoted improvement"),
                updated_at: now_ms(),
            },
        )
        .await?;
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
