//! `fleet_hosts`, `fleet_lease` and `blobs`: a fleet's members, its
//! leader's lease with the fencing epoch, and the bytes of every module and
//! config version. PostgreSQL only (a SQLite file has one host); every time
//! here is the database's clock, `kaizen_now_ms()`.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgPool;

use super::Result;

/// The SQLSTATE the fence raises (`migrations/postgres/0010_fleet.sql`).
pub const FENCED: &str = "KZFEN";

/// Whether `e` is the fence refusing a write of a host that does not hold
/// the lease.
pub fn is_fenced(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == FENCED)
}

/// One member of the fleet as it last reported.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRow {
    pub id: String,
    /// The process start this row describes (new at each start).
    pub instance: String,
    /// The URL the host's API is reached at.
    pub address: String,
    pub kaizen_version: String,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms, the database's clock.
    pub heartbeat_at: i64,
    /// The revision of the desired state it serves.
    pub applied_revision: i64,
    /// What each of its slots serves, as it last reported: the version,
    /// and beside it a rollout's other arm and its share (`2.0.0 (2.1.0 at
    /// 10%)`).
    #[serde(default)]
    pub serving: std::collections::BTreeMap<String, String>,
}

/// The leader's lease.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub instance: String,
    /// The fencing epoch: +1 with every new term.
    pub epoch: i64,
    /// Unix ms, the database's clock.
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// Register (or re-register) host `id` as process `instance`. Refused when
/// another live process (a heartbeat newer than `stale_ms`) holds the id:
/// returns that process's row instead.
pub async fn join(pool: &PgPool, h: &HostRow, stale_ms: i64) -> Result<Option<HostRow>> {
    let mut tx = pool.begin().await?;
    let live = sqlx::query(
        "SELECT * FROM fleet_hosts WHERE id = $1 AND instance <> $2 AND heartbeat_at > kaizen_now_ms() - $3 FOR UPDATE",
    )
    .bind(&h.id)
    .bind(&h.instance)
    .bind(stale_ms)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = live {
        return Ok(Some(decode_host(&r)?));
    }
    sqlx::query(
        "INSERT INTO fleet_hosts (id, instance, address, kaizen_version, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, kaizen_now_ms())
         ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, address = EXCLUDED.address,
             kaizen_version = EXCLUDED.kaizen_version, started_at = EXCLUDED.started_at,
             heartbeat_at = EXCLUDED.heartbeat_at, serving = '{}'",
    )
    .bind(&h.id)
    .bind(&h.instance)
    .bind(&h.address)
    .bind(&h.kaizen_version)
    .bind(h.started_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(None)
}

/// Heartbeat of host `id` (process `instance`), with its address and the
/// revision of the desired state it serves.
pub async fn heartbeat(
    pool: &PgPool,
    id: &str,
    instance: &str,
    address: &str,
    applied: i64,
    serving: Option<&str>,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE fleet_hosts SET heartbeat_at = kaizen_now_ms(), address = $3, applied_revision = $4,
             serving = COALESCE($5, serving)
         WHERE id = $1 AND instance = $2",
    )
    .bind(id)
    .bind(instance)
    .bind(address)
    .bind(applied)
    .bind(serving)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(super::StoreError::Corrupt(format!(
            "host id `{id}` was taken over by another process: give each host its own `fleet.host_id`"
        )));
    }
    Ok(())
}

/// The newest revision of the desired state (0 before any deployment).
pub async fn desired_revision(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(revision), 0)::BIGINT FROM deployments").fetch_one(pool).await?)
}

/// When the control state last changed (Unix ms).
pub async fn control_changed_at(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT updated_at FROM control_state WHERE id = 1").fetch_one(pool).await?)
}

/// Every host, by id.
pub async fn hosts(pool: &PgPool) -> Result<Vec<HostRow>> {
    let rows = sqlx::query("SELECT * FROM fleet_hosts ORDER BY id").fetch_all(pool).await?;
    rows.iter().map(decode_host).collect()
}

/// The lease as it stands, and the database's clock.
pub async fn lease(pool: &PgPool) -> Result<(Option<Lease>, i64)> {
    let now: i64 = sqlx::query_scalar("SELECT kaizen_now_ms()").fetch_one(pool).await?;
    let row = sqlx::query("SELECT * FROM fleet_lease WHERE id = 1").fetch_optional(pool).await?;
    Ok((row.as_ref().map(decode_lease).transpose()?, now))
}

/// Take the lease for a new term, when nobody holds it or its holder's
/// term has expired, or renew it when `(id, instance)` holds it at `epoch`.
/// Returns the lease held afterwards by `(id, instance)`, or `None` when
/// another host holds it.
///
/// A new term always gets a new epoch (+1), even for the same host id: a
/// restarted process must not pass the fence as its previous life.
pub async fn acquire(
    pool: &PgPool,
    id: &str,
    instance: &str,
    held: Option<i64>,
    lease_ms: i64,
) -> Result<Option<Lease>> {
    let row = match held {
        Some(epoch) => {
            sqlx::query(
                "UPDATE fleet_lease SET expires_at = kaizen_now_ms() + $4
                 WHERE id = 1 AND holder = $1 AND instance = $2 AND epoch = $3 RETURNING *",
            )
            .bind(id)
            .bind(instance)
            .bind(epoch)
            .bind(lease_ms)
            .fetch_optional(pool)
            .await?
        }
        None => {
            sqlx::query(
                "INSERT INTO fleet_lease (id, holder, instance, epoch, acquired_at, expires_at)
                 VALUES (1, $1, $2, 1, kaizen_now_ms(), kaizen_now_ms() + $3)
                 ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, instance = EXCLUDED.instance,
                     epoch = fleet_lease.epoch + 1, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
                 WHERE fleet_lease.expires_at <= kaizen_now_ms()
                    OR (fleet_lease.holder = EXCLUDED.holder AND fleet_lease.instance <> EXCLUDED.instance
                        AND NOT EXISTS (SELECT 1 FROM fleet_hosts h WHERE h.id = fleet_lease.holder
                                        AND h.instance = fleet_lease.instance))
                 RETURNING *",
            )
            .bind(id)
            .bind(instance)
            .bind(lease_ms)
            .fetch_optional(pool)
            .await?
        }
    };
    row.as_ref().map(decode_lease).transpose()
}

/// Give the lease up at once (a graceful shutdown), so that another host
/// takes over without waiting for it to expire.
pub async fn release(pool: &PgPool, id: &str, instance: &str, epoch: i64) -> Result<()> {
    sqlx::query(
        "UPDATE fleet_lease SET expires_at = kaizen_now_ms() WHERE id = 1 AND holder = $1 AND instance = $2 AND epoch = $3",
    )
    .bind(id)
    .bind(instance)
    .bind(epoch)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keep `bytes` of `kind` (`module`, `config`) under their sha256; known
/// bytes are kept as they are.
pub async fn put_blob(pool: &PgPool, kind: &str, sha256: &str, bytes: &[u8]) -> Result<()> {
    sqlx::query(
        "INSERT INTO blobs (kind, sha256, bytes, added_at) VALUES ($1, $2, $3, kaizen_now_ms())
         ON CONFLICT (kind, sha256) DO NOTHING",
    )
    .bind(kind)
    .bind(sha256)
    .bind(bytes)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether bytes of `kind` are kept under `sha256`.
pub async fn has_blob(pool: &PgPool, kind: &str, sha256: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM blobs WHERE kind = $1 AND sha256 = $2")
        .bind(kind)
        .bind(sha256)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// The bytes of `kind` kept under `sha256` (unverified: the caller hashes).
pub async fn blob(pool: &PgPool, kind: &str, sha256: &str) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT bytes FROM blobs WHERE kind = $1 AND sha256 = $2")
        .bind(kind)
        .bind(sha256)
        .fetch_optional(pool)
        .await?)
}

fn decode_host(r: &sqlx::postgres::PgRow) -> Result<HostRow> {
    Ok(HostRow {
        id: r.try_get("id")?,
        instance: r.try_get("instance")?,
        address: r.try_get("address")?,
        kaizen_version: r.try_get("kaizen_version")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        applied_revision: r.try_get("applied_revision")?,
        serving: serde_json::from_str(&r.try_get::<String, _>("serving")?).unwrap_or_default(),
    })
}

fn decode_lease(r: &sqlx::postgres::PgRow) -> Result<Lease> {
    Ok(Lease {
        holder: r.try_get("holder")?,
        instance: r.try_get("instance")?,
        epoch: r.try_get("epoch")?,
        acquired_at: r.try_get("acquired_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// One call of a rollout's arm on a follower, shipped for the leader's judge.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmCall {
    pub host: String,
    pub slot: String,
    pub sha256: String,
    /// Served by the matched control (a copy of `sha256`).
    pub control: bool,
    /// Unix ms, when the call was routed.
    pub started_at: i64,
    pub latency_ms: f64,
    /// `None` for a call that answered, else its error class.
    pub class: Option<String>,
}

/// Ship `calls` in one statement.
pub async fn ship(pool: &PgPool, calls: &[ArmCall]) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "INSERT INTO fleet_arm_calls (host, slot, sha256, control, started_at, latency_ms, class) ",
    );
    q.push_values(calls, |mut b, c| {
        b.push_bind(&c.host)
            .push_bind(&c.slot)
            .push_bind(&c.sha256)
            .push_bind(i16::from(c.control))
            .push_bind(c.started_at)
            .push_bind(c.latency_ms)
            .push_bind(&c.class);
    });
    q.build().execute(pool).await?;
    Ok(())
}

/// The newest shipped call's id (0 when none): a rollout reads what comes after.
pub async fn last_arm_call(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(id), 0)::BIGINT FROM fleet_arm_calls").fetch_one(pool).await?)
}

/// Calls of `slot` shipped by hosts other than `me` after id `after`, oldest
/// first, with their ids.
pub async fn arm_calls_after(pool: &PgPool, slot: &str, me: &str, after: i64) -> Result<Vec<(i64, ArmCall)>> {
    let rows =
        sqlx::query("SELECT * FROM fleet_arm_calls WHERE slot = $1 AND host <> $2 AND id > $3 ORDER BY id LIMIT 20000")
            .bind(slot)
            .bind(me)
            .bind(after)
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                ArmCall {
                    host: r.try_get("host")?,
                    slot: r.try_get("slot")?,
                    sha256: r.try_get("sha256")?,
                    control: r.try_get::<i16, _>("control")? != 0,
                    started_at: r.try_get("started_at")?,
                    latency_ms: r.try_get("latency_ms")?,
                    class: r.try_get("class")?,
                },
            ))
        })
        .collect()
}

/// Forget shipped calls older than `keep_ms`.
pub async fn prune_arm_calls(pool: &PgPool, keep_ms: i64) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM fleet_arm_calls WHERE at < kaizen_now_ms() - $1").bind(keep_ms).execute(pool).await?;
    Ok(done.rows_affected())
}

/// Queue candidate `module_id` (its bytes already in `blobs`) for the leader.
pub async fn submit(pool: &PgPool, module_id: &str, source: &str, by: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO fleet_submissions (module_id, source, submitted_by) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(module_id)
    .bind(source)
    .bind(by)
    .fetch_one(pool)
    .await?)
}

/// The candidates followers queued that no leader has taken yet: (id,
/// module id, source, host), oldest first. A leader marks each taken
/// ([`mark_taken`]) once its own queue on disk holds it, so a leader that
/// dies in between leaves it for the next. One not marked though an
/// improvement for it was opened since it was submitted (the mark failed)
/// was taken all the same: it is not listed, so it is not proven twice.
/// Both times are the database's clock (`improvements.opened_at`, not the
/// leader's `created_at`), so a host's clock running behind or ahead
/// neither retakes a submission nor hides a later one.
pub async fn submissions(pool: &PgPool) -> Result<Vec<(i64, String, String, String)>> {
    let rows = sqlx::query(
        "SELECT s.id, s.module_id, s.source, s.submitted_by FROM fleet_submissions s
         WHERE s.taken_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM improvements i WHERE i.candidate_sha = s.module_id AND i.opened_at >= s.at)
         ORDER BY s.id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("module_id")?, r.try_get("source")?, r.try_get("submitted_by")?)))
        .collect()
}

/// Mark submission `id` taken into a leader's queue (or refused).
pub async fn mark_taken(pool: &PgPool, id: i64) -> Result<()> {
    sqlx::query("UPDATE fleet_submissions SET taken_at = kaizen_now_ms() WHERE id = $1 AND taken_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Pass a recovery strategy's request to roll `target` back, made on
/// follower `host`, to the leader, which alone decides.
pub async fn request_rollback(pool: &PgPool, host: &str, target: &str, reason: &str) -> Result<()> {
    sqlx::query("INSERT INTO fleet_rollback_requests (host, target, reason) VALUES ($1, $2, $3)")
        .bind(host)
        .bind(target)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Take (and delete) the rollback requests followers passed on: (host,
/// target, reason), oldest first.
pub async fn take_rollback_requests(pool: &PgPool) -> Result<Vec<(String, String, String)>> {
    let rows =
        sqlx::query("DELETE FROM fleet_rollback_requests RETURNING id, host, target, reason").fetch_all(pool).await?;
    let mut taken: Vec<(i64, String, String, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("host")?, r.try_get("target")?, r.try_get("reason")?)))
        .collect::<Result<_>>()?;
    taken.sort_by_key(|t| t.0);
    Ok(taken.into_iter().map(|(_, h, t, r)| (h, t, r)).collect())
}
