//! Every query the loop and the host run on a table that grows with traffic
//! is served by an index: checked on SQLite's query plans and on
//! PostgreSQL's generic plans, so a new query or a dropped index that would
//! scan the table fails here rather than in production under load.

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

/// A fresh PostgreSQL database with every migration applied, on the server
/// `KAIZEN_TEST_POSTGRES` names (an admin URL); `None`, with a notice, when
/// it is unset outside CI. Dropped by [`drop_database`].
async fn postgres() -> Option<(String, String, Db)> {
    use sqlx::Connection;
    let admin = match std::env::var("KAIZEN_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => panic!("CI must run the PostgreSQL tests: set KAIZEN_TEST_POSTGRES"),
        _ => {
            eprintln!("NOTICE: PostgreSQL test skipped: KAIZEN_TEST_POSTGRES is not set (see README, Testing)");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("kaizen_plans_{}_{nanos}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable at KAIZEN_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let db = Db::connect(&format!("{base}/{name}")).await.unwrap();
    Some((admin, name, db))
}

async fn drop_database(admin: &str, name: &str, db: Db) {
    use sqlx::Connection;
    db.close().await;
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
}

/// PostgreSQL's generic plan for `sql` (the one it uses whatever values
/// are bound), with sequential scans priced out: a `Seq Scan` left in it
/// means no index can serve the statement.
async fn pg_plan(pool: &sqlx::PgPool, sql: &str) -> Vec<String> {
    use sqlx::Row;
    let mut conn = pool.acquire().await.unwrap();
    let params = (1..=9).filter(|n| sql.contains(&format!("${n}"))).count();
    sqlx::raw_sql("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("PREPARE hot AS {sql}")).execute(&mut *conn).await.unwrap();
    let nulls = vec!["NULL"; params].join(", ");
    let explain = if params == 0 { "EXPLAIN EXECUTE hot".to_string() } else { format!("EXPLAIN EXECUTE hot({nulls})") };
    let rows = sqlx::raw_sql(&explain).fetch_all(&mut *conn).await.unwrap();
    sqlx::raw_sql("DEALLOCATE hot; RESET ALL").execute(&mut *conn).await.unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

/// PostgreSQL runs the same statement texts over its own migrations (whose
/// indexes are written apart from SQLite's): each hot statement reads its
/// table through an index and sorts nothing; retention reads `executions`
/// only by its primary key (the scan in id order that stops at the first
/// row kept, and the delete of the ids below it).
#[tokio::test]
async fn on_postgres_no_hot_query_or_retention_scans_its_table_or_sorts_it() {
    let Some((admin, name, db)) = postgres().await else { return };
    let Db::Postgres(pool) = &db else { unreachable!() };
    for (what, sql, table) in HOT.iter().chain(ROW_ORDER) {
        let lines = pg_plan(pool, sql).await;
        // Index reads: `Index Scan using I on T`, `Index Only Scan ...`,
        // `Bitmap Index Scan on I`.
        let index_reads: Vec<&str> = lines
            .iter()
            .map(|l| l.trim_start_matches([' ', '-', '>']))
            .filter(|n| ["Index Scan", "Index Only Scan", "Bitmap Index Scan"].iter().any(|k| n.starts_with(k)))
            .collect();
        assert!(!index_reads.is_empty(), "{what}: no index read of {table}: {lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("Seq Scan")), "{what}: scans a table: {lines:#?}");
        assert!(
            !lines.iter().any(|l| l.trim_start_matches([' ', '-', '>']).starts_with("Sort")),
            "{what}: sorts: {lines:#?}"
        );
        if ROW_ORDER.iter().any(|(_, s, _)| s == sql) {
            let by_key = format!("{table}_pkey");
            assert!(
                index_reads.iter().all(|n| n.contains(&by_key)),
                "{what}: reads {table} other than by its primary key: {lines:#?}"
            );
        }
    }
    drop_database(&admin, &name, db).await;
}
