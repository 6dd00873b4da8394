//! `control_state`: the safety controller's switches, one row, so that an
//! emergency stop survives a restart.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Db, Result, WritePool, with_pool};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    /// The global switch: when off the loop observes but changes nothing.
    pub enabled: bool,
    pub paused: bool,
    /// Emergency stop: every rollout frozen where it stands.
    pub stopped: bool,
    /// Why the loop is in its state: the reason of the switch that holds
    /// it (the stop, then the global switch, then the pause), or, when none
    /// does, the one given with the last change of `enabled`, `paused` or
    /// `stopped` (a freeze has its own).
    pub reason: String,
    /// Who gave that reason (`api`, `cli`, `safety`, ...).
    pub by_whom: String,
    /// When anything here last changed, a freeze included (Unix ms).
    pub updated_at: i64,
    /// When `reason` and `by_whom` were given (Unix ms); 0 when nobody has
    /// changed the switches.
    #[serde(default)]
    pub state_changed_at: i64,
    /// A change freeze an operator declared lasts until then (Unix ms).
    #[serde(default)]
    pub freeze_until: Option<i64>,
    #[serde(default)]
    pub freeze_reason: Option<String>,
    /// Who paused the loop and why, while it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_hold: Option<Hold>,
    /// Who stopped the loop and why, while the emergency stop holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_hold: Option<Hold>,
    /// Who turned the global switch off and why, while it is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hold: Option<Hold>,
}

/// Who set a switch that holds the loop (a pause, an emergency stop, the
/// global switch off), when and why. Each switch keeps its own, so that
/// with two on, lifting one leaves the other's reason in `reason` rather
/// than the lifting's ("paused: deploy window", not "paused: all clear").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    pub by_whom: String,
    /// Unix ms.
    pub at: i64,
}

/// A hold as stored: JSON text, NULL for none.
fn hold(text: Option<String>) -> std::result::Result<Option<Hold>, sqlx::Error> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
}

fn hold_text(h: &Option<Hold>) -> Option<String> {
    h.as_ref().map(|h| serde_json::to_string(h).expect("a hold serializes"))
}

macro_rules! decode {
    ($r:expr) => {
        ControlState {
            enabled: $r.try_get::<i64, _>("enabled")? != 0,
            paused: $r.try_get::<i64, _>("paused")? != 0,
            stopped: $r.try_get::<i64, _>("stopped")? != 0,
            reason: $r.try_get("reason")?,
            by_whom: $r.try_get("by_whom")?,
            updated_at: $r.try_get("updated_at")?,
            freeze_until: $r.try_get("freeze_until")?,
            freeze_reason: $r.try_get("freeze_reason")?,
            state_changed_at: $r.try_get("state_changed_at")?,
            pause_hold: hold($r.try_get("pause_hold")?)?,
            stop_hold: hold($r.try_get("stop_hold")?)?,
            disable_hold: hold($r.try_get("disable_hold")?)?,
        }
    };
}

pub async fn get(db: &Db) -> Result<ControlState> {
    with_pool!(db, p => {
        let r = sqlx::query("SELECT * FROM control_state WHERE id = 1").fetch_one(p).await?;
        Ok(decode!(r))
    })
}

const SET: &str = "UPDATE control_state SET enabled = $1, paused = $2, stopped = $3, reason = $4, by_whom = $5, \
     updated_at = $6, freeze_until = $7, freeze_reason = $8, state_changed_at = $9, pause_hold = $10, stop_hold = $11, \
     disable_hold = $12 WHERE id = 1";

pub async fn set(db: &Db, s: &ControlState) -> Result<()> {
    with_pool!(db, p => sqlx::query(SET)
        .bind(s.enabled as i64).bind(s.paused as i64).bind(s.stopped as i64).bind(&s.reason).bind(&s.by_whom).bind(s.updated_at)
        .bind(s.freeze_until).bind(&s.freeze_reason).bind(s.state_changed_at)
        .bind(hold_text(&s.pause_hold)).bind(hold_text(&s.stop_hold)).bind(hold_text(&s.disable_hold))
        .execute(p).await.map(|_| ()))?;
    Ok(())
}

/// Change the stored state by `edit` and return it as written: read and
/// written in one transaction that holds the row, so that two hosts of a
/// fleet changing different switches at once (a pause here, an emergency
/// stop there) both take effect, whatever each host had adopted.
pub async fn update(db: &Db, edit: impl FnOnce(&mut ControlState)) -> Result<ControlState> {
    with_pool!(db, p => {
        let mut tx = p.begin_write().await?;
        // A no-op update takes the row's lock (SQLite's write transaction
        // holds the whole file) before it is read.
        let r = sqlx::query("UPDATE control_state SET id = id WHERE id = 1 RETURNING *").fetch_one(&mut *tx).await?;
        let mut s = decode!(r);
        edit(&mut s);
        sqlx::query(SET)
            .bind(s.enabled as i64).bind(s.paused as i64).bind(s.stopped as i64).bind(&s.reason).bind(&s.by_whom)
            .bind(s.updated_at).bind(s.freeze_until).bind(&s.freeze_reason).bind(s.state_changed_at)
            .bind(hold_text(&s.pause_hold)).bind(hold_text(&s.stop_hold)).bind(hold_text(&s.disable_hold))
            .execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<ControlState, sqlx::Error>(s)
    })
    .map_err(Into::into)
}
