//! `aggregates`: checkpoints of the in-memory rolling aggregates (one
//! MessagePack-encoded bucket per target, version and time bucket), so that
//! detection windows survive a restart and the deletion of old executions.

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

/// Write (replace) `buckets` in one transaction.
pub async fn upsert(db: &Db, buckets: &[StoredBucket]) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        for chunk in buckets.chunks(500) {
            let mut qb = QueryBuilder::new("INSERT INTO aggregates (target, version, bucket_start, bucket) ");
            qb.push_values(chunk, |mut b, s| {
                b.push_bind(&s.target).push_bind(&s.version).push_bind(s.bucket_start).push_bind(&s.bucket);
            });
            qb.push(" ON CONFLICT (target, version, bucket_start) DO UPDATE SET bucket = excluded.bucket");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

pub(crate) const SINCE: &str = "SELECT * FROM aggregates WHERE bucket_start >= $1 ORDER BY bucket_start";
pub(crate) const DELETE_BEFORE: &str = "DELETE FROM aggregates WHERE bucket_start < $1";

/// Buckets that start at or after `since`.
pub async fn since(db: &Db, since: i64) -> Result<Vec<StoredBucket>> {
    with_pool!(db, p => {
        let rows = sqlx::query(SINCE).bind(since).fetch_all(p).await?;
        rows.iter().map(|r| Ok(StoredBucket {
            target: r.try_get("target")?,
            version: r.try_get("version")?,
            bucket_start: r.try_get("bucket_start")?,
            bucket: r.try_get("bucket")?,
        })).collect()
    })
}

pub async fn delete_before(db: &Db, cutoff: i64) -> Result<u64> {
    with_pool!(db, p => Ok(sqlx::query(DELETE_BEFORE).bind(cutoff).execute(p).await?.rows_affected()))
}
