//! `cycle_reports`: one JSON report per loop cycle.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, StoreError, with_pool};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleRecord {
    #[serde(default)]
    pub id: i64,
    /// `scheduled`, `emergency` or `manual`.
    pub kind: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub report: serde_json::Value,
}

pub async fn insert(db: &Db, c: &CycleRecord) -> Result<i64> {
    let report = c.report.to_string();
    with_pool!(db, p => {
        let row = sqlx::query("INSERT INTO cycle_reports (kind, started_at, finished_at, report) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&c.kind).bind(c.started_at).bind(c.finished_at).bind(&report).fetch_one(p).await?;
        Ok(row.try_get("id")?)
    })
}

/// One report by id.
pub async fn get(db: &Db, id: i64) -> Result<Option<CycleRecord>> {
    Ok(recent_from(db, id, 1).await?.into_iter().next().filter(|c| c.id == id))
}

/// Newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<CycleRecord>> {
    recent_from(db, i64::MAX, limit).await
}

/// Newest first, from id `max_id` down.
async fn recent_from(db: &Db, max_id: i64, limit: i64) -> Result<Vec<CycleRecord>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM cycle_reports WHERE id <= $1 ORDER BY id DESC LIMIT $2")
            .bind(max_id).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| {
            let report: String = r.try_get("report")?;
            Ok(CycleRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                report: serde_json::from_str(&report).map_err(|e| StoreError::Corrupt(format!("cycle report: {e}")))?,
            })
        }).collect()
    })
}
