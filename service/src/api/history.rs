//! Recent history as time series, read from the rolling aggregates and the
//! improvements table, so that a page opened now (the dashboard) draws the
//! last minutes at once instead of only what happens after it opened.

use axum::Json;
use axum::extract::State;
use kaizen_host::store::improvements::ImprovementState;
use kaizen_host::store::{self, now_ms};
use serde::{Deserialize, Serialize};

use super::{AppState, Params};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;

/// At most this many intervals per series: enough for a chart's width,
/// few enough to read every aggregate bucket once per interval.
const MAX_POINTS: i64 = 120;
/// How far back the improvements counted by the trust series reach.
const IMPROVEMENTS: i64 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How many minutes back, 1 to 360 (the aggregates' horizon is six
    /// hours by default): default 15.
    #[param(nullable = false, minimum = 1, maximum = 360)]
    pub minutes: Option<i64>,
}

/// One interval of one unit version. `calls` is the sum of `successes`,
/// `caller_errors` and `unit_errors`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitPoint {
    /// Start of the interval, milliseconds since the Unix epoch.
    pub at: i64,
    /// Seconds of the interval elapsed (shorter than `step_secs` for the
    /// interval still running): calls per second is `calls / secs`.
    pub secs: f64,
    pub calls: u64,
    /// Calls answered.
    pub successes: u64,
    /// Calls refused as `invalid-input` (the caller's error).
    pub caller_errors: u64,
    /// Calls that failed for the unit's own reasons.
    pub unit_errors: u64,
    /// 95th percentile latency of the interval's calls, milliseconds; absent
    /// when it had none.
    pub p95_ms: Option<f64>,
}

/// The intervals of one unit version (every interval of the range, calls
/// or not).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitSeries {
    pub unit: String,
    pub version: String,
    pub points: Vec<UnitPoint>,
}

/// One interval of the loop's record: the calls it watched and the
/// improvements ended by the interval's end.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustPoint {
    /// Start of the interval, milliseconds since the Unix epoch.
    pub at: i64,
    /// Seconds of the interval elapsed.
    pub secs: f64,
    /// Calls of every unit in the interval.
    pub calls: u64,
    /// Improvements promoted (kept) by the interval's end, since the
    /// oldest of the last 1000 improvements.
    pub promoted: u64,
    /// Improvements the judge rolled back by the interval's end.
    pub rolled_back: u64,
    /// Improvements rolled back for want of a verdict by the interval's end.
    pub inconclusive: u64,
    /// The kept-improvement rate: `promoted / (promoted + rolled_back +
    /// inconclusive)`; absent while no improvement has ended.
    pub kept_rate: Option<f64>,
}

/// Recent history in fixed intervals, oldest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct History {
    /// Start of the first interval, milliseconds since the Unix epoch.
    pub from: i64,
    /// When this answer was made, milliseconds since the Unix epoch.
    pub to: i64,
    /// Width of an interval: a multiple of the aggregates' bucket
    /// (`telemetry.bucket_secs`).
    pub step_secs: f64,
    /// Unit versions with calls in the range.
    pub units: Vec<UnitSeries>,
    pub trust: Vec<TrustPoint>,
}

/// Recent calls per unit version (answered, caller errors, unit errors,
/// latency p95) and the loop's kept-improvement rate, in intervals: what
/// the dashboard's charts draw when it opens.
#[utoipa::path(get, path = "/api/v1/history", tag = "loop", security(("admin" = [])), operation_id = "recent_history",
    params(HistoryQuery),
    responses((status = 200, body = History),
        (status = 400, description = "`minutes` outside 1..=360 or not an integer", body = ErrorBody)))]
pub async fn history(_: Admin, State(s): State<AppState>, Params(q): Params<HistoryQuery>) -> ApiResult<Json<History>> {
    let minutes = q.minutes.unwrap_or(15);
    if !(1..=360).contains(&minutes) {
        return Err(ApiError::bad_request(format!("minutes must be between 1 and 360, not {minutes}")));
    }
    let agg = s.host.telemetry.aggregates();
    let bucket = agg.bucket_ms();
    let now = now_ms();
    let span = minutes * 60_000;
    // Whole buckets per interval, at most MAX_POINTS intervals, the last
    // one holding now.
    let step = ceil_div(span / MAX_POINTS, bucket).max(1) * bucket;
    let end = now - now.rem_euclid(step) + step;
    let n = ceil_div(span, step).max(1);
    let from = end - n * step;
    let intervals: Vec<(i64, f64)> = (0..n)
        .map(|i| {
            let at = from + i * step;
            (at, ((now - at).clamp(0, step) as f64 / 1000.0).max(0.001))
        })
        .collect();

    let mut units = Vec::new();
    let mut calls_at = vec![0u64; intervals.len()];
    for (unit, version) in agg.keys() {
        let points: Vec<UnitPoint> = intervals
            .iter()
            .map(|&(at, secs)| {
                let w = agg.window(&unit, Some(&version), at, at + step);
                let caller_errors = agg.rejected(&unit, Some(&version), at, at + step);
                let calls = w.as_ref().map_or(0, |w| w.executions);
                let unit_errors = w.as_ref().map_or(0, |w| w.failures);
                UnitPoint {
                    at,
                    secs,
                    calls,
                    successes: calls.saturating_sub(caller_errors + unit_errors),
                    caller_errors,
                    unit_errors,
                    p95_ms: w.map(|w| w.latency.p95_ms),
                }
            })
            .collect();
        if points.iter().any(|p| p.calls > 0) {
            for (i, p) in points.iter().enumerate() {
                calls_at[i] += p.calls;
            }
            units.push(UnitSeries { unit, version, points });
        }
    }

    let ended: Vec<(i64, ImprovementState)> = store::improvements::list(&s.host.db, None, IMPROVEMENTS)
        .await?
        .into_iter()
        .filter(|i| {
            matches!(
                i.state,
                ImprovementState::Promoted | ImprovementState::RolledBack | ImprovementState::Inconclusive
            )
        })
        .map(|i| (i.updated_at, i.state))
        .collect();
    let trust = intervals
        .iter()
        .zip(calls_at)
        .map(|(&(at, secs), calls)| {
            let by = |state| ended.iter().filter(|(t, s)| *s == state && *t < at + step).count() as u64;
            let (promoted, rolled_back, inconclusive) =
                (by(ImprovementState::Promoted), by(ImprovementState::RolledBack), by(ImprovementState::Inconclusive));
            let total = promoted + rolled_back + inconclusive;
            TrustPoint {
                at,
                secs,
                calls,
                promoted,
                rolled_back,
                inconclusive,
                kept_rate: (total > 0).then(|| promoted as f64 / total as f64),
            }
        })
        .collect();
    Ok(Json(History { from, to: now, step_secs: step as f64 / 1000.0, units, trust }))
}

/// `a / b` rounded up, for positive `a` and `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}
