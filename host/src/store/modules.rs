//! `modules`: every accepted module, content-addressed.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, with_pool};

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

/// Record a module; a module already known keeps its first record.
pub async fn put(db: &Db, m: &ModuleRecord) -> Result<()> {
    with_pool!(db, p => sqlx::query(
        "INSERT INTO modules (sha256, name, kind, version, description, size, path, added_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha256) DO NOTHING")
        .bind(&m.sha256).bind(&m.name).bind(&m.kind).bind(&m.version).bind(&m.description)
        .bind(m.size).bind(&m.path).bind(m.added_at)
        .execute(p).await.map(|_| ()))?;
    Ok(())
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

pub async fn get(db: &Db, sha256: &str) -> Result<Option<ModuleRecord>> {
    with_pool!(db, p => {
        let row = sqlx::query("SELECT * FROM modules WHERE sha256 = $1").bind(sha256).fetch_optional(p).await?;
        Ok(match row { Some(r) => Some(decode!(r)), None => None })
    })
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
