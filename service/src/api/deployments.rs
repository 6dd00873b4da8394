//! Deployments: what each slot serves per the store, its history, rolling
//! a slot back, and how its calls get their instances.

use axum::Json;
use axum::extract::{Path, State};
use kaizen_host::config::{InstanceMode, Instances};
use kaizen_host::store::{self, deployments::Deployment, deployments::HistoryEntry};
use serde::{Deserialize, Serialize};

use super::{AppState, OptionalJson, Params, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::{Reason, RolledBack};

/// Every slot's deployment record.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "plugins", security(("admin" = [])), operation_id = "list_deployments",
    responses((status = 200, body = Vec<Deployment>)))]
pub async fn list(_: Admin, State(s): State<AppState>) -> ApiResult<Json<Vec<Deployment>>> {
    Ok(Json(store::deployments::all(&s.host.db).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// At most this many entries: default 50; values below 1 count as 1,
    /// above 1000 as 1000.
    #[param(nullable = false)]
    pub limit: Option<i64>,
}

pub fn limit(l: Option<i64>) -> i64 {
    l.unwrap_or(50).clamp(1, 1000)
}

/// A slot's deployment history, newest first.
#[utoipa::path(get, path = "/api/v1/deployments/{slot}/history", tag = "plugins", security(("admin" = [])),
    params(("slot" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$"), Limit),
    responses((status = 200, body = Vec<HistoryEntry>),
        (status = 400, description = "A bad slot name or a `limit` that is not an integer", body = ErrorBody),
        (status = 404, description = "No such slot, and none by that name ever deployed", body = ErrorBody)))]
pub async fn history(
    _: Admin,
    State(s): State<AppState>,
    Path(slot): Path<String>,
    Params(q): Params<Limit>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    checked_name("slot", &slot)?;
    let entries = store::deployments::history(&s.host.db, &slot, limit(q.limit)).await?;
    // A slot unloaded since keeps its history; a name never deployed is a
    // mistake (a typo), not a slot without deployments.
    if entries.is_empty() && s.host.runtime.slot(&slot).is_none() {
        return Err(ApiError::not_found(format!("no slot named `{slot}`, and none by that name ever deployed")));
    }
    Ok(Json(entries))
}

/// Roll a slot back to its previous version (the exact bytes).
#[utoipa::path(post, path = "/api/v1/deployments/{slot}/rollback", tag = "plugins", security(("admin" = [])),
    params(("slot" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    request_body(content = Option<Reason>, description = "Optional: no body, `null` or `{reason}`"),
    responses((status = 200, body = RolledBack),
        (status = 400, description = "A bad slot name, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "No such slot", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to, or a rollout holds the slot (`rollout-in-flight`: \
abort it first)", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a reason", body = ErrorBody)))]
pub async fn rollback(
    _: Admin,
    State(s): State<AppState>,
    Path(slot): Path<String>,
    OptionalJson(body): OptionalJson<Reason>,
) -> ApiResult<Json<RolledBack>> {
    checked_name("slot", &slot)?;
    if s.host.runtime.slot(&slot).is_none() {
        return Err(ApiError::not_found(format!("no slot named `{slot}`")));
    }
    let reason = body.and_then(|b| b.reason).unwrap_or_else(|| "operator rollback through the API".into());
    let rb = s.host.rollback(&slot, "api", &reason).await?;
    Ok(Json(RolledBack {
        slot,
        from: rb.from.version().into(),
        to: rb.to.version().into(),
        to_sha256: rb.to.id().into(),
    }))
}

/// A slot's instance mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstancesView {
    pub slot: String,
    /// `fresh`: a new instance per call. `warm`: instances reused between
    /// calls (what a call leaves in guest memory is seen by later calls of
    /// the slot); each is dropped after a failed call and after `reuse` calls.
    pub mode: InstanceMode,
    /// Calls one warm instance serves before it is re-created.
    pub reuse: u32,
}

impl InstancesView {
    fn of(slot: String, i: Instances) -> Self {
        InstancesView { slot, mode: i.mode, reuse: i.reuse }
    }
}

/// A change of a slot's instance mode.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct SetInstances {
    pub mode: InstanceMode,
    /// Calls one warm instance serves before it is re-created, at least 1
    /// (unchanged when absent).
    #[serde(default, deserialize_with = "super::control::whole_number")]
    #[schema(minimum = 1, maximum = 4294967295_u64)]
    pub reuse: Option<u64>,
}
kaizen_host::map_only!(SetInstances, "an instance mode");

fn slot_or_404(s: &AppState, slot: &str) -> ApiResult<()> {
    checked_name("slot", slot)?;
    if s.host.runtime.slot(slot).is_none() {
        return Err(ApiError::not_found(format!("no slot named `{slot}`")));
    }
    Ok(())
}

/// How a slot's calls get their instances.
#[utoipa::path(get, path = "/api/v1/deployments/{slot}/instances", tag = "plugins", security(("admin" = [])),
    params(("slot" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    responses((status = 200, body = InstancesView),
        (status = 400, description = "A bad slot name", body = ErrorBody),
        (status = 404, description = "No such slot", body = ErrorBody)))]
pub async fn instances(
    _: Admin,
    State(s): State<AppState>,
    Path(slot): Path<String>,
) -> ApiResult<Json<InstancesView>> {
    slot_or_404(&s, &slot)?;
    let i = s.host.runtime.instances(&slot);
    Ok(Json(InstancesView::of(slot, i)))
}

/// Serve a slot's calls from fresh instances, or from warm instances each
/// re-created after `reuse` calls and after any failed call. Applies at once
/// to every version the slot holds (their warm instances are dropped) and to
/// versions loaded later, until the host restarts: the configuration's
/// `[runtime.instances.NAME]` is what a restart reads.
#[utoipa::path(put, path = "/api/v1/deployments/{slot}/instances", tag = "plugins", security(("admin" = [])),
    params(("slot" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    request_body = SetInstances,
    responses((status = 200, body = InstancesView),
        (status = 400, description = "A bad slot name, a body that is not JSON, or `reuse` outside 1 to 4294967295",
            body = ErrorBody),
        (status = 404, description = "No such slot", body = ErrorBody),
        (status = 415, description = "A body not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not an instance mode", body = ErrorBody)))]
pub async fn set_instances(
    _: Admin,
    State(s): State<AppState>,
    Path(slot): Path<String>,
    body: Result<Json<SetInstances>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<InstancesView>> {
    slot_or_404(&s, &slot)?;
    let Json(body) = body?;
    let reuse = match body.reuse {
        None => s.host.runtime.instances(&slot).reuse,
        Some(n) => match u32::try_from(n) {
            Ok(n) if n >= 1 => n,
            _ => return Err(ApiError::bad_request(format!("`reuse` = {n}: must be between 1 and 4294967295"))),
        },
    };
    let i = Instances { mode: body.mode, reuse };
    s.host.runtime.set_instances(&slot, i).map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(slot = %slot, mode = ?i.mode, reuse = i.reuse, "instance mode changed through the API");
    Ok(Json(InstancesView::of(slot, i)))
}
