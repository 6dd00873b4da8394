//! `deployments` (what each slot serves) and `deployment_history` (every
//! change), written together so that the two never disagree.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, WritePool, with_pool};

/// Lifecycle state of a slot's deployment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployState {
    Candidate,
    Testing,
    Canary,
    Active,
    RolledBack,
    Retired,
}

impl DeployState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployState::Candidate => "candidate",
            DeployState::Testing => "testing",
            DeployState::Canary => "canary",
            DeployState::Active => "active",
            DeployState::RolledBack => "rolled-back",
            DeployState::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<DeployState> {
        Some(match s {
            "candidate" => DeployState::Candidate,
            "testing" => DeployState::Testing,
            "canary" => DeployState::Canary,
            "active" => DeployState::Active,
            "rolled-back" => DeployState::RolledBack,
            "retired" => DeployState::Retired,
            _ => return None,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub slot: String,
    pub kind: String,
    pub current_sha: String,
    pub previous_sha: Option<String>,
    pub candidate_sha: Option<String>,
    pub canary_percent: f64,
    /// The share a matched control of the serving version takes beside
    /// the canary (0 without one).
    #[serde(default)]
    pub control_percent: f64,
    /// During the bake after a promotion: the share of calls that stays on
    /// `previous_sha` (the concurrent holdback the bake is judged against),
    /// with `control_percent` on a matched control of the promoted
    /// version; 0 outside a bake.
    #[serde(default)]
    pub holdback_percent: f64,
    /// Every version a rollback can go back to once `current_sha` serves,
    /// newest first (module ids; the slot's history, at most
    /// `runtime.history_depth`). Kept so that a restart restores every
    /// level of rollback; empty in rows written before it was kept, which
    /// restore `previous_sha` alone.
    #[serde(default)]
    pub rollback_chain: Vec<String>,
    pub state: DeployState,
    pub reason: String,
    pub updated_at: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub slot: String,
    /// The version the change is about: the one deployed, the canary's
    /// candidate, or for `rolled-back` the version restored.
    pub sha256: String,
    /// The version of `sha256` (absent when its module is not in the store).
    #[serde(default)]
    pub version: Option<String>,
    /// The version serving before the change (for `rolled-back`: the one
    /// taken back).
    pub from_sha: Option<String>,
    /// The version of `from_sha`.
    #[serde(default)]
    pub from_version: Option<String>,
    pub state: DeployState,
    pub reason: String,
    pub at: i64,
}

fn state(s: String) -> Result<DeployState> {
    DeployState::parse(&s).ok_or_else(|| super::StoreError::Corrupt(format!("unknown deployment state `{s}`")))
}

fn chain(s: Option<String>) -> Result<Vec<String>> {
    let Some(s) = s else { return Ok(Vec::new()) };
    serde_json::from_str(&s)
        .map_err(|e| super::StoreError::Corrupt(format!("a deployment's rollback chain `{s}`: {e}")))
}

/// Record that `slot` went back from `from_sha` to `to_sha`: the slot's
/// deployment row and its history, whose entry names the version restored
/// (`sha256`) and the one taken back (`from_sha`), as every entry names
/// what serves after it and what served before. `rollback_chain` is what the
/// slot would go back to next, newest first (its history once `to_sha`
/// serves), kept so that a restart restores it.
pub async fn record_rollback(
    db: &Db,
    slot: &str,
    kind: &str,
    to_sha: &str,
    from_sha: &str,
    rollback_chain: Vec<String>,
    reason: &str,
) -> Result<()> {
    let d = Deployment {
        slot: slot.into(),
        kind: kind.into(),
        current_sha: to_sha.into(),
        previous_sha: rollback_chain.first().cloned(),
        rollback_chain,
        candidate_sha: None,
        canary_percent: 0.0,
        control_percent: 0.0,
        holdback_percent: 0.0,
        state: DeployState::RolledBack,
        reason: reason.into(),
        updated_at: super::now_ms(),
    };
    record(db, &d, to_sha, Some(from_sha)).await
}

/// Set a slot's deployment and append the change to its history, in one
/// transaction. `history_sha` is the version the change is about.
pub async fn record(db: &Db, d: &Deployment, history_sha: &str, from_sha: Option<&str>) -> Result<()> {
    let chain = serde_json::to_string(&d.rollback_chain).expect("a list of strings serialises");
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query(
            "INSERT INTO deployments (slot, kind, current_sha, previous_sha, candidate_sha, canary_percent, state, reason, updated_at, control_percent, holdback_percent, rollback_chain)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (slot) DO UPDATE SET kind = excluded.kind, current_sha = excluded.current_sha,
               previous_sha = excluded.previous_sha, candidate_sha = excluded.candidate_sha,
               canary_percent = excluded.canary_percent, state = excluded.state,
               reason = excluded.reason, updated_at = excluded.updated_at, control_percent = excluded.control_percent,
               holdback_percent = excluded.holdback_percent, rollback_chain = excluded.rollback_chain")
            .bind(&d.slot).bind(&d.kind).bind(&d.current_sha).bind(&d.previous_sha).bind(&d.candidate_sha)
            .bind(d.canary_percent).bind(d.state.as_str()).bind(&d.reason).bind(d.updated_at).bind(d.control_percent)
            .bind(d.holdback_percent).bind(&chain)
            .execute(&mut *tx).await?;
        sqlx::query("INSERT INTO deployment_history (slot, sha256, from_sha, state, reason, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&d.slot).bind(history_sha).bind(from_sha).bind(d.state.as_str()).bind(&d.reason).bind(d.updated_at)
            .execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// End the bake's holdback of `slot` while it serves `current_sha`, for
/// `reason`: every call goes to the promoted version. Changes the split only, so the
/// history (which records versions) gains no entry; a slot that moved on
/// meanwhile is left as it is.
pub async fn end_holdback(db: &Db, slot: &str, current_sha: &str, reason: &str) -> Result<()> {
    with_pool!(db, p => sqlx::query(
        "UPDATE deployments SET holdback_percent = 0, control_percent = 0, updated_at = $3, reason = $4
         WHERE slot = $1 AND current_sha = $2 AND holdback_percent > 0")
        .bind(slot).bind(current_sha).bind(super::now_ms()).bind(reason)
        .execute(p).await.map(|_| ()))?;
    Ok(())
}

macro_rules! decode {
    ($r:expr) => {
        Deployment {
            slot: $r.try_get("slot")?,
            kind: $r.try_get("kind")?,
            current_sha: $r.try_get("current_sha")?,
            previous_sha: $r.try_get("previous_sha")?,
            candidate_sha: $r.try_get("candidate_sha")?,
            canary_percent: $r.try_get("canary_percent")?,
            control_percent: $r.try_get("control_percent")?,
            holdback_percent: $r.try_get("holdback_percent")?,
            rollback_chain: chain($r.try_get("rollback_chain")?)?,
            state: state($r.try_get("state")?)?,
            reason: $r.try_get("reason")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

pub async fn get(db: &Db, slot: &str) -> Result<Option<Deployment>> {
    with_pool!(db, p => {
        let row = sqlx::query("SELECT * FROM deployments WHERE slot = $1").bind(slot).fetch_optional(p).await?;
        Ok(match row { Some(r) => Some(decode!(r)), None => None })
    })
}

pub async fn all(db: &Db) -> Result<Vec<Deployment>> {
    with_pool!(db, p => {
        let rows = sqlx::query("SELECT * FROM deployments ORDER BY slot").fetch_all(p).await?;
        rows.iter().map(|r| Ok(decode!(r))).collect()
    })
}

/// The history of `slot`, newest first, at most `limit` entries, with
/// the versions its modules are (an operator reads versions, not hashes).
pub async fn history(db: &Db, slot: &str, limit: i64) -> Result<Vec<HistoryEntry>> {
    with_pool!(db, p => {
        let rows = sqlx::query(
            "SELECT h.id, h.slot, h.sha256, h.from_sha, h.state, h.reason, h.at, m.version AS version, f.version AS from_version
             FROM deployment_history h
             LEFT JOIN modules m ON m.sha256 = substr(h.sha256, 1, 64)
             LEFT JOIN modules f ON f.sha256 = substr(h.from_sha, 1, 64)
             WHERE h.slot = $1 ORDER BY h.id DESC LIMIT $2")
            .bind(slot).bind(limit).fetch_all(p).await?;
        // A config version's id is its module's sha256 and its config's,
        // joined by `+`: its module's version, named as the runtime does.
        rows.iter().map(|r| {
            let sha256: String = r.try_get("sha256")?;
            let from_sha: Option<String> = r.try_get("from_sha")?;
            let version: Option<String> = r.try_get("version")?;
            let from_version: Option<String> = r.try_get("from_version")?;
            Ok(HistoryEntry {
            id: r.try_get("id")?,
            slot: r.try_get("slot")?,
            version: version.map(|v| super::modules::versioned_id(&v, &sha256)),
            from_version: from_version.zip(from_sha.as_deref()).map(|(v, f)| super::modules::versioned_id(&v, f)),
            sha256,
            from_sha,
            state: state(r.try_get("state")?)?,
            reason: r.try_get("reason")?,
            at: r.try_get("at")?,
        })}).collect()
    })
}
