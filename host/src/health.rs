//! Host health: the database, the data directory's free space, the watch
//! folder, and every slot's current version (it must answer a
//! self-description call). Results are stored and published; an unhealthy
//! dependency is reported with what was tried, and a recoverable problem — a
//! slot whose warm instances keep trapping — is remediated at once (warm
//! instances dropped, fresh instances from then on) with the action logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::host::Host;
pub use crate::store::health::{Check, HealthReport};
use crate::store::{self, now_ms};

/// Settings of the health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    pub interval_secs: u64,
    /// Below this much free space in the data directory: unhealthy.
    pub min_free_bytes: u64,
    /// Consecutive traps on warm instances that trigger remediation.
    pub warm_trap_limit: u32,
    /// The watch folder to check, when one is used.
    pub watch_dir: Option<PathBuf>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval_secs: 30, min_free_bytes: 256 << 20, warm_trap_limit: 3, watch_dir: None }
    }
}

fn check(name: &str, healthy: bool, detail: impl Into<String>, tried: &str) -> Check {
    Check { name: name.into(), healthy, detail: detail.into(), tried: tried.into(), remediation: None }
}

/// Free bytes on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Run every check once, remediate what can be, store and publish the
/// report.
pub async fn run(host: &Host, cfg: &HealthConfig) -> store::Result<HealthReport> {
    let mut checks = Vec::new();

    checks.push(match host.db.ping().await {
        Ok(()) => check("database", true, format!("{} answers", host.db.backend()), "SELECT 1"),
        Err(e) => check("database", false, e.to_string(), "SELECT 1"),
    });

    let data_dir = host.runtime.data_dir();
    let tried = format!("statvfs({})", data_dir.display());
    checks.push(match free_bytes(data_dir) {
        Ok(free) if free >= cfg.min_free_bytes => check("disk", true, format!("{} MiB free", free >> 20), &tried),
        Ok(free) => {
            check("disk", false, format!("{} MiB free, below {} MiB", free >> 20, cfg.min_free_bytes >> 20), &tried)
        }
        Err(e) => check("disk", false, e.to_string(), &tried),
    });

    if let Some(dir) = &cfg.watch_dir {
        let probe = dir.join(".kaizen-health-probe");
        let tried = format!("create and remove {}", probe.display());
        checks.push(match std::fs::write(&probe, b"ok").and_then(|_| std::fs::remove_file(&probe)) {
            Ok(()) => check("watch-folder", true, format!("{} is writable", dir.display()), &tried),
            Err(e) => check("watch-folder", false, format!("{}: {e}", dir.display()), &tried),
        });
    }

    for slot in host.runtime.slots() {
        let p = slot.current();
        let name = format!("slot:{}", slot.name());
        // Read before probing: a successful probe resets the count.
        let traps = p.warm_traps();
        let mut c = match p.describe().await {
            Ok(info) if info.name == slot.name() => {
                check(&name, true, format!("{} {} answers describe", info.name, info.version), "describe()")
            }
            Ok(info) => check(&name, false, format!("describes itself as {}", info.name), "describe()"),
            Err(e) => check(&name, false, e.to_string(), "describe()"),
        };
        if p.warm_enabled() && traps >= cfg.warm_trap_limit {
            p.set_warm(false);
            let action = format!(
                "{traps} consecutive traps on warm instances: dropped them; {} {} now runs fresh instances",
                p.name(),
                p.version()
            );
            host.audit("health", "remediate", slot.name(), Event::Remediate { action: action.clone() }).await;
            c.detail = format!("{}; remediated", c.detail);
            c.remediation = Some(action);
        }
        checks.push(c);
    }

    let report = HealthReport { at: now_ms(), healthy: checks.iter().all(|c| c.healthy), checks };
    let json = serde_json::to_value(&report).unwrap_or_default();
    store::health::insert(&host.db, report.at, report.healthy, &json).await?;
    host.events.publish("", Event::Health(report.clone()));
    for c in report.checks.iter().filter(|c| !c.healthy) {
        tracing::warn!(check = %c.name, tried = %c.tried, "unhealthy: {}", c.detail);
    }
    Ok(report)
}

/// Check every `interval_secs` in the background, supervised in the host's
/// tasks as `health` (a check keeps no state between passes, so it is
/// started again after a panic).
pub fn spawn(host: std::sync::Arc<Host>, cfg: HealthConfig) -> tokio::task::JoinHandle<()> {
    let tasks = host.tasks.clone();
    tasks.spawn("health", move || {
        let (host, cfg) = (host.clone(), cfg.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_secs.max(1)));
            loop {
                tick.tick().await;
                if let Err(e) = run(&host, &cfg).await {
                    tracing::error!("health check failed to run: {e}");
                }
            }
        }
    })
}
