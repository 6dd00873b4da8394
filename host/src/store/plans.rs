//! Every query the loop and the host run on a table that grows with traffic
//! is served by an index: checked on SQLite's query plans, so a new query
//! or a dropped index that would scan the table fails here rather than in
//! production under load.

use super::{Db, aggregates, executions, metrics, recovery_log};

/// (what, statement, table it reads).
const HOT: &[(&str, &str, &str)] = &[
    ("newest executions of a target", executions::RECENT, "executions"),
    ("replay samples of a target", executions::REPLAYABLE, "executions"),
    ("a live request's sample id", executions::WITH_REQUEST, "executions"),
    ("metric points since", metrics::SINCE, "metrics"),
    ("newest metric points since", metrics::NEWEST_SINCE, "metrics"),
    ("executions after a row, for the hourly rollups", executions::TIMINGS_AFTER, "executions"),
    ("metric retention", metrics::DELETE_BEFORE, "metrics"),
    ("aggregate buckets since", aggregates::SINCE, "aggregates"),
    ("other hosts' aggregate buckets written since", aggregates::PEERS_WRITTEN_SINCE, "aggregates"),
    ("aggregate retention", aggregates::DELETE_BEFORE, "aggregates"),
    ("recovery log of a target", recovery_log::RECENT_OF_TARGET, "recovery_log"),
];

/// Statements that may scan their table in row order, because the scan
/// stops at the first row it keeps and so reads only what it deletes (no
/// index on time is written per call for them): (what, statement, table).
const ROW_ORDER: &[(&str, &str, &str)] = &[("execution retention", executions::DELETE_BEFORE, "executions")];

/// The plan's detail lines for `sql`, parameters bound to placeholders.
async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    use sqlx::Row;
    let params = (1..=9).filter(|n| sql.contains(&format!("${n}"))).count();
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(&explain);
    for _ in 0..params {
        q = q.bind(0_i64);
    }
    let rows = q.fetch_all(pool).await.unwrap();
    rows.iter().map(|r| r.get::<String, _>("detail")).collect()
}

/// A new SQLite file with every migration applied (kept while the dir lives).
async fn migrated() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
    (dir, db)
}

#[tokio::test]
async fn no_hot_query_scans_its_table_or_sorts_it() {
    let (_dir, db) = migrated().await;
    let Db::Sqlite(pool) = &db else { unreachable!() };
    for (what, sql, table) in HOT {
        let details = plan(pool, sql).await;
        assert!(
            details.iter().any(|d| d.starts_with(&format!("SEARCH {table} USING"))),
            "{what}: no index search on {table}: {details:?}"
        );
        assert!(
            !details.iter().any(|d| d.starts_with("SCAN ") || d.contains("TEMP B-TREE")),
            "{what}: scans or sorts {table}: {details:?}"
        );
    }
}

#[tokio::test]
async fn retention_scans_only_in_row_order_and_deletes_by_row_id() {
    let (_dir, db) = migrated().await;
    let Db::Sqlite(pool) = &db else { unreachable!() };
    for (what, sql, table) in ROW_ORDER {
        let details = plan(pool, sql).await;
        assert!(
            details.iter().any(|d| d.starts_with(&format!("SEARCH {table} USING INTEGER PRIMARY KEY"))),
            "{what}: does not delete by row id: {details:?}"
        );
        // A bare `SCAN table` walks the rows in id order; `SCAN ... USING
        // INDEX` or a temporary B-tree would read or sort every row.
        assert!(
            details.iter().all(|d| !d.starts_with("SCAN ") || d == &format!("SCAN {table}")),
            "{what}: scans other than in row order: {details:?}"
        );
        assert!(!details.iter().any(|d| d.contains("TEMP B-TREE")), "{what}: sorts {table}: {details:?}");
    }
}
