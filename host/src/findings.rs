//! What operators do with findings: acknowledge one (seen: no more
//! notifications, the loop may still act on it), snooze one for a while
//! (the loop leaves it alone until then), or close one (the loop leaves it
//! alone until it clears and recurs). Each action is audited and
//! published. How findings end by themselves is the loop's
//! ([`crate::r#loop::lifecycle`]).

use crate::audit::Audit;
use crate::events::Event;
use crate::store::findings::{FindingRecord, FindingStatus};
use crate::store::{self, Db, StoreError, now_ms};

/// An operator's action on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingAction {
    Acknowledge,
    /// Put aside for this many seconds.
    Snooze {
        secs: u64,
    },
    Close,
}

impl FindingAction {
    /// The state the finding moves to.
    pub fn status(self) -> FindingStatus {
        match self {
            FindingAction::Acknowledge => FindingStatus::Acknowledged,
            FindingAction::Snooze { .. } => FindingStatus::Snoozed,
            FindingAction::Close => FindingStatus::Closed,
        }
    }

    /// The audit trail's name of the action.
    pub fn audit_name(self) -> &'static str {
        match self {
            FindingAction::Acknowledge => "finding-acknowledge",
            FindingAction::Snooze { .. } => "finding-snooze",
            FindingAction::Close => "finding-close",
        }
    }
}

/// The longest snooze, as the longest change freeze: a year. Longer is
/// closing the finding, which says so.
pub const MAX_SNOOZE_SECS: u64 = 366 * 86_400;

/// Why an action on a finding was refused.
#[derive(Debug, thiserror::Error)]
pub enum FindingActionError {
    #[error("no finding {0}")]
    NotFound(i64),
    #[error(
        "finding {id} is resolved ({reason}): nothing to act on; if it recurs, a new occurrence opens with \
         `previous` = {id}"
    )]
    Resolved { id: i64, reason: String },
    #[error(
        "finding {0} is being addressed: an improvement for it is under way and decides its state; abort the \
         rollout first (`kaizen abort UNIT`) to act on it"
    )]
    Addressed(i64),
    /// Acknowledging a closed finding would hand it back to the loop and
    /// to notifications, the opposite of what either action means.
    #[error(
        "finding {id} is closed ({reason}): the loop already leaves it alone and nothing notifies about it; \
         acknowledging would open it to the loop again. Snooze it to have it open again later"
    )]
    Closed { id: i64, reason: String },
    #[error("a snooze lasts 1 to {MAX_SNOOZE_SECS} seconds (a year), not {0}")]
    SnoozeLength(u64),
    /// Findings are the loop's state: in a fleet, only its leader changes
    /// them.
    #[error(transparent)]
    NotLeader(#[from] crate::fleet::NotLeader),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Carry out `action` on finding `id` for `actor`, who gives `why`;
/// returns the finding as it stands after.
pub async fn act(
    db: &Db,
    audit: &Audit,
    id: i64,
    action: FindingAction,
    actor: &str,
    why: &str,
) -> Result<FindingRecord, FindingActionError> {
    let f = store::findings::get(db, id).await?.ok_or(FindingActionError::NotFound(id))?;
    match f.status {
        FindingStatus::Resolved => return Err(FindingActionError::Resolved { id, reason: f.reason }),
        FindingStatus::Addressed => return Err(FindingActionError::Addressed(id)),
        FindingStatus::Closed if action == FindingAction::Acknowledge => {
            return Err(FindingActionError::Closed { id, reason: f.reason });
        }
        _ => {}
    }
    let until = match action {
        FindingAction::Snooze { secs } if !(1..=MAX_SNOOZE_SECS).contains(&secs) => {
            return Err(FindingActionError::SnoozeLength(secs));
        }
        FindingAction::Snooze { secs } => Some(now_ms() + secs as i64 * 1000),
        _ => None,
    };
    let status = action.status();
    // Read after the state: `snoozed: by api until 2026-12-01 12:22:27Z: …`.
    let reason = match until {
        Some(t) => format!("by {actor} until {}: {why}", store::format_time(t)),
        None => format!("by {actor}: {why}"),
    };
    store::findings::set_state(db, id, status, &reason, until).await?;
    let f = store::findings::get(db, id).await?.ok_or(FindingActionError::NotFound(id))?;
    audit.record_event(actor, action.audit_name(), &f.target, Event::finding(&f, false)).await;
    Ok(f)
}
