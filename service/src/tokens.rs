//! The API tokens and the extractors that check them.
//!
//! The invoke token may call units and send telemetry; the admin token may
//! do everything; the metrics token may only read `/metrics`, so that a
//! Prometheus scraper holds no token that could change anything. A token
//! comes in `Authorization: Bearer …` or, for the event stream (which
//! browsers open without headers), a `token` query parameter. Missing or
//! unknown → 401; a token on a route its rights do not cover → 403.
//! Comparisons are constant-time.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::TokenConfig;
use crate::error::ApiError;

/// The tokens in force.
#[derive(Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub admin: String,
    pub invoke: String,
    /// Read-only: `/metrics` and nothing else. Absent from a `tokens.json`
    /// written before it existed: generated then, and kept.
    #[serde(default)]
    pub metrics: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// A token's rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads `/metrics`, nothing else.
    Metrics,
    /// Invokes units and sends telemetry.
    Invoke,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether this role may use a route that needs `need`: admin may use
    /// every route, the others only their own.
    fn covers(self, need: Role) -> bool {
        self == Role::Admin || self == need
    }
}

fn generate() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Tokens {
    /// Where a data directory keeps its generated tokens.
    pub fn file(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("tokens.json")
    }

    /// Configured tokens, else those kept in `<data_dir>/tokens.json`, else
    /// new ones (saved there). Returns whether any were generated now: only
    /// then are they shown, once.
    pub fn resolve(config: &TokenConfig, data_dir: &Path) -> std::io::Result<(Tokens, bool)> {
        let file = Self::file(data_dir);
        let kept: Option<Tokens> = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let mut generated = false;
        let mut pick = |configured: &Option<String>, kept: Option<&String>| {
            configured.clone().or_else(|| kept.filter(|k| !k.is_empty()).cloned()).unwrap_or_else(|| {
                generated = true;
                generate()
            })
        };
        let tokens = Tokens {
            admin: pick(&config.admin, kept.as_ref().map(|k| &k.admin)),
            invoke: pick(&config.invoke, kept.as_ref().map(|k| &k.invoke)),
            metrics: pick(&config.metrics, kept.as_ref().map(|k| &k.metrics)),
        };
        if generated {
            std::fs::create_dir_all(data_dir)?;
            let tmp = data_dir.join("tokens.json.tmp");
            write_private(&tmp, &serde_json::to_vec_pretty(&tokens).expect("tokens serialize"))?;
            std::fs::rename(&tmp, &file)?;
        }
        Ok((tokens, generated))
    }

    /// The role `presented` grants, if any.
    pub fn role(&self, presented: &str) -> Option<Role> {
        let eq = |a: &str| !a.is_empty() && bool::from(a.as_bytes().ct_eq(presented.as_bytes()));
        if eq(&self.admin) {
            Some(Role::Admin)
        } else if eq(&self.invoke) {
            Some(Role::Invoke)
        } else if eq(&self.metrics) {
            Some(Role::Metrics)
        } else {
            None
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Where the extractors find the tokens.
pub trait HasTokens {
    fn tokens(&self) -> &Tokens;
}

fn presented(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    parts.uri.query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(|t| t.to_string()))
}

fn check<S: HasTokens>(parts: &Parts, state: &S, need: Role) -> Result<Role, ApiError> {
    let Some(token) = presented(parts) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing token: send `Authorization: Bearer <token>`",
        ));
    };
    match state.tokens().role(&token) {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token")),
        Some(r) if !r.covers(need) => {
            let needs = match need {
                Role::Metrics => "this route needs the metrics or the admin token",
                Role::Invoke => "this route needs the invoke or the admin token",
                Role::Admin => "this route needs the admin token",
            };
            let may = match r {
                Role::Metrics => "the metrics token may only read /metrics",
                _ => "the invoke token may only invoke units and send telemetry",
            };
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("{needs}; {may}")))
        }
        Some(r) => Ok(r),
    }
}

/// Extractor: the request carries the admin token.
pub struct Admin;

/// Extractor: the request carries the invoke or the admin token.
pub struct Caller;

/// Extractor: the request carries the metrics or the admin token.
pub struct Scraper;

impl<S: HasTokens + Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        check(parts, state, Role::Admin).map(|_| Admin)
    }
}

impl<S: HasTokens + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        check(parts, state, Role::Invoke).map(|_| Caller)
    }
}

impl<S: HasTokens + Send + Sync> FromRequestParts<S> for Scraper {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        check(parts, state, Role::Metrics).map(|_| Scraper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, new) = Tokens::resolve(&TokenConfig::default(), dir.path()).unwrap();
        assert!(new);
        let (b, new) = Tokens::resolve(&TokenConfig::default(), dir.path()).unwrap();
        assert!(!new, "the second start must not generate (or show) tokens");
        assert_eq!((a.admin.clone(), a.invoke.clone(), a.metrics.clone()), (b.admin, b.invoke, b.metrics));
        assert_eq!(a.role(&a.admin), Some(Role::Admin));
        assert_eq!(a.role(&a.invoke), Some(Role::Invoke));
        assert_eq!(a.role(&a.metrics), Some(Role::Metrics));
        assert_eq!(a.role("nope"), None);
        assert_eq!(a.role(""), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tokens.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[cfg(test)]
mod rights {
    use super::*;

    /// Each token reaches its own routes and no other; admin reaches all.
    #[test]
    fn the_metrics_token_reads_metrics_only() {
        use Role::*;
        for (role, need, ok) in [
            (Metrics, Metrics, true),
            (Metrics, Invoke, false),
            (Metrics, Admin, false),
            (Invoke, Metrics, false),
            (Invoke, Invoke, true),
            (Invoke, Admin, false),
            (Admin, Metrics, true),
            (Admin, Invoke, true),
            (Admin, Admin, true),
        ] {
            assert_eq!(role.covers(need), ok, "{role:?} on a route needing {need:?}");
        }
    }

    /// A `tokens.json` from before the metrics token gains one, kept.
    #[test]
    fn an_older_tokens_file_gains_a_metrics_token() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"admin": "0123456789abcdef-admin", "invoke": "0123456789abcdef-invoke"}"#;
        std::fs::write(dir.path().join("tokens.json"), old).unwrap();
        let (t, generated) = Tokens::resolve(&TokenConfig::default(), dir.path()).unwrap();
        assert!(generated);
        assert_eq!((t.admin.as_str(), t.invoke.as_str()), ("0123456789abcdef-admin", "0123456789abcdef-invoke"));
        assert_eq!(t.metrics.len(), 48);
        let (again, generated) = Tokens::resolve(&TokenConfig::default(), dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(again.metrics, t.metrics);
    }
}
