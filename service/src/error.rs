//! The API's one error shape: a status, a stable machine-readable `code` and
//! a message for people. Every failure a client can see goes through here,
//! including axum's own rejections (see [`json_errors`]).

use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// An error as a client sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code for scripts: `unauthorized`, `forbidden`, `not-found`,
    /// `bad-request`, `invalid-module`, `payload-too-large`, `unit-error`, ...
    pub code: String,
    pub message: String,
    /// For unit errors: the error class (`timeout`, `trap`, `invalid-input`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Extra structured detail (e.g. every bad record of a telemetry batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error returned by a handler.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError { status, body: ErrorBody { code: code.into(), message: message.into(), class: None, details: None } }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }
    pub fn with_class(mut self, class: impl Into<String>) -> Self {
        self.body.class = Some(class.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<kaizen_host::store::StoreError> for ApiError {
    fn from(e: kaizen_host::store::StoreError) -> Self {
        if let kaizen_host::store::StoreError::VersionTaken(taken) = &e {
            let hint = "`kaizen deploy --replace`, or `?replace=true` on `POST /api/v1/plugins`";
            return ApiError::new(StatusCode::CONFLICT, "version-exists", format!("{taken} ({hint})"));
        }
        if e.is_fenced() {
            let why =
                format!("this host does not hold the fleet's leader lease, so it may not change what serves: {e}");
            return ApiError::new(StatusCode::CONFLICT, "not-leader", why);
        }
        tracing::error!("store error: {e}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", e.to_string())
    }
}

use kaizen_host::runtime::{RuntimeError, SlotError};
use kaizen_host::safety::Denied;

impl From<kaizen_host::host::HostError> for ApiError {
    fn from(e: kaizen_host::host::HostError) -> Self {
        match e {
            kaizen_host::host::HostError::Store(s) => s.into(),
            kaizen_host::host::HostError::Runtime(RuntimeError::Slot(SlotError::Owned { slot, holder })) => {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "rollout-in-flight",
                    format!(
                        "slot `{slot}` is held by {holder}; to change it now, abort the rollout first: \
                         `kaizen abort {slot}` or POST /api/v1/rollouts/{slot}/abort"
                    ),
                )
            }
            kaizen_host::host::HostError::Runtime(r) => ApiError::new(StatusCode::CONFLICT, "conflict", r.to_string()),
            kaizen_host::host::HostError::Settings(s) => ApiError::internal(s.to_string()),
            kaizen_host::host::HostError::Denied(d @ Denied::NoRollout(_)) => ApiError::not_found(d.to_string()),
            kaizen_host::host::HostError::Denied(d) => ApiError::new(StatusCode::CONFLICT, "denied", d.to_string()),
            kaizen_host::host::HostError::NotLeader(n) => n.into(),
            kaizen_host::host::HostError::Fleet(f) => ApiError::internal(f.to_string()),
        }
    }
}

/// A follower asked to do what only the fleet's leader does: 409, naming
/// the leader and its address.
impl From<kaizen_host::fleet::NotLeader> for ApiError {
    fn from(n: kaizen_host::fleet::NotLeader) -> Self {
        ApiError::new(StatusCode::CONFLICT, "not-leader", n.to_string())
    }
}

/// A body axum could not read as the handler's JSON type, for handlers
/// that check their path first (a bad name is named before a bad body).
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(r.status(), code_for(r.status()), r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware: any error response that is not already JSON (axum's
/// rejections — unknown route, wrong method, body too large, malformed
/// JSON — and caught panics) is rewritten into the [`ErrorBody`] shape, so
/// clients parse one format. A body-limit refusal names the limit
/// (`body_limit` bytes, `http.max_body_bytes`): axum's own words do not.
pub async fn json_errors(body_limit: usize, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        message = format!("the request body is over the {body_limit}-byte limit (`http.max_body_bytes`): {message}");
    }
    let body = ErrorBody { code: code_for(status).into(), message, class: None, details: None };
    let mut out = Response::from_parts(parts, Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    out.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out
}

/// A panic in a handler becomes a 500 with a JSON body, never a dropped
/// connection.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!("handler panicked: {what}");
    ApiError::internal("the request failed inside the host; it was logged").into_response()
}
