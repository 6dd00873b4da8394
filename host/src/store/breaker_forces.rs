//! `breaker_forces`: the circuit breakers an operator forced open, so that
//! a restart does not close one before its time. Breakers themselves live
//! in memory ([`crate::recovery::Healer`]); a strategy's opening is part of
//! healing one call path and is not kept. A row belongs to one host (a
//! breaker guards that host's calls): the fleet host id, empty on a lone
//! host.

use sqlx::Row;

use super::{Db, Result, with_pool};

/// A breaker forced open until `until_ms` (Unix ms), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    pub target: String,
    pub until_ms: i64,
    pub reason: String,
}

/// Keep `target`'s breaker on `host` forced open until `until_ms`,
/// replacing an earlier force of it; rows that lapsed by `now_ms` go.
pub async fn set(db: &Db, host: &str, f: &Forced, now_ms: i64) -> Result<()> {
    with_pool!(db, p => {
        sqlx::query("DELETE FROM breaker_forces WHERE until_ms <= $1").bind(now_ms).execute(p).await?;
        sqlx::query(
            "INSERT INTO breaker_forces (host, target, until_ms, reason, forced_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (host, target) DO UPDATE SET until_ms = $3, reason = $4, forced_at = $5")
            .bind(host).bind(&f.target).bind(f.until_ms).bind(&f.reason).bind(now_ms)
            .execute(p).await.map(|_| ())
    })?;
    Ok(())
}

/// Forget `target`'s force on `host` (forced closed or reset).
pub async fn clear(db: &Db, host: &str, target: &str) -> Result<()> {
    with_pool!(db, p => sqlx::query("DELETE FROM breaker_forces WHERE host = $1 AND target = $2")
        .bind(host).bind(target).execute(p).await.map(|_| ()))?;
    Ok(())
}

/// The forces on `host` that still hold at `now_ms`, by target.
pub async fn current(db: &Db, host: &str, now_ms: i64) -> Result<Vec<Forced>> {
    let rows = with_pool!(db, p => sqlx::query(
        "SELECT target, until_ms, reason FROM breaker_forces WHERE host = $1 AND until_ms > $2 ORDER BY target")
        .bind(host).bind(now_ms)
        .fetch_all(p).await.map(|rows| rows.iter().map(|r| Ok(Forced {
            target: r.try_get("target")?,
            until_ms: r.try_get("until_ms")?,
            reason: r.try_get("reason")?,
        })).collect::<std::result::Result<Vec<_>, sqlx::Error>>()))??;
    Ok(rows)
}
