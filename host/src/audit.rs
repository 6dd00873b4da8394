//! The audit trail: every decision, by whom and why, kept in the store
//! (`audit_events`). The host owns it and hands it to whoever decides —
//! its own deploys and rollbacks, the health check, the API's control
//! routes, the loop. A decision watchers should hear about is published as
//! an [`Event`] at the same time, with the event's fields as the audit
//! detail, so the trail and the stream say the same thing.
//!
//! Writing the trail never fails the decision: a failed write is logged and
//! counted (`kaizen_store_write_failures_total{what="audit"}`).

use std::sync::Arc;

use crate::events::{Event, Events};
use crate::store::audit::AuditEvent;
use crate::store::{self, Db, WriteFailures, now_ms};

/// The audit trail, shared by clone.
#[derive(Clone)]
pub struct Audit {
    db: Db,
    events: Events,
    failures: Arc<WriteFailures>,
}

impl Audit {
    pub fn new(db: Db, events: Events, failures: Arc<WriteFailures>) -> Audit {
        Audit { db, events, failures }
    }

    /// Record that `actor` did `action` on `target`.
    pub async fn record(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let e = AuditEvent {
            id: 0,
            at: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail,
        };
        let written = store::audit::append(&self.db, &e).await;
        self.failures.check("audit", format_args!("{action} on {target}"), written);
    }

    /// Record a decision and publish it: `event`'s fields are the detail.
    pub async fn record_event(&self, actor: &str, action: &str, target: &str, event: Event) {
        self.record(actor, action, target, event.detail()).await;
        self.events.publish(target, event);
    }
}
