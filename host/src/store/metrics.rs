//! `metrics`: points pushed from outside (queue depths, business KPIs, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row};

use super::{Db, Result, StoreError, WritePool, with_pool};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Unix milliseconds.
    pub at: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

pub async fn insert_batch(db: &Db, batch: &[Metric]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tags: Vec<String> =
        batch.iter().map(|m| serde_json::to_string(&m.tags).unwrap_or_else(|_| "{}".into())).collect();
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for (chunk, tag_chunk) in batch.chunks(1000).zip(tags.chunks(1000)) {
            let mut qb = QueryBuilder::new("INSERT INTO metrics (name, value, at, tags) ");
            qb.push_values(chunk.iter().zip(tag_chunk), |mut b, (m, t)| {
                b.push_bind(&m.name).push_bind(m.value).push_bind(m.at).push_bind(t);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

pub(crate) const SINCE: &str = "SELECT name, value, at, tags FROM metrics WHERE at >= $1 ORDER BY at, id LIMIT $2";
pub(crate) const DELETE_BEFORE: &str = "DELETE FROM metrics WHERE at < $1";

/// Points with `at >= since`, oldest first, at most `limit`.
pub async fn since(db: &Db, since: i64, limit: i64) -> Result<Vec<Metric>> {
    with_pool!(db, p => {
        let rows = sqlx::query(SINCE)
            .bind(since).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| {
            let tags: String = r.try_get("tags")?;
            Ok(Metric {
                name: r.try_get("name")?,
                value: r.try_get("value")?,
                at: r.try_get("at")?,
                tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("metric tags: {e}")))?,
            })
        }).collect()
    })
}

pub(crate) const NEWEST_SINCE: &str =
    "SELECT name, value, at, tags FROM metrics WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2";

/// The newest `limit` points with `at >= since`, oldest first: what a
/// detection pass sees when more were pushed than it takes.
pub async fn newest_since(db: &Db, since: i64, limit: i64) -> Result<Vec<Metric>> {
    with_pool!(db, p => {
        let rows = sqlx::query(NEWEST_SINCE)
            .bind(since).bind(limit).fetch_all(p).await?;
        rows.iter().rev().map(|r| {
            let tags: String = r.try_get("tags")?;
            Ok(Metric {
                name: r.try_get("name")?,
                value: r.try_get("value")?,
                at: r.try_get("at")?,
                tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("metric tags: {e}")))?,
            })
        }).collect()
    })
}

pub async fn delete_before(db: &Db, cutoff: i64) -> Result<u64> {
    with_pool!(db, p => Ok(sqlx::query(DELETE_BEFORE).bind(cutoff).execute(p).await?.rows_affected()))
}
