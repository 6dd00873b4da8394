//! Steering the loop (admin token): pause, resume, emergency stop and its
//! release, a cycle now, and forcing circuit breakers. Every change is
//! audited by the safety controller and published as a `control` event.

use axum::Json;
use axum::extract::{Path, State};
use kaizen_host::events::{ControlAction, Event};
use kaizen_host::recovery::Force;
use kaizen_host::store::control::ControlState;
use serde::{Deserialize, Serialize};

use super::{AppState, OptionalJson, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::Reason;

/// A change of the loop's control state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Resume,
    /// Emergency stop.
    Stop,
    /// Lift the emergency stop.
    Release,
}

/// Change the loop's control state: `pause`, `resume`, `stop` (emergency
/// stop: every rollout frozen where it stands, persisted across restarts)
/// or `release` (lift the stop).
#[utoipa::path(post, path = "/api/v1/control/{action}", tag = "control", security(("admin" = [])),
    params(("action" = inline(Action), Path, description = "pause, resume, stop or release")),
    request_body(content = Option<Reason>, description = "Optional: no body, `null` or `{reason}`"),
    responses((status = 200, body = ControlState),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such action", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a reason", body = ErrorBody)))]
pub async fn control(
    _: Admin,
    State(s): State<AppState>,
    Path(action): Path<String>,
    OptionalJson(body): OptionalJson<Reason>,
) -> ApiResult<Json<ControlState>> {
    let Ok(kind) = serde_json::from_value::<Action>(serde_json::Value::String(action.clone())) else {
        return Err(ApiError::not_found(format!(
            "unknown control action {:?}: use pause, resume, stop or release",
            action.chars().take(40).collect::<String>()
        )));
    };
    let why = body.and_then(|b| b.reason).unwrap_or_else(|| format!("{action} requested through the API"));
    let safety = &s.host.safety;
    let (state, name) = match kind {
        Action::Pause => (safety.pause("api", &why).await?, ControlAction::Pause),
        Action::Resume => (safety.resume("api", &why).await?, ControlAction::Resume),
        Action::Stop => (safety.emergency_stop("api", &why).await?, ControlAction::EmergencyStop),
        Action::Release => (safety.release_stop("api", &why).await?, ControlAction::ReleaseStop),
    };
    let event = Event::Control { action: name, reason: why, by: "api".into(), state: state.clone() };
    s.host.events.publish("", event);
    if matches!(name, ControlAction::Resume | ControlAction::ReleaseStop) {
        s.host.improve.trigger();
    }
    Ok(Json(state))
}

/// The longest change freeze an operator can declare at once: a year.
pub const MAX_FREEZE_SECS: u64 = 366 * 86_400;

/// A change freeze to declare: how long, and why.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct FreezeBody {
    /// Seconds from now the freeze lasts (1 to 31 622 400, a year).
    #[schema(required = true, value_type = u64, minimum = 1, maximum = 31_622_400)]
    #[serde(default, deserialize_with = "super::findings::whole_secs")]
    pub for_secs: Option<u64>,
    /// Why, shown wherever the freeze holds something ("release weekend"):
    /// one line of at most 1000 characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]*$"
    )]
    #[serde(default, deserialize_with = "crate::views::reason_text")]
    pub reason: Option<String>,
}
kaizen_host::map_only!(FreezeBody, "a freeze", serialize);

/// Declare a change freeze for `for_secs` seconds: no rollout starts, and
/// rollouts in progress hold at their step with their time budget stopped
/// (a failing candidate is still rolled back). The loop goes on detecting
/// and proving. Persisted across restarts; it lapses by itself, and
/// replaces a freeze declared before. Freezes in the configuration
/// (`safety.schedule.freezes`) are not changed by this.
#[utoipa::path(put, path = "/api/v1/freeze", tag = "control", security(("admin" = [])),
    request_body(content = FreezeBody, description = "`{for_secs, reason}`"),
    responses((status = 200, body = ControlState),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "No `for_secs`, or one out of range", body = ErrorBody)))]
pub async fn freeze(
    _: Admin,
    State(s): State<AppState>,
    OptionalJson(body): OptionalJson<FreezeBody>,
) -> ApiResult<Json<ControlState>> {
    let body = body.unwrap_or_default();
    let secs = match body.for_secs {
        Some(n) if (1..=MAX_FREEZE_SECS).contains(&n) => n,
        Some(n) => {
            return Err(unprocessable(
                "invalid-freeze",
                format!("`for_secs` = {n}: a freeze lasts 1 to {MAX_FREEZE_SECS} seconds"),
            ));
        }
        None => {
            return Err(unprocessable("invalid-freeze", "`for_secs` is required: how many seconds the freeze lasts"));
        }
    };
    let why = body.reason.unwrap_or_else(|| "change freeze declared through the API".into());
    let until = kaizen_host::store::now_ms() + secs as i64 * 1000;
    let state = s.host.safety.freeze(until, "api", &why).await?;
    let event = Event::Control { action: ControlAction::Freeze, reason: why, by: "api".into(), state: state.clone() };
    s.host.events.publish("", event);
    Ok(Json(state))
}

/// Lift the change freeze declared through `PUT /api/v1/freeze` before it
/// lapses; the loop carries on at once.
#[utoipa::path(delete, path = "/api/v1/freeze", tag = "control", security(("admin" = [])), operation_id = "lift_freeze",
    request_body(content = Option<Reason>, description = "Optional: no body, `null` or `{reason}`"),
    responses((status = 200, body = ControlState),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a reason", body = ErrorBody)))]
pub async fn lift_freeze(
    _: Admin,
    State(s): State<AppState>,
    OptionalJson(body): OptionalJson<Reason>,
) -> ApiResult<Json<ControlState>> {
    let why = body.and_then(|b| b.reason).unwrap_or_else(|| "freeze lifted through the API".into());
    let state = s.host.safety.lift_freeze("api", &why).await?;
    let event =
        Event::Control { action: ControlAction::LiftFreeze, reason: why, by: "api".into(), state: state.clone() };
    s.host.events.publish("", event);
    s.host.improve.trigger();
    Ok(Json(state))
}

/// A 422 with `code`: the body was JSON of the right shape, its values are
/// not.
fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// Run one loop cycle now and return its report (waits for a cycle in
/// progress to end first).
#[utoipa::path(post, path = "/api/v1/cycles", tag = "control", security(("admin" = [])), operation_id = "run_cycle",
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

/// What to force a breaker to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BreakerForce {
    /// Calls fail fast with class `circuit-open` for `ms`.
    Open,
    Closed,
    Reset,
}

impl BreakerForce {
    fn as_str(self) -> &'static str {
        match self {
            BreakerForce::Open => "open",
            BreakerForce::Closed => "closed",
            BreakerForce::Reset => "reset",
        }
    }
}

/// How to force a breaker.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct ForceBreaker {
    pub state: BreakerForce,
    /// For `open` only: how long, in milliseconds, 1 to 31 622 400 000 (a
    /// year; default 30 000).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 31_622_400_000_u64)]
    pub ms: Option<u64>,
    /// Why, for the audit trail: one line of at most 1000 characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]*$"
    )]
    #[serde(default, deserialize_with = "crate::views::reason_text")]
    pub reason: Option<String>,
}

/// A whole, non-negative number, however JSON spells it: `3000` and
/// `3000.0` are the same integer to JSON Schema, so both are read as 3000.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!("{n} is not a whole number of milliseconds"))),
    }
}
kaizen_host::map_only!(ForceBreaker, "a breaker force");

/// Force a unit's circuit breaker open (calls fail fast with class
/// `circuit-open`), closed, or reset. An opening is kept in the store and
/// holds across a restart of this host until its time is up; closing or
/// resetting forgets it.
#[utoipa::path(post, path = "/api/v1/breakers/{target}", tag = "control", security(("admin" = [])),
    params(("target" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$", description = "Unit name")),
    request_body = ForceBreaker,
    responses((status = 200, body = Vec<BreakerView>),
        (status = 400, description = "A bad name, a body that is not JSON, or recovery is off", body = ErrorBody),
        (status = 404, description = "No unit of that name", body = ErrorBody),
        (status = 415, description = "A body not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a breaker force, an `ms` outside 1 ms to a year, or an \
`ms` for `closed` or `reset`", body = ErrorBody),
        (status = 503, description = "The store could not keep the force: nothing changed", body = ErrorBody)))]
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
    let force = match (f.state, f.ms) {
        (BreakerForce::Open, Some(ms)) if !(1..=MAX_FREEZE_SECS * 1000).contains(&ms) => {
            return Err(unprocessable(
                "invalid-breaker-force",
                format!("`ms` = {ms}: a breaker is forced open for 1 to {} ms (a year)", MAX_FREEZE_SECS * 1000),
            ));
        }
        (BreakerForce::Open, ms) => Force::Open { ms: ms.unwrap_or(30_000) },
        (state, Some(_)) => {
            return Err(unprocessable(
                "invalid-breaker-force",
                format!("`ms` is for `open` only: a breaker forced `{}` has no duration", state.as_str()),
            ));
        }
        (BreakerForce::Closed, None) => Force::Closed,
        (BreakerForce::Reset, None) => Force::Reset,
    };
    let Some(healer) = s.host.invoker.healer() else {
        return Err(ApiError::bad_request("recovery is off: there are no breakers"));
    };
    let why = f.reason.unwrap_or_else(|| "forced through the API".into());
    healer.force_kept(&target, force, &why).await?;
    s.host
        .audit(
            "api",
            "force-breaker",
            &target,
            Event::ForceBreaker { state: f.state.as_str().into(), ms: f.ms, reason: why },
        )
        .await;
    Ok(breakers(Admin, State(s)).await)
}
