//! `plugin_priorities`: what the loop learned about each plugin.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, with_pool};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Priority {
    pub plugin: String,
    /// Multiplier on the impact of this plugin's findings.
    pub weight: f64,
    /// How much evidence the weight rests on, 0 to 1.
    pub confidence: f64,
    /// Why it last changed.
    pub reason: String,
    pub updated_at: i64,
}

pub async fn upsert(db: &Db, pr: &Priority) -> Result<()> {
    with_pool!(db, p => sqlx::query(
        "INSERT INTO plugin_priorities (plugin, weight, confidence, reason, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (plugin) DO UPDATE SET weight = excluded.weight, confidence = excluded.confidence,
           reason = excluded.reason, updated_at = excluded.updated_at")
        .bind(&pr.plugin).bind(pr.weight).bind(pr.confidence).bind(&pr.reason).bind(pr.updated_at)
        .execute(p).await.map(|_| ()))?;
    Ok(())
}

pub async fn all(db: &Db) -> Result<Vec<Priority>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM plugin_priorities ORDER BY plugin").fetch_all(p).await?;
        rows.iter().map(|r| Ok(Priority {
            plugin: r.try_get("plugin")?,
            weight: r.try_get("weight")?,
            confidence: r.try_get("confidence")?,
            reason: r.try_get("reason")?,
            updated_at: r.try_get("updated_at")?,
        })).collect()
    })
}
