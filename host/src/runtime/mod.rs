//! The sandboxed runtime: one engine, validated loading with a compiled
//! cache, and slots with atomic hot swap and rollback.

pub mod bindings;
pub mod blobs;
pub mod blocking;
pub mod cache;
pub mod engine;
pub mod error;
pub mod output;
pub mod plugin;
pub mod sandbox;
pub mod slots;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use wasmtime::component::{Component, Linker};

pub use self::bindings::types;
use self::bindings::types::{CallContext, ErrorClass, PluginKind};
use self::blobs::Blobs;
pub use self::cache::CacheOutcome;
use self::cache::CompiledCache;
pub use self::error::{CallError, LoadError, LoadReason, class_from_name, class_name};
pub use self::plugin::{ConfigVersion, Plugin};
use self::plugin::{Prepared, Sandbox};
use self::sandbox::{HostState, Identity};
pub use self::slots::{Canary, Claim, Rollback, Serving, Slot, SlotError};
use crate::config::{Instances, RuntimeConfig};

/// Failures of setting the runtime up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot use data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("no plugin named `{0}`")]
    NoSuchSlot(String),
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An instance mode outside its valid range.
    #[error("bad instance mode: {0}")]
    BadInstances(String),
}

/// What installing a plugin did to its slot.
#[derive(Debug, Clone)]
pub enum Installed {
    /// A new slot was created with this plugin serving.
    NewSlot,
    /// The slot already served these exact bytes: nothing changed.
    Unchanged,
    /// The plugin replaced `previous`.
    Swapped { previous: Arc<Plugin> },
}

/// A unit call's answer and the version that gave it.
#[derive(Debug)]
pub struct Served {
    pub output: Vec<u8>,
    pub plugin: Arc<Plugin>,
}

/// The host's WebAssembly runtime.
pub struct Runtime {
    sandbox: Arc<Sandbox>,
    linker: Linker<HostState>,
    cache: CompiledCache,
    blobs: Blobs,
    /// Config versions, content-addressed like modules (`configs/`).
    configs: Blobs,
    data_dir: PathBuf,
    config: RuntimeConfig,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Each slot's instance mode: the configuration's, as changed since.
    instances: RwLock<HashMap<String, Instances>>,
    _ticker: engine::Ticker,
}

impl Runtime {
    /// Build the engine, linker and on-disk stores under `data_dir`
    /// (module bytes in `modules/`, compiled artifacts in `compiled/` unless
    /// `config.cache_dir` says otherwise).
    pub fn new(data_dir: impl Into<PathBuf>, config: RuntimeConfig) -> Result<Arc<Runtime>, RuntimeError> {
        let data_dir = data_dir.into();
        let engine = engine::build_engine(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = sandbox::build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let dir_err = |source| RuntimeError::DataDir { dir: data_dir.display().to_string(), source };
        let blobs = Blobs::open(data_dir.join("modules")).map_err(dir_err)?;
        let configs = Blobs::open(data_dir.join("configs")).map_err(dir_err)?;
        let cache = CompiledCache::open(config.cache_dir.clone().unwrap_or_else(|| data_dir.join("compiled")), &engine)
            .map_err(dir_err)?;
        let ticker = engine::Ticker::start(&engine);
        let fuel_enabled = engine::fuel_enabled(&config);
        Ok(Arc::new(Runtime {
            sandbox: Arc::new(Sandbox { engine, fuel_enabled }),
            linker,
            cache,
            blobs,
            configs,
            data_dir,
            instances: RwLock::new(config.instances.clone()),
            config,
            slots: RwLock::new(BTreeMap::new()),
            _ticker: ticker,
        }))
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        &self.sandbox.engine
    }
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
    /// The directory the runtime keeps its files in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The content-addressed module store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }
    /// The content-addressed config version store.
    pub fn config_blobs(&self) -> &Blobs {
        &self.configs
    }

    /// Load and validate a module from a file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let label =
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError { file: label.clone(), reason: LoadReason::Storage(format!("cannot read: {e}")) })?;
        self.load(&label, &bytes)
    }

    /// Re-load a version from the content-addressed stores by its
    /// [`Plugin::id`]: the module by its sha256 and, for a config version,
    /// its exact settings by theirs.
    pub fn load_stored(&self, id: &str) -> Result<Arc<Plugin>, LoadError> {
        self.load_stored_as(id, cache::Code::Shared)
    }

    fn load_stored_as(&self, id: &str, code: cache::Code) -> Result<Arc<Plugin>, LoadError> {
        let storage =
            |e: std::io::Error| LoadError { file: id.to_string(), reason: LoadReason::Storage(e.to_string()) };
        let (module, config) = match id.split_once('+') {
            Some((module, config)) => (module, Some(config)),
            None => (id, None),
        };
        let bytes = self.blobs.get(module).map_err(storage)?;
        let plugin = self.load_as(module, &bytes, code)?;
        match config {
            None => Ok(plugin),
            Some(sha) => {
                let version = self
                    .stored_config(sha)
                    .map_err(|e| LoadError { file: id.to_string(), reason: LoadReason::Storage(e) })?;
                Ok(Arc::new(plugin.with_config(version)))
            }
        }
    }

    /// A matched control of `of` for a rollout that gives `sparse` a small
    /// share: a copy of `of` given the same share as `sparse`, so that the
    /// judge compares two arms that run equally seldom.
    ///
    /// Why: a loaded module that serves a small share of a slot's calls
    /// runs slower per call than the one serving the rest, whatever its
    /// code — an identical copy at 5 % measured +6 % at p50 and +18 % at
    /// p95 beside its twin at 85 % (the host's per-module state, the
    /// instance pool's slots and caches, goes cold between its calls; see
    /// the README's judge section). So the control is as cold as `sparse`:
    /// loaded on its own from the module store, its machine code in pages
    /// of its own ([`cache::Code::Private`]), when `sparse` has a module of
    /// its own; sharing `of`'s module when `sparse` does too (a config
    /// candidate, which runs on the module the serving version keeps warm).
    ///
    /// Errors: `of`'s module or config version cannot be read back from the
    /// stores, or no longer loads.
    pub fn control_of(&self, of: &Plugin, sparse: &Plugin) -> Result<Arc<Plugin>, LoadError> {
        if of.sha256() == sparse.sha256() {
            return Ok(Arc::new(of.control_copy()));
        }
        let copy = self.load_stored_as(of.id(), cache::Code::Private)?;
        Ok(Arc::new(copy.control_copy()))
    }

    /// The config version whose sha256 is `sha`, read back from the
    /// content-addressed config store.
    pub fn stored_config(&self, sha: &str) -> Result<ConfigVersion, String> {
        let text = self.configs.get(sha).map_err(|e| format!("config version {sha}: {e}"))?;
        let settings =
            serde_json::from_slice(&text).map_err(|e| format!("config version {sha} is not a map of settings: {e}"))?;
        Ok(ConfigVersion::new(settings))
    }

    /// `base`'s module serving with `version`'s settings, the settings kept
    /// in the content-addressed config store first (so that a restart or a
    /// rollback finds them by [`Plugin::id`]).
    pub fn with_config(&self, base: &Plugin, version: ConfigVersion) -> Result<Arc<Plugin>, LoadError> {
        self.configs.put(&version.canonical()).map_err(|e| LoadError {
            file: base.name().to_string(),
            reason: LoadReason::Storage(format!("cannot keep config version {}: {e}", version.sha256)),
        })?;
        Ok(Arc::new(base.with_config(version)))
    }

    /// Validate `bytes` and prepare them for calls. Nothing is registered:
    /// that is [`Runtime::install`]'s job. `label` names the module in errors.
    pub fn load(&self, label: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        self.load_as(label, bytes, cache::Code::Shared)
    }

    fn load_as(&self, label: &str, bytes: &[u8], code: cache::Code) -> Result<Arc<Plugin>, LoadError> {
        let fail = |reason| LoadError { file: label.to_string(), reason };
        validate::check_bytes(bytes, self.config.max_module_bytes).map_err(fail)?;
        let sha = blobs::sha256_hex(bytes);
        let engine = &self.sandbox.engine;
        let (component, outcome): (Component, CacheOutcome) =
            self.cache.load_as(engine, &sha, bytes, code).map_err(|e| fail(LoadReason::Invalid(format!("{e:#}"))))?;
        let world = validate::world_of(engine, &component).map_err(fail)?;
        validate::check_imports(engine, &component).map_err(fail)?;
        let contract = validate::contract_of(engine, &component).map_err(fail)?;
        let pre =
            self.linker.instantiate_pre(&component).map_err(|e| fail(LoadReason::ForbiddenImport(format!("{e:#}"))))?;
        let prepared = prepare(world, contract, pre).map_err(fail)?;

        // Describe under the default limits and no grants: the plugin has
        // not said who it is yet, so it gets nothing configured for a name.
        let probe_identity = Identity { name: format!("<{label}>"), version: "?".into(), config: Arc::default() };
        let provisional = |prepared| {
            Plugin::new(
                types::PluginInfo {
                    name: String::new(),
                    kind: world,
                    version: String::new(),
                    description: String::new(),
                    tunables: Vec::new(),
                    capabilities: Vec::new(),
                },
                sha.clone(),
                self.blobs.path(&sha),
                bytes.len(),
                outcome,
                prepared,
                self.sandbox.clone(),
                probe_identity.clone(),
                self.config.limits.clone(),
                Default::default(),
            )
        };
        let probe = provisional(prepared.clone());
        // Loading is synchronous (it compiles), so its one guest call blocks.
        let info = blocking::block_on(probe.describe()).map_err(|e| fail(LoadReason::DescribeFailed(e)))?;
        validate::check_info(&info, world).map_err(fail)?;

        self.blobs.put(bytes).map_err(|e| fail(LoadReason::Storage(e.to_string())))?;
        let config = self.config.plugin_config.get(&info.name).cloned().unwrap_or_default();
        let identity = Identity { name: info.name.clone(), version: info.version.clone(), config: Arc::new(config) };
        let limits = self.config.limits_for(&info.name).clone();
        let granted = self.config.grants.get(&info.name);
        let grants = sandboxing(&info, prepared.contract(), granted, self.config.grant_declared).map_err(fail)?;
        tracing::debug!(plugin = %info.name, version = %info.version, sha = %sha, cache = ?outcome, "loaded");
        let path = self.blobs.path(&sha);
        let instances = self.instances(&info.name);
        let plugin = Arc::new(Plugin::new(
            info,
            sha,
            path,
            bytes.len(),
            outcome,
            prepared,
            self.sandbox.clone(),
            identity,
            limits,
            grants,
        ));
        plugin.set_instances(instances);
        Ok(plugin)
    }

    /// Slot `name`'s instance mode.
    pub fn instances(&self, name: &str) -> Instances {
        self.instances.read().get(name).copied().unwrap_or_default()
    }

    /// Change slot `name`'s instance mode: for every version the slot holds
    /// at once (their warm instances are dropped), and for every version of
    /// that name loaded from now on.
    pub fn set_instances(&self, name: &str, instances: Instances) -> Result<(), RuntimeError> {
        if instances.reuse == 0 {
            return Err(RuntimeError::BadInstances(format!("`reuse` = 0 for slot `{name}`: must be at least 1")));
        }
        let slot = self.require(name)?;
        self.instances.write().insert(name.to_string(), instances);
        for p in slot.versions() {
            p.clear_warm();
            p.set_instances(instances);
        }
        Ok(())
    }

    /// The import names of a component, for diagnostics (`plugin check`).
    /// `None` when the bytes do not compile as a component.
    pub fn component_imports(&self, bytes: &[u8]) -> Option<Vec<String>> {
        validate::check_bytes(bytes, self.config.max_module_bytes).ok()?;
        let sha = blobs::sha256_hex(bytes);
        let (component, _) = self.cache.load(&self.sandbox.engine, &sha, bytes).ok()?;
        let ty = component.component_type();
        Some(ty.imports(&self.sandbox.engine).map(|(n, _)| n.to_string()).collect())
    }

    /// Register `plugin`: a new slot for a new name, else an atomic swap.
    pub fn install(&self, plugin: Arc<Plugin>) -> Result<Installed, SlotError> {
        let mut slots = self.slots.write();
        match slots.get(plugin.name()) {
            None => {
                slots.insert(plugin.name().to_string(), Arc::new(Slot::new(plugin, self.config.history_depth)));
                Ok(Installed::NewSlot)
            }
            Some(slot) => {
                let serving = slot.serving();
                if serving.current.id() == plugin.id() && serving.canary.is_none() {
                    return Ok(Installed::Unchanged);
                }
                let previous = slot.swap(plugin)?;
                Ok(Installed::Swapped { previous })
            }
        }
    }

    /// Serve `plugin` in a new slot named `slot` besides its own name: one
    /// compiled component answering many slots, as the slots bench loads a
    /// host with thousands of small units. Such a slot takes no other
    /// version (its name is not its plugin's); refused when `slot` exists.
    #[doc(hidden)]
    pub fn install_as(&self, slot: &str, plugin: Arc<Plugin>) -> Result<(), RuntimeError> {
        let mut slots = self.slots.write();
        if slots.contains_key(slot) {
            return Err(RuntimeError::Slot(SlotError::WrongName { slot: slot.into(), name: plugin.name().into() }));
        }
        slots.insert(slot.to_string(), Arc::new(Slot::named(slot.to_string(), plugin, self.config.history_depth)));
        Ok(())
    }

    pub fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.read().get(name).cloned()
    }

    /// Every slot, by name.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().values().cloned().collect()
    }

    /// Slots holding plugins of `kind`.
    pub fn slots_of(&self, kind: PluginKind) -> Vec<Arc<Slot>> {
        self.slots.read().values().filter(|s| s.kind() == kind).cloned().collect()
    }

    fn require(&self, name: &str) -> Result<Arc<Slot>, RuntimeError> {
        self.slot(name).ok_or_else(|| RuntimeError::NoSuchSlot(name.to_string()))
    }

    /// Roll slot `name` back (see [`Slot::rollback`]).
    pub fn rollback(&self, name: &str) -> Result<Rollback, RuntimeError> {
        Ok(self.require(name)?.rollback()?)
    }

    /// Roll slot `name` back to the exact version `sha`: from the slot's
    /// history when it is still there, else re-loaded from the module store.
    pub fn rollback_to(&self, name: &str, sha: &str) -> Result<Rollback, RuntimeError> {
        let slot = self.require(name)?;
        let target = match slot.history().into_iter().find(|p| p.id() == sha) {
            Some(p) => p,
            None => self.load_stored(sha)?,
        };
        Ok(slot.restore(target)?)
    }

    /// The slot of unit `name`, or the `not-found` error a caller gets.
    pub fn unit_slot(&self, name: &str) -> Result<Arc<Slot>, CallError> {
        self.slot(name)
            .filter(|s| s.kind() == PluginKind::Unit)
            .ok_or_else(|| CallError::new(ErrorClass::Other("not-found".into()), format!("no unit named `{name}`")))
    }

    /// Call unit `name`, unrecorded (the recorded call path is
    /// [`crate::invoke::Invoker`]).
    pub async fn call_unit(&self, name: &str, context: &CallContext, request: &[u8]) -> Result<Served, CallError> {
        let plugin = self.unit_slot(name)?.route();
        let output = plugin.invoke(context, request).await?;
        Ok(Served { output, plugin })
    }
}

/// Bind a compiled component to its world's typed exports in `contract`'s
/// shapes. A component that imports nothing of the contract (nothing tells
/// its version) is tried against the newest version first; wasmtime's type
/// check of the exports then decides.
fn prepare(
    world: PluginKind,
    contract: Option<bindings::Contract>,
    pre: wasmtime::component::InstancePre<HostState>,
) -> Result<Prepared, LoadReason> {
    use bindings::{Contract, v0_1};
    let mismatch = |e: wasmtime::Error| LoadReason::WorldMismatch {
        world: validate::world_name(world),
        message: format!("{e:#}"),
    };
    let bind = |contract: Contract| -> Result<Prepared, LoadReason> {
        let pre = pre.clone();
        Ok(match (contract, world) {
            (Contract::V0_2, PluginKind::Detector) => {
                Prepared::Detector(bindings::detector::DetectorPre::new(pre).map_err(mismatch)?)
            }
            (Contract::V0_2, PluginKind::Recovery) => {
                Prepared::Recovery(bindings::recovery::RecoveryPre::new(pre).map_err(mismatch)?)
            }
            (Contract::V0_2, PluginKind::Unit) => Prepared::Unit(bindings::unit::UnitPre::new(pre).map_err(mismatch)?),
            (Contract::V0_2, PluginKind::Improver) => {
                Prepared::Improver(bindings::improver::ImproverPre::new(pre).map_err(mismatch)?)
            }
            (Contract::V0_1, PluginKind::Detector) => {
                Prepared::DetectorV0_1(v0_1::detector::DetectorPre::new(pre).map_err(mismatch)?)
            }
            (Contract::V0_1, PluginKind::Recovery) => {
                Prepared::RecoveryV0_1(v0_1::recovery::RecoveryPre::new(pre).map_err(mismatch)?)
            }
            (Contract::V0_1, PluginKind::Unit) => Prepared::UnitV0_1(v0_1::unit::UnitPre::new(pre).map_err(mismatch)?),
            (Contract::V0_1, PluginKind::Improver) => {
                return Err(LoadReason::WorldMismatch {
                    world: "improver",
                    message: "the improver world exists since kaizen:plugin@0.2.0; this module imports 0.1.0".into(),
                });
            }
        })
    };
    match contract {
        Some(c) => bind(c),
        None => bind(Contract::CURRENT).or_else(|newest| bind(Contract::V0_1).map_err(|_| newest)),
    }
}

/// What the sandbox gives plugin `info`: its grants, every capability it
/// declares among them (else it is refused, naming the first missing one),
/// and, for a contract-0.2 plugin, no wall clock or randomness it did not
/// declare ([`crate::config::Withhold`]).
fn sandboxing(
    info: &types::PluginInfo,
    contract: bindings::Contract,
    granted: Option<&crate::config::Grants>,
    grant_declared: bool,
) -> Result<crate::config::Grants, LoadReason> {
    let mut grants = granted.cloned().unwrap_or_default();
    for capability in &info.capabilities {
        let name = validate::capability_name(capability);
        if !grants.grants(&name) && !grant_declared {
            return Err(LoadReason::CapabilityNotGranted { plugin: info.name.clone(), capability: name });
        }
    }
    if contract >= bindings::Contract::V0_2 {
        let declares = |c: &types::Capability| info.capabilities.contains(c);
        grants.withhold = crate::config::Withhold {
            wall_clock: !declares(&types::Capability::WallClock),
            random: !declares(&types::Capability::Random),
        };
        // A 0.2 plugin sees only the directories it declares, and reaches
        // only the HTTP hosts it declares.
        grants.read_only_dirs.retain(|guest, _| declares(&types::Capability::Directory(guest.clone())));
        grants.outgoing_http = info
            .capabilities
            .iter()
            .filter_map(|c| match c {
                types::Capability::Http(host) => Some(host.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
    }
    Ok(grants)
}

/// Per-plugin configuration as the runtime stores it.
pub type PluginConfig = HashMap<String, String>;
