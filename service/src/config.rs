//! `kaizen serve`'s configuration: defaults, then a TOML file, then
//! environment variables, then command-line flags (each overriding the one
//! before). Unknown keys are errors, so a typo never silently does nothing.
//!
//! Environment: `KAIZEN_<KEY>` for top-level keys (`KAIZEN_LISTEN`,
//! `KAIZEN_DATA_DIR`, `KAIZEN_WATCH_DIR`, `KAIZEN_DATABASE_URL`), `__` for
//! nesting (`KAIZEN_LOOP__INTERVAL_SECS=10`,
//! `KAIZEN_RUNTIME__LIMITS__DEADLINE=2000`), and the two tokens
//! `KAIZEN_ADMIN_TOKEN` / `KAIZEN_INVOKE_TOKEN`. `DATABASE_URL` is honoured
//! too, below `KAIZEN_DATABASE_URL`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use kaizen_host::health::HealthConfig;
use kaizen_host::host::HostConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::webhooks::{InvalidWebhook, WebhookConfig};
use kaizen_host::settings::{Checker, InvalidSettings};

/// Variables read by the client and the logger, not configuration keys.
const NOT_CONFIG: [&str; 4] = ["url", "log", "config", "log_format"];

/// Everything `kaizen serve` is configured with: the host's configuration
/// and the service's own settings around it.
///
/// In the file and the environment both are one namespace of top-level
/// keys (`data_dir`, `[runtime]` and `[loop]` are the host's; `listen`,
/// `[http]` and `[watch]` the service's). [`ServeConfig::load`] hands each
/// key to the struct that owns it, so both keep rejecting keys they do not
/// know and an error still names the key and the file it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The host's part: data directory, database, runtime, telemetry,
    /// safety, loop and recovery. Read by [`ServeConfig::load`] from its
    /// own top-level keys, hence invisible to serde here.
    #[serde(skip)]
    pub host: HostConfig,
    /// Address of the HTTP API and dashboard.
    pub listen: SocketAddr,
    /// Folder watched for `.wasm` files; `<data_dir>/watch` when unset.
    pub watch_dir: Option<PathBuf>,
    pub tokens: TokenConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub watch: WatchConfig,
    /// Load the plugins bundled with the binary (detectors and recovery
    /// strategies) into empty slots.
    pub bundled: bool,
    /// Also deploy the demo's seed unit, calculator 1.0.0 (which crashes on
    /// a division by zero by design), when no calculator serves. Off by
    /// default: a host serves only the units its operator deploys. The
    /// demo turns it on.
    pub seed_unit: bool,
    pub webhooks: Vec<WebhookConfig>,
    pub health: HealthConfig,
    /// Where each setting's value came from, by dotted key: `default`,
    /// `preset NAME`, `file PATH`, `env VARIABLE`, `flag --NAME`. Filled
    /// by [`ServeConfig::load`] (and by `kaizen serve` for its flags).
    #[serde(skip)]
    pub provenance: std::collections::BTreeMap<String, String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            host: HostConfig { data_dir: PathBuf::from("kaizen-data"), ..HostConfig::default() },
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            watch_dir: None,
            tokens: TokenConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            watch: WatchConfig::default(),
            bundled: true,
            seed_unit: false,
            webhooks: Vec::new(),
            health: HealthConfig::default(),
            provenance: Default::default(),
        }
    }
}

/// API tokens. Absent ones are generated on first start and kept in
/// `<data_dir>/tokens.json` (mode 0600).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Everything: reads, control, deploys, and what the invoke token allows.
    pub admin: Option<String>,
    /// Invoking units and ingesting telemetry only.
    pub invoke: Option<String>,
    /// Reading `/metrics` only (for a Prometheus scraper).
    pub metrics: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `auto` (human on a terminal, JSON otherwise), `human` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `kaizen_host=debug,info`; `KAIZEN_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "auto".into(), filter: "info".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body (a module upload) in bytes.
    pub max_body_bytes: usize,
    /// Largest invoke payload in bytes.
    pub max_invoke_bytes: usize,
    /// Largest telemetry batch in bytes.
    pub max_ingest_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { max_body_bytes: 64 << 20, max_invoke_bytes: 1 << 20, max_ingest_bytes: 8 << 20 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Watch the folder at all.
    pub enabled: bool,
    /// A file must keep the same size and modification time this long
    /// before it is read (writers that pause longer should write to a
    /// temporary name and rename).
    pub stable_ms: u64,
    /// Rescan the folder this often, besides file-system events (catches
    /// anything an event missed).
    pub rescan_ms: u64,
    /// Deploy a dropped unit directly instead of submitting it to the
    /// loop's proving pipeline (a unit whose slot is empty is always
    /// deployed directly).
    pub deploy_units: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig { enabled: true, stable_ms: 400, rescan_ms: 1000, deploy_units: false }
    }
}

/// A configuration that cannot be used, naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: webhooks[{index}].{problem}")]
    Webhook { index: usize, problem: InvalidWebhook },
    #[error("invalid configuration: {0}")]
    Settings(#[from] InvalidSettings),
}

/// An environment value as the type it spells: a boolean, an integer, a
/// float, or else a string.
fn env_value(v: &str) -> figment::value::Value {
    if let Ok(b) = v.parse::<bool>() {
        b.into()
    } else if let Ok(i) = v.parse::<i64>() {
        i.into()
    } else if let Ok(f) = v.parse::<f64>() {
        f.into()
    } else {
        v.into()
    }
}

/// The top-level keys `T` accepts, in declaration order: serde lists them
/// when it rejects a key, so a probe with a key no struct has reads them
/// from the one place they are declared.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    match Figment::from(Serialized::default("\u{0}", 0)).extract::<T>() {
        Err(figment::Error { kind: figment::error::Kind::UnknownField(_, keys), .. }) => keys,
        _ => &[],
    }
}

/// Every top-level key: the host's, then the service's.
fn all_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| [keys_of::<HostConfig>(), keys_of::<ServeConfig>()].concat())
}

/// One source of configuration as the host or the service sees it: only
/// the host's top-level keys, or every other key (so a key nobody knows is
/// the service's to reject). The source's own metadata is kept, so errors
/// still say which file or variable a bad value came from.
struct Part<'a> {
    source: &'a dyn Provider,
    host: bool,
}

impl Provider for Part<'_> {
    fn metadata(&self) -> Metadata {
        self.source.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.source.data()?;
        let host_keys = keys_of::<HostConfig>();
        for dict in data.values_mut() {
            dict.retain(|key, _| host_keys.contains(&key.as_str()) == self.host);
        }
        Ok(data)
    }

    fn profile(&self) -> Option<Profile> {
        self.source.profile()
    }
}

/// A source under the name the operator knows it by (`default`, `env
/// KAIZEN_LOOP__INTERVAL_SECS`, `preset aggressive`): errors and the
/// provenance of each value name it.
struct Labeled<P> {
    label: String,
    inner: P,
}

impl<P> Labeled<P> {
    fn new(label: impl Into<String>, inner: P) -> Self {
        Labeled { label: label.into(), inner }
    }
}

impl<P: Provider> Provider for Labeled<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.label.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }

    fn profile(&self) -> Option<Profile> {
        self.inner.profile()
    }
}

/// The presets the other sources ask for, as sources: the global one
/// (`safety.preset`: the loop's pace and the limits), then one per target
/// with `preset` (that target's limits: the global limits with the
/// preset over them). A preset name that is not one is left to the final
/// extraction to report, with its key and file.
fn preset_sources(sources: &[Box<dyn Provider>]) -> Vec<Box<dyn Provider>> {
    use kaizen_host::presets::{Preset, overlay};
    let merged = |extra: &[Box<dyn Provider>]| {
        let (defaults, rest) = sources.split_at(2.min(sources.len()));
        defaults
            .iter()
            .chain(extra)
            .chain(rest)
            .fold(Figment::new(), |f, source| f.merge(Part { source: source.as_ref(), host: true }))
    };
    let preset_at = |f: &Figment, key: &str| f.find_value(key).ok().and_then(|v| v.deserialize::<Preset>().ok());
    let mut out: Vec<Box<dyn Provider>> = Vec::new();
    let probe = merged(&[]);
    if let Some(p) = preset_at(&probe, "safety.preset") {
        out.push(Box::new(Labeled::new(format!("preset {}", p.name()), Serialized::defaults(p.document()))));
    }
    let with_global = merged(&out);
    let Ok(global) = with_global.extract_inner::<serde_json::Value>("safety.limits") else { return out };
    let targets = probe.find_value("safety.targets").ok().and_then(|v| v.into_dict()).unwrap_or_default();
    for name in targets.keys() {
        let Some(p) = preset_at(&probe, &format!("safety.targets.{name}.preset")) else { continue };
        let mut limits = global.clone();
        overlay(&mut limits, &p.limits());
        let doc = serde_json::json!({ "safety": { "targets": { name: { "limits": limits } } } });
        out.push(Box::new(Labeled::new(format!("preset {} for {name}", p.name()), Serialized::defaults(doc))));
    }
    out
}

/// Where each leaf of the effective configuration came from: the label of
/// the source whose value won.
fn provenance(host: &Figment, service: &Figment, config: &ServeConfig) -> std::collections::BTreeMap<String, String> {
    let label = |m: &Metadata| match &m.source {
        Some(figment::Source::File(path)) => format!("file {}", path.display()),
        _ => m.name.to_string(),
    };
    let mut out = std::collections::BTreeMap::new();
    for (figment, value) in [(host, serde_json::to_value(&config.host)), (service, serde_json::to_value(config))] {
        let Ok(value) = value else { continue };
        leaves(&value, String::new(), &mut |key, _| {
            if let Some(m) = figment.find_metadata(&key) {
                out.insert(key, label(m));
            }
        });
    }
    out
}

/// Every leaf of `value` (arrays count as one) with its dotted key.
fn leaves(value: &serde_json::Value, prefix: String, visit: &mut dyn FnMut(String, &serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(v, key, visit);
            }
        }
        _ => visit(prefix, value),
    }
}

/// A value as it may be shown: secrets replaced.
fn redact(key: &str, value: &serde_json::Value) -> serde_json::Value {
    let secret = key.starts_with("tokens.") || key.ends_with("secret") || key.contains("password");
    match value {
        serde_json::Value::Null => value.clone(),
        _ if secret => "<redacted>".into(),
        serde_json::Value::String(url) if key == "database_url" => match url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((user, host)) if user.contains(':') => {
                    let name = user.split(':').next().unwrap_or_default();
                    format!("{scheme}://{name}:<redacted>@{host}").into()
                }
                _ => value.clone(),
            },
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Figment's errors as one message. An unknown top-level key is reported
/// by the service's part, which knows only its own keys: the keys it
/// could have meant are all of them.
fn invalid(e: figment::Error) -> ConfigError {
    let messages = e.into_iter().map(|mut e| {
        if let figment::error::Kind::UnknownField(_, expected) = &mut e.kind
            && e.path.len() <= 1
        {
            *expected = all_keys();
        }
        describe(&e)
    });
    ConfigError::Invalid(messages.collect::<Vec<_>>().join("; "))
}

/// One configuration error in the file's own terms: what was wrong, the
/// dotted key as written (figment's own wording prefixes its profile,
/// `default.`, which appears in no file) and where it came from.
fn describe(e: &figment::Error) -> String {
    let mut out = e.kind.to_string();
    if !e.path.is_empty() {
        out.push_str(&format!(" for key `{}`", e.path.join(".")));
    }
    if let Some(md) = &e.metadata {
        match &md.source {
            Some(source) => out.push_str(&format!(" in {} {source}", md.name)),
            None => out.push_str(&format!(" in {}", md.name)),
        }
    }
    out
}

/// Every source of configuration, from lowest to highest precedence:
/// defaults, `file`, `DATABASE_URL`, `KAIZEN_*` variables naming a key,
/// the two token variables.
fn sources(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Box<dyn Provider>>, ConfigError> {
    let defaults = ServeConfig::default();
    let mut sources: Vec<Box<dyn Provider>> = vec![
        Box::new(Labeled::new("default", Serialized::defaults(defaults.host.clone()))),
        Box::new(Labeled::new("default", Serialized::defaults(defaults))),
    ];
    if let Some(f) = file {
        if !f.exists() {
            return Err(ConfigError::Missing(f.to_path_buf()));
        }
        sources.push(Box::new(Toml::file_exact(f)));
    }
    let env: Vec<(String, String)> = env.into_iter().collect();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(url) = get("DATABASE_URL") {
        sources.push(Box::new(Labeled::new("env DATABASE_URL", Serialized::default("database_url", url))));
    }
    // The environment is passed in (not read by figment's provider) so
    // that tests can give their own.
    // Only variables naming a top-level key are configuration: others
    // in the KAIZEN_ namespace belong to the client, the tests or other
    // tools. Below a known key, unknown names are errors like in the file.
    let pairs = env
        .iter()
        .filter(|(k, _)| k.starts_with("KAIZEN_"))
        .filter(|(k, _)| !matches!(k.as_str(), "KAIZEN_ADMIN_TOKEN" | "KAIZEN_INVOKE_TOKEN" | "KAIZEN_METRICS_TOKEN"))
        .filter(|(k, _)| {
            let key = k["KAIZEN_".len()..].to_ascii_lowercase();
            let first = key.split("__").next().unwrap_or_default();
            !NOT_CONFIG.contains(&key.as_str()) && all_keys().contains(&first)
        });
    for (k, v) in pairs {
        let key = k["KAIZEN_".len()..].to_ascii_lowercase().replace("__", ".");
        sources.push(Box::new(Labeled::new(format!("env {k}"), Serialized::default(&key, env_value(v)))));
    }
    if let Some(t) = get("KAIZEN_ADMIN_TOKEN") {
        sources.push(Box::new(Labeled::new("env KAIZEN_ADMIN_TOKEN", Serialized::default("tokens.admin", t))));
    }
    if let Some(t) = get("KAIZEN_INVOKE_TOKEN") {
        sources.push(Box::new(Labeled::new("env KAIZEN_INVOKE_TOKEN", Serialized::default("tokens.invoke", t))));
    }
    if let Some(t) = get("KAIZEN_METRICS_TOKEN") {
        sources.push(Box::new(Labeled::new("env KAIZEN_METRICS_TOKEN", Serialized::default("tokens.metrics", t))));
    }
    Ok(sources)
}

impl ServeConfig {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<ServeConfig, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// [`load`](Self::load) with an explicit environment (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServeConfig, ConfigError> {
        let mut sources = sources(file, env)?;
        // Presets sit right above the defaults: every other source wins.
        let presets = preset_sources(&sources);
        sources.splice(2..2, presets);
        let (mut host, mut service) = (Figment::new(), Figment::new());
        for source in &sources {
            let source = source.as_ref();
            host = host.merge(Part { source, host: true });
            service = service.merge(Part { source, host: false });
        }
        let mut config: ServeConfig = service.extract().map_err(invalid)?;
        config.host = host.extract().map_err(invalid)?;
        config.provenance = provenance(&host, &service, &config);
        config.validate()?;
        Ok(config)
    }

    /// Every setting's effective value with where it came from, by dotted
    /// key; secrets (tokens, a database URL's password, webhook secrets)
    /// are replaced by `"<redacted>"`.
    pub fn effective(&self) -> Vec<(String, serde_json::Value, String)> {
        let mut out = Vec::new();
        for value in [serde_json::to_value(&self.host), serde_json::to_value(self)].into_iter().flatten() {
            leaves(&value, String::new(), &mut |key, v| {
                let source = self.provenance.get(&key).cloned().unwrap_or_else(|| "default".into());
                out.push((key.clone(), redact(&key, v), source));
            });
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Checks serde cannot express: the valid range of every setting (the
    /// host's and the service's, all violations at once), then the rest.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut k = Checker::default();
        if let Err(InvalidSettings(found)) = self.host.check() {
            for f in found {
                k.bad(f.key, f.value, f.rule);
            }
        }
        let h = &self.http;
        k.at_least("http.max_body_bytes", h.max_body_bytes as u64, 1);
        k.at_least("http.max_invoke_bytes", h.max_invoke_bytes as u64, 1);
        k.at_least("http.max_ingest_bytes", h.max_ingest_bytes as u64, 1);
        k.at_least("watch.rescan_ms", self.watch.rescan_ms, 1);
        k.at_least("health.interval_secs", self.health.interval_secs, 1);
        k.at_least("health.warm_trap_limit", self.health.warm_trap_limit as u64, 1);
        for (i, w) in self.webhooks.iter().enumerate() {
            k.at_least(&format!("webhooks[{i}].timeout_ms"), w.timeout_ms, 1);
        }
        k.finish()?;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.seed_unit && !self.bundled {
            return bad("seed_unit = true needs bundled = true: the seed unit (calculator 1.0.0) is a bundled \
                        plugin, and bundled = false loads none"
                .into());
        }
        for (index, w) in self.webhooks.iter().enumerate() {
            w.validate().map_err(|problem| ConfigError::Webhook { index, problem })?;
        }
        if !matches!(self.log.format.as_str(), "auto" | "human" | "json") {
            return bad(format!("log.format `{}` must be auto, human or json", self.log.format));
        }
        let t = &self.tokens;
        let tokens = [("admin", &t.admin), ("invoke", &t.invoke), ("metrics", &t.metrics)];
        for (name, t) in tokens {
            if let Some(t) = t
                && t.len() < 16
            {
                return bad(format!("tokens.{name} is {} characters; use at least 16", t.len()));
            }
        }
        for (i, (a, ta)) in tokens.iter().enumerate() {
            for (b, tb) in &tokens[i + 1..] {
                if ta.is_some() && ta == tb {
                    return bad(format!("tokens.{a} and tokens.{b} must differ"));
                }
            }
        }
        Ok(())
    }

    /// The watch folder in use.
    pub fn watch_dir(&self) -> PathBuf {
        self.watch_dir.clone().unwrap_or_else(|| self.host.data_dir.join("watch"))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn secrets_are_redacted_from_the_effective_configuration() {
        use serde_json::json;
        assert_eq!(redact("tokens.admin", &json!("0123456789abcdef")), json!("<redacted>"));
        assert_eq!(redact("tokens.admin", &json!(null)), json!(null), "an unset token shows as unset");
        assert_eq!(
            redact("database_url", &json!("postgres://kaizen:hunter2@db:5432/kaizen")),
            json!("postgres://kaizen:<redacted>@db:5432/kaizen")
        );
        assert_eq!(redact("database_url", &json!("sqlite://data.db")), json!("sqlite://data.db"));
        assert_eq!(redact("loop.interval_secs", &json!(30.0)), json!(30.0));
    }
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = ServeConfig::load_from(None, env(&[])).unwrap();
        assert_eq!(c.listen.port(), 7700);
        assert_eq!(c.watch_dir(), PathBuf::from("kaizen-data/watch"));
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kaizen.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\n[loop]\ninterval_secs = 12.0\n[runtime.limits]\ndeadline = 250\n",
        )
        .unwrap();
        let c = ServeConfig::load_from(
            Some(&f),
            env(&[
                ("KAIZEN_LOOP__INTERVAL_SECS", "7"),
                ("KAIZEN_ADMIN_TOKEN", "a-very-long-admin-token"),
                ("KAIZEN_URL", "http://x"),
                ("KAIZEN_TEST_POSTGRES", "postgres://elsewhere"),
                ("KAIZEN_DATA_DIR", "/tmp/k"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.host.improve.interval_secs, 7.0);
        assert_eq!(c.host.runtime.limits.deadline.as_millis(), 250);
        assert_eq!(c.tokens.admin.as_deref(), Some("a-very-long-admin-token"));
        assert_eq!(c.host.data_dir, PathBuf::from("/tmp/k"));
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kaizen.toml");
        std::fs::write(&f, "[loop]\nintervall_secs = 3\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("for key `loop.intervall_secs` in TOML file "), "the key as written: {e}");
        assert!(!e.contains("default."), "no profile that appears in no file: {e}");
        std::fs::write(&f, "[[webhooks]]\nurl = \"ftp://x\"\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("webhooks[0].url"), "{e}");
        let e = ServeConfig::load_from(None, env(&[("KAIZEN_LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = ServeConfig::load_from(None, env(&[("KAIZEN_LOOP__INTERVL_SECS", "3")])).unwrap_err().to_string();
        assert!(e.contains("intervl_secs"), "{e}");
        assert!(matches!(
            ServeConfig::load_from(Some(&dir.path().join("absent.toml")), env(&[])),
            Err(ConfigError::Missing(_))
        ));
    }

    #[test]
    fn the_host_and_the_service_share_one_namespace_of_keys() {
        let c = ServeConfig::load_from(
            None,
            env(&[
                ("KAIZEN_RUNTIME__LIMITS__DEADLINE", "2000"),
                ("KAIZEN_WATCH__DEPLOY_UNITS", "true"),
                ("DATABASE_URL", "postgres://below"),
                ("KAIZEN_DATABASE_URL", "postgres://above"),
            ]),
        )
        .unwrap();
        assert_eq!(c.host.runtime.limits.deadline.as_millis(), 2000);
        assert!(c.watch.deploy_units);
        assert_eq!(c.host.database_url.as_deref(), Some("postgres://above"));
        assert_eq!(c.host.data_dir, PathBuf::from("kaizen-data"));
        assert!(keys_of::<HostConfig>().starts_with(&["data_dir", "database_url", "runtime"]));
        assert!(all_keys().contains(&"loop") && all_keys().contains(&"listen"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kaizen.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("lisen") && e.contains("`listen`") && e.contains("`loop`"), "{e}");
        std::fs::write(&f, "[runtime.limits]\ndeadlne = 3\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("runtime.limits.deadlne") && e.contains("kaizen.toml"), "{e}");
    }

    /// Plugin configuration is text to the plugin, but operators write
    /// numbers and booleans as TOML values: those are taken as their text;
    /// a list is refused, naming the key.
    #[test]
    fn plugin_config_takes_numbers_and_booleans_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kaizen.toml");
        std::fs::write(
            &f,
            "[runtime.plugin_config.circuit-breaker]\nfailure_rate = 0.8\nmin_calls = 10\n\
             [runtime.plugin_config.slow-p99]\nenabled = true\nname = \"x\"\n",
        )
        .unwrap();
        let c = ServeConfig::load_from(Some(&f), env(&[("KAIZEN_RUNTIME__PLUGIN_CONFIG__SLOW_P99__BUDGET_MS", "50")]))
            .unwrap();
        let pc = &c.host.runtime.plugin_config;
        assert_eq!(pc["circuit-breaker"]["failure_rate"], "0.8");
        assert_eq!(pc["circuit-breaker"]["min_calls"], "10");
        assert_eq!(pc["slow-p99"]["enabled"], "true");
        assert_eq!(pc["slow-p99"]["name"], "x");
        assert_eq!(pc["slow_p99"]["budget_ms"], "50");

        std::fs::write(&f, "[runtime.plugin_config.slow-p99]\nbudget_ms = [1, 2]\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(
            e.contains("runtime.plugin_config.slow-p99.budget_ms") && e.contains("a string, a number or a boolean"),
            "{e}"
        );
    }

    #[test]
    fn the_example_file_in_the_repository_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kaizen.example.toml");
        ServeConfig::load_from(Some(&example), env(&[])).unwrap();
    }
}
