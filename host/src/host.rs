//! The assembled host: store, runtime, telemetry, call path, safety and the
//! loop, opened over one data directory and restored from what the store
//! says was serving.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::config::RuntimeConfig;
use crate::events::{Event, Events};
use crate::fleet::{Change, Fleet, FleetConfig, FleetError, Leadership, Member, NotLeader};
use crate::invoke::Invoker;
use crate::r#loop::{Loop, LoopConfig, Parts, Resumed, module_record, record_module};
use crate::recovery::{Healer, RecoveryConfig};
use crate::runtime::{Installed, Plugin, Runtime, RuntimeError};
use crate::safety::{Safety, SafetyConfig};
use crate::store::deployments::{DeployState, Deployment};
use crate::store::improvements::Improvement;
use crate::store::modules::ModuleRecord;
use crate::store::{self, Db, StoreError, WriteFailures, now_ms};
use crate::tasks::Tasks;
use crate::telemetry::{Telemetry, TelemetryConfig};

/// Everything the host is configured with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Module bytes, compiled artifacts and the SQLite file (the one place
    /// the data directory is configured; the runtime is handed it).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a SQLite file in the data directory
    /// when unset.
    pub database_url: Option<String>,
    pub runtime: RuntimeConfig,
    pub telemetry: TelemetryConfig,
    pub safety: SafetyConfig,
    #[serde(rename = "loop")]
    pub improve: LoopConfig,
    pub recovery: RecoveryConfig,
    /// Pushed metrics as the detectors see them, and rules on them.
    pub metrics: crate::metric_rules::MetricsConfig,
    /// Membership of a fleet (PostgreSQL only).
    pub fleet: FleetConfig,
}

impl HostConfig {
    /// Every setting against its valid range (see [`crate::settings`]).
    pub fn check(&self) -> Result<(), crate::settings::InvalidSettings> {
        crate::settings::check(&crate::settings::Sections {
            runtime: &self.runtime,
            telemetry: &self.telemetry,
            improve: &self.improve,
            safety: &self.safety,
            recovery: &self.recovery,
            metrics: &self.metrics,
            fleet: &self.fleet,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("invalid configuration: {0}")]
    Settings(#[from] crate::settings::InvalidSettings),
    #[error(transparent)]
    Denied(#[from] crate::safety::Denied),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    NotLeader(#[from] NotLeader),
}

/// The running host.
pub struct Host {
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub telemetry: Arc<Telemetry>,
    pub invoker: Arc<Invoker>,
    pub safety: Arc<Safety>,
    pub events: Events,
    pub improve: Arc<Loop>,
    /// Store writes that failed where the host carried on, by what.
    pub write_failures: Arc<WriteFailures>,
    /// The supervised background tasks of this host and of what runs on it.
    pub tasks: Tasks,
    /// This host's membership of a fleet (on PostgreSQL), else `None`.
    pub fleet: Option<Arc<Fleet>>,
    /// Whether this host may deploy and run the loop now.
    pub leadership: Leadership,
    /// Slots the store says serve a version that could not be loaded at
    /// start ([`Host::unrestored`]).
    unrestored: parking_lot::Mutex<Vec<Unrestored>>,
    audit: Audit,
}

/// A slot the store says serves `sha256`, which could not be loaded when
/// the host started (its module file gone or unreadable): it serves
/// nothing rather than an older version nobody chose, until a version is
/// deployed to it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unrestored {
    pub slot: String,
    /// The version the store records as serving (its module's sha256, and
    /// its config's after a `+` for a config candidate).
    pub sha256: String,
    /// Why it could not be loaded.
    pub reason: String,
}

/// What [`Host::open`] restored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    pub slots: usize,
    /// Unfinished rollouts and proofs found, and what became of them.
    pub resumed: Resumed,
    pub errors: Vec<String>,
}

impl Host {
    /// Open the host over `config.data_dir`, restore every slot to the
    /// version the store says was serving, and resume (or close) the
    /// rollouts left unfinished (see [`crate::r#loop::resume`]).
    pub async fn open(config: HostConfig) -> Result<(Arc<Host>, Restored), HostError> {
        config.check()?;
        let (db, member) = match &config.database_url {
            Some(url) if Db::is_postgres_url(url) => {
                let me = Member::this_process(&config.fleet, &config.data_dir)?;
                let idle = std::time::Duration::from_secs_f64(config.fleet.lease_secs.max(5.0));
                (Db::connect_as(url, Some((&me.session_name(), idle))).await?, Some(me))
            }
            Some(url) => (Db::connect(url).await?, None),
            None => (Db::open_sqlite_file(&config.data_dir.join("kaizen.db")).await?, None),
        };
        let fleet = match member {
            Some(me) => Fleet::join(&db, &config.fleet, me).await?,
            None => None,
        };
        let leadership = fleet.as_ref().map(|f| f.leadership.clone()).unwrap_or_else(Leadership::single);
        let mut runtime_config = config.runtime.clone();
        crate::metric_rules::install(&mut runtime_config, &config.metrics);
        let runtime = Runtime::new(&config.data_dir, runtime_config)?;
        let tasks = Tasks::new();
        let me = fleet.as_ref().map_or("", |f| f.host_id.as_str());
        let telemetry = Telemetry::start_in(db.clone(), config.telemetry.clone(), &tasks, me).await?;
        let healer = Healer::new(runtime.clone(), db.clone(), me, config.recovery.clone(), &tasks).await?;
        let invoker = Invoker::with_healer(runtime.clone(), telemetry.clone(), healer);
        let safety = Safety::load(db.clone(), config.safety.clone()).await?;
        let events = Events::default();
        let write_failures = Arc::new(WriteFailures::default());
        let audit = Audit::new(db.clone(), events.clone(), write_failures.clone());
        let parts = Parts {
            db: db.clone(),
            runtime: runtime.clone(),
            invoker: invoker.clone(),
            telemetry: telemetry.clone(),
            safety: safety.clone(),
            events: events.clone(),
            audit: audit.clone(),
            failures: write_failures.clone(),
            metric_lookback_ms: config.metrics.lookback_ms(config.improve.window_secs, &config.runtime.plugin_config),
            max_metric_points: config.metrics.max_points,
            leadership: leadership.clone(),
        };
        let improve = Loop::new(parts, config.improve.clone());
        let host = Arc::new(Host {
            db,
            runtime,
            telemetry,
            invoker,
            safety,
            events,
            improve,
            write_failures,
            tasks,
            fleet,
            leadership,
            unrestored: Default::default(),
            audit,
        });
        let mut restored = host.restore().await?;
        match host.fleet.clone() {
            None => restored.resumed = host.improve.resume().await,
            // A fleet's member tries once to lead before it opens (a lone
            // host leads at once); the leader resumes what the last one
            // left unfinished, as a restarted lone host does.
            Some(fleet) => {
                match fleet.tick().await {
                    Ok(change) => {
                        if let Some(resumed) = host.on_fleet_change(change).await {
                            restored.resumed = resumed;
                        }
                    }
                    Err(e) => restored.errors.push(format!("fleet: cannot reach the lease: {e}")),
                }
                // A follower serves the leader's canary splits before it opens.
                match host.apply_desired().await {
                    Ok(_) => fleet.set_caught_up(true),
                    Err(e) => restored.errors.push(format!("fleet: {e}")),
                }
                let h = Arc::downgrade(&host);
                host.tasks.spawn("fleet", move || {
                    let h = h.clone();
                    async move { fleet_rounds(h).await }
                });
                let h = Arc::downgrade(&host);
                host.tasks.spawn("fleet-follow", move || {
                    let h = h.clone();
                    async move { crate::follow::follow(h).await }
                });
                let h = Arc::downgrade(&host);
                host.tasks.spawn("fleet-ship", move || {
                    let h = h.clone();
                    async move { crate::follow::ship(h).await }
                });
            }
        }
        Ok((host, restored))
    }

    /// Act on a change of this host's role in the fleet: a new leader
    /// audits its term (with its epoch) and resumes the rollouts the last
    /// one left, as a restart does; a deposed one stops its rollouts where
    /// they stand, for the next leader to resume. Returns what was resumed.
    async fn on_fleet_change(&self, change: Change) -> Option<Resumed> {
        let fleet = self.fleet.clone()?;
        // One change at a time, in the order they came.
        let _one_at_a_time = fleet.changing.lock().await;
        let me = fleet.host_id.clone();
        match change {
            Change::None => None,
            Change::Elected { epoch, previous } => {
                tracing::info!(epoch, "fleet: this host ({me}) leads");
                let event = Event::Leader { host: me.clone(), epoch, previous };
                self.audit(&format!("host:{me}"), "lead", "fleet", event).await;
                if let Some(fleet) = &self.fleet {
                    fleet.reset_applied();
                }
                if let Err(e) = self.catch_up().await {
                    tracing::error!("fleet: the new leader could not take up the desired state: {e}");
                }
                self.fetch_unsettled().await;
                Some(self.improve.resume().await)
            }
            Change::Deposed { epoch, why } => {
                tracing::warn!(epoch, "fleet: this host ({me}) no longer leads: {why}");
                self.improve.shutdown();
                if let Some(fleet) = &self.fleet {
                    fleet.reset_applied();
                }
                let event = Event::Deposed { host: me.clone(), epoch, reason: why };
                self.audit(&format!("host:{me}"), "step-down", "fleet", event).await;
                None
            }
        }
    }

    /// Pass a write's result on; when the fence refused it (this host lost
    /// the lease between its check and the write, after its slot changed),
    /// make the next round of following apply the whole desired state again.
    fn fenced_out(&self, written: Result<(), StoreError>) -> Result<(), StoreError> {
        if let (Err(e), Some(fleet)) = (&written, &self.fleet)
            && e.is_fenced()
        {
            fleet.reset_applied();
        }
        written
    }

    /// Make sure the module and config bytes of `id` are in this host's
    /// content-addressed stores, fetching them from the fleet's database
    /// (verified by sha256) when this host never saw them.
    pub(crate) async fn fetch_stored(&self, id: &str) -> Result<(), HostError> {
        let Some(fleet) = &self.fleet else { return Ok(()) };
        let (module, config) = match id.split_once('+') {
            Some((m, c)) => (m, Some(c)),
            None => (id, None),
        };
        let wanted = [("module", module, self.runtime.blobs())]
            .into_iter()
            .chain(config.map(|c| ("config", c, self.runtime.config_blobs())));
        for (kind, sha, local) in wanted {
            if local.path(sha).exists() {
                continue;
            }
            let bytes = fleet
                .fetch_blob(kind, sha)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("{kind} {sha} is neither here nor in the database")))?;
            local.put(&bytes).map_err(|e| StoreError::Corrupt(format!("cannot keep {kind} {sha}: {e}")))?;
        }
        Ok(())
    }

    /// Take the candidates uploaded to followers into this leader's loop.
    /// Each is marked taken only once this leader's queue on disk holds it
    /// (or it was refused): a leader that dies in between leaves it to the
    /// next, which finds it pending (still queued, or being proven) or, if
    /// an improvement for it was opened since, not at all
    /// ([`store::fleet::submissions`]).
    pub(crate) async fn take_submissions(&self, fleet: &Fleet) {
        let waiting = match fleet.submissions().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!("fleet: cannot read submitted candidates: {e}"),
        };
        for (id, module, source, by) in waiting {
            let loaded = async {
                let plugin = self.load_fetched(&module).await?;
                self.improve.submit(plugin, &format!("{source} (on {by})")).await?;
                Ok::<_, HostError>(())
            };
            match loaded.await {
                Ok(()) => self.improve.trigger(),
                // The database could not be reached: the next round tries again.
                Err(HostError::Store(StoreError::Db(e))) => {
                    tracing::warn!("fleet: candidate {module} submitted on {by} (#{id}) not taken yet: {e}");
                    continue;
                }
                Err(e) => {
                    // The upload was answered on its host: its failure is
                    // recorded where operators look.
                    tracing::error!("fleet: candidate {module} submitted on {by} (#{id}) not taken: {e}");
                    let sha = module.split('+').next().unwrap_or(&module);
                    let known = store::modules::get(&self.db, sha).await.ok().flatten();
                    let (name, version) =
                        known.map(|m| (m.name, store::modules::versioned_id(&m.version, &module))).unwrap_or_default();
                    let event = Event::SubmissionRefused {
                        version,
                        sha256: module.clone(),
                        submitted_on: by.clone(),
                        reason: e.to_string(),
                    };
                    self.audit(&format!("host:{by}"), "submission-refused", &name, event).await;
                }
            }
            if let Err(e) = fleet.mark_taken(id).await {
                tracing::warn!("fleet: submission #{id} taken but not marked; a later round takes it again: {e}");
            }
        }
    }

    /// What each slot serves, in words: its version, and beside it a
    /// rollout's other arm with its share (`2.0.0 (2.1.0 at 10%)`: a
    /// canary, or after a promotion the bake's holdback).
    pub fn serving_by_slot(&self) -> std::collections::BTreeMap<String, String> {
        self.runtime
            .slots()
            .iter()
            .map(|slot| {
                let s = slot.serving();
                let line = match &s.canary {
                    Some(c) => format!("{} ({} at {}%)", s.current.version(), c.plugin.version(), c.percent),
                    None => s.current.version().to_string(),
                };
                (slot.name().to_string(), line)
            })
            .collect()
    }

    /// On a follower: pass the rollback requests its recovery strategies
    /// made to the leader, which alone rolls back: one per target a round
    /// (a failing unit asks once per failed call), with how many asked. On
    /// failure they stay queued here for the next round.
    pub(crate) async fn forward_rollback_requests(&self, fleet: &Fleet) {
        let Some(healer) = self.invoker.healer() else { return };
        let mut by_target: Vec<(String, String, usize)> = Vec::new();
        for (target, why) in healer.take_rollback_requests() {
            match by_target.iter_mut().find(|(t, _, _)| *t == target) {
                Some((_, _, n)) => *n += 1,
                None => by_target.push((target, why, 1)),
            }
        }
        let mut left = by_target.into_iter();
        while let Some((target, why, n)) = left.next() {
            let asked = if n > 1 { format!("{why} ({n} requests)") } else { why.clone() };
            if let Err(e) = fleet.request_rollback(&target, &asked).await {
                tracing::warn!(target, "fleet: cannot pass rollback requests to the leader (kept): {e}");
                healer.request_rollback(&target, &why);
                for (target, why, _) in left {
                    healer.request_rollback(&target, &why);
                }
                return;
            }
        }
    }

    /// On the leader: take the rollback requests followers passed on into
    /// this host's queue, one per target; its next cycle (now, when any
    /// came) decides them.
    pub(crate) async fn take_rollback_requests(&self, fleet: &Fleet) {
        let Some(healer) = self.invoker.healer() else { return };
        let taken = match fleet.take_rollback_requests().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!("fleet: cannot read the followers' rollback requests: {e}"),
        };
        if taken.is_empty() {
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (host, target, why) in taken {
            if seen.insert(target.clone()) {
                healer.request_rollback(&target, &format!("{why} (asked on {host})"));
            }
        }
        self.improve.trigger();
    }

    /// Load version `id` from this host's stores (off the async workers: it
    /// may compile), its bytes fetched from the fleet's database first when
    /// this host never saw them.
    pub(crate) async fn load_fetched(&self, id: &str) -> Result<Arc<Plugin>, HostError> {
        self.fetch_stored(id).await?;
        let (runtime, id) = (self.runtime.clone(), id.to_string());
        let loaded = tokio::task::spawn_blocking(move || runtime.load_stored(&id))
            .await
            .map_err(|e| StoreError::Corrupt(format!("loading a version panicked: {e}")))?;
        Ok(loaded.map_err(RuntimeError::from)?)
    }

    /// Fetch the candidates and checkpoints of unfinished improvements, and
    /// the queued candidates, so that a new leader can resume their
    /// rollouts and prove what waits.
    async fn fetch_unsettled(&self) {
        if let Ok(open) = store::improvements::unsettled(&self.db).await {
            for imp in open {
                for id in std::iter::once(imp.candidate_sha.as_str()).chain(imp.baseline_sha.as_deref()) {
                    if let Err(e) = self.fetch_stored(id).await {
                        tracing::warn!("fleet: improvement {}: {e}", imp.id);
                    }
                }
            }
        }
        // The queued candidates too: uploaded to the last leader, or taken
        // by it from a follower, their bytes may never have been here.
        if let Ok(queued) = store::candidate_queue::list(&self.db).await {
            for q in queued {
                if let Err(e) = self.fetch_stored(&q.sha256).await {
                    tracing::warn!("fleet: queued candidate {} for {}: {e}", q.sha256, q.target);
                }
            }
        }
    }

    async fn restore(&self) -> Result<Restored, HostError> {
        let mut r = Restored::default();
        for d in store::deployments::all(&self.db).await? {
            // What a rollback goes back to, oldest first, so that the
            // slot's history is rebuilt in its order: every level kept,
            // or `previous_sha` alone in a row written before they were.
            let mut back: Vec<&str> = d.rollback_chain.iter().rev().map(String::as_str).collect();
            if back.is_empty() {
                back.extend(d.previous_sha.as_deref());
            }
            back.retain(|id| *id != d.current_sha);
            let load = |sha: &str| self.runtime.load_stored(sha);
            // What serves first: without it the slot serves nothing, and
            // none of its older versions is installed in its place (the
            // newest of them would serve, a version nobody chose now).
            let current = match self.fetch_stored(&d.current_sha).await {
                Ok(()) => load(&d.current_sha).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let current = match current {
                Ok(p) => p,
                Err(e) => {
                    r.errors.push(format!(
                        "slot {}: serves nothing: the version it served ({}) cannot be loaded: {e}; deploy a \
                         version to it",
                        d.slot, d.current_sha
                    ));
                    let lost = Unrestored { slot: d.slot.clone(), sha256: d.current_sha.clone(), reason: e };
                    self.unrestored.lock().push(lost);
                    continue;
                }
            };
            for id in back {
                // A version that cannot come back only shortens the slot's
                // history: what serves is what matters.
                let loaded = match self.fetch_stored(id).await {
                    Ok(()) => load(id).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match loaded {
                    Ok(p) => {
                        let _ = self.runtime.install(p);
                    }
                    Err(e) => tracing::warn!("restore: slot {}: cannot keep {id} to roll back to: {e}", d.slot),
                }
            }
            let _ = self.runtime.install(current);
            r.slots += 1;
        }
        for e in &r.errors {
            tracing::error!("restore: {e}");
        }
        Ok(r)
    }

    /// The slots restore could not bring back ([`Unrestored`]) that still
    /// serve nothing: one comes off the list when a version is deployed to
    /// it.
    pub fn unrestored(&self) -> Vec<Unrestored> {
        let mut lost = self.unrestored.lock();
        lost.retain(|u| self.runtime.slot(&u.slot).is_none());
        lost.clone()
    }

    /// Deploy `plugin` directly (a first version, a detector or strategy, or
    /// an operator's explicit choice), recording it.
    pub async fn deploy(&self, plugin: Arc<Plugin>, actor: &str, reason: &str) -> Result<Installed, HostError> {
        self.leadership.check()?;
        record_module(&self.db, &plugin).await?;
        let installed = self.runtime.install(plugin.clone()).map_err(RuntimeError::from)?;
        let previous = match &installed {
            Installed::Swapped { previous } => Some(previous.id().to_string()),
            _ => None,
        };
        if !matches!(installed, Installed::Unchanged) {
            let d = Deployment {
                slot: plugin.name().into(),
                kind: crate::runtime::validate::world_name(plugin.kind()).into(),
                current_sha: plugin.id().into(),
                previous_sha: previous.clone(),
                candidate_sha: None,
                canary_percent: 0.0,
                control_percent: 0.0,
                holdback_percent: 0.0,
                rollback_chain: self
                    .runtime
                    .slot(plugin.name())
                    .map(|s| s.rollback_chain(plugin.id()))
                    .unwrap_or_default(),
                state: DeployState::Active,
                reason: reason.into(),
                updated_at: now_ms(),
            };
            let written = store::deployments::record(&self.db, &d, plugin.id(), previous.as_deref()).await;
            self.fenced_out(written)?;
            let event =
                Event::Deploy { version: plugin.version().into(), sha256: plugin.id().into(), reason: reason.into() };
            self.audit(actor, "deploy", plugin.name(), event).await;
            // The same bytes waiting as a candidate, queued or proven and
            // waiting to roll out, have nothing left to roll out; a store
            // error leaves a queued one for the loop to reject.
            self.improve.end_waiting_deployed(plugin.name(), plugin.id(), actor).await;
            if let Err(e) = self.improve.dequeue_deployed(plugin.name(), plugin.id(), actor).await {
                tracing::warn!(
                    "deploy of {} {}: its queued candidate stays queued: {e}",
                    plugin.name(),
                    plugin.version()
                );
            }
        }
        Ok(installed)
    }

    /// Queue `plugin` as a candidate: into this host's loop, or, on a
    /// fleet's follower, for the leader's (its bytes kept in the database,
    /// whence the leader loads them).
    pub async fn submit(&self, plugin: Arc<Plugin>, source: &str) -> Result<crate::r#loop::Submitted, HostError> {
        if let (Some(fleet), Err(follower)) = (&self.fleet, self.leadership.check()) {
            record_module(&self.db, &plugin).await?;
            fleet.submit(plugin.id(), source).await?;
            let leader = follower.leader.map(|(id, _, _)| format!(", {id}")).unwrap_or_default();
            return Ok(crate::r#loop::Submitted::Forwarded(format!("queued for the fleet's leader{leader}")));
        }
        Ok(self.improve.submit(plugin, source).await?)
    }

    /// Make `plugin`'s bytes the bytes of its version from now on, whatever
    /// bytes that version had (versions are otherwise immutable: see
    /// [`store::modules::VersionTaken`]). An operator's explicit choice,
    /// audited as done by `actor` with both sha256s. Returns the record it
    /// replaced; `None` when the version was new or had these bytes
    /// already. Deploy or submit the plugin afterwards as usual.
    pub async fn replace_version(&self, plugin: &Plugin, actor: &str) -> Result<Option<ModuleRecord>, HostError> {
        let replaced = store::modules::replace(&self.db, &module_record(plugin)).await?;
        if let Some(old) = &replaced {
            let event = Event::VersionReplaced {
                version: plugin.version().into(),
                replaced_sha256: old.sha256.clone(),
                sha256: plugin.sha256().into(),
            };
            self.audit(actor, "replace-version", plugin.name(), event).await;
        }
        Ok(replaced)
    }

    /// Roll slot `name` back to its previous version, recording why.
    pub async fn rollback(&self, name: &str, actor: &str, reason: &str) -> Result<crate::runtime::Rollback, HostError> {
        self.leadership.check()?;
        let rb = self.runtime.rollback(name)?;
        let kind = crate::runtime::validate::world_name(rb.to.kind());
        let written = store::deployments::record_rollback(
            &self.db,
            name,
            kind,
            rb.to.id(),
            rb.from.id(),
            rb.chain.clone(),
            reason,
        )
        .await;
        self.fenced_out(written)?;
        self.audit(actor, "rollback", name, Event::rollback(&rb, reason, None)).await;
        Ok(rb)
    }

    /// Abort the rollout of `target`: it takes back its candidate, the
    /// checkpoint serves, and its improvement ends `aborted`. A candidate
    /// being proven is aborted once its proof ends (waiting for it), where
    /// it waits or as its rollout starts. Waits up to `wait` for the
    /// rollout to have done so; returns the improvement as it stands then.
    pub async fn abort_rollout(
        &self,
        target: &str,
        by: &str,
        reason: &str,
        wait: std::time::Duration,
    ) -> Result<Improvement, HostError> {
        let info = match self.safety.abort_rollout(target, by, reason) {
            Ok(info) => info,
            // A proven candidate waiting to roll out (outside a window, in
            // a freeze, at the rollout limit) is aborted where it waits.
            Err(crate::safety::Denied::NoRollout(_)) => {
                self.leadership.check()?;
                if let Some(imp) = self.improve.abort_waiting(target, by, reason).await {
                    return Ok(imp);
                }
                // The cycle that call waited for was proving a candidate of
                // `target` and may have started its rollout: abort that.
                self.safety.abort_rollout(target, by, reason)?
            }
            Err(e) => return Err(e.into()),
        };
        let until = std::time::Instant::now() + wait;
        while self.safety.rollout(target).is_some_and(|r| r.improvement == info.improvement)
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let imp = store::improvements::get(&self.db, info.improvement).await?;
        imp.ok_or_else(|| StoreError::Corrupt(format!("improvement {} vanished", info.improvement)).into())
    }

    /// An operator's `action` on finding `id` (acknowledge, snooze, close),
    /// audited as done by `actor` for `why`.
    pub async fn act_on_finding(
        &self,
        id: i64,
        action: crate::findings::FindingAction,
        actor: &str,
        why: &str,
    ) -> Result<crate::store::findings::FindingRecord, crate::findings::FindingActionError> {
        // The loop owns findings; a follower's write would be fenced anyway.
        self.leadership.check()?;
        crate::findings::act(&self.db, &self.audit, id, action, actor, why).await
    }

    /// Record a decision in the audit trail and publish it as `event`
    /// (whose fields are the audit detail).
    pub async fn audit(&self, actor: &str, action: &str, target: &str, event: Event) {
        self.audit.record_event(actor, action, target, event).await;
    }

    /// Stop rollouts where they stand (the next start resumes them), flush
    /// telemetry and stop background work; in-flight calls should have
    /// finished (the caller stops taking calls first).
    pub async fn shutdown(&self) -> Result<(), HostError> {
        self.improve.shutdown();
        if let Some(fleet) = &self.fleet {
            fleet.leave().await;
        }
        self.telemetry.shutdown().await?;
        Ok(())
    }
}

/// The fleet's rounds of one host: heartbeat and lease, every
/// [`FleetConfig::poll_every`], for as long as the host lives.
async fn fleet_rounds(host: std::sync::Weak<Host>) {
    let mut failing = false;
    let mut round: u64 = 0;
    loop {
        round += 1;
        let Some(h) = host.upgrade() else { return };
        let Some(fleet) = h.fleet.clone() else { return };
        let every = fleet.config().poll_every();
        fleet.report_serving(&h.serving_by_slot());
        match fleet.tick().await {
            Ok(change) => {
                if failing {
                    tracing::info!("fleet: the database answers again");
                    failing = false;
                }
                // Apart from the rounds: resuming rollouts may take longer
                // than a lease, and the lease must be renewed meanwhile.
                if change != Change::None {
                    let h = h.clone();
                    tokio::spawn(async move { h.on_fleet_change(change).await });
                }
                if h.leadership.is_leader()
                    && round.is_multiple_of(60)
                    && let Err(e) = fleet.prune().await
                {
                    tracing::warn!("fleet: cannot prune shipped calls: {e}");
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("fleet: heartbeat failed (this host serves on, not ready): {e}");
                    failing = true;
                }
            }
        }
        drop(h);
        tokio::time::sleep(every).await;
    }
}
