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

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use kaizen_host::config::RuntimeConfig;
use kaizen_host::health::HealthConfig;
use kaizen_host::host::HostConfig;
use kaizen_host::r#loop::LoopConfig;
use kaizen_host::recovery::RecoveryConfig;
use kaizen_host::safety::SafetyConfig;
use kaizen_host::telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

/// Variables read by the client and the logger, not configuration keys.
const NOT_CONFIG: [&str; 4] = ["url", "log", "config", "log_format"];

/// Everything `kaizen serve` is configured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Modules, compiled artifacts, the SQLite file and the token file.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `<data_dir>/kaizen.db` when unset.
    pub database_url: Option<String>,
    /// Address of the HTTP API and dashboard.
    pub listen: SocketAddr,
    /// Folder watched for `.wasm` files; `<data_dir>/watch` when unset.
    pub watch_dir: Option<PathBuf>,
    pub tokens: TokenConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub watch: WatchConfig,
    /// Load the plugins bundled with the binary (detectors, recovery
    /// strategies, and the calculator unit v1 when no calculator serves).
    pub bundled: bool,
    pub webhooks: Vec<WebhookConfig>,
    pub runtime: RuntimeConfig,
    pub telemetry: TelemetryConfig,
    pub safety: SafetyConfig,
    #[serde(rename = "loop")]
    pub improve: LoopConfig,
    pub recovery: RecoveryConfig,
    pub health: HealthConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            data_dir: PathBuf::from("kaizen-data"),
            database_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            watch_dir: None,
            tokens: TokenConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            watch: WatchConfig::default(),
            bundled: true,
            webhooks: Vec::new(),
            runtime: RuntimeConfig::default(),
            telemetry: TelemetryConfig::default(),
            safety: SafetyConfig::default(),
            improve: LoopConfig::default(),
            recovery: RecoveryConfig::default(),
            health: HealthConfig::default(),
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

/// One webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL receiving a JSON POST per event.
    pub url: String,
    /// Events wanted (see [`crate::webhooks::EVENTS`]); all when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Events below this severity are not sent: `low`, `medium`, `high`
    /// (the default) or `critical`. Emergency stops are critical; rollbacks,
    /// promotions, self-pauses and failed cycles high; findings carry their
    /// detector's severity.
    #[serde(default = "high")]
    pub min_severity: String,
    /// Attempts per event before it is recorded as failed.
    #[serde(default = "five")]
    pub max_attempts: u32,
    /// First retry delay; doubled on each retry.
    #[serde(default = "backoff")]
    pub backoff_ms: u64,
    /// Per-attempt timeout.
    #[serde(default = "timeout")]
    pub timeout_ms: u64,
}

fn high() -> String {
    "high".into()
}
fn five() -> u32 {
    5
}
fn backoff() -> u64 {
    500
}
fn timeout() -> u64 {
    5000
}

/// A configuration that cannot be used, naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
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
        let mut fig = Figment::from(Serialized::defaults(ServeConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Missing(f.to_path_buf()));
            }
            fig = fig.merge(Toml::file_exact(f));
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let Some(url) = get("DATABASE_URL") {
            fig = fig.merge(Serialized::default("database_url", url));
        }
        // The environment is passed in (not read by figment's provider) so
        // that tests can give their own.
        // Only variables naming a top-level key are configuration: others
        // in the KAIZEN_ namespace belong to the client, the tests or other
        // tools. Below a known key, unknown names are errors like in the file.
        let top: Vec<String> = match serde_json::to_value(ServeConfig::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let pairs: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with("KAIZEN_"))
            .filter(|(k, _)| !matches!(k.as_str(), "KAIZEN_ADMIN_TOKEN" | "KAIZEN_INVOKE_TOKEN"))
            .filter(|(k, _)| {
                let key = k["KAIZEN_".len()..].to_ascii_lowercase();
                let first = key.split("__").next().unwrap_or_default().to_string();
                !NOT_CONFIG.contains(&key.as_str()) && top.contains(&first)
            })
            .cloned()
            .collect();
        for (k, v) in &pairs {
            let key = k["KAIZEN_".len()..].to_ascii_lowercase().replace("__", ".");
            let value = env_value(v);
            fig = fig.merge(Serialized::default(&key, value));
        }
        if let Some(t) = get("KAIZEN_ADMIN_TOKEN") {
            fig = fig.merge(Serialized::default("tokens.admin", t));
        }
        if let Some(t) = get("KAIZEN_INVOKE_TOKEN") {
            fig = fig.merge(Serialized::default("tokens.invoke", t));
        }
        let config: ServeConfig = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (i, w) in self.webhooks.iter().enumerate() {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return bad(format!("webhooks[{i}].url `{}` must start with http:// or https://", w.url));
            }
            if crate::webhooks::severity_rank(&w.min_severity).is_none() {
                return bad(format!(
                    "webhooks[{i}].min_severity `{}` must be low, medium, high or critical",
                    w.min_severity
                ));
            }
            if let Some(e) = w.events.iter().find(|e| !crate::webhooks::EVENTS.contains(&e.as_str())) {
                return bad(format!(
                    "webhooks[{i}].events: unknown event `{e}` (known: {})",
                    crate::webhooks::EVENTS.join(", ")
                ));
            }
            if w.max_attempts == 0 {
                return bad(format!("webhooks[{i}].max_attempts must be at least 1"));
            }
        }
        if !matches!(self.log.format.as_str(), "auto" | "human" | "json") {
            return bad(format!("log.format `{}` must be auto, human or json", self.log.format));
        }
        for (name, t) in [("admin", &self.tokens.admin), ("invoke", &self.tokens.invoke)] {
            if let Some(t) = t
                && t.len() < 16
            {
                return bad(format!("tokens.{name} is {} characters; use at least 16", t.len()));
            }
        }
        if self.tokens.admin.is_some() && self.tokens.admin == self.tokens.invoke {
            return bad("tokens.admin and tokens.invoke must differ".into());
        }
        Ok(())
    }

    /// The watch folder in use.
    pub fn watch_dir(&self) -> PathBuf {
        self.watch_dir.clone().unwrap_or_else(|| self.data_dir.join("watch"))
    }

    /// The host's part of the configuration.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            runtime: self.runtime.clone(),
            telemetry: self.telemetry.clone(),
            safety: self.safety.clone(),
            improve: self.improve.clone(),
            recovery: self.recovery.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(c.improve.interval_secs, 7.0);
        assert_eq!(c.runtime.limits.deadline.as_millis(), 250);
        assert_eq!(c.tokens.admin.as_deref(), Some("a-very-long-admin-token"));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/k"));
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kaizen.toml");
        std::fs::write(&f, "[loop]\nintervall_secs = 3\n").unwrap();
        let e = ServeConfig::load_from(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("intervall_secs"), "{e}");
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
    fn the_example_file_in_the_repository_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kaizen.example.toml");
        ServeConfig::load_from(Some(&example), env(&[])).unwrap();
    }
}
