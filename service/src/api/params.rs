//! Query parameters, strictly: a parameter the route does not take
//! (`?mdoe=candidate`, `?limt=5`) is refused by name (400) instead of
//! ignored — ignored, a misspelt `mode` deploys at once and a misspelt
//! `limit` answers with the default. `token` is every route's (the
//! credential for clients that cannot set headers, read by the
//! authentication extractors), so it is set aside before the route's own
//! parameters are read.

use axum::extract::{FromRequestParts, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Extractor: the route's parameters `T` (which denies unknown fields),
/// `token` aside.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let own: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("token"))
            .collect();
        let uri: Uri = format!("/?{}", own.join("&"))
            .parse()
            .map_err(|e| ApiError::bad_request(format!("the query string is not valid: {e}")))?;
        Query::<T>::try_from_uri(&uri).map(|Query(t)| Params(t)).map_err(|r| ApiError::bad_request(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        limit: Option<i64>,
    }

    async fn extract(uri: &str) -> Result<Limit, String> {
        let (mut parts, ()) = axum::http::Request::get(uri).body(()).unwrap().into_parts();
        Params::<Limit>::from_request_parts(&mut parts, &()).await.map(|p| p.0).map_err(|e| e.body.message)
    }

    #[tokio::test]
    async fn the_token_is_set_aside_and_a_misspelt_parameter_is_named() {
        assert_eq!(extract("/x").await, Ok(Limit { limit: None }));
        assert_eq!(extract("/x?token=abc&limit=5").await, Ok(Limit { limit: Some(5) }));
        assert_eq!(extract("/x?limit=5&token=abc&").await, Ok(Limit { limit: Some(5) }));
        let err = extract("/x?limt=5&token=abc").await.unwrap_err();
        assert!(err.contains("unknown field `limt`") && err.contains("`limit`"), "{err}");
        assert!(extract("/x?limit=many").await.unwrap_err().contains("limit"));
    }
}
