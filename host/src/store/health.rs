//! `health_checks`: every host health report.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, StoreError, with_pool};

/// One check's result.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub healthy: bool,
    pub detail: String,
    /// What was tried to find out.
    pub tried: String,
    pub remediation: Option<String>,
}

/// A full report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub at: i64,
    pub healthy: bool,
    pub checks: Vec<Check>,
}

pub async fn insert(db: &Db, at: i64, healthy: bool, report: &serde_json::Value) -> Result<i64> {
    let text = report.to_string();
    with_pool!(db, p => {
        let row = sqlx::query("INSERT INTO health_checks (at, healthy, report) VALUES ($1, $2, $3) RETURNING id")
            .bind(at).bind(healthy as i64).bind(&text).fetch_one(p).await?;
        Ok(row.try_get("id")?)
    })
}

/// Newest reports first: (id, at, healthy, report).
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<(i64, i64, bool, serde_json::Value)>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM health_checks ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| {
            let text: String = r.try_get("report")?;
            Ok((r.try_get("id")?, r.try_get("at")?, r.try_get::<i64, _>("healthy")? != 0,
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("health report: {e}")))?))
        }).collect()
    })
}
