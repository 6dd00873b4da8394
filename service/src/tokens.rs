//! The two API tokens and the extractors that check them.
//!
//! The invoke token may call units and send telemetry; the admin token may
//! do everything. A token comes in `Authorization: Bearer …` or, for the
//! event stream (which browsers open without headers), a `token` query
//! parameter. Missing or unknown → 401; the invoke token on an admin route
//! → 403. Comparisons are constant-time.

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
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// A token's rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Invoke,
    Admin,
}

fn generate() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Tokens {
    /// Configured tokens, else those kept in `<data_dir>/tokens.json`, else
    /// new ones (saved there). Returns whether any were generated now: only
    /// then are they shown, once.
    pub fn resolve(config: &TokenConfig, data_dir: &Path) -> std::io::Result<(Tokens, bool)> {
        let file = data_dir.join("tokens.json");
        let kept: Option<Tokens> = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let mut generated = false;
        let mut pick = |configured: &Option<String>, kept: Option<&String>| {
            configured.clone().or_else(|| kept.cloned()).unwrap_or_else(|| {
                generated = true;
                generate()
            })
        };
        let tokens = Tokens {
            admin: pick(&config.admin, kept.as_ref().map(|k| &k.admin)),
            invoke: pick(&config.invoke, kept.as_ref().map(|k| &k.invoke)),
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
        let eq = |a: &str| bool::from(a.as_bytes().ct_eq(presented.as_bytes()));
        if eq(&self.admin) {
            Some(Role::Admin)
        } else if eq(&self.invoke) {
            Some(Role::Invoke)
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
        Some(r) if r < need => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the admin token; the invoke token may only invoke units and send telemetry",
        )),
        Some(r) => Ok(r),
    }
}

/// Extractor: the request carries the admin token.
pub struct Admin;

/// Extractor: the request carries the invoke or the admin token.
pub struct Caller;

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
        assert_eq!((a.admin.clone(), a.invoke.clone()), (b.admin, b.invoke));
        assert_eq!(a.role(&a.admin), Some(Role::Admin));
        assert_eq!(a.role(&a.invoke), Some(Role::Invoke));
        assert_eq!(a.role("nope"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tokens.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
