//! Live events (findings, rollout steps, verdicts, swaps, rollbacks, control
//! changes) for whoever watches: the dashboard's stream, tests, logs.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: i64,
    /// `finding`, `proof`, `canary-step`, `verdict`, `promoted`,
    /// `rolled-back`, `frozen`, `cycle`, `control`, ...
    pub kind: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// A broadcast of events; slow watchers miss old events rather than slowing
/// the loop.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events { tx: broadcast::channel(1024).0 }
    }
}

impl Events {
    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
