//! Steering the loop (admin token): pause, resume, emergency stop and its
//! release, a cycle now, and forcing circuit breakers. Every change is
//! audited by the safety controller and published as a `control` event.

use axum::Json;
use axum::extract::{Path, State};
use kaizen_host::events::{ControlAction, Event};
use kaizen_host::recovery::Force;
use kaizen_host::store::control::ControlState;
use serde::{Deserialize, Serialize};

use super::{AppState, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::Reason;

/// Change the loop's control state: `pause`, `resume`, `stop` (emergency
/// stop: every rollout frozen where it stands, persisted across restarts)
/// or `release` (lift the stop).
#[utoipa::path(post, path = "/api/v1/control/{action}", tag = "control", security(("admin" = [])),
    params(("action" = String, Path, description = "pause, resume, stop or release")),
    request_body(content = Option<Reason>),
    responses((status = 200, body = ControlState), (status = 404, body = ErrorBody)))]
pub async fn control(
    _: Admin,
    State(s): State<AppState>,
    Path(action): Path<String>,
    body: Option<Json<Reason>>,
) -> ApiResult<Json<ControlState>> {
    let why = body.and_then(|b| b.0.reason).unwrap_or_else(|| format!("{action} requested through the API"));
    let safety = &s.host.safety;
    let (state, name) = match action.as_str() {
        "pause" => (safety.pause("api", &why).await?, ControlAction::Pause),
        "resume" => (safety.resume("api", &why).await?, ControlAction::Resume),
        "stop" => (safety.emergency_stop("api", &why).await?, ControlAction::EmergencyStop),
        "release" => (safety.release_stop("api", &why).await?, ControlAction::ReleaseStop),
        other => {
            return Err(ApiError::not_found(format!(
                "unknown control action {:?}: use pause, resume, stop or release",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let event = Event::Control { action: name, reason: why, by: "api".into(), state: state.clone() };
    s.host.events.publish("", event);
    if matches!(name, ControlAction::Resume | ControlAction::ReleaseStop) {
        s.host.improve.trigger();
    }
    Ok(Json(state))
}

/// Run one loop cycle now and return its report (waits for a cycle in
/// progress to end first).
#[utoipa::path(post, path = "/api/v1/cycles", tag = "control", security(("admin" = [])),
    responses((status = 200, description = "The cycle report", body = Object)))]
pub async fn cycle(_: Admin, State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let report = s.host.improve.run_cycle("manual").await;
    Ok(Json(serde_json::to_value(report).map_err(|e| ApiError::internal(e.to_string()))?))
}

/// A breaker's state.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BreakerView {
    pub target: String,
    #[schema(value_type = Object)]
    pub breaker: kaizen_host::recovery::breaker::BreakerState,
}

/// Every circuit breaker.
#[utoipa::path(get, path = "/api/v1/breakers", tag = "control", security(("admin" = [])),
    responses((status = 200, body = Vec<BreakerView>)))]
pub async fn breakers(_: Admin, State(s): State<AppState>) -> Json<Vec<BreakerView>> {
    let list = s.host.invoker.healer().map(|h| h.breakers()).unwrap_or_default();
    Json(list.into_iter().map(|(target, breaker)| BreakerView { target, breaker }).collect())
}

/// How to force a breaker.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ForceBreaker {
    /// `open`, `closed` or `reset`.
    pub state: String,
    /// For `open`: how long, in milliseconds (default 30 000).
    pub ms: Option<u64>,
    pub reason: Option<String>,
}

/// Force a unit's circuit breaker open (calls fail fast with class
/// `circuit-open`), closed, or reset.
#[utoipa::path(post, path = "/api/v1/breakers/{target}", tag = "control", security(("admin" = [])),
    params(("target" = String, Path)), request_body = ForceBreaker,
    responses((status = 200, body = Vec<BreakerView>), (status = 400, body = ErrorBody),
        (status = 404, description = "No unit of that name", body = ErrorBody)))]
pub async fn force_breaker(
    _: Admin,
    State(s): State<AppState>,
    Path(target): Path<String>,
    Json(f): Json<ForceBreaker>,
) -> ApiResult<Json<Vec<BreakerView>>> {
    checked_name("target", &target)?;
    // A breaker guards a hosted unit's calls; forcing one for any other
    // name would only create a breaker nothing consults.
    if s.host.runtime.unit_slot(&target).is_err() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown-unit",
            format!("no unit `{target}` is hosted: breakers guard hosted units"),
        ));
    }
    let force = match f.state.as_str() {
        "open" => Force::Open { ms: f.ms.unwrap_or(30_000) },
        "closed" => Force::Closed,
        "reset" => Force::Reset,
        other => return Err(ApiError::bad_request(format!("state {other:?}: use open, closed or reset"))),
    };
    let Some(healer) = s.host.invoker.healer() else {
        return Err(ApiError::bad_request("recovery is off: there are no breakers"));
    };
    let why = f.reason.unwrap_or_else(|| "forced through the API".into());
    healer.force(&target, force, &why);
    s.host.audit("api", "force-breaker", &target, Event::ForceBreaker { state: f.state, ms: f.ms, reason: why }).await;
    Ok(breakers(Admin, State(s)).await)
}
