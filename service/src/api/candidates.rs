//! The candidate queue (admin token): what waits for the loop and why, and
//! withdrawing a candidate before the loop takes it up. A candidate the loop
//! cannot take up (its unit is not hosted, it exceeds the change limit)
//! would otherwise wait for ever, seen only as a count in the status.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaizen_host::r#loop::queue::{QueuedCandidate, WithdrawError};

use super::{AppState, OptionalJson, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;
use crate::views::Reason;

impl From<WithdrawError> for ApiError {
    fn from(e: WithdrawError) -> ApiError {
        match e {
            WithdrawError::NotQueued { .. } => ApiError::not_found(e.to_string()),
            WithdrawError::Ambiguous { .. } => ApiError::new(StatusCode::CONFLICT, "ambiguous", e.to_string()),
            WithdrawError::TakenUp { .. } => ApiError::new(StatusCode::CONFLICT, "taken-up", e.to_string()),
            WithdrawError::Store(s) => s.into(),
        }
    }
}

/// Every queued candidate in its place in line (oldest first), each with
/// why the loop has not taken it up yet.
#[utoipa::path(get, path = "/api/v1/candidates", tag = "loop", security(("admin" = [])),
    responses((status = 200, body = Vec<QueuedCandidate>)))]
pub async fn queued(_: Admin, State(s): State<AppState>) -> ApiResult<Json<Vec<QueuedCandidate>>> {
    Ok(Json(s.host.improve.queued().await?))
}

/// Withdraw the candidate of `unit` named by `candidate` — its version, or its
/// sha256 or a prefix of at least six characters — from the queue before
/// the loop takes it up; audited as `candidate-withdrawn`. Waits for the
/// cycle in progress, so the answer is final: withdrawn, or already taken
/// up (409 `taken-up`: abort its rollout instead).
#[utoipa::path(delete, path = "/api/v1/candidates/{unit}/{candidate}", tag = "loop", security(("admin" = [])),
    params(("unit" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$"),
        ("candidate" = String, Path, description = "The candidate's version, or its sha256 (a prefix of at least six \
characters will do)")),
    request_body(content = Option<Reason>, description = "Optional: no body, `null` or `{reason}`"),
    responses((status = 200, description = "The candidate withdrawn", body = QueuedCandidate),
        (status = 400, description = "A bad unit name, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "No such candidate is queued for that unit", body = ErrorBody),
        (status = 409, description = "`candidate` names several queued candidates (`ambiguous`), the loop already \
took it up (`taken-up`), or this host is a fleet's follower (`not-leader`)", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "JSON that is not a reason", body = ErrorBody)))]
pub async fn withdraw(
    _: Admin,
    State(s): State<AppState>,
    Path((unit, candidate)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<Reason>,
) -> ApiResult<Json<QueuedCandidate>> {
    checked_name("unit", &unit)?;
    // The queue is the leader's loop's: a follower's withdrawal could race
    // the leader taking the candidate up.
    s.host.leadership.check()?;
    let reason = body.and_then(|b| b.reason).unwrap_or_else(|| "withdrawn through the API".into());
    Ok(Json(s.host.improve.withdraw(&unit, &candidate, "api", &reason).await?))
}
