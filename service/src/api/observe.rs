//! Read-only views of what the host and the loop did: status, per-unit
//! call statistics, findings, improvements, cycle reports, the recovery
//! log, the audit trail and webhook deliveries.

use axum::Json;
use axum::extract::{Path, State};
use kaizen_host::store::audit::AuditEvent;
use kaizen_host::store::cycles::CycleRecord;
use kaizen_host::store::deliveries::Delivery;
use kaizen_host::store::findings::{FindingRecord, FindingStatus};
use kaizen_host::store::improvements::Improvement;
use kaizen_host::store::recovery_log::RecoveryEntry;
use kaizen_host::store::{self, now_ms};
use serde::{Deserialize, Serialize};

use super::deployments::{Limit, limit};
use super::plugins::all_slots;
use super::{AppState, Params, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::{EffectiveConfig, EffectiveSetting, GateView, Status, WaitingView};

/// The configuration in force: every setting's value (secrets redacted)
/// and where it came from — default, preset, file, environment or flag.
#[utoipa::path(get, path = "/api/v1/config", tag = "loop", security(("admin" = [])),
    responses((status = 200, body = EffectiveConfig)))]
pub async fn config(_: Admin, State(s): State<AppState>) -> Json<EffectiveConfig> {
    let settings =
        s.config.effective().into_iter().map(|(key, value, source)| EffectiveSetting { key, value, source }).collect();
    Json(EffectiveConfig { preset: s.config.host.safety.preset, settings })
}

/// Loop state, slots and recent findings.
#[utoipa::path(get, path = "/api/v1/status", tag = "loop", security(("admin" = [])),
    responses((status = 200, body = Status)))]
pub async fn status(_: Admin, State(s): State<AppState>) -> ApiResult<Json<Status>> {
    let control = s.host.safety.state();
    let state = if control.stopped {
        "stopped"
    } else if !control.enabled {
        "disabled"
    } else if control.paused {
        "paused"
    } else {
        "running"
    };
    let held = s.host.safety.check_running().err();
    Ok(Json(Status {
        state: state.into(),
        control,
        improve: s.host.improve.stats(),
        slots: all_slots(&s),
        rollouts: s.host.safety.rollouts(),
        rollout_gates: std::iter::once(None)
            .chain(s.host.safety.scheduled_targets().into_iter().map(Some))
            .map(|t| {
                let gate = GateView::of(t.clone(), &s.host.safety.gate(t.as_deref().unwrap_or(""), false));
                let limit = s.host.safety.limits_for(t.as_deref().unwrap_or("")).concurrent_rollouts;
                gate.full(s.host.safety.rollouts_in_flight(), limit)
            })
            .map(|g| match &held {
                Some(why) => g.held(why),
                None => g,
            })
            .collect(),
        waiting: s
            .host
            .improve
            .waiting()
            .into_iter()
            .map(|(target, improvement, candidate_version, reason)| WaitingView {
                target,
                improvement,
                candidate_version,
                reason,
            })
            .collect(),
        recent_findings: store::findings::list(&s.host.db, None, 10).await?,
        telemetry: s.host.telemetry.counters(),
        watch_dir: s.config.watch.enabled.then(|| s.config.watch_dir().display().to_string()),
        version: env!("CARGO_PKG_VERSION").into(),
        tasks: s.host.tasks.list(),
        unrestored: s.host.unrestored(),
    }))
}

/// Calls of one unit version: totals since start, and the last minute.
/// Calls end three ways, counted apart so that no rate hides the others:
/// answered (`successes`), refused as the caller's error (`invalid-input`,
/// `caller_errors`) and failed for the unit's own reasons (`unit_errors`:
/// traps, timeouts, dependency errors, …). `calls` is their sum. A call is
/// what a caller asked for, however many attempts it took: retries and a
/// fallback are counted apart as `attempts`, and the calls they turned into
/// answers as `recovered` (already among `successes`). Calls an open
/// circuit refused were not made: they are `refused`, apart from `calls`,
/// counted on the version serving.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitStats {
    pub unit: String,
    pub version: String,
    /// Whether this version serves now (current or canary).
    pub serving: bool,
    /// Calls since the host started.
    pub calls_total: u64,
    /// Of `calls_total`, those answered.
    pub successes_total: u64,
    /// Of `calls_total`, those refused as `invalid-input` (the caller's error).
    pub caller_errors_total: u64,
    /// Of `calls_total`, those that failed for the unit's own reasons.
    pub unit_errors_total: u64,
    /// Every failed call since start: `caller_errors_total + unit_errors_total`.
    pub errors_total: u64,
    /// Attempts made for `calls_total`, first attempts included: more than
    /// the calls when recovery retried some or answered them by a fallback.
    pub attempts_total: u64,
    /// Of `successes_total`, the calls that failed at first and recovery
    /// answered.
    pub recovered_total: u64,
    /// Callers' calls refused since start because the unit's circuit was
    /// open: not made, so not among `calls_total`.
    pub refused_total: u64,
    /// Statistics of the last `window_secs`.
    pub window_secs: u64,
    pub calls: u64,
    /// Of the window's `calls`, those answered.
    pub successes: u64,
    /// Of the window's `calls`, those refused as `invalid-input`.
    pub caller_errors: u64,
    /// Of the window's `calls`, those that failed for the unit's own reasons.
    pub unit_errors: u64,
    /// Attempts made for the window's `calls`, first attempts included.
    pub attempts: u64,
    /// Of the window's `successes`, the calls recovery answered.
    pub recovered: u64,
    /// Callers' calls of the window refused by an open circuit (not among
    /// `calls`).
    pub refused: u64,
    /// Share of the window's calls that did not fail for the unit's own
    /// reasons (the contract's success rate: `invalid-input` is left out,
    /// so read it beside `caller_errors`).
    pub success_rate: f64,
    /// Share of the window's calls refused as `invalid-input`.
    pub rejection_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub throughput: f64,
}

/// The error class that is the caller's fault, not the unit's.
const CALLER_ERROR: &str = "invalid-input";

/// Per unit and version: calls, answered, refused (`invalid-input`) and
/// failed calls, the attempts made for them and the calls recovery
/// answered, the success rate and latency (for the dashboard and
/// `kaizen status`).
#[utoipa::path(get, path = "/api/v1/units", tag = "loop", security(("admin" = [])),
    responses((status = 200, body = Vec<UnitStats>)))]
pub async fn units(_: Admin, State(s): State<AppState>) -> Json<Vec<UnitStats>> {
    const WINDOW_SECS: u64 = 60;
    let now = now_ms();
    let serving = |unit: &str, version: &str| {
        s.host.runtime.slot(unit).is_some_and(|sl| {
            let sv = sl.serving();
            sv.current.version() == version || sv.canary.as_ref().is_some_and(|c| c.plugin.version() == version)
        })
    };
    let totals = s.host.telemetry.calls().snapshot();
    let mut out = Vec::new();
    for (unit, version) in s.host.telemetry.aggregates().keys() {
        let from = now - WINDOW_SECS as i64 * 1000;
        let w = s.host.telemetry.aggregates().window(&unit, Some(&version), from, now + 1);
        let counts = s.host.telemetry.aggregates().counts(&unit, Some(&version), from, now + 1);
        let rejected = counts.caller_errors;
        let t = totals.iter().find(|t| t.unit == unit && t.version == version);
        let count = |caller: bool| {
            t.map_or(0, |t| t.errors.iter().filter(|(class, _)| (*class == CALLER_ERROR) == caller).map(|e| e.1).sum())
        };
        let (calls_total, caller_errors_total, unit_errors_total) =
            (t.map_or(0, |t| t.calls), count(true), count(false));
        let calls = w.as_ref().map_or(0, |w| w.executions);
        let unit_errors = w.as_ref().map_or(0, |w| w.failures);
        out.push(UnitStats {
            serving: serving(&unit, &version),
            calls_total,
            successes_total: calls_total.saturating_sub(caller_errors_total + unit_errors_total),
            caller_errors_total,
            unit_errors_total,
            errors_total: caller_errors_total + unit_errors_total,
            attempts_total: t.map_or(0, |t| t.attempts),
            recovered_total: t.map_or(0, |t| t.recovered),
            refused_total: t.map_or(0, |t| t.refused),
            window_secs: WINDOW_SECS,
            calls,
            successes: calls.saturating_sub(rejected + unit_errors),
            caller_errors: rejected,
            unit_errors,
            attempts: counts.attempts,
            recovered: counts.recovered,
            refused: counts.refused,
            success_rate: w.as_ref().map_or(1.0, |w| w.success_rate),
            rejection_rate: w.as_ref().map_or(0.0, |w| rejected as f64 / w.executions as f64),
            p50_ms: w.as_ref().map_or(0.0, |w| w.latency.p50_ms),
            p95_ms: w.as_ref().map_or(0.0, |w| w.latency.p95_ms),
            p99_ms: w.as_ref().map_or(0.0, |w| w.latency.p99_ms),
            throughput: w.as_ref().map_or(0.0, |w| w.throughput),
            unit,
            version,
        });
    }
    Json(out)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// Only findings in this state (all when absent).
    #[param(inline, nullable = false)]
    pub status: Option<FindingStatus>,
    /// At most this many: default 50; values below 1 count as 1, above
    /// 1000 as 1000.
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

/// Findings, newest first.
#[utoipa::path(get, path = "/api/v1/findings", tag = "loop", security(("admin" = [])),
    params(FindingQuery), responses((status = 200, body = Vec<FindingRecord>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn findings(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<FindingQuery>,
) -> ApiResult<Json<Vec<FindingRecord>>> {
    Ok(Json(store::findings::list(&s.host.db, q.status.map(FindingStatus::as_str), limit(q.limit)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TargetQuery {
    /// Only this target (unit or slot).
    #[param(pattern = "^[a-z][a-z0-9-]{0,63}$", nullable = false)]
    pub target: Option<String>,
    /// At most this many: default 50; values below 1 count as 1, above
    /// 1000 as 1000.
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

fn target(q: &TargetQuery) -> Result<Option<&str>, ApiError> {
    if let Some(t) = &q.target {
        checked_name("target", t)?;
    }
    Ok(q.target.as_deref())
}

/// Improvements (candidates the loop tried) with their proof and verdicts.
#[utoipa::path(get, path = "/api/v1/improvements", tag = "loop", security(("admin" = [])),
    params(TargetQuery), responses((status = 200, body = Vec<Improvement>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn improvements(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<TargetQuery>,
) -> ApiResult<Json<Vec<Improvement>>> {
    Ok(Json(store::improvements::list(&s.host.db, target(&q)?, limit(q.limit)).await?))
}

/// Cycle reports, newest first.
#[utoipa::path(get, path = "/api/v1/cycles", tag = "loop", security(("admin" = [])),
    params(Limit), responses((status = 200, body = Vec<CycleRecord>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn cycles(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<Limit>,
) -> ApiResult<Json<Vec<CycleRecord>>> {
    Ok(Json(store::cycles::recent(&s.host.db, limit(q.limit)).await?))
}

/// One cycle report.
#[utoipa::path(get, path = "/api/v1/cycles/{id}", tag = "loop", security(("admin" = [])), operation_id = "get_cycle",
    params(("id" = i64, Path)),
    responses((status = 200, body = CycleRecord),
        (status = 400, description = "An id that is not an integer", body = ErrorBody),
        (status = 404, description = "No such cycle report", body = ErrorBody)))]
pub async fn cycle(_: Admin, State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<CycleRecord>> {
    store::cycles::get(&s.host.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no cycle report {id}")))
}

/// The recovery log: every healing episode step, newest first.
#[utoipa::path(get, path = "/api/v1/recovery", tag = "loop", security(("admin" = [])),
    params(TargetQuery), responses((status = 200, body = Vec<RecoveryEntry>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn recovery(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<TargetQuery>,
) -> ApiResult<Json<Vec<RecoveryEntry>>> {
    if let Some(h) = s.host.invoker.healer() {
        h.flush().await;
    }
    Ok(Json(store::recovery_log::recent(&s.host.db, target(&q)?, limit(q.limit)).await?))
}

/// The audit trail: every action of the loop, the safety controller and
/// operators, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "loop", security(("admin" = [])),
    params(TargetQuery), responses((status = 200, body = Vec<AuditEvent>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn audit(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<TargetQuery>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    Ok(Json(store::audit::recent(&s.host.db, target(&q)?, limit(q.limit)).await?))
}

/// Webhook deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "service", security(("admin" = [])),
    params(Limit), responses((status = 200, body = Vec<Delivery>), (status = 400, description = "A query value of the wrong type or form", body = ErrorBody)))]
pub async fn deliveries(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<Limit>,
) -> ApiResult<Json<Vec<Delivery>>> {
    Ok(Json(store::deliveries::recent(&s.host.db, limit(q.limit)).await?))
}
