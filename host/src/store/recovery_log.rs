//! `recovery_log`: every recovery action on the call path and its outcome;
//! strategy success rates are computed from it, not assumed.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, with_pool};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryEntry {
    #[serde(default)]
    pub id: i64,
    pub target: String,
    pub version: String,
    pub error_class: String,
    pub strategy: String,
    pub action: String,
    pub attempt: i64,
    /// `recovered`, `failed`, `gave-up`, `error: ...`
    pub outcome: String,
    /// Latency the action added to the call, in milliseconds.
    pub added_ms: f64,
    pub at: i64,
}

pub async fn append(db: &Db, e: &RecoveryEntry) -> Result<i64> {
    with_pool!(db, p => {
        let row = sqlx::query(
            "INSERT INTO recovery_log (target, version, error_class, strategy, action, attempt, outcome, added_ms, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
            .bind(&e.target).bind(&e.version).bind(&e.error_class).bind(&e.strategy).bind(&e.action)
            .bind(e.attempt).bind(&e.outcome).bind(e.added_ms).bind(e.at).fetch_one(p).await?;
        Ok(row.try_get("id")?)
    })
}

pub(crate) const RECENT_OF_TARGET: &str = "SELECT * FROM recovery_log WHERE target = $1 ORDER BY id DESC LIMIT $2";

pub async fn recent(db: &Db, target: Option<&str>, limit: i64) -> Result<Vec<RecoveryEntry>> {
    with_pool!(db, p => {
        let rows = match target {
            Some(t) => sqlx::query(RECENT_OF_TARGET).bind(t).bind(limit).fetch_all(p).await?,
            None => sqlx::query("SELECT * FROM recovery_log ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?,
        };
        rows.iter().map(|r| Ok(RecoveryEntry {
            id: r.try_get("id")?,
            target: r.try_get("target")?,
            version: r.try_get("version")?,
            error_class: r.try_get("error_class")?,
            strategy: r.try_get("strategy")?,
            action: r.try_get("action")?,
            attempt: r.try_get("attempt")?,
            outcome: r.try_get("outcome")?,
            added_ms: r.try_get("added_ms")?,
            at: r.try_get("at")?,
        })).collect()
    })
}

/// Per strategy for (`target`, `error_class`): (strategy, attempts, recovered).
pub async fn success_counts(db: &Db, target: &str, error_class: &str) -> Result<Vec<(String, i64, i64)>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT strategy, COUNT(*) AS n, SUM(CASE WHEN outcome = 'recovered' THEN 1 ELSE 0 END) AS ok
             FROM recovery_log WHERE target = $1 AND error_class = $2 GROUP BY strategy ORDER BY strategy")
            .bind(target).bind(error_class).fetch_all(p).await?;
        rows.iter().map(|r| Ok((r.try_get("strategy")?, r.try_get("n")?, r.try_get::<Option<i64>, _>("ok")?.unwrap_or(0)))).collect()
    })
}

/// Every (target, class, strategy) with its episodes and recoveries.
/// Fallback units' record: (target, error class, fallback unit, tries,
/// recovered), from the entries of actions `fallback(UNIT)…`.
pub async fn fallback_success_counts(db: &Db) -> Result<Vec<(String, String, String, i64, i64)>> {
    let rows: Vec<(String, String, String, i64, i64)> = with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT target, error_class, action, COUNT(*) AS n, SUM(CASE WHEN outcome = 'recovered' THEN 1 ELSE 0 END) AS ok
             FROM recovery_log WHERE action LIKE 'fallback(%' GROUP BY target, error_class, action")
            .fetch_all(p).await?;
        rows.iter().map(|r| Ok::<_, super::StoreError>((r.try_get("target")?, r.try_get("error_class")?, r.try_get("action")?, r.try_get("n")?,
            r.try_get::<Option<i64>, _>("ok")?.unwrap_or(0)))).collect::<Result<Vec<_>>>()
    })?;
    let mut merged: std::collections::BTreeMap<(String, String, String), (i64, i64)> = Default::default();
    for (t, c, action, n, ok) in rows {
        if let Some(unit) = fallback_unit(&action) {
            let e = merged.entry((t, c, unit.to_string())).or_default();
            (e.0, e.1) = (e.0 + n, e.1 + ok);
        }
    }
    Ok(merged.into_iter().map(|((t, c, u), (n, ok))| (t, c, u, n, ok)).collect())
}

/// The unit of a `fallback(UNIT)…` action.
pub fn fallback_unit(action: &str) -> Option<&str> {
    action.strip_prefix("fallback(")?.split(')').next().filter(|u| !u.is_empty())
}

pub async fn all_success_counts(db: &Db) -> Result<Vec<(String, String, String, i64, i64)>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT target, error_class, strategy, COUNT(*) AS n, SUM(CASE WHEN outcome = 'recovered' THEN 1 ELSE 0 END) AS ok
             FROM recovery_log GROUP BY target, error_class, strategy")
            .fetch_all(p).await?;
        rows.iter().map(|r| Ok((r.try_get("target")?, r.try_get("error_class")?, r.try_get("strategy")?, r.try_get("n")?,
            r.try_get::<Option<i64>, _>("ok")?.unwrap_or(0)))).collect()
    })
}
