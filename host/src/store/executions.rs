//! `executions`: the call history, written in batches by the telemetry
//! writer and read for replay and backtests.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row};

use super::{Db, Result, WritePool, with_pool};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Answered.
    Ok,
    /// Failed for the unit's own reasons (counts against its success rate).
    Error,
    /// Refused the caller's bad input (`invalid-input`): answered correctly,
    /// not a failure of the unit.
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "ok" => Outcome::Ok,
            "error" => Outcome::Error,
            "rejected" => Outcome::Rejected,
            _ => return None,
        })
    }
}

/// One call of a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub target: String,
    pub version: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub duration_us: i64,
    pub outcome: Outcome,
    pub error_class: Option<String>,
    pub message: Option<String>,
    /// The request, MessagePack or JSON as the unit speaks, kept for a sample
    /// of calls so that candidates can be replayed against real inputs.
    #[serde(with = "serde_bytes", default)]
    pub request: Option<Vec<u8>>,
}

/// How many attempts one call took. A caller's call is one execution
/// however often recovery tried it: retries and a fallback are attempts of
/// that call, not calls of their own, so every count of calls (the
/// detectors', the judge's, the operator's) counts what callers asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// Attempts made, the first included (1 for a call made once).
    pub attempts: u32,
    /// The call failed at first and recovery (a retry, a fallback) made
    /// it answer.
    pub recovered: bool,
}

impl Attempts {
    /// A call made once.
    pub const ONCE: Attempts = Attempts { attempts: 1, recovered: false };

    /// Attempts beyond the first.
    pub fn retries(self) -> u64 {
        u64::from(self.attempts.saturating_sub(1))
    }
}

/// A call as the host records it: how it ended, and the attempts it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub execution: Execution,
    pub attempts: Attempts,
}

/// What is stored as one execution row: a call the host made, with its
/// attempts, or an execution on its own (reported from outside, where the
/// host knows of one attempt).
pub trait Recordable {
    fn execution(&self) -> &Execution;
    fn attempts(&self) -> Attempts;
}

impl Recordable for Execution {
    fn execution(&self) -> &Execution {
        self
    }
    fn attempts(&self) -> Attempts {
        Attempts::ONCE
    }
}

impl Recordable for Call {
    fn execution(&self) -> &Execution {
        &self.execution
    }
    fn attempts(&self) -> Attempts {
        self.attempts
    }
}

/// A stored execution with its row id and the attempts its call took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredExecution {
    pub id: i64,
    #[serde(flatten)]
    pub execution: Execution,
    /// Attempts made for the call, the first included.
    pub attempts: u32,
    /// Recovery turned the call's failure into an answer.
    pub recovered: bool,
}

/// Rows per INSERT statement, largest first: a batch is cut into
/// statements of these sizes only, so each size's statement is prepared once
/// and then reused from the connection's cache (a statement of any other row
/// count would be parsed and planned anew, thousands of parameters long).
/// 10 parameters a row stays well under SQLite's 32 766-parameter limit.
const STATEMENT_ROWS: [usize; 4] = [512, 64, 8, 1];

/// `batch` cut into runs of [`STATEMENT_ROWS`] sizes.
fn statements<R>(mut batch: &[R]) -> impl Iterator<Item = &[R]> {
    std::iter::from_fn(move || {
        let n = STATEMENT_ROWS.into_iter().find(|n| *n <= batch.len())?;
        let (head, rest) = batch.split_at(n);
        batch = rest;
        Some(head)
    })
}

/// Insert `batch` in one transaction: all of it is stored or none.
pub async fn insert_batch<R: Recordable + Sync>(db: &Db, batch: &[R]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for chunk in statements(batch) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO executions (target, version, started_at, duration_us, outcome, error_class, message, \
                 request, attempts, recovered) ");
            qb.push_values(chunk, |mut b, r| {
                let (e, a) = (r.execution(), r.attempts());
                b.push_bind(&e.target).push_bind(&e.version).push_bind(e.started_at).push_bind(e.duration_us)
                    .push_bind(e.outcome.as_str()).push_bind(&e.error_class).push_bind(&e.message).push_bind(&e.request)
                    .push_bind(i64::from(a.attempts)).push_bind(a.recovered);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

macro_rules! decode {
    ($r:expr) => {{
        let outcome: String = $r.try_get("outcome")?;
        let attempts: i64 = $r.try_get("attempts")?;
        StoredExecution {
            id: $r.try_get("id")?,
            attempts: u32::try_from(attempts)
                .map_err(|_| super::StoreError::Corrupt(format!("attempts out of range: {attempts}")))?,
            recovered: $r.try_get("recovered")?,
            execution: Execution {
                target: $r.try_get("target")?,
                version: $r.try_get("version")?,
                started_at: $r.try_get("started_at")?,
                duration_us: $r.try_get("duration_us")?,
                outcome: Outcome::parse(&outcome)
                    .ok_or_else(|| super::StoreError::Corrupt(format!("unknown outcome `{outcome}`")))?,
                error_class: $r.try_get("error_class")?,
                message: $r.try_get("message")?,
                request: $r.try_get("request")?,
            },
        }
    }};
}

pub(crate) const RECENT: &str = "SELECT * FROM executions WHERE target = $1 ORDER BY id DESC LIMIT $2";
pub(crate) const REPLAYABLE: &str =
    "SELECT * FROM executions WHERE target = $1 AND request IS NOT NULL ORDER BY id DESC LIMIT $2";
pub(crate) const WITH_REQUEST: &str = "SELECT id FROM executions WHERE target = $1 AND id > $2 AND request IS NOT NULL \
     AND request = $3 ORDER BY id DESC LIMIT 1";
/// Retention in row order: every row before the first one (by id) that
/// started in `[$1, $2]`, the cutoff and the latest start a row may have
/// (the host's clock plus the skew ingest allows). Rows are written in the
/// order their calls end, so start time and id agree but for stragglers (a
/// long call, a back-dated ingest): such a row waits for the rows written
/// before it and is kept at most `retention` after it was written. A row
/// dated past `$2` (a clock that jumped) does not hold retention up; it
/// goes with its neighbours. Without a match every row is older than the
/// cutoff. No index on time is needed (the scan in id order stops at the
/// first row kept, so it reads what it deletes), and none is written per
/// call.
pub(crate) const DELETE_BEFORE: &str = "DELETE FROM executions WHERE id < COALESCE(\
     (SELECT id FROM executions WHERE started_at >= $1 AND started_at <= $2 ORDER BY id LIMIT 1), \
     (SELECT MAX(id) + 1 FROM executions), 0)";
/// The newest row's id (0 when there is none).
pub(crate) const LAST_ID: &str = "SELECT COALESCE(MAX(id), 0) AS id FROM executions";

/// Newest executions of `target` (any version), at most `limit`.
pub async fn recent(db: &Db, target: &str, limit: i64) -> Result<Vec<StoredExecution>> {
    with_pool!(db, p => {
        let rows = sqlx::query(RECENT)
            .bind(target).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// Executions of `target` that carry a recorded request, newest first: the
/// inputs a candidate is replayed against.
pub async fn replayable(db: &Db, target: &str, limit: i64) -> Result<Vec<StoredExecution>> {
    with_pool!(db, p => {
        let rows = sqlx::query(REPLAYABLE)
            .bind(target).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// The newest execution of `target` written after row `after_id` that kept
/// exactly `request`: the sample id a proof names a live request by. `None`
/// when the request was not kept (requests are sampled).
pub async fn newest_with_request(db: &Db, target: &str, after_id: i64, request: &[u8]) -> Result<Option<i64>> {
    with_pool!(db, p => {
        let row = sqlx::query(WITH_REQUEST).bind(target).bind(after_id).bind(request).fetch_optional(p).await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    })
}

/// The id of the newest row written so far (0 for none): a mark after which
/// every row written later lies.
pub async fn last_id(db: &Db) -> Result<i64> {
    with_pool!(db, p => Ok(sqlx::query(LAST_ID).fetch_one(p).await?.try_get("id")?))
}

/// Executions started in `[from, to)`, oldest first, after row `after_id`
/// (for paging through large histories).
pub async fn range(db: &Db, from: i64, to: i64, after_id: i64, limit: i64) -> Result<Vec<StoredExecution>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT * FROM executions WHERE started_at >= $1 AND started_at < $2 AND id > $3 ORDER BY id LIMIT $4")
            .bind(from).bind(to).bind(after_id).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// One recorded call's target, start and duration: what the hourly
/// rollups read (see [`crate::telemetry::hourly`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub id: i64,
    pub target: String,
    pub started_at: i64,
    pub duration_us: i64,
}

pub(crate) const TIMINGS_AFTER: &str =
    "SELECT id, target, started_at, duration_us FROM executions WHERE id > $1 ORDER BY id LIMIT $2";

/// Executions recorded after row `after_id`, in row order, at most
/// `limit`: only the columns the rollups need.
pub async fn durations_after(db: &Db, after_id: i64, limit: i64) -> Result<Vec<Timing>> {
    with_pool!(db, p => {
        let rows = sqlx::query(TIMINGS_AFTER).bind(after_id).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| Ok(Timing {
            id: r.try_get("id")?,
            target: r.try_get("target")?,
            started_at: r.try_get("started_at")?,
            duration_us: r.try_get("duration_us")?,
        })).collect()
    })
}

pub async fn count(db: &Db) -> Result<i64> {
    with_pool!(db, p => Ok(sqlx::query("SELECT COUNT(*) AS n FROM executions").fetch_one(p).await?.try_get("n")?))
}

/// Delete executions that started before `cutoff`, rows written before
/// them included, holding on to none dated after `latest` (see
/// [`DELETE_BEFORE`]); returns how many. Both in ms since the epoch.
pub async fn delete_before(db: &Db, cutoff: i64, latest: i64) -> Result<u64> {
    with_pool!(db, p => Ok(sqlx::query(DELETE_BEFORE).bind(cutoff).bind(latest).execute(p).await?.rows_affected()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row goes into exactly one statement, in order, and only the
    /// few statement sizes that the connection keeps prepared are used.
    #[test]
    fn a_batch_is_cut_into_statements_of_the_prepared_sizes_only() {
        for len in [0usize, 1, 7, 8, 63, 577, 1000, 4096] {
            let rows: Vec<usize> = (0..len).collect();
            let cut: Vec<&[usize]> = statements(&rows).collect();
            assert!(cut.iter().all(|c| STATEMENT_ROWS.contains(&c.len())), "{len}: {:?}", cut.iter().map(|c| c.len()));
            assert_eq!(cut.concat(), rows, "{len}");
        }
    }
}
