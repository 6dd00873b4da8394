//! What fixed what: the knowledge the loop has gathered about its targets.

use axum::Json;
use axum::extract::State;
use kaizen_host::r#loop::knowledge::{self, Fix};
use serde::Deserialize;

use kaizen_host::store;

use super::{AppState, Params, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeQuery {
    /// Only fixes on this unit.
    #[param(pattern = "^[a-z][a-z0-9-]{0,63}$", nullable = false)]
    pub target: Option<String>,
    /// Only fixes of this finding kind (`latency-over-budget`, …); a kind
    /// nothing fixed gives an empty list.
    #[param(nullable = false)]
    pub kind: Option<String>,
}

/// Every change promoted after a finding, by target and finding kind, with
/// what the judge measured and how often it held (the kind did not come
/// back on the target afterwards), most often promoted first.
#[utoipa::path(get, path = "/api/v1/knowledge", tag = "loop", security(("admin" = [])), params(KnowledgeQuery),
    responses((status = 200, body = Vec<Fix>),
        (status = 400, description = "A bad target name", body = ErrorBody),
        (status = 404, description = "No such unit, and none by that name ever deployed", body = ErrorBody)))]
pub async fn knowledge(
    _: Admin,
    State(s): State<AppState>,
    Params(q): Params<KnowledgeQuery>,
) -> ApiResult<Json<Vec<Fix>>> {
    if let Some(t) = &q.target {
        checked_name("target", t)?;
    }
    let fixes = knowledge::fixes(&s.host.db, &s.host.runtime, q.target.as_deref(), q.kind.as_deref()).await?;
    // A unit that fixed nothing yet has empty knowledge; a name never
    // deployed is a mistake (a typo), as for its history.
    if let Some(t) = &q.target
        && fixes.is_empty()
        && s.host.runtime.slot(t).is_none()
        && store::deployments::history(&s.host.db, t, 1).await?.is_empty()
    {
        return Err(ApiError::not_found(format!("no unit named `{t}`, and none by that name ever deployed")));
    }
    Ok(Json(fixes))
}
