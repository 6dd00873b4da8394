//! One loaded plugin version: compiled, pre-instantiated, ready to call.
//!
//! By default every call gets a fresh store and instance (full isolation; the
//! pooling allocator makes it cheap). A slot may opt into reusing warm
//! instances for trusted hot paths; an instance that fails a call is dropped,
//! never reused, since a trapped instance cannot be entered again, and so is
//! one that has served the slot's `reuse` calls.
//!
//! Every call is a future: the guest runs on a fiber of the task that awaits
//! it (an HTTP handler, a canary's caller), yields every epoch slice, and
//! ends at its deadline in wall-clock time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use wasmtime::Store;

use super::bindings::detector::{Detector, DetectorPre};
use super::bindings::improver::{Improver, ImproverPre};
use super::bindings::recovery::{Recovery, RecoveryPre};
use super::bindings::types::{
    CallContext, DetectionInput, ErrorClass, Failure, Finding, ImprovementInput, PluginInfo, PluginKind, Proposal,
    RecoveryAction, UnitError,
};
use super::bindings::unit::{Unit, UnitPre};
use super::bindings::{Contract, upgrade, v0_1};
use super::cache::CacheOutcome;
use super::error::CallError;
use super::sandbox::{self, HostState, Identity};
use crate::config::{Grants, SandboxLimits};

/// The error class of a unit call whose output is over the unit's
/// `max_output_bytes`.
pub const OUTPUT_TOO_LARGE: &str = "output-too-large";

/// Warm instances kept per version at most; more concurrent callers than
/// this get fresh instances, which are dropped after their call.
const WARM_POOL: usize = 16;

/// A compiled plugin ready to instantiate, one variant per world and
/// contract version (enum dispatch, as Zed's `extension_host` does): the
/// current contract's worlds, then those of older versions.
#[derive(Clone)]
pub(crate) enum Prepared {
    Detector(DetectorPre<HostState>),
    Recovery(RecoveryPre<HostState>),
    Unit(UnitPre<HostState>),
    Improver(ImproverPre<HostState>),
    DetectorV0_1(v0_1::detector::DetectorPre<HostState>),
    RecoveryV0_1(v0_1::recovery::RecoveryPre<HostState>),
    UnitV0_1(v0_1::unit::UnitPre<HostState>),
}

impl Prepared {
    /// The contract version the plugin was built against.
    pub fn contract(&self) -> Contract {
        match self {
            Prepared::Detector(_) | Prepared::Recovery(_) | Prepared::Unit(_) | Prepared::Improver(_) => Contract::V0_2,
            Prepared::DetectorV0_1(_) | Prepared::RecoveryV0_1(_) | Prepared::UnitV0_1(_) => Contract::V0_1,
        }
    }
}

enum Instance {
    Detector(Detector),
    Recovery(Recovery),
    Unit(Unit),
    Improver(Improver),
    DetectorV0_1(v0_1::detector::Detector),
    RecoveryV0_1(v0_1::recovery::Recovery),
    UnitV0_1(v0_1::unit::Unit),
}

/// What a call asks of an instance.
enum Ask<'a> {
    Describe,
    Detect(&'a DetectionInput),
    Handles,
    Decide(&'a Failure),
    Invoke(CallContext, &'a [u8]),
    Improve(&'a ImprovementInput),
}

/// What an instance answered, one variant per [`Ask`].
enum Reply {
    Info(PluginInfo),
    Findings(Vec<Finding>),
    Classes(Vec<ErrorClass>),
    Action(RecoveryAction),
    Output(Result<Vec<u8>, UnitError>),
    Proposals(Vec<Proposal>),
}

impl Instance {
    /// Make the call `ask` on this instance, on a fiber of `store`.
    /// A plugin of an older contract is asked in its own shapes and its
    /// answer mapped onto the host's ([`upgrade`]).
    async fn ask(&self, store: &mut Store<HostState>, ask: Ask<'_>) -> wasmtime::Result<Reply> {
        use Instance as I;
        Ok(match (self, ask) {
            (I::Detector(d), Ask::Describe) => Reply::Info(d.call_describe(store).await?),
            (I::Recovery(r), Ask::Describe) => Reply::Info(r.call_describe(store).await?),
            (I::Unit(u), Ask::Describe) => Reply::Info(u.call_describe(store).await?),
            (I::Improver(i), Ask::Describe) => Reply::Info(i.call_describe(store).await?),
            (I::Detector(d), Ask::Detect(input)) => Reply::Findings(d.call_detect(store, input).await?),
            (I::Recovery(r), Ask::Handles) => Reply::Classes(r.call_handles(store).await?),
            (I::Recovery(r), Ask::Decide(failure)) => Reply::Action(r.call_decide(store, failure).await?),
            (I::Unit(u), Ask::Invoke(ctx, request)) => Reply::Output(u.call_invoke(store, ctx, request).await?),
            (I::Improver(i), Ask::Improve(input)) => Reply::Proposals(i.call_improve(store, input).await?),
            (I::DetectorV0_1(d), Ask::Describe) => Reply::Info(upgrade::info(d.call_describe(store).await?)),
            (I::RecoveryV0_1(r), Ask::Describe) => Reply::Info(upgrade::info(r.call_describe(store).await?)),
            (I::UnitV0_1(u), Ask::Describe) => Reply::Info(upgrade::info(u.call_describe(store).await?)),
            (I::DetectorV0_1(d), Ask::Detect(input)) => {
                let findings = d.call_detect(store, &upgrade::detection_input(input)).await?;
                Reply::Findings(findings.into_iter().map(upgrade::finding).collect())
            }
            (I::RecoveryV0_1(r), Ask::Handles) => {
                Reply::Classes(r.call_handles(store).await?.into_iter().map(upgrade::error_class).collect())
            }
            (I::RecoveryV0_1(r), Ask::Decide(failure)) => {
                Reply::Action(upgrade::action(r.call_decide(store, &upgrade::failure(failure)).await?))
            }
            (I::UnitV0_1(u), Ask::Invoke(ctx, request)) => {
                let out = u.call_invoke(store, upgrade::call_context(&ctx), request).await?;
                Reply::Output(out.map_err(upgrade::unit_error))
            }
            _ => unreachable!("a plugin's kind is checked before it is asked"),
        })
    }
}

/// A configuration version: the value of every tunable of a unit, as text
/// (what `host.config` answers), content-addressed by the sha256 of its
/// canonical JSON (keys sorted) so that the same settings are one version
/// and a rollback restores the exact prior settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigVersion {
    /// Lowercase hex sha256 of [`ConfigVersion::canonical`].
    pub sha256: String,
    pub settings: std::collections::BTreeMap<String, String>,
}

impl ConfigVersion {
    /// The version of `settings`.
    pub fn new(settings: std::collections::BTreeMap<String, String>) -> ConfigVersion {
        let sha256 = super::blobs::sha256_hex(&Self::canonical_of(&settings));
        ConfigVersion { sha256, settings }
    }

    /// The bytes the sha256 is of: the settings as JSON, keys sorted.
    pub fn canonical(&self) -> Vec<u8> {
        Self::canonical_of(&self.settings)
    }

    fn canonical_of(settings: &std::collections::BTreeMap<String, String>) -> Vec<u8> {
        serde_json::to_vec(settings).expect("a map of strings serialises")
    }

    /// The first 12 hex digits, as versions show them.
    pub fn short(&self) -> &str {
        &self.sha256[..12]
    }
}

/// What the engine needs to run a call, shared by every plugin of a runtime.
pub(crate) struct Sandbox {
    pub engine: wasmtime::Engine,
    pub fuel_enabled: bool,
}

/// A loaded, validated plugin version.
pub struct Plugin {
    info: PluginInfo,
    sha256: String,
    /// Where the exact bytes live in the content-addressed store.
    module_path: std::path::PathBuf,
    size: usize,
    cache: CacheOutcome,
    prepared: Prepared,
    sandbox: Arc<Sandbox>,
    identity: Identity,
    limits: SandboxLimits,
    grants: Grants,
    /// The configuration version this plugin serves with, when it is one
    /// (a config candidate or what one became); `None`: the operator's
    /// configuration and the unit's declared defaults.
    config_version: Option<Arc<ConfigVersion>>,
    /// [`Plugin::id`]: the module's sha256, `+` the config version's.
    id: String,
    /// The module's own version, without a config version's suffix.
    module_version: String,
    /// The operator's configuration of this plugin (`[runtime.plugin_config]`),
    /// under any config version's settings.
    base_config: Arc<std::collections::HashMap<String, String>>,
    warm_enabled: AtomicBool,
    /// Calls one warm instance serves before it is dropped (the slot's
    /// `reuse`).
    warm_reuse: std::sync::atomic::AtomicU32,
    /// Warm instances, each with the calls it has served.
    warm: Mutex<Vec<(Store<HostState>, Instance, u32)>>,
    /// Consecutive trapped calls on warm instances (health remediation).
    warm_traps: std::sync::atomic::AtomicU32,
    /// This plugin is a rollout's matched control: a second copy of a
    /// serving version, routed a candidate's share ([`Plugin::control_copy`]).
    control: bool,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("id", &self.id)
            .finish()
    }
}

impl Plugin {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        info: PluginInfo,
        sha256: String,
        module_path: std::path::PathBuf,
        size: usize,
        cache: CacheOutcome,
        prepared: Prepared,
        sandbox: Arc<Sandbox>,
        identity: Identity,
        limits: SandboxLimits,
        grants: Grants,
    ) -> Plugin {
        Plugin {
            id: sha256.clone(),
            module_version: info.version.clone(),
            base_config: identity.config.clone(),
            config_version: None,
            info,
            sha256,
            module_path,
            size,
            cache,
            prepared,
            sandbox,
            identity,
            limits,
            grants,
            warm_enabled: AtomicBool::new(false),
            warm_reuse: std::sync::atomic::AtomicU32::new(crate::config::Instances::default().reuse),
            warm: Mutex::new(Vec::new()),
            warm_traps: std::sync::atomic::AtomicU32::new(0),
            control: false,
        }
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
    pub fn name(&self) -> &str {
        &self.info.name
    }
    pub fn version(&self) -> &str {
        &self.info.version
    }
    pub fn kind(&self) -> PluginKind {
        self.info.kind
    }
    /// The contract version the plugin was built against.
    pub fn contract(&self) -> Contract {
        self.prepared.contract()
    }
    /// Hex sha256 of the module bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// What identifies this version in slots, rollouts and the store: the
    /// module's sha256, and for a config version `+` the config's sha256
    /// (`3f…9a+c2…07`). Two plugins with one id serve alike.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The module's own version (`1.0.0`), where [`Plugin::version`] of a
    /// config version is `1.0.0+config.c2d41e0a7b3f`.
    pub fn module_version(&self) -> &str {
        &self.module_version
    }

    /// The config version this plugin serves with, if any.
    pub fn config_version(&self) -> Option<&ConfigVersion> {
        self.config_version.as_deref()
    }

    /// The value the operator's configuration gives `key`, under any config
    /// version: what the module serves with when no config version is set.
    pub fn base_config_value(&self, key: &str) -> Option<&str> {
        self.base_config.get(key).map(String::as_str)
    }

    /// The value the plugin reads for `key` through `host.config`.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.identity.config.get(key).map(String::as_str)
    }

    /// The same module serving with `version`'s settings over the
    /// operator's configuration: a config candidate. It shares the compiled
    /// component (no compile), gets its own warm instances, and is told
    /// apart in telemetry, slots and the store by its version
    /// (`MODULE_VERSION+config.SHORT_SHA`) and its [`Plugin::id`].
    pub fn with_config(&self, version: ConfigVersion) -> Plugin {
        let mut config = (*self.base_config).clone();
        config.extend(version.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut info = self.info.clone();
        info.version = format!("{}+config.{}", self.module_version, version.short());
        let identity =
            Identity { name: self.identity.name.clone(), version: info.version.clone(), config: Arc::new(config) };
        let mut p = self.sibling(info, identity);
        p.id = format!("{}+{}", self.sha256, version.sha256);
        p.config_version = Some(Arc::new(version));
        p
    }

    /// A matched control of this version that shares its compiled module:
    /// same id, version, settings and instance mode, its own warm
    /// instances, marked [`Plugin::is_control`].
    /// [`crate::runtime::Runtime::control_of`] makes one from a copy of the
    /// module loaded on its own, or from this version itself when the
    /// version it stands beside shares this module.
    pub fn control_copy(&self) -> Plugin {
        let mut p = self.sibling(self.info.clone(), self.identity.clone());
        p.id = self.id.clone();
        p.config_version = self.config_version.clone();
        p.control = true;
        p
    }

    /// A plugin on this compiled module with `info` and `identity`: the
    /// module's version, the operator's configuration and the instance
    /// mode carried over, warm instances of its own.
    fn sibling(&self, info: PluginInfo, identity: Identity) -> Plugin {
        let mut p = Plugin::new(
            info,
            self.sha256.clone(),
            self.module_path.clone(),
            self.size,
            self.cache,
            self.prepared.clone(),
            self.sandbox.clone(),
            identity,
            self.limits.clone(),
            self.grants.clone(),
        );
        p.module_version = self.module_version.clone();
        p.base_config = self.base_config.clone();
        p.set_instances(self.instances());
        p
    }

    /// Whether this is a rollout's matched control: its calls are the
    /// serving version's, and the judge takes them as the arm it compares
    /// the candidate with.
    pub fn is_control(&self) -> bool {
        self.control
    }

    /// This version's instance mode.
    fn instances(&self) -> crate::config::Instances {
        crate::config::Instances {
            mode: if self.warm_enabled() {
                crate::config::InstanceMode::Warm
            } else {
                crate::config::InstanceMode::Fresh
            },
            reuse: self.warm_reuse(),
        }
    }

    /// The module's file in the content-addressed store.
    pub fn module_path(&self) -> &std::path::Path {
        &self.module_path
    }

    /// The module's exact bytes, read back from the store.
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.module_path)
    }

    /// Size of the module bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Whether loading found a compiled artifact in the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Reuse warm instances between calls (off by default).
    pub fn set_warm(&self, on: bool) {
        self.warm_enabled.store(on, Ordering::Relaxed);
        if !on {
            self.clear_warm();
        }
    }

    /// Serve calls as the slot's instance mode says: fresh, or warm
    /// instances each re-created after `reuse` calls.
    pub fn set_instances(&self, instances: crate::config::Instances) {
        self.warm_reuse.store(instances.reuse.max(1), Ordering::Relaxed);
        self.set_warm(instances.warm());
    }

    /// Calls one warm instance serves before it is re-created.
    pub fn warm_reuse(&self) -> u32 {
        self.warm_reuse.load(Ordering::Relaxed)
    }

    /// Drop every warm instance: the next call starts from a fresh one.
    pub fn clear_warm(&self) {
        self.warm.lock().clear();
    }

    /// Whether warm instances are reused.
    pub fn warm_enabled(&self) -> bool {
        self.warm_enabled.load(Ordering::Relaxed)
    }

    /// Consecutive calls that trapped while warm instances were in use.
    pub fn warm_traps(&self) -> u32 {
        self.warm_traps.load(Ordering::Relaxed)
    }

    /// Warm instances currently kept.
    pub fn warm_count(&self) -> usize {
        self.warm.lock().len()
    }

    async fn instantiate(&self, limits: &SandboxLimits) -> Result<(Store<HostState>, Instance), CallError> {
        let mut store = sandbox::new_store(
            &self.sandbox.engine,
            self.sandbox.fuel_enabled,
            self.identity.clone(),
            limits,
            &self.grants,
        );
        let inst = match &self.prepared {
            Prepared::Detector(pre) => pre.instantiate_async(&mut store).await.map(Instance::Detector),
            Prepared::Recovery(pre) => pre.instantiate_async(&mut store).await.map(Instance::Recovery),
            Prepared::Unit(pre) => pre.instantiate_async(&mut store).await.map(Instance::Unit),
            Prepared::Improver(pre) => pre.instantiate_async(&mut store).await.map(Instance::Improver),
            Prepared::DetectorV0_1(pre) => pre.instantiate_async(&mut store).await.map(Instance::DetectorV0_1),
            Prepared::RecoveryV0_1(pre) => pre.instantiate_async(&mut store).await.map(Instance::RecoveryV0_1),
            Prepared::UnitV0_1(pre) => pre.instantiate_async(&mut store).await.map(Instance::UnitV0_1),
        };
        match inst {
            Ok(i) => Ok((store, i)),
            Err(e) => Err(sandbox::classify(&store, &e, limits)),
        }
    }

    /// An instance for the next call and the calls it has served: a warm
    /// one when warm instances are on and one is kept, else `None` (a fresh
    /// one is made).
    fn take_warm(&self, warm: bool) -> Option<(Store<HostState>, Instance, u32)> {
        if warm { self.warm.lock().pop() } else { None }
    }

    /// Keep an instance that answered its call for the next one, room
    /// permitting, unless it has served the slot's `reuse` calls (the next
    /// call then gets a fresh one). Only instances whose call returned come
    /// here: one that trapped or was cut at its deadline is dropped with its
    /// store.
    fn keep_warm(&self, store: Store<HostState>, inst: Instance, served: u32) {
        if served >= self.warm_reuse.load(Ordering::Relaxed) {
            return;
        }
        let mut pool = self.warm.lock();
        if pool.len() < WARM_POOL {
            pool.push((store, inst, served));
        }
    }

    /// Ask the plugin `ask` under the sandbox limits, the deadline shortened
    /// to `within` when that is sooner (a caller's remaining time).
    ///
    /// The deadline holds in wall-clock time: the epoch traps a guest that
    /// runs wasm past it, and a guest waiting in a host call (a WASI sleep or
    /// poll), which runs no wasm to interrupt, has its call future dropped at
    /// the deadline, store and instance with it, so that instance is never
    /// entered again.
    async fn run(&self, within: Option<Duration>, ask: Ask<'_>) -> Result<Reply, CallError> {
        let shortened;
        let limits = match within {
            Some(d) if d < self.limits.deadline => {
                shortened = SandboxLimits { deadline: d.max(Duration::from_millis(1)), ..self.limits.clone() };
                &shortened
            }
            _ => &self.limits,
        };
        match tokio::time::timeout(limits.deadline, self.run_unbounded(limits, ask)).await {
            Ok(reply) => reply,
            Err(_) => Err(sandbox::deadline_exceeded(limits)),
        }
    }

    async fn run_unbounded(&self, limits: &SandboxLimits, ask: Ask<'_>) -> Result<Reply, CallError> {
        let warm = self.warm_enabled.load(Ordering::Relaxed);
        let (mut store, inst, served) = match self.take_warm(warm) {
            Some(kept) => kept,
            None => {
                let (store, inst) = self.instantiate(limits).await?;
                (store, inst, 0)
            }
        };
        sandbox::arm(&mut store, limits);
        match inst.ask(&mut store, ask).await {
            Ok(reply) => {
                self.warm_traps.store(0, Ordering::Relaxed);
                if warm {
                    self.keep_warm(store, inst, served + 1);
                }
                Ok(reply)
            }
            Err(e) => {
                let err = sandbox::classify(&store, &e, limits);
                if warm && matches!(err.class, ErrorClass::Trap(_)) {
                    self.warm_traps.fetch_add(1, Ordering::Relaxed);
                }
                Err(err)
            }
        }
    }

    fn wrong_kind(&self, wanted: &str) -> CallError {
        CallError::new(
            ErrorClass::InvalidInput,
            format!("{} is a {:?} plugin, not a {wanted}", self.info.name, self.info.kind),
        )
    }

    /// Ask the plugin to describe itself (health checks, validation).
    pub async fn describe(&self) -> Result<PluginInfo, CallError> {
        match self.run(None, Ask::Describe).await? {
            Reply::Info(info) => Ok(info),
            _ => unreachable!("describe answers with an info"),
        }
    }

    /// Run a detector.
    pub async fn detect(&self, input: &DetectionInput) -> Result<Vec<Finding>, CallError> {
        if self.info.kind != PluginKind::Detector {
            return Err(self.wrong_kind("detector"));
        }
        match self.run(None, Ask::Detect(input)).await? {
            Reply::Findings(findings) => Ok(findings),
            _ => unreachable!("detect answers with findings"),
        }
    }

    /// The error classes a recovery strategy handles (empty: all).
    pub async fn handles(&self) -> Result<Vec<ErrorClass>, CallError> {
        if self.info.kind != PluginKind::Recovery {
            return Err(self.wrong_kind("recovery strategy"));
        }
        match self.run(None, Ask::Handles).await? {
            Reply::Classes(classes) => Ok(classes),
            _ => unreachable!("handles answers with classes"),
        }
    }

    /// Ask a recovery strategy what to do about `failure`.
    pub async fn decide(&self, failure: &Failure) -> Result<RecoveryAction, CallError> {
        if self.info.kind != PluginKind::Recovery {
            return Err(self.wrong_kind("recovery strategy"));
        }
        match self.run(None, Ask::Decide(failure)).await? {
            Reply::Action(action) => Ok(action),
            _ => unreachable!("decide answers with an action"),
        }
    }

    /// Ask an improver for proposals about one finding. What it proposes is
    /// not checked here: the loop validates every proposal against the
    /// target's tunables and module versions.
    pub async fn improve(&self, input: &ImprovementInput) -> Result<Vec<Proposal>, CallError> {
        if self.info.kind != PluginKind::Improver {
            return Err(self.wrong_kind("improver"));
        }
        match self.run(None, Ask::Improve(input)).await? {
            Reply::Proposals(proposals) => Ok(proposals),
            _ => unreachable!("improve answers with proposals"),
        }
    }

    /// Call a unit. A typed error from the unit keeps its class.
    pub async fn invoke(&self, context: &CallContext, request: &[u8]) -> Result<Vec<u8>, CallError> {
        self.invoke_within(context, request, None).await
    }

    /// Call a unit with at most `within` of wall-clock time (never more than
    /// its own deadline).
    pub async fn invoke_within(
        &self,
        context: &CallContext,
        request: &[u8],
        within: Option<Duration>,
    ) -> Result<Vec<u8>, CallError> {
        if self.info.kind != PluginKind::Unit {
            return Err(self.wrong_kind("unit"));
        }
        let out = match self.run(within, Ask::Invoke(*context, request)).await? {
            Reply::Output(out) => out,
            _ => unreachable!("invoke answers with an output"),
        };
        let output = out.map_err(|e| CallError::new(e.error_class, e.message))?;
        // Dropped here, before the host keeps, records or sends a byte of it.
        let limit = self.limits.max_output_bytes;
        if output.len() > limit {
            return Err(CallError::new(
                ErrorClass::Other(OUTPUT_TOO_LARGE.into()),
                format!(
                    "{} answered {} bytes, over its output limit of {limit} bytes (runtime.limits.max_output_bytes)",
                    self.info.name,
                    output.len()
                ),
            ));
        }
        Ok(output)
    }
}
