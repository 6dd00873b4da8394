//! `audit_events`: every decision, by whom and why.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, StoreError, with_pool};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(default)]
    pub id: i64,
    pub at: i64,
    /// `loop`, `safety`, `operator:<name>`, `watch`, ...
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

pub async fn append(db: &Db, e: &AuditEvent) -> Result<i64> {
    let detail = e.detail.to_string();
    with_pool!(db, p => {
        let row = sqlx::query("INSERT INTO audit_events (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(e.at).bind(&e.actor).bind(&e.action).bind(&e.target).bind(&detail).fetch_one(p).await?;
        Ok(row.try_get("id")?)
    })
}

/// Newest events first, optionally only for `target`.
pub async fn recent(db: &Db, target: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>> {
    with_pool!(db, p => {
        let rows = match target {
            Some(t) => sqlx::query("SELECT * FROM audit_events WHERE target = $1 ORDER BY id DESC LIMIT $2").bind(t).bind(limit).fetch_all(p).await?,
            None => sqlx::query("SELECT * FROM audit_events ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?,
        };
        rows.iter().map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(AuditEvent {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))?,
            })
        }).collect()
    })
}
