//! The assembled host: store, runtime, telemetry, call path, safety and the
//! loop, opened over one data directory and restored from what the store
//! says was serving.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::config::RuntimeConfig;
use crate::events::{Event, Events};
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
    audit: Audit,
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
        let db = match &config.database_url {
            Some(url) => Db::connect(url).await?,
            None => Db::open_sqlite_file(&config.data_dir.join("kaizen.db")).await?,
        };
        let mut runtime_config = config.runtime.clone();
        crate::metric_rules::install(&mut runtime_config, &config.metrics);
        let runtime = Runtime::new(&config.data_dir, runtime_config)?;
        let tasks = Tasks::new();
        let telemetry = Telemetry::start_in(db.clone(), config.telemetry.clone(), &tasks).await?;
        let healer = Healer::new(runtime.clone(), db.clone(), config.recovery.clone(), &tasks).await?;
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
        };
        let improve = Loop::new(parts, config.improve.clone());
        let host =
            Arc::new(Host { db, runtime, telemetry, invoker, safety, events, improve, write_failures, tasks, audit });
        let mut restored = host.restore().await?;
        restored.resumed = host.improve.resume().await;
        Ok((host, restored))
    }

    async fn restore(&self) -> Result<Restored, HostError> {
        let mut r = Restored::default();
        for d in store::deployments::all(&self.db).await? {
            let load = |sha: &str| self.runtime.load_stored(sha);
            if let Some(prev) = d.previous_sha.as_deref().filter(|p| *p != d.current_sha)
                && let Ok(p) = load(prev)
            {
                let _ = self.runtime.install(p);
            }
            match load(&d.current_sha) {
                Ok(p) => {
                    let _ = self.runtime.install(p);
                    r.slots += 1;
                }
                Err(e) => r.errors.push(format!("slot {}: {e}", d.slot)),
            }
        }
        for e in &r.errors {
            tracing::error!("restore: {e}");
        }
        Ok(r)
    }

    /// Deploy `plugin` directly (a first version, a detector or strategy, or
    /// an operator's explicit choice), recording it.
    pub async fn deploy(&self, plugin: Arc<Plugin>, actor: &str, reason: &str) -> Result<Installed, HostError> {
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
                state: DeployState::Active,
                reason: reason.into(),
                updated_at: now_ms(),
            };
            store::deployments::record(&self.db, &d, plugin.id(), previous.as_deref()).await?;
            let event =
                Event::Deploy { version: plugin.version().into(), sha256: plugin.id().into(), reason: reason.into() };
            self.audit(actor, "deploy", plugin.name(), event).await;
        }
        Ok(installed)
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
        let rb = self.runtime.rollback(name)?;
        let kind = crate::runtime::validate::world_name(rb.to.kind());
        store::deployments::record_rollback(&self.db, name, kind, rb.to.id(), rb.from.id(), reason).await?;
        self.audit(actor, "rollback", name, Event::rollback(&rb, reason, None)).await;
        Ok(rb)
    }

    /// Abort the rollout of `target`: it takes back its candidate, the
    /// checkpoint serves, and its improvement ends `aborted`. Waits up to
    /// `wait` for the rollout to have done so; returns the improvement as
    /// it stands then.
    pub async fn abort_rollout(
        &self,
        target: &str,
        by: &str,
        reason: &str,
        wait: std::time::Duration,
    ) -> Result<Improvement, HostError> {
        let info = self.safety.abort_rollout(target, by, reason)?;
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
        self.telemetry.shutdown().await?;
        Ok(())
    }
}
