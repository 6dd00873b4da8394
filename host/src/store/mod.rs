//! Persistence on sqlx: SQLite by default (one WAL file, nothing to
//! install), PostgreSQL when several hosts share one deployment state.
//!
//! Both backends run the same statements: SQL is written with `$N`
//! placeholders in order of appearance (which SQLite numbers the same way),
//! times as Unix milliseconds, booleans as 0/1 integers, JSON as text. Each
//! repository module holds the statements of one table.

pub mod aggregates;
pub mod audit;
pub mod breaker_forces;
pub mod candidate_queue;
pub mod control;
pub mod cycles;
pub mod deliveries;
pub mod deployments;
pub mod executions;
pub mod failures;
pub mod findings;
pub mod fleet;
pub mod health;
pub mod improvements;
pub mod metrics;
pub mod modules;
pub mod priorities;
pub mod recovery_log;
pub mod tallies;

#[cfg(test)]
mod plans;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    VersionTaken(#[from] modules::VersionTaken),
}

impl StoreError {
    /// Whether this is the fleet's fence refusing a write of a host that
    /// does not hold the leader's lease (see [`crate::fleet`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Db(e) if fleet::is_fenced(e))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub use failures::WriteFailures;

/// A state stored as text: `as_str` is what the column holds (and what
/// serde writes), `parse` reads it back and names a value it does not know.
/// (`$s:tt`, not `literal`: a `literal` fragment reaches derive macros wrapped
/// in an invisible group, and the OpenAPI derive then missed the renames.)
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident ($what:literal) { $($(#[$vm:meta])* $v:ident => $s:tt),+ $(,)? }) => {
        $(#[$m])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }

            pub fn parse(s: &str) -> $crate::store::Result<$name> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err($crate::store::StoreError::Corrupt(format!(concat!("unknown ", $what, " `{}`"), s))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
pub(crate) use text_enum;

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run `$body` with `$pool` bound to whichever pool `$db` holds; the body is
/// compiled once per backend, so one statement text serves both.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Write transactions. On SQLite they start `IMMEDIATE`: a deferred
/// transaction that reads, then writes, cannot wait for a busy writer and
/// fails with `database is locked`; an immediate one takes the write lock up
/// front and waits its turn (the busy timeout).
pub(crate) trait WritePool {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Open `url` (`sqlite://PATH` or `postgres://…`) and apply migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        Db::connect_as(url, None).await
    }

    /// Whether `url` names a PostgreSQL database.
    pub fn is_postgres_url(url: &str) -> bool {
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// [`Db::connect`], with PostgreSQL sessions named `session`
    /// (`application_name`: a fleet member's name, which the fence checks)
    /// and ended by the server when idle inside a transaction for longer
    /// than `idle_in_transaction` (a stalled leader's open transaction
    /// would otherwise hold the lease row's share lock, and so its
    /// successor's takeover, until TCP gives up).
    pub async fn connect_as(url: &str, session: Option<(&str, Duration)>) -> Result<Db> {
        let db = if Db::is_postgres_url(url) {
            let mut opts = sqlx::postgres::PgConnectOptions::from_str(url)?;
            if let Some((name, idle_in_transaction)) = session {
                let ms = idle_in_transaction.as_millis().max(1).to_string();
                opts = opts.application_name(name).options([("idle_in_transaction_session_timeout", ms.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?;
            Db::Sqlite(open_sqlite(opts).await?)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Open (creating) the SQLite file at `path` and apply migrations.
    pub async fn open_sqlite_file(path: &Path) -> Result<Db> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        }
        let opts = SqliteConnectOptions::new().filename(path);
        let db = Db::Sqlite(open_sqlite(opts).await?);
        db.migrate().await?;
        Ok(db)
    }

    /// Apply pending migrations; a no-op when all are applied.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Db::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

/// WAL (readers never block the writer), full sync on commit (what was
/// acknowledged survives a crash), a busy timeout instead of instant
/// `database is locked` errors, and foreign keys on.
async fn open_sqlite(opts: SqliteConnectOptions) -> Result<SqlitePool> {
    let opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .after_release(release_orphaned_transaction)
        .connect_with(opts)
        .await?)
}

/// A connection must come back to the pool outside any transaction. One
/// can come back inside one nobody owns: when the future that sent its
/// `BEGIN IMMEDIATE` was dropped (a task aborted at shutdown) after SQLite
/// had begun it but before a guard existed to roll it back. That connection
/// would hold the database's one write lock for good, and every other
/// writer would time out with `database is locked`. A `ROLLBACK` that
/// succeeds finds such a transaction: it is rolled back and the connection
/// closed (its driver still counts the transaction). One that fails is the
/// normal case (nothing open) and the connection is kept.
fn release_orphaned_transaction(
    conn: &mut sqlx::SqliteConnection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, std::result::Result<bool, sqlx::Error>> {
    Box::pin(async move {
        match sqlx::query("ROLLBACK").execute(&mut *conn).await {
            Ok(_) => {
                tracing::warn!("a store connection came back inside a transaction nobody owned; rolled back, closed");
                Ok(false)
            }
            Err(_) => Ok(true),
        }
    })
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A Unix-millisecond time as a UTC date and time, `2026-12-01 11:23:53Z`;
/// a time outside what a calendar date can hold (years −9999 to 9999)
/// reads as its milliseconds.
pub fn format_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => format!("{ms} ms since 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(1_796_124_233_000), "2026-12-01 11:23:53Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59Z");
        assert_eq!(format_time(i64::MAX), "9223372036854775807 ms since 1970");
    }

    /// A write transaction whose `BEGIN IMMEDIATE` went out but whose future
    /// was dropped before it answered (a task aborted mid-call) must not keep
    /// SQLite's write lock from everyone else.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_orphaned_begin_does_not_keep_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
        let Db::Sqlite(pool) = &db else { unreachable!() };
        // Idle connections, so that a begin's first poll sends its BEGIN.
        for _ in 0..4 {
            sqlx::query("SELECT 1").execute(pool).await.unwrap();
        }
        for _ in 0..5 {
            let mut begin = Box::pin(pool.begin_write());
            let _ = futures::poll!(begin.as_mut());
            drop(begin);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let write = async {
            let mut tx = pool.begin_write().await?;
            sqlx::query("CREATE TABLE IF NOT EXISTS probe (x INTEGER)").execute(&mut *tx).await?;
            tx.commit().await
        };
        // Far below the 10 s busy timeout a held lock would run into.
        let done = tokio::time::timeout(Duration::from_secs(5), write).await;
        done.expect("the write lock was free").unwrap();
    }
}
