//! `findings`: what detectors reported, deduplicated while open: a finding
//! of the same kind on the same target updates the open one (occurrences,
//! last seen, latest evidence) instead of piling up.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, StoreError, WritePool, text_enum, with_pool};

text_enum! {
    /// Where a finding stands.
    pub enum FindingStatus("finding status") {
        Open => "open",
        /// An improvement for it is under way.
        Addressed => "addressed",
        Resolved => "resolved",
        Dismissed => "dismissed",
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    #[serde(default)]
    pub id: i64,
    pub target: String,
    pub kind: String,
    pub detector: String,
    pub severity: String,
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<(String, String)>,
    pub expected_gain_pct: f64,
    pub risk: String,
    pub impact: f64,
    /// `critical`, `high`, `medium` or `low` bucket of the impact.
    pub priority: String,
    pub status: FindingStatus,
    pub occurrences: i64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Record `f`: a new row, or an update of the open finding with the same
/// target and kind. Returns the id and whether it was new.
pub async fn upsert_open(db: &Db, f: &FindingRecord) -> Result<(i64, bool)> {
    let mut out = upsert_open_all(db, std::slice::from_ref(f)).await?;
    Ok(out.pop().expect("one result per finding"))
}

/// [`upsert_open`] for a whole pass of findings in one write transaction
/// (one commit, not one per finding). Results are in the order given.
pub async fn upsert_open_all(db: &Db, all: &[FindingRecord]) -> Result<Vec<(i64, bool)>> {
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        let mut results = Vec::with_capacity(all.len());
        for f in all {
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into());
        let existing = sqlx::query("SELECT id FROM findings WHERE target = $1 AND kind = $2 AND status IN ('open', 'addressed') ORDER BY id DESC LIMIT 1")
            .bind(&f.target).bind(&f.kind).fetch_optional(&mut *tx).await?;
        let out = match existing {
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                sqlx::query("UPDATE findings SET severity = $1, confidence = $2, summary = $3, evidence = $4, expected_gain_pct = $5,
                             impact = $6, priority = $7, occurrences = occurrences + 1, last_seen = $8 WHERE id = $9")
                    .bind(&f.severity).bind(f.confidence).bind(&f.summary).bind(&evidence).bind(f.expected_gain_pct)
                    .bind(f.impact).bind(&f.priority).bind(f.last_seen).bind(id).execute(&mut *tx).await?;
                (id, false)
            }
            None => {
                let row = sqlx::query("INSERT INTO findings (target, kind, detector, severity, confidence, summary, evidence, expected_gain_pct,
                                       risk, impact, priority, status, occurrences, first_seen, last_seen)
                                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id")
                    .bind(&f.target).bind(&f.kind).bind(&f.detector).bind(&f.severity).bind(f.confidence).bind(&f.summary)
                    .bind(&evidence).bind(f.expected_gain_pct).bind(&f.risk).bind(f.impact).bind(&f.priority)
                    .bind(f.status.as_str()).bind(f.occurrences.max(1)).bind(f.first_seen).bind(f.last_seen)
                    .fetch_one(&mut *tx).await?;
                (row.try_get("id")?, true)
            }
        };
        results.push(out);
        }
        tx.commit().await?;
        Ok::<_, StoreError>(results)
    })
}

pub async fn set_status(db: &Db, id: i64, status: FindingStatus) -> Result<()> {
    with_pool!(db, p => sqlx::query("UPDATE findings SET status = $1 WHERE id = $2").bind(status.as_str()).bind(id).execute(p).await.map(|_| ()))?;
    Ok(())
}

macro_rules! decode {
    ($r:expr) => {{
        let evidence: String = $r.try_get("evidence")?;
        FindingRecord {
            id: $r.try_get("id")?,
            target: $r.try_get("target")?,
            kind: $r.try_get("kind")?,
            detector: $r.try_get("detector")?,
            severity: $r.try_get("severity")?,
            confidence: $r.try_get("confidence")?,
            summary: $r.try_get("summary")?,
            evidence: serde_json::from_str(&evidence)
                .map_err(|e| StoreError::Corrupt(format!("finding evidence: {e}")))?,
            expected_gain_pct: $r.try_get("expected_gain_pct")?,
            risk: $r.try_get("risk")?,
            impact: $r.try_get("impact")?,
            priority: $r.try_get("priority")?,
            status: FindingStatus::parse(&$r.try_get::<String, _>("status")?)?,
            occurrences: $r.try_get("occurrences")?,
            first_seen: $r.try_get("first_seen")?,
            last_seen: $r.try_get("last_seen")?,
        }
    }};
}

pub async fn get(db: &Db, id: i64) -> Result<Option<FindingRecord>> {
    with_pool!(db, p => {
        let row = sqlx::query("SELECT * FROM findings WHERE id = $1").bind(id).fetch_optional(p).await?;
        Ok(match row { Some(r) => Some(decode!(r)), None => None })
    })
}

/// Newest first; `status` filters when given.
pub async fn list(db: &Db, status: Option<&str>, limit: i64) -> Result<Vec<FindingRecord>> {
    with_pool!(db, p => {
        let rows = match status {
            Some(s) => sqlx::query("SELECT * FROM findings WHERE status = $1 ORDER BY id DESC LIMIT $2").bind(s).bind(limit).fetch_all(p).await?,
            None => sqlx::query("SELECT * FROM findings ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?,
        };
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}
