//! Totals read from the durable tables for `/metrics`: swaps and rollbacks
//! from `deployment_history`, findings from `findings`. Counted where the
//! decisions are recorded (not from the live event stream, which a slow
//! watcher can miss or see twice), so the metrics agree with the history
//! and the audit trail, and survive a restart.

use sqlx::Row;

use super::{Db, Result, with_pool};

/// What the store holds, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Versions that became a slot's active version: direct deploys and
    /// promotions (history entries `active`).
    pub swaps: i64,
    /// Slots put back to an earlier version, by the judge, a recovery
    /// strategy or an operator (history entries `rolled-back`).
    pub rollbacks: i64,
    /// Findings recorded (a finding reported again while open counts once).
    pub findings: i64,
    /// Reports of those findings by detectors, repeats included.
    pub finding_reports: i64,
}

/// Count everything [`Tallies`] holds.
pub async fn count(db: &Db) -> Result<Tallies> {
    with_pool!(db, p => {
        let mut t = Tallies::default();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM deployment_history WHERE state IN ('active', 'rolled-back') GROUP BY state")
            .fetch_all(p).await?;
        for r in rows {
            let (state, n): (String, i64) = (r.try_get("state")?, r.try_get("n")?);
            match state.as_str() {
                "active" => t.swaps = n,
                _ => t.rollbacks = n,
            }
        }
        let r = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(occurrences), 0) AS BIGINT) AS reports FROM findings")
            .fetch_one(p).await?;
        t.findings = r.try_get("n")?;
        t.finding_reports = r.try_get("reports")?;
        Ok(t)
    })
}
