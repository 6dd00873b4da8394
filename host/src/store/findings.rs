//! `findings`: what detectors reported, one row per occurrence. While an
//! occurrence is current, a finding of the same kind on the same target
//! and unit version updates it (occurrences, last seen, latest evidence)
//! instead of piling up; once it is resolved (or closed and cleared), the
//! next report opens a new occurrence linked to it (`previous`).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, StoreError, WritePool, now_ms, text_enum, with_pool};

text_enum! {
    /// Where a finding stands.
    pub enum FindingStatus("finding status") {
        Open => "open",
        /// An improvement for it is under way.
        Addressed => "addressed",
        /// An operator has seen it: no more notifications; the loop may
        /// still act on it, and it resolves like an open one.
        Acknowledged => "acknowledged",
        /// An operator put it aside until `snoozed_until`: the loop leaves
        /// it alone until then, and it opens again after.
        Snoozed => "snoozed",
        /// Its detector stopped reporting it, its version no longer serves,
        /// or an improvement for it was promoted (`reason` says which).
        Resolved => "resolved",
        /// An operator closed it: the loop leaves it alone, and it stays
        /// closed while its detector keeps reporting it; once it cleared, a
        /// new report opens a new occurrence.
        Closed => "closed",
    }
}

impl FindingStatus {
    /// Whether the loop may make an attempt on a finding in this state.
    pub fn actionable(self) -> bool {
        matches!(self, FindingStatus::Open | FindingStatus::Acknowledged)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    #[serde(default)]
    pub id: i64,
    pub target: String,
    /// The version of the hosted unit the finding is about; absent for
    /// targets the host does not run (telemetry only) and for plugins.
    #[serde(default)]
    pub version: Option<String>,
    pub kind: String,
    pub detector: String,
    pub severity: String,
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<(String, String)>,
    pub expected_gain_pct: f64,
    pub risk: String,
    /// `security`, `reliability`, `performance`, `quality` or `coverage`:
    /// what the finding is about; the prioritizer weighs impact by it.
    #[serde(default = "default_category")]
    pub category: String,
    pub impact: f64,
    /// `critical`, `high`, `medium` or `low` bucket of the impact.
    pub priority: String,
    pub status: FindingStatus,
    /// Why it stands where it does: `condition cleared`, `version
    /// retired`, who acknowledged, snoozed or closed it and why.
    #[serde(default)]
    pub reason: String,
    /// The earlier occurrence of the same finding this one recurs after.
    #[serde(default)]
    pub previous: Option<i64>,
    pub occurrences: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Cycles in a row its detector ran without reporting it.
    #[serde(default)]
    pub missed: i64,
    /// Until when (Unix ms) a snoozed finding is put aside.
    #[serde(default)]
    pub snoozed_until: Option<i64>,
    /// When its state last changed (Unix ms).
    #[serde(default)]
    pub changed_at: i64,
    /// Why the loop made no attempt on it in its last cycle, in words that
    /// say what to do; absent when it was attempted.
    #[serde(default)]
    pub inaction: Option<String>,
    /// How likely an improvement for it is to be promoted and kept, from
    /// the record of earlier attempts on its target and kind
    /// ([`crate::r#loop::predict`]); its priority is impact × this.
    #[serde(default)]
    pub prediction: Option<Prediction>,
}

/// A predicted probability of success, with its interval and what it
/// rests on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Posterior mean, 0 to 1.
    pub p: f64,
    /// 90 % credible interval.
    pub low: f64,
    pub high: f64,
    /// The record it rests on (prior aside).
    pub successes: u32,
    pub failures: u32,
}

impl Prediction {
    /// `35 % (12–64 %, 1 of 4)`.
    pub fn describe(&self) -> String {
        format!(
            "{:.0} % ({:.0}–{:.0} %, {} of {})",
            self.p * 100.0,
            self.low * 100.0,
            self.high * 100.0,
            self.successes,
            self.successes + self.failures
        )
    }
}

fn default_category() -> String {
    "reliability".into()
}

/// What recording one reported finding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    pub id: i64,
    /// A new occurrence (not an update of the current one).
    pub new: bool,
    /// The state of the occurrence it updated (`open` when new).
    pub status: FindingStatus,
    /// The occurrence it recurs after.
    pub previous: Option<i64>,
    /// Why it stands where it does, and until when it is snoozed.
    pub reason: String,
    pub snoozed_until: Option<i64>,
}

/// The states in which an occurrence is still the current one; a closed
/// occurrence is too until `missed` reaches the resolve count.
const CURRENT: &str =
    "status IN ('open', 'addressed', 'acknowledged', 'snoozed') OR (status = 'closed' AND missed < $R)";

/// Record `f` with no resolve count: a new row, or an update of the current
/// occurrence. Returns the id and whether it was new.
pub async fn upsert_open(db: &Db, f: &FindingRecord) -> Result<(i64, bool)> {
    let mut out = upsert_open_all(db, std::slice::from_ref(f), i64::MAX).await?;
    let u = out.pop().expect("one result per finding");
    Ok((u.id, u.new))
}

/// Record a whole pass of findings in one write transaction (one commit,
/// not one per finding). Each updates the current occurrence of the same
/// target, kind and version, or opens a new one linked to the last
/// occurrence. A closed occurrence is current until its detector missed it
/// `resolve_after` cycles in a row. Results are in the order given.
pub async fn upsert_open_all(db: &Db, all: &[FindingRecord], resolve_after: i64) -> Result<Vec<Upserted>> {
    let current = format!(
        "SELECT id, status, reason, previous, snoozed_until FROM findings WHERE target = $1 AND kind = $2 AND COALESCE(version, '') = $3 AND ({}) \
         ORDER BY id DESC LIMIT 1",
        CURRENT.replace("$R", "$4")
    );
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        let mut results = Vec::with_capacity(all.len());
        for f in all {
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into());
        let prediction = f.prediction.as_ref().and_then(|p| serde_json::to_string(p).ok());
        let version = f.version.clone().unwrap_or_default();
        let existing = sqlx::query(&current)
            .bind(&f.target).bind(&f.kind).bind(&version).bind(resolve_after).fetch_optional(&mut *tx).await?;
        let out = match existing {
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                let status = FindingStatus::parse(&row.try_get::<String, _>("status")?)?;
                sqlx::query("UPDATE findings SET severity = $1, confidence = $2, summary = $3, evidence = $4, expected_gain_pct = $5,
                             impact = $6, priority = $7, occurrences = occurrences + 1, last_seen = $8, missed = 0, prediction = $10 WHERE id = $9")
                    .bind(&f.severity).bind(f.confidence).bind(&f.summary).bind(&evidence).bind(f.expected_gain_pct)
                    .bind(f.impact).bind(&f.priority).bind(f.last_seen).bind(id).bind(&prediction).execute(&mut *tx).await?;
                Upserted {
                    id,
                    new: false,
                    status,
                    previous: row.try_get("previous")?,
                    reason: row.try_get("reason")?,
                    snoozed_until: row.try_get("snoozed_until")?,
                }
            }
            None => {
                let previous: Option<i64> = sqlx::query(
                    "SELECT id FROM findings WHERE target = $1 AND kind = $2 AND COALESCE(version, '') = $3 ORDER BY id DESC LIMIT 1")
                    .bind(&f.target).bind(&f.kind).bind(&version).fetch_optional(&mut *tx).await?
                    .map(|r| r.try_get("id")).transpose()?;
                let row = sqlx::query("INSERT INTO findings (target, kind, detector, severity, confidence, summary, evidence, expected_gain_pct,
                                       risk, impact, priority, status, occurrences, first_seen, last_seen, version, previous, reason,
                                       missed, changed_at, category, prediction)
                                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 0, $19, $20, $21)
                                       RETURNING id")
                    .bind(&f.target).bind(&f.kind).bind(&f.detector).bind(&f.severity).bind(f.confidence).bind(&f.summary)
                    .bind(&evidence).bind(f.expected_gain_pct).bind(&f.risk).bind(f.impact).bind(&f.priority)
                    .bind(FindingStatus::Open.as_str()).bind(f.occurrences.max(1)).bind(f.first_seen).bind(f.last_seen)
                    .bind(&f.version).bind(previous).bind(&f.reason).bind(f.last_seen).bind(&f.category).bind(&prediction)
                    .fetch_one(&mut *tx).await?;
                Upserted {
                    id: row.try_get("id")?,
                    new: true,
                    status: FindingStatus::Open,
                    previous,
                    reason: f.reason.clone(),
                    snoozed_until: None,
                }
            }
        };
        results.push(out);
        }
        tx.commit().await?;
        Ok::<_, StoreError>(results)
    })
}

/// Set a finding's state and the reason it stands there (stamped now). A
/// state other than `snoozed` clears the snooze; the last cycle's reason
/// for no attempt no longer applies to the new state, so it is cleared.
pub async fn set_state(
    db: &Db,
    id: i64,
    status: FindingStatus,
    reason: &str,
    snoozed_until: Option<i64>,
) -> Result<()> {
    let until = if status == FindingStatus::Snoozed { snoozed_until } else { None };
    with_pool!(db, p => sqlx::query("UPDATE findings SET status = $1, reason = $2, snoozed_until = $3, changed_at = $4, inaction = NULL WHERE id = $5")
        .bind(status.as_str()).bind(reason).bind(until).bind(now_ms()).bind(id).execute(p).await.map(|_| ()))?;
    Ok(())
}

/// Set a finding's state with no reason.
pub async fn set_status(db: &Db, id: i64, status: FindingStatus) -> Result<()> {
    set_state(db, id, status, "", None).await
}

/// Count one more cycle without a report for each of `ids`.
pub async fn mark_missed(db: &Db, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for id in ids {
            sqlx::query("UPDATE findings SET missed = missed + 1 WHERE id = $1").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(())
    })
}

/// Record why the loop made no attempt on each finding last cycle (`None`:
/// it did make one).
pub async fn set_inaction(db: &Db, all: &[(i64, Option<String>)]) -> Result<()> {
    if all.is_empty() {
        return Ok(());
    }
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for (id, why) in all {
            sqlx::query("UPDATE findings SET inaction = $1 WHERE id = $2").bind(why).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(())
    })
}

macro_rules! decode {
    ($r:expr) => {{
        let evidence: String = $r.try_get("evidence")?;
        FindingRecord {
            id: $r.try_get("id")?,
            target: $r.try_get("target")?,
            version: $r.try_get("version")?,
            kind: $r.try_get("kind")?,
            detector: $r.try_get("detector")?,
            severity: $r.try_get("severity")?,
            confidence: $r.try_get("confidence")?,
            summary: $r.try_get("summary")?,
            evidence: serde_json::from_str(&evidence)
                .map_err(|e| StoreError::Corrupt(format!("finding evidence: {e}")))?,
            expected_gain_pct: $r.try_get("expected_gain_pct")?,
            risk: $r.try_get("risk")?,
            category: $r.try_get("category")?,
            impact: $r.try_get("impact")?,
            priority: $r.try_get("priority")?,
            status: FindingStatus::parse(&$r.try_get::<String, _>("status")?)?,
            reason: $r.try_get("reason")?,
            previous: $r.try_get("previous")?,
            occurrences: $r.try_get("occurrences")?,
            first_seen: $r.try_get("first_seen")?,
            last_seen: $r.try_get("last_seen")?,
            missed: $r.try_get("missed")?,
            snoozed_until: $r.try_get("snoozed_until")?,
            changed_at: $r.try_get("changed_at")?,
            inaction: $r.try_get("inaction")?,
            prediction: match $r.try_get::<Option<String>, _>("prediction")? {
                Some(t) => Some(
                    serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("finding prediction: {e}")))?,
                ),
                None => None,
            },
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

/// Every current occurrence (see [`upsert_open_all`]), oldest first.
pub async fn current(db: &Db, resolve_after: i64) -> Result<Vec<FindingRecord>> {
    let sql = format!("SELECT * FROM findings WHERE {} ORDER BY id", CURRENT.replace("$R", "$1"));
    with_pool!(db, p => {
        let rows = sqlx::query(&sql).bind(resolve_after).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}
