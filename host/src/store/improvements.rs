//! `improvements`: candidates and their lifecycle, with the proof and the
//! judge's verdicts kept as JSON so an operator can see why each step went
//! the way it did.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::candidate_queue::Queued;
use super::{Db, Result, StoreError, WritePool, text_enum, with_pool};

text_enum! {
    /// Where an improvement is in its lifecycle.
    pub enum ImprovementState("improvement state") {
        /// Waiting: proven, but no rollout could start yet.
        Proposed => "proposed",
        Proving => "proving",
        /// Its proof failed.
        Rejected => "rejected",
        /// Its rollout moves shares of the calls to it, step by step.
        Canary => "canary",
        /// Promoted; watched through the bake period before it is kept.
        Baking => "baking",
        Promoted => "promoted",
        /// The judge failed it; the checkpoint serves again.
        RolledBack => "rolled-back",
        /// A step ran out of running time without a verdict (missing
        /// evidence, not evidence of harm): rolled back by policy, not
        /// counted against the loop by its self-watch.
        Inconclusive => "inconclusive",
        /// Ended by an operator's abort, or closed because its rollout could
        /// not go on (the slot changed under it, a restart it could not
        /// resume from); the checkpoint serves.
        Aborted => "aborted",
        /// An emergency stop holds its rollout where it stood; it carries
        /// on when the stop is released.
        Frozen => "frozen",
        Failed => "failed",
    }
}

impl ImprovementState {
    /// Whether the improvement has ended (no step of the loop moves it on).
    pub fn settled(self) -> bool {
        matches!(
            self,
            Self::Promoted | Self::RolledBack | Self::Rejected | Self::Failed | Self::Inconclusive | Self::Aborted
        )
    }

    /// A rollout owns the slot in these states (it resumes after a restart).
    pub fn rolling_out(self) -> bool {
        matches!(self, Self::Canary | Self::Baking | Self::Frozen)
    }
}

/// One proof step's result, kept with the improvement.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofStep {
    pub step: String,
    /// `passed`, `failed` or `skipped`.
    pub result: String,
    pub detail: String,
}

impl ProofStep {
    pub fn new(step: &str, result: &str, detail: impl Into<String>) -> Self {
        ProofStep { step: step.into(), result: result.into(), detail: detail.into() }
    }

    pub fn failed(&self) -> bool {
        self.result == "failed"
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Improvement {
    #[serde(default)]
    pub id: i64,
    pub finding_id: Option<i64>,
    pub target: String,
    pub candidate_sha: String,
    pub baseline_sha: Option<String>,
    /// `watch`, `api`, `generator`.
    pub source: String,
    pub state: ImprovementState,
    pub reason: String,
    pub proof: serde_json::Value,
    pub verdicts: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    /// The loop's predicted success for this attempt (its target, its
    /// finding's kind, its source) when it began.
    #[serde(default)]
    pub prediction: Option<super::findings::Prediction>,
}

/// Record a new improvement; returns its id. Its candidate leaves the
/// [`super::candidate_queue`] in the same transaction.
pub async fn insert(db: &Db, i: &Improvement) -> Result<i64> {
    let (proof, verdicts) = (i.proof.to_string(), i.verdicts.to_string());
    let prediction = i.prediction.as_ref().and_then(|p| serde_json::to_string(p).ok());
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO improvements (finding_id, target, candidate_sha, baseline_sha, source, state, reason, proof, verdicts, created_at, updated_at, prediction)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")
            .bind(i.finding_id).bind(&i.target).bind(&i.candidate_sha).bind(&i.baseline_sha).bind(&i.source)
            .bind(i.state.as_str()).bind(&i.reason).bind(&proof).bind(&verdicts).bind(i.created_at).bind(i.updated_at)
            .bind(&prediction)
            .fetch_one(&mut *tx).await?;
        // Its candidate no longer waits: the improvement carries it now
        // (and a restart queues it again if its proof is cut short).
        sqlx::query("DELETE FROM candidate_queue WHERE target = $1 AND sha256 = $2")
            .bind(&i.target).bind(&i.candidate_sha)
            .execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.try_get("id")?)
    })
}

/// The states not [`ImprovementState::settled`], as an SQL list: one text
/// for every statement that picks the open improvements.
macro_rules! unsettled_states {
    () => {
        "('proving', 'proposed', 'canary', 'baking', 'frozen')"
    };
}

/// Store `i`, ended (its state and reason set by the caller), and queue its
/// candidate `q` again in one transaction: both or neither, so a candidate
/// is never closed as "queued again" without a row that says so, nor queued
/// while its improvement still carries it.
///
/// The row takes the place its candidate held when it was taken up: just
/// before the first candidate waiting for the same target (`q.queued_at`
/// is used when none waits). The same bytes already waiting for the target
/// (uploaded again meanwhile) are moved to that place.
///
/// Only an improvement still open on disk is ended: `false`, with nothing
/// written, when it was settled meanwhile (in a fleet, by a leader that
/// took over and resumed it), so its candidate is not queued twice.
pub async fn end_and_requeue(db: &Db, i: &Improvement, q: &Queued) -> Result<bool> {
    let (proof, verdicts) = (i.proof.to_string(), i.verdicts.to_string());
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        let ended = sqlx::query(concat!(
            "UPDATE improvements SET state = $1, reason = $2, proof = $3, verdicts = $4, updated_at = $5
             WHERE id = $6 AND state IN ", unsettled_states!()))
            .bind(i.state.as_str()).bind(&i.reason).bind(&proof).bind(&verdicts).bind(i.updated_at).bind(i.id)
            .execute(&mut *tx).await?;
        if ended.rows_affected() == 0 {
            return Ok(false);
        }
        let first: Option<i64> = sqlx::query_scalar("SELECT MIN(queued_at) FROM candidate_queue WHERE target = $1")
            .bind(&q.target).fetch_one(&mut *tx).await?;
        let place = first.map_or(q.queued_at, |t| (t - 1).min(q.queued_at));
        sqlx::query(
            "INSERT INTO candidate_queue (target, sha256, source, queued_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (target, sha256) DO UPDATE SET queued_at = excluded.queued_at")
            .bind(&q.target).bind(&q.sha256).bind(&q.source).bind(place)
            .execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Move improvement `id` to `state` with `reason`, replacing its proof and
/// verdicts.
pub async fn update(db: &Db, i: &Improvement) -> Result<()> {
    let (proof, verdicts) = (i.proof.to_string(), i.verdicts.to_string());
    with_pool!(db, p => sqlx::query(
        "UPDATE improvements SET state = $1, reason = $2, proof = $3, verdicts = $4, updated_at = $5 WHERE id = $6")
        .bind(i.state.as_str()).bind(&i.reason).bind(&proof).bind(&verdicts).bind(i.updated_at).bind(i.id).execute(p).await.map(|_| ()))?;
    Ok(())
}

macro_rules! decode {
    ($r:expr) => {{
        let (proof, verdicts): (String, String) = ($r.try_get("proof")?, $r.try_get("verdicts")?);
        let json = |s: &str, what: &str| {
            serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("improvement {what}: {e}")))
        };
        Improvement {
            id: $r.try_get("id")?,
            finding_id: $r.try_get("finding_id")?,
            target: $r.try_get("target")?,
            candidate_sha: $r.try_get("candidate_sha")?,
            baseline_sha: $r.try_get("baseline_sha")?,
            source: $r.try_get("source")?,
            state: ImprovementState::parse(&$r.try_get::<String, _>("state")?)?,
            reason: $r.try_get("reason")?,
            proof: json(&proof, "proof")?,
            verdicts: json(&verdicts, "verdicts")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
            prediction: match $r.try_get::<Option<String>, _>("prediction")? {
                Some(t) => Some(
                    serde_json::from_str(&t)
                        .map_err(|e| StoreError::Corrupt(format!("improvement prediction: {e}")))?,
                ),
                None => None,
            },
        }
    }};
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Improvement>> {
    with_pool!(db, p => {
        let row = sqlx::query("SELECT * FROM improvements WHERE id = $1").bind(id).fetch_optional(p).await?;
        Ok(match row { Some(r) => Some(decode!(r)), None => None })
    })
}

/// Improvements that have not ended, oldest first: what a restart must
/// resume or close.
pub async fn unsettled(db: &Db) -> Result<Vec<Improvement>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            concat!("SELECT * FROM improvements WHERE state IN ", unsettled_states!(), " ORDER BY id"))
            .fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// How improvements ended, newest first, at most `limit`: (target, the
/// kind of its finding — empty for none —, source, state), for the success
/// record ([`crate::r#loop::predict`]). Only states that say something of
/// the change: promoted, rolled back, rejected, failed.
pub async fn outcomes(db: &Db, limit: i64) -> Result<Vec<(String, String, String, ImprovementState)>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT i.target, COALESCE(f.kind, '') AS kind, i.source, i.state FROM improvements i
             LEFT JOIN findings f ON f.id = i.finding_id
             WHERE i.state IN ('promoted', 'rolled-back', 'rejected', 'failed') ORDER BY i.id DESC LIMIT $1")
            .bind(limit).fetch_all(p).await?;
        rows.iter()
            .map(|r| {
                let state = ImprovementState::parse(&r.try_get::<String, _>("state")?)?;
                Ok((r.try_get("target")?, r.try_get("kind")?, r.try_get("source")?, state))
            })
            .collect()
    })
}

/// Newest first, optionally for one target.
pub async fn list(db: &Db, target: Option<&str>, limit: i64) -> Result<Vec<Improvement>> {
    with_pool!(db, p => {
        let rows = match target {
            Some(t) => sqlx::query("SELECT * FROM improvements WHERE target = $1 ORDER BY id DESC LIMIT $2").bind(t).bind(limit).fetch_all(p).await?,
            None => sqlx::query("SELECT * FROM improvements ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(p).await?,
        };
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_stored_as_their_text() {
        for (state, text) in [
            (ImprovementState::Proposed, "proposed"),
            (ImprovementState::Proving, "proving"),
            (ImprovementState::Rejected, "rejected"),
            (ImprovementState::Canary, "canary"),
            (ImprovementState::Promoted, "promoted"),
            (ImprovementState::RolledBack, "rolled-back"),
            (ImprovementState::Frozen, "frozen"),
            (ImprovementState::Failed, "failed"),
            (ImprovementState::Baking, "baking"),
            (ImprovementState::Inconclusive, "inconclusive"),
            (ImprovementState::Aborted, "aborted"),
        ] {
            assert_eq!(state.as_str(), text);
            let listed = unsettled_states!().contains(&format!("'{text}'"));
            assert_eq!(listed, !state.settled(), "{text}: the SQL list of open states disagrees with settled()");
            assert_eq!(serde_json::to_value(state).unwrap(), text);
            assert_eq!(ImprovementState::parse(text).unwrap(), state);
        }
        let err = ImprovementState::parse("cooking").unwrap_err().to_string();
        assert!(err.contains("unknown improvement state `cooking`"), "{err}");
        let err = super::super::findings::FindingStatus::parse("gone").unwrap_err().to_string();
        assert!(err.contains("unknown finding status `gone`"), "{err}");
    }
}
