//! Rollouts in flight (admin token): which slots a rollout holds, and
//! aborting one. A slot with a rollout in flight belongs to it: direct
//! deploys and rollbacks of that slot answer 409 until the rollout ends or
//! is aborted here.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use kaizen_host::safety::RolloutInfo;
use kaizen_host::store::improvements::Improvement;

use super::{AppState, OptionalJson, checked_name};
use crate::error::{ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::Reason;

/// How long an abort waits for the rollout to have taken its candidate
/// back before answering with the improvement as it stands.
const ABORT_WAIT: Duration = Duration::from_secs(30);

/// Every rollout in flight.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "control", security(("admin" = [])),
    responses((status = 200, body = Vec<RolloutInfo>)))]
pub async fn in_flight(_: Admin, State(s): State<AppState>) -> Json<Vec<RolloutInfo>> {
    Json(s.host.safety.rollouts())
}

/// Abort the rollout of `unit`: its candidate is taken back, the
/// checkpoint serves every call, and the improvement ends `aborted` (not
/// counted against the loop by its self-watch). Answers once the rollout
/// has done so, with the improvement. A proven candidate waiting to roll
/// out (outside a rollout window, in a freeze, at the rollout limit) is
/// aborted where it waits: its improvement ends `aborted` and it is not
/// queued again.
#[utoipa::path(post, path = "/api/v1/rollouts/{unit}/abort", tag = "control", security(("admin" = [])),
    params(("unit" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    request_body(content = Option<Reason>, description = "Optional: no body, `null` or `{reason}`"),
    responses((status = 200, description = "The improvement, ended `aborted` (or as it ended, when it ended \
first)", body = Improvement),
        (status = 400, description = "A bad unit name, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "No rollout of that unit is in flight and no proven candidate of it waits", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a reason", body = ErrorBody)))]
pub async fn abort_rollout(
    _: Admin,
    State(s): State<AppState>,
    Path(unit): Path<String>,
    OptionalJson(body): OptionalJson<Reason>,
) -> ApiResult<Json<Improvement>> {
    checked_name("unit", &unit)?;
    let reason = body.and_then(|b| b.reason).unwrap_or_else(|| "operator abort through the API".into());
    Ok(Json(s.host.abort_rollout(&unit, "api", &reason, ABORT_WAIT).await?))
}
