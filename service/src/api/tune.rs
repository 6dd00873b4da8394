//! Config candidates by hand: an operator proposes new values for some of a
//! unit's declared tunables; the loop proves, canaries and judges them like
//! a new module version.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kaizen_host::r#loop::tune::{TuneError, parse_value};
use kaizen_host::r#loop::{Submitted, TuneFailed};
use kaizen_host::runtime::types::Setting;
use serde::{Deserialize, Serialize};

use super::{AppState, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Admin;

/// New values for some of a unit's tunables.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneRequest {
    /// Tunable name → value: a number, a boolean or a choice's name (a
    /// string is read as the operator would write it on the command line).
    #[schema(value_type = Object, example = json!({"chunk_size": 64}))]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// The config candidate queued.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tuned {
    pub unit: String,
    /// The candidate's version: the module's, `+config.` and the config
    /// version's first 12 hex digits.
    pub version: String,
    /// The candidate's id: the module's sha256 `+` the config's.
    pub id: String,
    /// Every tunable's value in the candidate, as the unit reads it.
    pub settings: BTreeMap<String, String>,
    /// `candidate` (queued for the loop) or `unchanged` (already queued or
    /// in a rollout: `detail` says where).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Propose new tunable values for a unit: a config candidate of the module
/// it serves, checked against the unit's declarations and
/// `[loop.tuning.UNIT]`, then queued for the loop (proof, canary, judge).
#[utoipa::path(post, path = "/api/v1/units/{unit}/tune", tag = "plugins", security(("admin" = [])),
    params(("unit" = String, Path, pattern = "^[a-z][a-z0-9-]{0,63}$")),
    request_body = TuneRequest,
    responses((status = 202, body = Tuned),
        (status = 400, description = "A bad unit name, or a body that is not JSON", body = ErrorBody),
        (status = 404, description = "No such unit", body = ErrorBody),
        (status = 415, description = "A body that is not sent as application/json", body = ErrorBody),
        (status = 422, description = "A tunable not declared, not allowed, not safe to canary, or a value out of \
bounds: the reason is named", body = ErrorBody)))]
pub async fn tune(
    _: Admin,
    State(s): State<AppState>,
    Path(unit): Path<String>,
    body: Result<Json<TuneRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<Tuned>)> {
    // The name first: a bad name is a 400 whatever the body says.
    checked_name("unit", &unit)?;
    let slot = s.host.runtime.unit_slot(&unit).map_err(|e| ApiError::not_found(e.message))?;
    let Json(body) = body?;
    s.host.leadership.check()?;
    let serving = slot.current();
    let refused = |e: TuneError| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-tuning", e.to_string());
    let mut changes = Vec::new();
    for (name, value) in &body.settings {
        let tunables = &serving.info().tunables;
        let Some(tunable) = tunables.iter().find(|t| &t.name == name) else {
            let declared = tunables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(if declared.is_empty() {
                refused(TuneError::NoTunables { unit })
            } else {
                refused(TuneError::NotTunable { unit, name: name.clone(), declared })
            });
        };
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
            other => {
                return Err(refused(TuneError::Invalid {
                    unit: unit.clone(),
                    name: name.clone(),
                    why: format!("{other} is not a number, a boolean or a name"),
                }));
            }
        };
        let value = parse_value(tunable, &text)
            .map_err(|why| refused(TuneError::Invalid { unit: unit.clone(), name: name.clone(), why }))?;
        changes.push(Setting { name: name.clone(), value });
    }
    let (candidate, submitted) = match s.host.improve.tune(&unit, &changes, "api").await {
        Ok(done) => done,
        Err(TuneFailed::Refused(TuneError::NoSuchUnit(u))) => {
            return Err(ApiError::not_found(format!("no unit named `{u}`")));
        }
        Err(TuneFailed::Refused(e)) => return Err(refused(e)),
        Err(TuneFailed::Store(e)) => return Err(e.into()),
    };
    let settings = candidate.config_version().map(|c| c.settings.clone()).unwrap_or_default();
    let (result, detail) = match submitted {
        Submitted::Queued => {
            s.host.improve.trigger();
            ("candidate", None)
        }
        Submitted::AlreadyPending(why) => ("unchanged", Some(why)),
        Submitted::Forwarded(to) => ("candidate", Some(to)),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Tuned {
            unit,
            version: candidate.version().into(),
            id: candidate.id().into(),
            settings,
            result: result.into(),
            detail,
        }),
    ))
}
