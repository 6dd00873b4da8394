//! Calls into the host: invoking a unit, and telemetry pushed by services
//! the host does not run itself. Both take the invoke token.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaizen_host::runtime::class_name;
use kaizen_host::runtime::output::CallId;
use kaizen_host::runtime::types::ErrorClass;
use kaizen_host::telemetry::IngestFailure;
use kaizen_host::telemetry::ingest::{Format, IngestBatch, IngestError, IngestLimits};
use serde::Serialize;

use super::{AppState, RawBytes, checked_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::tokens::Caller;

fn too_large(what: &str, len: usize, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        format!("{what} of {len} bytes exceeds the {limit}-byte limit"),
    )
}

/// The HTTP status a unit's error class maps to.
fn status_of(class: &ErrorClass) -> (StatusCode, &'static str) {
    match class {
        ErrorClass::InvalidInput => (StatusCode::UNPROCESSABLE_ENTITY, "unit-error"),
        ErrorClass::Timeout => (StatusCode::GATEWAY_TIMEOUT, "unit-error"),
        ErrorClass::CircuitOpen => (StatusCode::SERVICE_UNAVAILABLE, "unit-error"),
        _ => (StatusCode::BAD_GATEWAY, "unit-error"),
    }
}

/// Invoke a unit: the body is its payload (bytes in whatever format the
/// unit speaks), the response its output. A failure is a JSON error whose
/// `class` is the unit's error class. `x-kaizen-version` names the version
/// that answered; `x-kaizen-deadline-ms` in the request shortens the
/// deadline. `x-kaizen-call-id` names the call in the host's log (what the
/// guest printed is logged with it).
#[utoipa::path(post, path = "/api/v1/units/{unit}/invoke", tag = "calls",
    security(("invoke" = []), ("admin" = [])),
    params(("unit" = String, Path, description = "Unit name", pattern = "^[a-z][a-z0-9-]{0,63}$"),
        ("x-kaizen-deadline-ms" = Option<u64>, Header, nullable = false,
            description = "Shorten the unit's deadline to this many milliseconds (never lengthen it)")),
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "The unit's request"),
    responses(
        (status = 200, description = "The unit's output: `application/json` when it is JSON, else \
            `application/octet-stream`", content(
                (RawBytes = "application/octet-stream"),
                (Object = "application/json"),
            ),
            headers(("x-kaizen-version" = String, description = "The version that answered"),
                ("x-kaizen-call-id" = String, description = "The call's id in the host's log"))),
        (status = 400, description = "A bad unit name or `x-kaizen-deadline-ms`", body = ErrorBody),
        (status = 404, description = "No such unit (code `unknown-unit`)", body = ErrorBody),
        (status = 413, description = "Payload over `http.max_invoke_bytes`", body = ErrorBody),
        (status = 422, description = "The unit refused the input (class invalid-input)", body = ErrorBody,
            headers(("x-kaizen-version" = String, description = "The version that failed the call"),
                ("x-kaizen-call-id" = String, description = "The call's id in the host's log"))),
        (status = 502, description = "The unit failed (trap, memory, internal, ...); a trap's message ends \
            with the last lines the guest printed", body = ErrorBody,
            headers(("x-kaizen-version" = String, description = "The version that failed the call"),
                ("x-kaizen-call-id" = String, description = "The call's id in the host's log"))),
        (status = 503, description = "Circuit open (code `unit-error`, class `circuit-open`), or the unit \
            serves nothing because its version could not be loaded at start (code `unit-not-restored`)",
            body = ErrorBody),
        (status = 504, description = "The unit ran out of time", body = ErrorBody,
            headers(("x-kaizen-version" = String, description = "The version that failed the call"),
                ("x-kaizen-call-id" = String, description = "The call's id in the host's log"))),
    ))]
pub async fn invoke(
    _: Caller,
    State(s): State<AppState>,
    Path(unit): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    checked_name("unit", &unit)?;
    let limit = s.config.http.max_invoke_bytes;
    if body.len() > limit {
        return Err(too_large("payload", body.len(), limit));
    }
    let deadline = headers
        .get("x-kaizen-deadline-ms")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("x-kaizen-deadline-ms must be a whole number of milliseconds"))
        })
        .transpose()?
        .map(Duration::from_millis)
        .map(|d| d.min(s.host.runtime.config().limits_for(&unit).deadline));
    let call = CallId::next();
    let call_header = HeaderValue::from_str(&call.to_string()).expect("hex digits");
    match call.scope(s.host.invoker.invoke(&unit, body.to_vec(), deadline)).await {
        Ok(answer) => {
            let json = serde_json::from_slice::<serde::de::IgnoredAny>(&answer.output).is_ok();
            let mut res = answer.output.into_response();
            let h = res.headers_mut();
            let ct = if json { "application/json" } else { "application/octet-stream" };
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            if let Ok(v) = HeaderValue::from_str(answer.plugin.version()) {
                h.insert("x-kaizen-version", v);
            }
            h.insert("x-kaizen-call-id", call_header);
            Ok(res)
        }
        Err(e) if matches!(&e.class, ErrorClass::Other(o) if o == "not-found") => {
            // A unit the store says serves, whose version could not be
            // loaded at start, is unavailable rather than unknown.
            match s.host.unrestored().into_iter().find(|u| u.slot == unit) {
                Some(u) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unit-not-restored",
                    format!(
                        "unit `{unit}` serves nothing: the version it served ({}) could not be loaded when the host \
                         started ({}); deploy a version to it",
                        u.sha256, u.reason
                    ),
                )),
                None => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown-unit", e.message)),
            }
        }
        Err(e) => {
            let (status, code) = status_of(&e.class);
            let class = Some(class_name(&e.class).to_string());
            let mut err = ApiError::new(status, code, e.to_string());
            err.body.class = class;
            // A failed call names the version that failed it too: during a
            // canary a client can tell which arm did.
            let mut res = err.into_response();
            if let Some(v) = e.version.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                res.headers_mut().insert("x-kaizen-version", v);
            }
            res.headers_mut().insert("x-kaizen-call-id", call_header);
            Ok(res)
        }
    }
}

/// What an ingest stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ingested {
    pub executions: usize,
    pub metrics: usize,
}

/// Send telemetry: `{"executions": [...], "metrics": [...]}` as JSON
/// (`application/json`) or MessagePack (`application/msgpack`), the batch
/// and each record a map of named fields (a positional array is refused).
/// The batch is validated whole: any bad record refuses it all, with every
/// bad record's index and reason in `details`. A 200 means it is on disk.
#[utoipa::path(post, path = "/api/v1/telemetry", tag = "calls",
    security(("invoke" = []), ("admin" = [])),
    request_body(description = "A batch of executions and metrics", content(
        (IngestBatch = "application/json", example = json!({
        "executions": [
            {"target": "checkout", "version": "4.2.0", "started_at": 1_764_590_400_000_i64, "duration_ms": 12.5,
             "outcome": "ok"},
            {"target": "checkout", "version": "4.2.0", "started_at": 1_764_590_400_250_i64, "duration_ms": 850.0,
             "outcome": "error", "error_class": "dependency", "message": "payment gateway timed out"},
            {"target": "checkout", "version": "4.2.0", "started_at": 1_764_590_400_500_i64, "duration_ms": 0.4,
             "outcome": "rejected", "error_class": "invalid-input", "request": "{\"cart\": null}"}
        ],
        "metrics": [
            {"name": "queue_depth", "value": 17.0, "at": 1_764_590_400_000_i64, "tags": {"queue": "orders"}}
        ]
    })),
        (IngestBatch = "application/msgpack"),
    )),
    responses(
        (status = 200, description = "Stored", body = Ingested),
        (status = 400, description = "Undecodable, not a map, or invalid records (each named in `details`)",
            body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Neither JSON nor MessagePack", body = ErrorBody),
    ))]
pub async fn ingest(_: Caller, State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let limit = s.config.http.max_ingest_bytes;
    if body.len() > limit {
        return Err(too_large("telemetry batch", body.len(), limit));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let format = match ct.split(';').next().unwrap_or("").trim() {
        "application/json" => Format::Json,
        "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => Format::MessagePack,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("content type `{other}`: send application/json or application/msgpack"),
            ));
        }
    };
    // Requests kept with ingested executions follow the telemetry config;
    // times must fall between the retention horizon and the allowed clock
    // skew, durations within the longest deadline the host allows.
    let t = &s.config.host.telemetry;
    let limits = IngestLimits {
        max_request_bytes: t.max_request_bytes,
        max_future_ms: (t.max_future_secs as i64).saturating_mul(1000),
        max_age_ms: (t.retention_secs as i64).saturating_mul(1000),
        max_duration_ms: s.host.runtime.config().longest_deadline().as_secs_f64() * 1000.0,
        ..Default::default()
    };
    match s.host.telemetry.ingest(&body, format, &limits).await {
        Ok(r) => Ok(axum::Json(Ingested { executions: r.executions, metrics: r.metrics }).into_response()),
        Err(IngestFailure::Refused(e)) => {
            let details = match &e {
                IngestError::BadRecords(bad) => Some(serde_json::to_value(bad).unwrap_or_default()),
                _ => None,
            };
            let err = ApiError::new(StatusCode::BAD_REQUEST, "invalid-telemetry", e.to_string());
            Err(match details {
                Some(d) => err.with_details(d),
                None => err,
            })
        }
        Err(IngestFailure::Store(e)) => Err(e.into()),
    }
}
