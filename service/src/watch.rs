//! The watch folder: operators drop `.wasm` files in; each is validated and
//! registered, then removed (its bytes now live in the content-addressed
//! store), or moved to `rejected/` with `<name>.error.txt` saying why.
//!
//! A file is read only once it has kept the same size and modification
//! time for `stable_ms`, and it is re-checked after reading: a file still
//! being written (in place, by an editor or a copy tool) is retried, never
//! half-read. Temporary names (`.name`, `*.tmp`, `*.part`, `*.swp`, `*~`) are
//! skipped; atomic renames arrive as a new stable file. File-system events
//! only wake the scanner early; a periodic rescan is the ground truth, so a
//! lost event or a full event queue loses nothing.
//!
//! Detectors and recovery strategies are hot-loaded into their slots; a unit
//! is deployed when its slot is empty (or `watch.deploy_units` is set) and
//! otherwise handed to the loop as a candidate. Nothing a rejected file
//! contains can change what serves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use kaizen_host::events::{Event, WatchResult};
use kaizen_host::host::Host;
use kaizen_host::r#loop::Submitted;
use kaizen_host::runtime::Installed;
use kaizen_host::runtime::types::PluginKind;
use notify::Watcher as _;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::WatchConfig;

/// Counters of the watch folder.
#[derive(Debug, Default, Serialize)]
pub struct WatchStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// Files read while still changing, put back to wait.
    pub retried: AtomicU64,
}

/// The running watcher; stops when dropped.
pub struct WatchFolder {
    pub dir: PathBuf,
    pub stats: Arc<WatchStats>,
    task: JoinHandle<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Drop for WatchFolder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Deployed {
        name: String,
        version: String,
    },
    Unchanged {
        name: String,
        version: String,
    },
    Submitted {
        name: String,
        version: String,
    },
    Rejected {
        reason: String,
    },
    /// Still changing: try again later.
    Retry,
}

/// As the log says it: `deployed echo 1.0.0`.
impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::Deployed { name, version } => write!(f, "deployed {name} {version}"),
            Handled::Unchanged { name, version } => {
                write!(f, "{name} {version} unchanged (already serving or pending)")
            }
            Handled::Submitted { name, version } => write!(f, "{name} {version} handed to the loop as a candidate"),
            Handled::Rejected { reason } => write!(f, "rejected: {reason}"),
            Handled::Retry => write!(f, "still changing, looked at again later"),
        }
    }
}

impl Handled {
    /// The event published about the file.
    fn event(&self) -> Event {
        let named = |result, name: &str, version: &str| Event::Watch {
            result,
            name: Some(name.into()),
            version: Some(version.into()),
            reason: None,
        };
        match self {
            Handled::Deployed { name, version } => named(WatchResult::Deployed, name, version),
            Handled::Unchanged { name, version } => named(WatchResult::Unchanged, name, version),
            Handled::Submitted { name, version } => named(WatchResult::Candidate, name, version),
            Handled::Rejected { reason } => {
                Event::Watch { result: WatchResult::Rejected, name: None, version: None, reason: Some(reason.clone()) }
            }
            Handled::Retry => Event::Watch { result: WatchResult::Retry, name: None, version: None, reason: None },
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
}

fn seen(path: &Path) -> Option<Seen> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file().then(|| Seen { len: m.len(), modified: m.modified().ok() })
}

/// Prefix of a file being taken in: hidden, so never scanned.
const TAKING: &str = ".taking-";

/// Put back files whose intake a crash cut short, so they are taken again.
fn restore_interrupted(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(original) = name.strip_prefix(TAKING)
            && let Err(err) = std::fs::rename(e.path(), dir.join(original))
        {
            tracing::warn!("cannot restore the interrupted intake of {original}: {err}");
        }
    }
}

/// Whether a file name is one to process: `.wasm`, not hidden, not a
/// temporary name.
pub fn eligible(name: &str) -> bool {
    name.ends_with(".wasm") && !name.starts_with('.') && !name.chars().any(char::is_control)
}

impl WatchFolder {
    /// Start watching `dir` (created if absent).
    /// The scanner is supervised in the host's tasks as `watch-folder` and
    /// started again after a panic: the nudges outlive each run, and each
    /// run first restores a file whose intake a panic cut short.
    pub fn start(host: Arc<Host>, dir: PathBuf, config: WatchConfig) -> std::io::Result<WatchFolder> {
        std::fs::create_dir_all(dir.join("rejected"))?;
        let (tx, rx) = mpsc::channel::<()>(1);
        // Events only nudge the scanner; a full channel means a nudge is
        // already pending.
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opening and reading (the scanner's own directory listing
            // among them) are access events: nudging on those would make
            // the scanner wake itself forever.
            if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut w| w.watch(&dir, notify::RecursiveMode::NonRecursive).map(|_| w));
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("file-system events unavailable for {} ({e}); rescanning only", dir.display());
                None
            }
        };
        let stats = Arc::new(WatchStats::default());
        let task = {
            let (tasks, dir, stats) = (host.tasks.clone(), dir.clone(), stats.clone());
            let nudges = Arc::new(tokio::sync::Mutex::new(rx));
            tasks.spawn("watch-folder", move || {
                scan_loop(host.clone(), dir.clone(), config.clone(), stats.clone(), nudges.clone())
            })
        };
        Ok(WatchFolder { dir, stats, task, _watcher: watcher })
    }
}

async fn scan_loop(
    host: Arc<Host>,
    dir: PathBuf,
    config: WatchConfig,
    stats: Arc<WatchStats>,
    nudges: Arc<tokio::sync::Mutex<mpsc::Receiver<()>>>,
) {
    let mut nudges = nudges.lock().await;
    restore_interrupted(&dir);
    let stable = Duration::from_millis(config.stable_ms);
    let mut pending: HashMap<PathBuf, (Seen, Instant)> = HashMap::new();
    loop {
        let now = Instant::now();
        let mut present = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if eligible(&name) {
                    present.push(entry.path());
                }
            }
        }
        present.sort();
        pending.retain(|p, _| present.contains(p));
        for path in present {
            let Some(now_seen) = seen(&path) else { continue };
            let ready = match pending.get(&path) {
                Some((s, since)) if *s == now_seen => now.duration_since(*since) >= stable,
                _ => {
                    pending.insert(path.clone(), (now_seen, now));
                    false
                }
            };
            if !ready {
                continue;
            }
            let handled = handle(&host, &dir, &path, now_seen, &config).await;
            match &handled {
                Handled::Retry => {
                    stats.retried.fetch_add(1, Ordering::Relaxed);
                    pending.remove(&path);
                    continue;
                }
                Handled::Rejected { .. } => stats.rejected.fetch_add(1, Ordering::Relaxed),
                _ => stats.accepted.fetch_add(1, Ordering::Relaxed),
            };
            pending.remove(&path);
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            host.events.publish(&file, handled.event());
        }
        // Wake on the next nudge, or soon when something is settling.
        let wait = if pending.is_empty() {
            Duration::from_millis(config.rescan_ms.max(10))
        } else {
            (stable / 2).max(Duration::from_millis(10))
        };
        tokio::select! {
            n = nudges.recv() => {
                if n.is_none() {
                    tokio::time::sleep(wait).await;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Read, validate and register one stable file; move or remove it.
async fn handle(host: &Arc<Host>, dir: &Path, path: &Path, before: Seen, config: &WatchConfig) -> Handled {
    let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return reject(dir, path, &name, &format!("cannot read the file: {e}")),
    };
    if seen(path) != Some(before) {
        return Handled::Retry;
    }
    let (h, label) = (host.clone(), name.clone());
    let loaded = tokio::task::spawn_blocking(move || h.runtime.load(&label, &bytes)).await;
    let plugin = match loaded {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            // A writer that paused longer than the stable window shows up as
            // an invalid file that is still changing: wait for it.
            if seen(path) != Some(before) {
                return Handled::Retry;
            }
            return reject(dir, path, &name, &e.reason.to_string());
        }
        Err(e) => return reject(dir, path, &name, &format!("validation crashed: {e}")),
    };
    let (pname, version) = (plugin.name().to_string(), plugin.version().to_string());
    let slot = host.runtime.slot(&pname);
    if let Some(s) = &slot
        && s.kind() != plugin.kind()
    {
        let why = format!("`{pname}` is a {:?} but the slot of that name holds {:?} plugins", plugin.kind(), s.kind());
        return reject(dir, path, &name, &why);
    }
    // Out of the folder before it can serve: whoever sees the new version
    // also sees the folder without the file. A hidden name is never picked
    // up again; an intake cut short by a crash is restored at start.
    let taking = dir.join(format!("{TAKING}{name}"));
    if let Err(e) = std::fs::rename(path, &taking) {
        return reject(dir, path, &name, &format!("cannot take the file out of the folder: {e}"));
    }
    let path = taking.as_path();
    let direct = plugin.kind() != PluginKind::Unit || slot.is_none() || config.deploy_units;
    let result = if direct {
        match host.deploy(plugin.clone(), "watch", &format!("dropped in the watch folder as {name}")).await {
            Ok(Installed::Unchanged) => Handled::Unchanged { name: pname, version },
            Ok(_) => Handled::Deployed { name: pname, version },
            Err(e) => return reject(dir, path, &name, &e.to_string()),
        }
    } else if slot.is_some_and(|s| s.current().id() == plugin.id()) {
        Handled::Unchanged { name: pname, version }
    } else {
        match host.submit(plugin.clone(), &format!("watch:{name}")).await {
            Ok(Submitted::Forwarded(to)) => {
                tracing::info!(file = %name, "watch folder: {to}");
                Handled::Submitted { name: pname, version }
            }
            Ok(Submitted::Queued) => {
                host.improve.trigger();
                Handled::Submitted { name: pname, version }
            }
            Ok(Submitted::AlreadyPending(why)) => {
                tracing::info!(file = %name, "watch folder: {why}");
                Handled::Unchanged { name: pname, version }
            }
            Err(e) => return reject(dir, path, &name, &format!("cannot queue the candidate: {e}")),
        }
    };
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("{name} was registered but could not be removed from the watch folder: {e}");
    }
    tracing::info!(file = %name, "watch folder: {result}");
    result
}

fn reject(dir: &Path, path: &Path, name: &str, reason: &str) -> Handled {
    tracing::warn!(file = %name, "watch folder rejected a file: {reason}");
    let rejected = dir.join("rejected");
    let _ = std::fs::create_dir_all(&rejected);
    let mut target = rejected.join(name);
    let stem = name.trim_end_matches(".wasm");
    let mut n = 1;
    while target.exists() {
        target = rejected.join(format!("{stem}-{n}.wasm"));
        n += 1;
    }
    let moved = std::fs::rename(path, &target);
    let note = target.with_file_name(format!(
        "{}.error.txt",
        target.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let text = format!("{name} was rejected: {reason}\n");
    if let Err(e) = moved.and_then(|_| std::fs::write(&note, text)) {
        tracing::error!("cannot move {name} to {}: {e}; removing it", rejected.display());
        let _ = std::fs::remove_file(path);
    }
    Handled::Rejected { reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::eligible;

    #[test]
    fn temporary_and_hidden_names_are_skipped() {
        assert!(eligible("calc.wasm"));
        for n in [".calc.wasm.swp", "calc.wasm.tmp", "calc.wasm.part", ".calc.wasm", "calc.wasm~", "notes.txt"] {
            assert!(!eligible(n), "{n}");
        }
    }
}
