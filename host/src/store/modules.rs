//! `modules`: every accepted module, content-addressed.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, WritePool, with_pool};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub sha256: String,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub description: String,
    pub size: i64,
    /// Where the bytes live (the content-addressed store).
    pub path: String,
    pub added_at: i64,
}

macro_rules! decode {
    ($r:expr) => {
        ModuleRecord {
            sha256: $r.try_get("sha256")?,
            name: $r.try_get("name")?,
            kind: $r.try_get("kind")?,
            version: $r.try_get("version")?,
            description: $r.try_get("description")?,
            size: $r.try_get("size")?,
            path: $r.try_get("path")?,
            added_at: $r.try_get("added_at")?,
        }
    };
}

/// A second set of bytes under a plugin version already recorded. A
/// version names one build for good: `x-kaizen-version`, the history and a
/// rollback's "from → to" would otherwise no longer tell two builds apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{name} {version} is already registered with other bytes (sha256 {} there, {} in this module): \
     a version's bytes never change, so bump the version (or replace {version} explicitly)",
    short(existing_sha256),
    short(sha256)
)]
pub struct VersionTaken {
    pub name: String,
    pub version: String,
    /// The bytes the version has now.
    pub existing_sha256: String,
    /// The bytes that were refused.
    pub sha256: String,
}

/// The first 12 hex digits of a sha256, as operators read them.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The newest record of `name` `version`: the bytes that version has now.
const CURRENT_BYTES: &str =
    "SELECT * FROM modules WHERE name = $1 AND version = $2 ORDER BY added_at DESC, sha256 LIMIT 1";

/// Serializes writers of one plugin's versions on PostgreSQL for the rest
/// of the transaction (SQLite's `BEGIN IMMEDIATE` already serializes them),
/// so two uploads of one version cannot both see it free.
const PG_LOCK_NAME: &str = "SELECT pg_advisory_xact_lock(hashtext('kaizen.modules:' || $1))";

/// Record a module; a module already known keeps its first record, and a
/// version already recorded with other bytes is refused
/// ([`super::StoreError::VersionTaken`]).
pub async fn put(db: &Db, m: &ModuleRecord) -> Result<()> {
    let postgres = db.backend() == "postgres";
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        if postgres {
            sqlx::query(PG_LOCK_NAME).bind(&m.name).execute(&mut *tx).await?;
        }
        let row = sqlx::query(CURRENT_BYTES).bind(&m.name).bind(&m.version).fetch_optional(&mut *tx).await?;
        if let Some(r) = row {
            let existing: String = r.try_get("sha256")?;
            if existing != m.sha256 {
                return Err(VersionTaken {
                    name: m.name.clone(),
                    version: m.version.clone(),
                    existing_sha256: existing,
                    sha256: m.sha256.clone(),
                }.into());
            }
        }
        sqlx::query(
            "INSERT INTO modules (sha256, name, kind, version, description, size, path, added_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha256) DO NOTHING")
            .bind(&m.sha256).bind(&m.name).bind(&m.kind).bind(&m.version).bind(&m.description)
            .bind(m.size).bind(&m.path).bind(m.added_at)
            .execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(())
}

/// Record a module as the bytes of its version from now on, whatever bytes
/// the version had: an operator's explicit replacement. Returns the record
/// it replaced (`None` when the version was new or had these bytes). The
/// replaced record stays (rollbacks and history still find its bytes);
/// the newest record of a version is the one [`put`] holds others to.
pub async fn replace(db: &Db, m: &ModuleRecord) -> Result<Option<ModuleRecord>> {
    let postgres = db.backend() == "postgres";
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        if postgres {
            sqlx::query(PG_LOCK_NAME).bind(&m.name).execute(&mut *tx).await?;
        }
        let row = sqlx::query(CURRENT_BYTES).bind(&m.name).bind(&m.version).fetch_optional(&mut *tx).await?;
        let before = match row { Some(r) => Some(decode!(r)), None => None };
        let replaced = before.filter(|b| b.sha256 != m.sha256);
        // Newer than the record it replaces even within one millisecond.
        let added_at = replaced.as_ref().map_or(m.added_at, |r| m.added_at.max(r.added_at + 1));
        sqlx::query(
            "INSERT INTO modules (sha256, name, kind, version, description, size, path, added_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha256) DO UPDATE SET added_at = excluded.added_at")
            .bind(&m.sha256).bind(&m.name).bind(&m.kind).bind(&m.version).bind(&m.description)
            .bind(m.size).bind(&m.path).bind(added_at)
            .execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(replaced)
    })
}

pub async fn get(db: &Db, sha256: &str) -> Result<Option<ModuleRecord>> {
    with_pool!(db, p => {
        let row = sqlx::query("SELECT * FROM modules WHERE sha256 = $1").bind(sha256).fetch_optional(p).await?;
        Ok(match row { Some(r) => Some(decode!(r)), None => None })
    })
}

/// The version an id names, as the runtime spells it, given its module's
/// version: the module's own (`1.0.0`), or for a config version's id
/// (`MODULE_SHA+CONFIG_SHA`) the module's with the config's short sha
/// (`1.0.0+config.c2d41e0a7b3f`, as
/// [`crate::runtime::Plugin::with_config`] names it).
pub fn versioned_id(module_version: &str, id: &str) -> String {
    match id.split_once('+') {
        Some((_, config)) => format!("{module_version}+config.{}", &config[..config.len().min(12)]),
        None => module_version.to_string(),
    }
}

/// The version of a module or config version id ([`versioned_id`]);
/// `None` when the store has no such module.
pub async fn version_of(db: &Db, id: &str) -> Result<Option<String>> {
    let module = get(db, id.split('+').next().unwrap_or(id)).await?;
    Ok(module.map(|m| versioned_id(&m.version, id)))
}

/// Versions of plugin `name`, oldest first.
pub async fn by_name(db: &Db, name: &str) -> Result<Vec<ModuleRecord>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM modules WHERE name = $1 ORDER BY added_at, sha256").bind(name).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

pub async fn all(db: &Db) -> Result<Vec<ModuleRecord>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM modules ORDER BY name, added_at").fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}
