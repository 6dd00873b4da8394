//! Plugins: what each slot serves, the versions known, and uploading a
//! module (deployed directly or handed to the loop as a candidate).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaizen_host::r#loop::Submitted;
use kaizen_host::runtime::types::PluginKind;
use kaizen_host::runtime::validate::world_name;
use kaizen_host::runtime::{Installed, Plugin, Slot};
use kaizen_host::store::{self, modules::ModuleRecord};
use serde::Deserialize;

use super::{AppState, Params, RawBytes, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::{CanaryView, SlotView, Uploaded, VersionView};

fn version(p: &Plugin) -> VersionView {
    VersionView { version: p.version().into(), sha256: p.id().into() }
}

pub fn slot_view(s: &Slot) -> SlotView {
    let serving = s.serving();
    let history: Vec<VersionView> = s.history().iter().map(|p| version(p)).collect();
    SlotView {
        name: s.name().into(),
        kind: world_name(s.kind()).into(),
        current: version(&serving.current),
        previous: history.first().cloned(),
        canary: serving.canary.as_ref().map(|c| CanaryView {
            version: c.plugin.version().into(),
            sha256: c.plugin.id().into(),
            percent: c.percent,
            holdback: c.holdback,
        }),
        history,
    }
}

pub fn all_slots(s: &AppState) -> Vec<SlotView> {
    let mut v: Vec<SlotView> = s.host.runtime.slots().iter().map(|s| slot_view(s)).collect();
    v.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    v
}

/// Every slot with its current, previous and canary versions.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("admin" = [])), operation_id = "list_plugins",
    responses((status = 200, body = Vec<SlotView>)))]
pub async fn list(_: Admin, State(s): State<AppState>) -> Json<Vec<SlotView>> {
    Json(all_slots(&s))
}

/// Every version of a plugin the host has seen.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/versions", tag = "plugins", security(("admin" = [])),
    params(("name" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    responses((status = 200, body = Vec<ModuleRecord>), (status = 400, description = "A bad plugin name", body = ErrorBody)))]
pub async fn versions(
    _: Admin,
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<ModuleRecord>>> {
    checked_name("plugin", &name)?;
    Ok(Json(store::modules::by_name(&s.host.db, &name).await?))
}

/// What to do with an uploaded module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    /// Detectors and strategies deploy at once; a unit becomes a candidate
    /// for the loop unless its slot is empty.
    #[default]
    Auto,
    /// Deploy now.
    Deploy,
    /// Always hand to the loop (units only).
    Candidate,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// `auto` (default): detectors and strategies deploy at once, a unit
    /// becomes a candidate for the loop unless its slot is empty;
    /// `deploy`: deploy now; `candidate`: always hand to the loop.
    #[param(inline, nullable = false)]
    pub mode: Option<UploadMode>,
    /// `true`: the module's bytes become its version's bytes even when that
    /// version is recorded with other bytes (audited as `replace-version`
    /// with both sha256s). Without it such a module is refused (409
    /// `version-exists`): a version's bytes never change.
    #[param(nullable = false)]
    pub replace: Option<bool>,
}

/// Upload a module (the body is the `.wasm` file). It is validated like a
/// dropped file; a refusal names the reason and changes nothing.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", security(("admin" = [])),
    params(UploadParams),
    request_body(description = "The `.wasm` file as the body (any content type but a multipart form is read \
as the module's bytes)", content(
        (RawBytes = "application/wasm"),
        (RawBytes = "application/octet-stream"),
    )),
    responses((status = 200, body = Uploaded),
        (status = 400, description = "An unknown `mode`, or `candidate` for a module that is no unit", body = ErrorBody),
        (status = 409, description = "The slot refused the module (a different kind under that name), a \
rollout holds the slot (`rollout-in-flight`: abort it first), or its version is recorded with other bytes \
(`version-exists`: bump the version, or `replace=true`)", body = ErrorBody),
        (status = 415, description = "A multipart form (`curl -F`): the module goes as the body itself \
(`curl --data-binary @FILE`)", body = ErrorBody),
        (status = 422, description = "Not a valid module: the reason is named", body = ErrorBody)))]
pub async fn upload(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<UploadParams>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Uploaded>> {
    // A form's bytes are no module: say how to send one instead of
    // reporting the form's boundary as a bad wasm header.
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    if form {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "the module goes as the request body itself, not in a multipart form: \
             `curl --data-binary @FILE.wasm -H 'content-type: application/wasm' …` (or `kaizen deploy FILE`)",
        ));
    }
    let mode = q.mode.unwrap_or_default();
    let h = s.host.clone();
    let plugin = tokio::task::spawn_blocking(move || h.runtime.load("upload", &body))
        .await
        .map_err(|e| ApiError::internal(format!("validation crashed: {e}")))?
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-module", e.to_string()))?;
    let slot = s.host.runtime.slot(plugin.name());
    let unit = plugin.kind() == PluginKind::Unit;
    if mode == UploadMode::Candidate && !unit {
        return Err(ApiError::bad_request("only units go through the loop as candidates"));
    }
    let candidate = unit && (mode == UploadMode::Candidate || (mode == UploadMode::Auto && slot.is_some()));
    if q.replace == Some(true) {
        // In a fleet, what serves is the leader's to change.
        s.host.leadership.check()?;
        s.host.replace_version(&plugin, "api").await?;
    }
    let view = |result: &str| Uploaded {
        name: plugin.name().into(),
        kind: world_name(plugin.kind()).into(),
        version: plugin.version().into(),
        sha256: plugin.id().into(),
        result: result.into(),
        detail: None,
    };
    if candidate {
        if slot.is_some_and(|sl| sl.current().id() == plugin.id()) {
            return Ok(Json(view("unchanged")));
        }
        // A follower queues the candidate for the leader, whose loop proves
        // and rolls it out on every host.
        match s.host.submit(plugin.clone(), "api").await? {
            Submitted::AlreadyPending(why) => return Ok(Json(Uploaded { detail: Some(why), ..view("unchanged") })),
            Submitted::Forwarded(to) => return Ok(Json(Uploaded { detail: Some(to), ..view("candidate") })),
            Submitted::Queued => {}
        }
        s.host.improve.trigger();
        return Ok(Json(view("candidate")));
    }
    let installed = s.host.deploy(plugin.clone(), "api", "uploaded through the API").await?;
    Ok(Json(view(if matches!(installed, Installed::Unchanged) { "unchanged" } else { "deployed" })))
}
