//! What the loop's steps share, and the one way they write to the store.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use super::candidates::{Candidate, CandidateQueue};
use super::{LoopConfig, Stats};
use crate::audit::Audit;
use crate::events::{ControlAction, Event, Events};
use crate::invoke::Invoker;
use crate::runtime::{Plugin, Runtime};
use crate::safety::{Outcome, Safety};
use crate::store::findings::FindingStatus;
use crate::store::improvements::Improvement;
use crate::store::modules::ModuleRecord;
use crate::store::{self, Db, WriteFailures, now_ms};
use crate::telemetry::Telemetry;

/// What the loop is built from (the host's parts it works with).
pub struct Parts {
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub invoker: Arc<Invoker>,
    pub telemetry: Arc<Telemetry>,
    pub safety: Arc<Safety>,
    pub events: Events,
    pub audit: Audit,
    pub failures: Arc<WriteFailures>,
    /// How far back detectors see pushed metrics (`metrics.lookback_secs`,
    /// raised to cover the loop's window and the longest metric rule).
    pub metric_lookback_ms: i64,
    /// The newest this many pushed points are handed to a detection pass.
    pub max_metric_points: usize,
    /// Whether this host may run cycles and rollouts (always, outside a
    /// fleet; only while it holds the leader's lease, in one).
    pub leadership: crate::fleet::Leadership,
}

/// What the loop's steps share: the host's parts (reached through
/// `Deref`, as `ctx.db`, `ctx.safety`, …) and the loop's own state.
pub struct Ctx {
    pub parts: Parts,
    pub config: LoopConfig,
    pub stats: Stats,
    pub candidates: CandidateQueue,
    /// Held while the queue is written on disk and in memory together (a
    /// submission, a requeue) or memory is refilled from disk
    /// ([`super::queue::refill`]), so that a refill cannot drop a candidate
    /// written between its read and its refill.
    pub queue_lock: tokio::sync::Mutex<()>,
    /// Improvements ended with their candidates queued again whose write
    /// the store refused ([`Ctx::end_and_requeue`]): written again at the
    /// next refill, before the table is read.
    pub requeues: Mutex<Vec<(Improvement, Candidate)>>,
    /// Detector weights learned last cycle.
    pub weights: Mutex<HashMap<String, f64>>,
    /// The watch folder, when it is on (see [`super::Loop::set_watch_dir`]).
    pub watch_dir: Mutex<Option<String>>,
    /// Versions (ids) the improvers' trial budget was spent on and audited.
    pub improvers_spent: Mutex<std::collections::HashSet<String>>,
    /// Proposals refused and audited, by improver, version serving, change
    /// and reason: an improver proposing the same refused change every
    /// cycle is audited once per version, not once a cycle.
    pub refusals_told: Mutex<std::collections::HashSet<String>>,
    /// Operators' aborts of a target's candidate asked while a cycle was
    /// proving it: (by, reason), taken by that cycle when the proof ends.
    pub abort_requests: Mutex<HashMap<String, (String, String)>>,
    /// The improvement whose candidate a cycle is proving, by target:
    /// (improvement id, candidate version).
    pub proving: Mutex<HashMap<String, (i64, String)>>,
    /// The success record read by the last cycle's prioritize step.
    pub predictor: Mutex<super::predict::Predictor>,
    /// Proven candidates waiting to roll out, by target.
    pub waiting: Mutex<HashMap<String, super::waiting::Waiting>>,
}

impl std::ops::Deref for Ctx {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

impl Ctx {
    /// Every store write the loop carries on past goes through here: a
    /// failure is logged with `what` and `about` and counted
    /// (`kaizen_store_write_failures_total{what}`); `None` tells the caller.
    pub async fn write<T>(
        &self,
        what: &'static str,
        about: &str,
        write: impl Future<Output = store::Result<T>>,
    ) -> Option<T> {
        let done = write.await;
        self.check(what, about, done)
    }

    /// [`Ctx::write`] for a write already awaited.
    pub fn check<T>(&self, what: &'static str, about: &str, done: store::Result<T>) -> Option<T> {
        self.failures.check(what, about, done)
    }

    /// End `imp` (its state and reason already set) and queue its candidate
    /// `c` again, first in its target's line: an improvement closed before
    /// its candidate could be proven or rolled out (a restart, a slot that
    /// changed under it) gives the candidate back the place it had.
    ///
    /// Both are one write ([`store::improvements::end_and_requeue`]). When
    /// the store refuses it, nothing changes on disk — the improvement stays
    /// open there, so a restart would resume it — and the pair waits in
    /// [`Ctx::requeues`] for the next refill to write it again
    /// ([`super::queue::refill`]). An improvement settled on disk meanwhile
    /// (a fleet's next leader resumed it) is left as it is. Returns `false`
    /// only when the write must wait.
    pub async fn end_and_requeue(&self, imp: Improvement, c: Candidate) -> bool {
        let _queue = self.queue_lock.lock().await;
        self.write_requeue(imp, c).await
    }

    /// [`Ctx::end_and_requeue`] with the queue's lock held.
    pub(super) async fn write_requeue(&self, imp: Improvement, c: Candidate) -> bool {
        let row = queued(&c);
        let written = store::improvements::end_and_requeue(&self.db, &imp, &row).await;
        match self.check("candidate", &format!("{} queued again", row.target), written) {
            None => {
                self.requeues.lock().push((imp, c));
                return false;
            }
            Some(false) => {
                tracing::info!(
                    "improvement {} was settled meanwhile; its candidate {} is not queued again",
                    imp.id,
                    c.plugin.version()
                );
                return true;
            }
            Some(true) => {}
        }
        let version = c.plugin.version().to_string();
        self.candidates.push_front(c);
        let event = Event::RolloutAborted {
            improvement: imp.id,
            candidate_version: version.clone(),
            by: "host".into(),
            reason: imp.reason.clone(),
        };
        self.audit.record_event("host", "rollout-aborted", &imp.target, event).await;
        if let Some(fid) = imp.finding_id {
            self.set_finding(fid, FindingStatus::Open).await;
        }
        let ended =
            Event::ImprovementEnded { improvement: imp.id, state: imp.state, version, reason: imp.reason.clone() };
        self.publish(&imp.target, ended);
        true
    }

    /// Store the improvement's state; `false` when it could not be.
    pub async fn save(&self, imp: &Improvement) -> bool {
        self.write("improvement", &imp.target, store::improvements::update(&self.db, imp)).await.is_some()
    }

    /// Move a finding as its improvement goes (taken up, promoted, or
    /// ended without success) and publish the change.
    pub async fn set_finding(&self, id: i64, status: FindingStatus) {
        let reason = match status {
            FindingStatus::Addressed => "an improvement for it is under way",
            FindingStatus::Resolved => "improvement promoted",
            FindingStatus::Open => "open again: its improvement did not succeed",
            _ => "",
        };
        let set = store::findings::set_state(&self.db, id, status, reason, None);
        if self.write("finding", &format!("finding {id} {status}"), set).await.is_none() {
            return;
        }
        if let Some(Some(f)) = self.check("finding", "changed finding", store::findings::get(&self.db, id).await) {
            self.publish(&f.target.clone(), Event::finding(&f, false));
        }
    }

    /// Store the improvement's final state and publish that it ended.
    pub async fn end(&self, imp: &Improvement, version: &str) {
        self.save(imp).await;
        let event = Event::ImprovementEnded {
            improvement: imp.id,
            state: imp.state,
            version: version.into(),
            reason: imp.reason.clone(),
        };
        self.publish(&imp.target, event);
    }

    /// Tell the safety controller how an improvement ended; when its
    /// self-watch pauses the loop, say so.
    pub async fn record_outcome(&self, outcome: Outcome) {
        let paused = self.safety.record_outcome(outcome).await;
        if let Some(Some(why)) = self.check("control", "self-watch pause", paused) {
            let state = self.safety.state();
            let by = state.by_whom.clone();
            self.publish("", Event::Control { action: ControlAction::SelfPause, reason: why, by, state });
        }
    }

    /// Publish `event` about `target` without an audit record.
    pub fn publish(&self, target: &str, event: Event) {
        self.events.publish(target, event);
    }
}

/// Record a module in the `modules` table (refused when its version is
/// recorded with other bytes: [`store::modules::VersionTaken`]).
///
/// On PostgreSQL the bytes go to the database too (module and config
/// version, by sha256): another host of the fleet that never saw this
/// upload restores them from there.
pub async fn record_module(db: &Db, p: &Plugin) -> store::Result<()> {
    if let Db::Postgres(pool) = db {
        if !store::fleet::has_blob(pool, "module", p.sha256()).await? {
            let bytes = p.bytes().map_err(|e| store::StoreError::Corrupt(format!("module {}: {e}", p.sha256())))?;
            store::fleet::put_blob(pool, "module", p.sha256(), &bytes).await?;
        }
        if let Some(c) = p.config_version() {
            store::fleet::put_blob(pool, "config", &c.sha256, &c.canonical()).await?;
        }
    }
    store::modules::put(db, &module_record(p)).await
}

/// The `modules` row of `p`, added now.
pub fn module_record(p: &Plugin) -> ModuleRecord {
    let info = p.info();
    ModuleRecord {
        sha256: p.sha256().into(),
        name: info.name.clone(),
        kind: crate::runtime::validate::world_name(info.kind).into(),
        version: p.module_version().into(),
        description: info.description.clone(),
        size: p.size() as i64,
        path: p.module_path().display().to_string(),
        added_at: now_ms(),
    }
}

/// The queue's row for `c`.
pub(super) fn queued(c: &Candidate) -> store::candidate_queue::Queued {
    store::candidate_queue::Queued {
        target: c.plugin.name().into(),
        sha256: c.plugin.id().into(),
        source: c.source.clone(),
        queued_at: now_ms(),
    }
}
