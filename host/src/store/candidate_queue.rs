//! `candidate_queue`: the candidates waiting for the loop, kept on disk so
//! that an upload answered "candidate" is not lost to a restart, or in a
//! fleet to the death of the leader that took it. The loop's in-memory
//! queue ([`crate::r#loop::candidates::CandidateQueue`]) is what it works
//! from; this table is what a start (or a new leader) fills it from again.
//! A row leaves in the transaction that opens the improvement proving its
//! candidate ([`super::improvements::insert`]).

use sqlx::Row;

use super::{Db, Result, with_pool};

/// One waiting candidate: the unit it is for, its module id (as the module
/// store names it) and where it came from (`api`, `watch`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub target: String,
    pub sha256: String,
    pub source: String,
    /// Unix milliseconds: when it came, and so its place in its target's
    /// line. A candidate queued again after its improvement was cut short
    /// is placed just before the first waiting
    /// ([`super::improvements::end_and_requeue`]).
    pub queued_at: i64,
}

/// Add a candidate; the same bytes for the same target already waiting are
/// one candidate (their first source and place kept).
pub async fn enqueue(db: &Db, q: &Queued) -> Result<()> {
    with_pool!(db, p => sqlx::query(
        "INSERT INTO candidate_queue (target, sha256, source, queued_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (target, sha256) DO NOTHING")
        .bind(&q.target).bind(&q.sha256).bind(&q.source).bind(q.queued_at)
        .execute(p).await.map(|_| ()))?;
    Ok(())
}

/// Drop a waiting candidate that can no longer be proven (its module is
/// gone from the store).
pub async fn remove(db: &Db, target: &str, sha256: &str) -> Result<()> {
    with_pool!(db, p => sqlx::query("DELETE FROM candidate_queue WHERE target = $1 AND sha256 = $2")
        .bind(target).bind(sha256).execute(p).await.map(|_| ()))?;
    Ok(())
}

/// Every waiting candidate, in its place in line (oldest first).
pub async fn list(db: &Db) -> Result<Vec<Queued>> {
    let rows = with_pool!(db, p => sqlx::query(
        "SELECT target, sha256, source, queued_at FROM candidate_queue ORDER BY queued_at, id")
        .fetch_all(p).await.map(|rows| rows.iter().map(|r| Ok(Queued {
            target: r.try_get("target")?,
            sha256: r.try_get("sha256")?,
            source: r.try_get("source")?,
            queued_at: r.try_get("queued_at")?,
        })).collect::<std::result::Result<Vec<_>, sqlx::Error>>()))??;
    Ok(rows)
}
