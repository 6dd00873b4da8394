//! Operators' actions on findings (admin token): acknowledge, snooze for a
//! while, or close; each audited and published as a `finding` event.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaizen_host::findings::{FindingAction, FindingActionError};
use kaizen_host::store;
use kaizen_host::store::findings::FindingRecord;
use serde::{Deserialize, Serialize};

use super::{AppState, OptionalJson};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;

/// An action on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Seen: no more notifications; the loop may still act on it, and it
    /// resolves by itself like an open one.
    Acknowledge,
    /// Put aside for `for_secs` seconds: the loop leaves it alone until
    /// then, and it opens again after if still reported.
    Snooze,
    /// The loop leaves it alone until it clears and recurs (then a new
    /// occurrence opens, linked by `previous`).
    Close,
}

/// How long a snooze lasts when the body does not say.
pub const DEFAULT_SNOOZE_SECS: u64 = 3600;

/// Why an operator acts on a finding, and for a snooze how long.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct FindingActionBody {
    /// Why, for the audit trail: one line of at most 1000 characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]*$"
    )]
    #[serde(default, deserialize_with = "crate::views::reason_text")]
    pub reason: Option<String>,
    /// For `snooze`: seconds to put the finding aside, 1 to 31 622 400
    /// (a year; default 3600).
    #[schema(minimum = 1, maximum = 31_622_400)]
    #[serde(default, deserialize_with = "whole_secs")]
    pub for_secs: Option<u64>,
}

/// A whole number of seconds however JSON spells it (`60` or `60.0`).
pub(crate) fn whole_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!("{n} is not a whole number of seconds"))),
    }
}
kaizen_host::map_only!(FindingActionBody, "a finding action", serialize);

impl From<FindingActionError> for ApiError {
    fn from(e: FindingActionError) -> ApiError {
        match e {
            FindingActionError::NotFound(_) => ApiError::not_found(e.to_string()),
            FindingActionError::Resolved { .. }
            | FindingActionError::Addressed(_)
            | FindingActionError::Closed { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            FindingActionError::SnoozeLength(_) => ApiError::bad_request(e.to_string()),
            FindingActionError::NotLeader(n) => n.into(),
            FindingActionError::Store(s) => s.into(),
        }
    }
}

/// One finding.
#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "loop", security(("admin" = [])), operation_id = "get_finding",
    params(("id" = i64, Path)),
    responses((status = 200, body = FindingRecord),
        (status = 400, description = "An id that is not an integer", body = ErrorBody),
        (status = 404, description = "No such finding", body = ErrorBody)))]
pub async fn finding(_: Admin, State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<FindingRecord>> {
    store::findings::get(&s.host.db, id).await?.map(Json).ok_or_else(|| ApiError::not_found(format!("no finding {id}")))
}

/// Acknowledge, snooze (`{"for_secs": N}`, default an hour) or close a
/// finding; audited.
/// Answers with the finding as it stands after.
#[utoipa::path(post, path = "/api/v1/findings/{id}/{action}", tag = "loop", security(("admin" = [])),
    params(("id" = i64, Path), ("action" = inline(Action), Path, description = "acknowledge, snooze or close")),
    request_body(content = Option<FindingActionBody>, description = "Optional: no body, `null` or `{reason, for_secs}`"),
    responses((status = 200, body = FindingRecord),
        (status = 400, description = "An id that is not an integer, a body that is not JSON, or a snooze of 0 seconds", body = ErrorBody),
        (status = 404, description = "No such finding or action", body = ErrorBody),
        (status = 409, description = "The finding is resolved, an improvement for it is under way, it is closed and the action is acknowledge, or this host is a fleet's follower (`not-leader`)", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a finding action", body = ErrorBody)))]
pub async fn act(
    _: Admin,
    State(s): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    OptionalJson(body): OptionalJson<FindingActionBody>,
) -> ApiResult<Json<FindingRecord>> {
    let Ok(kind) = serde_json::from_value::<Action>(serde_json::Value::String(action.clone())) else {
        return Err(ApiError::not_found(format!(
            "unknown finding action {:?}: use acknowledge, snooze or close",
            action.chars().take(40).collect::<String>()
        )));
    };
    let body = body.unwrap_or_default();
    let action = match kind {
        Action::Acknowledge => FindingAction::Acknowledge,
        Action::Close => FindingAction::Close,
        Action::Snooze => FindingAction::Snooze { secs: body.for_secs.unwrap_or(DEFAULT_SNOOZE_SECS) },
    };
    let why = body.reason.unwrap_or_else(|| "through the API".into());
    Ok(Json(s.host.act_on_finding(id, action, "api", &why).await?))
}
