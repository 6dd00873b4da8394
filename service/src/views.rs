//! The API's wire types: what the handlers take and answer and what the
//! `kaizen` command's client sends and decodes, defined once for both so
//! that the two cannot drift apart. Host types that go on the wire as they are (the control
//! state, a cycle report, a deployment history entry) are re-exported here,
//! so a client finds every shape in one place.

pub use kaizen_host::r#loop::{CycleReport, LoopStats};
pub use kaizen_host::store::control::ControlState;
pub use kaizen_host::store::deployments::HistoryEntry;
pub use kaizen_host::store::findings::FindingRecord;
use kaizen_host::telemetry::CounterSnapshot;
use serde::{Deserialize, Serialize};

pub use crate::error::ErrorBody;

/// The host at a glance.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    /// `running`, `paused`, `stopped` (emergency stop) or `disabled`.
    pub state: String,
    pub control: ControlState,
    #[serde(rename = "loop")]
    pub improve: LoopStats,
    pub slots: Vec<SlotView>,
    pub recent_findings: Vec<FindingRecord>,
    pub telemetry: CounterSnapshot,
    pub watch_dir: Option<String>,
    pub version: String,
}

/// One version of a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionView {
    pub version: String,
    pub sha256: String,
}

/// A canary in progress.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CanaryView {
    pub version: String,
    pub sha256: String,
    pub percent: f64,
}

/// A slot: one plugin name and what it serves.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlotView {
    pub name: String,
    /// `detector`, `recovery` or `unit`.
    pub kind: String,
    pub current: VersionView,
    /// The version a rollback would return to.
    pub previous: Option<VersionView>,
    pub canary: Option<CanaryView>,
    /// Versions kept compiled for instant rollback, newest first.
    pub history: Vec<VersionView>,
}

/// What became of an upload.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub sha256: String,
    /// `deployed`, `unchanged` or `candidate`.
    pub result: String,
}

/// Why an operator acted (a map, never a positional array).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self")]
pub struct Reason {
    /// Why, for the audit trail.
    pub reason: Option<String>,
}
kaizen_host::map_only!(Reason, "a reason", serialize);

/// What a rollback did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolledBack {
    pub slot: String,
    pub from: String,
    pub to: String,
    pub to_sha256: String,
}
