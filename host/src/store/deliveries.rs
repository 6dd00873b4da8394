//! `webhook_deliveries`: every notification sent to a webhook, with how many
//! attempts it took and how it ended (`pending`, `delivered`, `failed`).

use sqlx::Row;

use super::{Db, Result, StoreError, now_ms, with_pool};

/// One delivery.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub at: i64,
    pub url: String,
    pub event: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// Record a new pending delivery; returns its id.
pub async fn insert(db: &Db, url: &str, event: &str, payload: &serde_json::Value) -> Result<i64> {
    let (at, text) = (now_ms(), payload.to_string());
    with_pool!(db, p => {
        let row = sqlx::query(
            "INSERT INTO webhook_deliveries (at, url, event, payload, status, attempts, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5) RETURNING id")
            .bind(at).bind(url).bind(event).bind(&text).bind(at).fetch_one(p).await?;
        Ok(row.try_get("id")?)
    })
}

/// Record an attempt's result.
pub async fn update(db: &Db, id: i64, status: &str, attempts: i64, last_error: Option<&str>) -> Result<()> {
    let at = now_ms();
    with_pool!(db, p => {
        sqlx::query("UPDATE webhook_deliveries SET status = $1, attempts = $2, last_error = $3, updated_at = $4 WHERE id = $5")
            .bind(status).bind(attempts).bind(last_error).bind(at).bind(id).execute(p).await?;
        Ok(())
    })
}

/// Newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Delivery>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| {
            let text: String = r.try_get("payload")?;
            Ok(Delivery {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                url: r.try_get("url")?,
                event: r.try_get("event")?,
                payload: serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("delivery payload: {e}")))?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                updated_at: r.try_get("updated_at")?,
            })
        }).collect()
    })
}
