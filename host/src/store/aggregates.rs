//! `aggregates`: checkpoints of the in-memory rolling aggregates (one
//! MessagePack-encoded bucket per host, target, version and time bucket),
//! so that detection windows survive a restart and the deletion of old
//! executions, and so that a fleet's leader detects on every host's calls.

use sqlx::{QueryBuilder, Row};

use super::{Db, Result, WritePool, with_pool};

/// One stored bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBucket {
    pub target: String,
    pub version: String,
    pub bucket_start: i64,
    pub bucket: Vec<u8>,
}

/// Write (replace) `host`'s `buckets` in one transaction. `host` is the
/// fleet's host id, '' for a host outside a fleet.
pub async fn upsert(db: &Db, host: &str, buckets: &[StoredBucket]) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for chunk in buckets.chunks(500) {
            let mut qb = QueryBuilder::new("INSERT INTO aggregates (host, target, version, bucket_start, bucket) ");
            qb.push_values(chunk, |mut b, s| {
                b.push_bind(host).push_bind(&s.target).push_bind(&s.version).push_bind(s.bucket_start).push_bind(&s.bucket);
            });
            // `written_at` takes its default (PostgreSQL's clock) again.
            qb.push(" ON CONFLICT (host, target, version, bucket_start) DO UPDATE SET bucket = excluded.bucket, \
                      written_at = excluded.written_at");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// A host's own buckets. (Rows written before hosts were named have host
/// '': a host outside a fleet restores them; in a fleet they age out.)
pub(crate) const SINCE: &str = "SELECT * FROM aggregates WHERE host = $1 AND bucket_start >= $2";
/// Other hosts' buckets written at or after a time, of the buckets that
/// start at or after another.
pub(crate) const PEERS_WRITTEN_SINCE: &str = "SELECT * FROM aggregates \
     WHERE written_at >= $1 AND bucket_start >= $2 AND host <> $3 AND host <> ''";
pub(crate) const DELETE_BEFORE: &str = "DELETE FROM aggregates WHERE bucket_start < $1";

macro_rules! decode {
    ($r:expr) => {
        StoredBucket {
            target: $r.try_get("target")?,
            version: $r.try_get("version")?,
            bucket_start: $r.try_get("bucket_start")?,
            bucket: $r.try_get("bucket")?,
        }
    };
}

/// `host`'s buckets that start at or after `since`, for its restart.
pub async fn since(db: &Db, host: &str, since: i64) -> Result<Vec<StoredBucket>> {
    with_pool!(db, p => {
        let rows = sqlx::query(SINCE).bind(host).bind(since).fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// Buckets of every host but `host` that start at or after `since` and were
/// written at or after `written_since` (the database's clock), with the
/// host that wrote each and the newest `written_at` read (0 when none).
pub async fn peers_since(
    db: &Db,
    host: &str,
    written_since: i64,
    since: i64,
) -> Result<(Vec<(String, StoredBucket)>, i64)> {
    with_pool!(db, p => {
        let rows = sqlx::query(PEERS_WRITTEN_SINCE).bind(written_since).bind(since).bind(host).fetch_all(p).await?;
        let mut newest = 0;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            newest = newest.max(r.try_get::<i64, _>("written_at")?);
            out.push((r.try_get("host")?, decode!(r)));
        }
        Ok((out, newest))
    })
}

pub async fn delete_before(db: &Db, cutoff: i64) -> Result<u64> {
    with_pool!(db, p => Ok(sqlx::query(DELETE_BEFORE).bind(cutoff).execute(p).await?.rows_affected()))
}
