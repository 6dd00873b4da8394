//! Supervised background tasks: everything that runs for the life of the
//! host (the loop, health checks, the telemetry writer and maintenance, the
//! recovery log writer, the watch folder, webhook workers, metric counters)
//! runs under [`Tasks::spawn`]. A panic is caught on the task's future,
//! logged with its message, counted, shown in the registry that `/healthz`,
//! `kaizen status` and `/metrics` read, and the task is started again after
//! a backoff — so no task can die silently while the host reports healthy.
//!
//! A task is restarted by calling its start function again: whatever must
//! survive a panic (a channel's receiving end, queued work) is owned outside
//! the future, by the start function, and only borrowed by each run.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::store::now_ms;

/// What a supervised task is doing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Running (again, if it panicked before).
    Running,
    /// Panicked; waiting out its backoff before it starts again.
    Restarting,
    /// Returned. A task meant to run for the life of the host returns only
    /// when what feeds it is gone (the host is shutting down).
    Ended,
}

/// One supervised task as `/healthz` and `kaizen status` show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub name: String,
    pub state: TaskState,
    /// When the task entered its state (ms since the epoch).
    pub since: i64,
    /// Times it was started again after a panic.
    pub restarts: u64,
    pub panics: u64,
    /// The message of its last panic.
    pub last_error: Option<String>,
    pub last_panic_at: Option<i64>,
    /// When a restarting task starts again (ms since the epoch).
    pub restart_at: Option<i64>,
}

impl TaskStatus {
    /// Whether the task is not doing its work now.
    pub fn is_down(&self) -> bool {
        self.state != TaskState::Running
    }
}

/// The wait before a panicked task starts again: `first`, doubling up to
/// `max`; back to `first` once a run lasted `reset_after` (it ran fine for
/// a while, so the next panic is a new problem, not the same one again).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    reset_after: Duration,
    next: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s, reset after a minute of running.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60), Duration::from_secs(60))
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, reset_after: Duration) -> Backoff {
        Backoff { first, max: max.max(first), reset_after, next: first }
    }

    /// The wait before the next start, given how long the run that just
    /// panicked lasted.
    pub fn after(&mut self, ran: Duration) -> Duration {
        if ran >= self.reset_after {
            self.next = self.first;
        }
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }
}

/// The registry of supervised tasks. Cheap to clone: clones share it.
#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<BTreeMap<String, TaskStatus>>>);

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Every task, by name.
    pub fn list(&self) -> Vec<TaskStatus> {
        self.0.lock().values().cloned().collect()
    }

    /// Tasks not running now (restarting after a panic, or ended).
    pub fn down(&self) -> Vec<TaskStatus> {
        self.0.lock().values().filter(|t| t.is_down()).cloned().collect()
    }

    /// Run the future `start` makes under supervision, named `name`, with
    /// the default [`Backoff`]. On a panic `start` is called again after
    /// the backoff; when the future returns the task has ended.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, start: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn_with(name, Backoff::default(), start)
    }

    /// [`Tasks::spawn`] with a given backoff.
    pub fn spawn_with<F, Fut>(&self, name: impl Into<String>, mut backoff: Backoff, mut start: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let tasks = self.clone();
        tasks.update(&name, |t| {
            t.state = TaskState::Running;
            t.since = now_ms();
        });
        tokio::spawn(async move {
            loop {
                let began = Instant::now();
                let run = async {
                    inject_fault(&name);
                    start().await
                };
                match AssertUnwindSafe(run).catch_unwind().await {
                    Ok(()) => {
                        tracing::debug!(task = %name, "background task ended");
                        tasks.update(&name, |t| {
                            t.state = TaskState::Ended;
                            t.since = now_ms();
                        });
                        return;
                    }
                    Err(payload) => {
                        let message = panic_message(payload.as_ref());
                        let wait = backoff.after(began.elapsed());
                        tracing::error!(task = %name, "background task panicked: {message}; restarting in {wait:?}");
                        let now = now_ms();
                        tasks.update(&name, |t| {
                            t.state = TaskState::Restarting;
                            t.since = now;
                            t.panics += 1;
                            t.last_error = Some(message);
                            t.last_panic_at = Some(now);
                            t.restart_at = Some(now + wait.as_millis() as i64);
                        });
                        tokio::time::sleep(wait).await;
                        tracing::info!(task = %name, "background task restarted");
                        tasks.update(&name, |t| {
                            t.state = TaskState::Running;
                            t.since = now_ms();
                            t.restarts += 1;
                            t.restart_at = None;
                        });
                    }
                }
            }
        })
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut TaskStatus)) {
        let mut all = self.0.lock();
        let t = all.entry(name.to_string()).or_insert_with(|| TaskStatus {
            name: name.to_string(),
            state: TaskState::Running,
            since: now_ms(),
            restarts: 0,
            panics: 0,
            last_error: None,
            last_panic_at: None,
            restart_at: None,
        });
        f(t);
    }
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Fault injection for the end-to-end tests, compiled only with the
/// `fault-injection` feature (the root package turns it on for its tests;
/// the `kaizen` binary built for use never has it). `KAIZEN_FAULT_INJECT`
/// lists tasks to panic when they start, `name` or `name:times`, separated
/// by commas: `loop:3,telemetry-writer` panics the loop's first three runs
/// and the telemetry writer's first.
#[cfg(feature = "fault-injection")]
pub(crate) fn inject_fault(task: &str) {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static ARMED: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("KAIZEN_FAULT_INJECT").unwrap_or_default();
        let mut armed = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, times) = item.rsplit_once(':').unwrap_or((item, "1"));
            match times.parse::<u32>() {
                Ok(n) => {
                    armed.insert(name.to_string(), n);
                }
                Err(_) => tracing::warn!("KAIZEN_FAULT_INJECT: `{item}` is not `task` or `task:times`; ignored"),
            }
        }
        Mutex::new(armed)
    });
    let fire = armed.lock().get_mut(task).is_some_and(|n| {
        let fire = *n > 0;
        *n = n.saturating_sub(1);
        fire
    });
    if fire {
        panic!("fault injected into {task} (KAIZEN_FAULT_INJECT)");
    }
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) fn inject_fault(_task: &str) {}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_after_a_good_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let waits: Vec<u64> = (0..8).map(|_| b.after(quick).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.after(60 * S), S, "a run of a minute resets the backoff");
        assert_eq!(b.after(quick), 2 * S, "and it doubles again from there");
        assert_eq!(b.after(59 * S), 4 * S, "a run shorter than the reset period does not reset it");
    }

    #[test]
    fn a_cap_below_the_first_wait_is_the_first_wait() {
        let mut b = Backoff::new(5 * S, S, 60 * S);
        assert_eq!((b.after(S), b.after(S)), (5 * S, 5 * S));
    }

    #[tokio::test]
    async fn a_panicking_task_is_recorded_and_started_again() {
        let tasks = Tasks::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let quick = Backoff::new(Duration::from_millis(20), Duration::from_millis(40), S);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tasks.spawn_with("flaky", quick, move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            async move {
                if n < 2 {
                    panic!("run {n} failed");
                }
                let _ = tx.send(());
                std::future::pending::<()>().await
            }
        });
        // A generous bound, not a timed claim: each panic prints a
        // backtrace (`RUST_BACKTRACE=1`), and symbolizing it in a debug test
        // binary took over 5 s on a busy 2-core machine.
        tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("the third run starts");
        let t = &tasks.list()[0];
        assert_eq!((t.name.as_str(), t.state, t.panics, t.restarts), ("flaky", TaskState::Running, 2, 2));
        assert_eq!(t.last_error.as_deref(), Some("run 1 failed"));
        assert!(tasks.down().is_empty());
    }

    #[tokio::test]
    async fn a_task_is_down_while_it_waits_and_when_it_ends() {
        let tasks = Tasks::new();
        let slow = Backoff::new(Duration::from_secs(30), Duration::from_secs(30), S);
        tasks.spawn_with("doomed", slow, || async { panic!("{}", String::from("owned message")) });
        tasks.spawn("finite", || async {}).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.down().len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("both go down");
        let down = tasks.down();
        assert_eq!(down[0].name, "doomed");
        assert_eq!(down[0].state, TaskState::Restarting);
        assert_eq!(down[0].last_error.as_deref(), Some("owned message"));
        assert!(down[0].restart_at.unwrap() >= down[0].since + 29_000);
        assert_eq!((down[1].name.as_str(), down[1].state), ("finite", TaskState::Ended));
    }
}
