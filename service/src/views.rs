//! The API's wire types: what the handlers take and answer and what the
//! `kaizen` command's client sends and decodes, defined once for both so
//! that the two cannot drift apart. Host types that go on the wire as they are (the control
//! state, a cycle report, a deployment history entry) are re-exported here,
//! so a client finds every shape in one place.

pub use kaizen_host::r#loop::{CycleReport, LoopStats};
pub use kaizen_host::store::control::ControlState;
pub use kaizen_host::store::deployments::HistoryEntry;
pub use kaizen_host::store::findings::FindingRecord;
pub use kaizen_host::tasks::{TaskState, TaskStatus};
use kaizen_host::telemetry::CounterSnapshot;
use serde::{Deserialize, Serialize};

pub use crate::error::ErrorBody;

/// One setting as the host runs with it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveSetting {
    /// Dotted key, as in the file: `safety.limits.bake_secs`.
    pub key: String,
    /// The value in force; secrets are `"<redacted>"`.
    pub value: serde_json::Value,
    /// Where it came from: `default`, `preset NAME` (`preset NAME for
    /// TARGET`), `file PATH`, `env VARIABLE` or `flag --NAME`.
    pub source: String,
}

/// The configuration in force, every setting with its source.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveConfig {
    /// The global preset (`safety.preset`), if any.
    pub preset: Option<kaizen_host::presets::Preset>,
    pub settings: Vec<EffectiveSetting>,
}

/// The host at a glance.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    /// `running`, `paused`, `stopped` (emergency stop) or `disabled`.
    pub state: String,
    pub control: ControlState,
    #[serde(rename = "loop")]
    pub improve: LoopStats,
    pub slots: Vec<SlotView>,
    /// Rollouts in flight: each holds its slot until it ends or is aborted.
    pub rollouts: Vec<kaizen_host::safety::RolloutInfo>,
    /// Whether a rollout may start now, and if not why: the global windows
    /// and freezes first (`target` null), then each target with a schedule
    /// of its own.
    pub rollout_gates: Vec<GateView>,
    /// Proven candidates waiting to roll out, and what each waits for;
    /// with a candidate being proven (reason `being proven; …`).
    pub waiting: Vec<WaitingView>,
    pub recent_findings: Vec<FindingRecord>,
    pub telemetry: CounterSnapshot,
    pub watch_dir: Option<String>,
    pub version: String,
    /// The supervised background tasks: which runs, which is down, panics
    /// and restarts.
    pub tasks: Vec<TaskStatus>,
    /// Slots that serve nothing because the version the store says they
    /// serve could not be loaded at start, until a version is deployed.
    #[serde(default)]
    pub unrestored: Vec<kaizen_host::host::Unrestored>,
}

/// Whether rollouts may start now (`safety.schedule`, a declared freeze).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateView {
    /// The target with a schedule of its own; null for the global one.
    pub target: Option<String>,
    /// `open`, `outside-window` or `frozen` (the schedule), or `held`: the
    /// loop is paused, stopped or disabled, so no rollout starts whatever
    /// the schedule says.
    pub state: String,
    /// In words, with when it changes ("outside the rollout window (…);
    /// the next opens in 3 h 12 min (…)").
    pub reason: String,
    /// When the next window opens (outside-window), Unix ms.
    pub next_open_at: Option<i64>,
    /// When the freeze ends (frozen), Unix ms.
    pub frozen_until: Option<i64>,
}

impl GateView {
    pub fn of(target: Option<String>, gate: &kaizen_host::schedule::Gate) -> GateView {
        use kaizen_host::schedule::Gate;
        let ms = |t: &Option<_>| t.map(|t: kaizen_host::schedule::Instant| t.as_millisecond());
        let (state, next_open_at, frozen_until) = match gate {
            Gate::Open => ("open", None, None),
            Gate::OutsideWindow { next, .. } => ("outside-window", ms(next), None),
            Gate::Frozen { until, .. } => ("frozen", None, ms(until)),
        };
        GateView { target, state: state.into(), reason: gate.describe_now(), next_open_at, frozen_until }
    }

    /// An open gate while the rollouts in flight (`in_flight`) hold every
    /// permit (`limit`, `safety.limits.concurrent_rollouts`): the schedule
    /// lets one start, the limit does not until one ends.
    pub fn full(mut self, in_flight: usize, limit: usize) -> GateView {
        if self.state == "open" && in_flight >= limit {
            self.reason = format!(
                "the schedule lets rollouts start, but {in_flight} in flight hold every permit \
                 (safety.limits.concurrent_rollouts = {limit}): the next starts when one ends"
            );
        }
        self
    }

    /// The gate while the loop does not run (`why`: paused, stopped or
    /// disabled): `held`, whatever the schedule says, which the reason
    /// still gives.
    pub fn held(mut self, why: &kaizen_host::safety::Denied) -> GateView {
        self.reason = format!("no rollout starts: {why} (schedule: {})", self.reason);
        self.state = "held".into();
        self
    }
}

/// A proven candidate waiting to roll out.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitingView {
    pub target: String,
    pub improvement: i64,
    pub candidate_version: String,
    pub reason: String,
}

/// What `/healthz` answers once the host serves.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ready`; `degraded` (still 200) when a background task panicked
    /// since start and runs again, or a slot serves nothing because its
    /// version could not be loaded at start; `unhealthy` (503) while a task is down —
    /// restarting after a panic, or ended; `not-ready` (503) while the host
    /// starts or stops.
    pub status: String,
    /// In words: which task is or was in trouble, since when, why.
    pub message: String,
    /// Every supervised background task.
    pub tasks: Vec<TaskStatus>,
}

impl Health {
    /// The health of a host whose tasks are `tasks` and whose slots
    /// `unrestored` serve nothing ([`kaizen_host::host::Host::unrestored`]).
    pub fn of(tasks: Vec<TaskStatus>, unrestored: &[kaizen_host::host::Unrestored]) -> Health {
        let error = |t: &TaskStatus| t.last_error.clone().unwrap_or_default();
        let now = kaizen_host::store::now_ms();
        let secs = |ms: i64| format!("{:.1} s", ms.max(0) as f64 / 1000.0);
        let down: Vec<String> = tasks
            .iter()
            .filter(|t| t.is_down())
            .map(|t| match t.state {
                TaskState::Restarting => format!(
                    "{} is down for {} after {} panic(s) (last: {}); it starts again in {}",
                    t.name,
                    secs(now - t.since),
                    t.panics,
                    error(t),
                    secs(t.restart_at.unwrap_or(now) - now)
                ),
                _ => format!("{} ended {} ago", t.name, secs(now - t.since)),
            })
            .collect();
        let panicked: Vec<String> = tasks
            .iter()
            .filter(|t| t.panics > 0 && !t.is_down())
            .map(|t| format!("{} panicked {} time(s) (last: {}) and runs again", t.name, t.panics, error(t)))
            .collect();
        let (status, message) = if !down.is_empty() {
            ("unhealthy", down.join("; "))
        } else if !panicked.is_empty() || !unrestored.is_empty() {
            let lost = unrestored.iter().map(|u| {
                format!("slot {} serves nothing: its version {} could not be loaded at start", u.slot, u.sha256)
            });
            ("degraded", lost.chain(panicked).collect::<Vec<_>>().join("; "))
        } else {
            ("ready", format!("all {} background tasks run", tasks.len()))
        };
        Health { status: status.into(), message, tasks }
    }
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
    /// The arm is the bake's holdback (the version serving before the
    /// promotion, kept for `percent` of the calls), not a candidate.
    #[serde(default)]
    pub holdback: bool,
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
    /// Why the upload changed nothing, when it is not that the same bytes
    /// serve (e.g. they are already a candidate in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why an operator acted (a map, never a positional array).
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Reason {
    /// Why, for the audit trail: one line of at most 1000 characters.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]*$"
    )]
    #[serde(default, deserialize_with = "reason_text")]
    pub reason: Option<String>,
}

/// The most characters an operator's reason may have.
pub const MAX_REASON_CHARS: usize = 1000;

/// Whether `c` may not appear in an operator's reason: a control
/// character, a line or paragraph separator (U+2028, U+2029: a new line
/// to many terminals and browsers), or a bidirectional control (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069: text that reads other
/// than it is stored, as in "Trojan Source", CVE-2021-42574).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An operator's reason, checked as it is read: it is stored in the audit
/// trail, shown in the control state and printed in the command's tables
/// and the dashboard, so it is one line of text that reads as stored (none
/// of the characters [`unprintable`] names: a newline or an escape
/// sequence would break a table or rewrite a terminal) of at most
/// [`MAX_REASON_CHARS`] characters. A reason of only spaces is no reason:
/// the action's default is used, as for none.
///
/// Errors: the serde error (a 422 from the API) names what was wrong.
pub(crate) fn reason_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
    let chars = text.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(D::Error::custom(format!(
            "a reason of {chars} characters: at most {MAX_REASON_CHARS} are kept in the audit trail"
        )));
    }
    if let Some((at, c)) = text.chars().enumerate().find(|(_, c)| unprintable(*c)) {
        return Err(D::Error::custom(format!(
            "a reason with the character U+{:04X} at character {}: give it as one line of text without control \
             or direction-changing characters",
            u32::from(c),
            at + 1
        )));
    }
    Ok(Some(text).filter(|t| !t.trim().is_empty()))
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
