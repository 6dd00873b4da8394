//! An optional JSON request body, as the document declares it
//! (`oneOf[null, T]`, not required): no body, an empty body and JSON `null`
//! all mean "none"; anything else must be JSON of the expected shape.
//!
//! axum's `Option<Json<T>>` takes only a missing `Content-Type` for "none":
//! it refuses `null` (422) and an empty body sent as JSON (400), which is
//! what `curl -X POST -H 'content-type: application/json'` and many
//! clients send when there is nothing to say.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Extractor: `Some(T)` for a JSON body of that shape, `None` for no body,
/// an empty one or `null`.
pub struct OptionalJson<T>(pub Option<T>);

/// Whether a content type names JSON (`application/json` or a
/// `+json` subtype), with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?").to_string());
        // Over the body limit → 413, shaped into JSON by the error layer.
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        // Only a body of no bytes at all is "none": whitespace alone is
        // not a JSON text (RFC 8259 §2 requires a value), so it is refused
        // below as a syntax error like any other malformed body.
        if bytes.is_empty() {
            return Ok(OptionalJson(None));
        }
        match content_type.as_deref() {
            Some(ct) if is_json(ct) => {}
            other => {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    format!(
                        "a body sent as {}: send it as application/json, or send none",
                        other.map_or("no content type".to_string(), |c| format!("`{c}`"))
                    ),
                )
                .into_response());
            }
        }
        // Syntax errors are 400, a well-formed body of the wrong shape 422;
        // both name what was wrong.
        Json::<Option<T>>::from_bytes(&bytes).map(|Json(v)| OptionalJson(v)).map_err(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Why {
        reason: Option<String>,
    }

    async fn extract(content_type: Option<&str>, body: &'static str) -> Result<Option<Why>, StatusCode> {
        let mut req = Request::post("/");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(axum::body::Body::from(body)).unwrap();
        OptionalJson::<Why>::from_request(req, &()).await.map(|o| o.0).map_err(|r| r.status())
    }

    #[tokio::test]
    async fn nothing_empty_and_null_mean_none() {
        assert_eq!(extract(None, "").await, Ok(None));
        assert_eq!(extract(Some("application/json"), "").await, Ok(None));
        assert_eq!(extract(Some("application/json"), "null").await, Ok(None));
        assert_eq!(extract(Some("application/json; charset=utf-8"), "{}").await, Ok(Some(Why { reason: None })));
        let why = extract(Some("application/json"), r#"{"reason":"maintenance"}"#).await;
        assert_eq!(why, Ok(Some(Why { reason: Some("maintenance".into()) })));
    }

    #[tokio::test]
    async fn anything_else_is_refused_with_its_status() {
        assert_eq!(extract(Some("application/json"), "{").await, Err(StatusCode::BAD_REQUEST));
        assert_eq!(extract(Some("application/json"), "\t").await, Err(StatusCode::BAD_REQUEST));
        assert_eq!(extract(Some("application/json"), " \n").await, Err(StatusCode::BAD_REQUEST));
        assert_eq!(extract(Some("application/json"), r#"{"reason":5}"#).await, Err(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(extract(Some("application/json"), "[]").await, Err(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(extract(Some("text/plain"), "null").await, Err(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert_eq!(extract(None, "{}").await, Err(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
}
