//! The execution recorder: the call path hands each execution to a bounded
//! channel and returns; a writer task commits them in batched transactions.
//! When the channel is full the configured policy decides (wait briefly, or
//! drop) and every drop is counted: nothing is lost silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::aggregates::Aggregates;
use crate::store::Db;
use crate::store::executions::{self, Attempts, Call, Execution, Outcome};

/// What to do with an execution when the writer is behind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum FullPolicy {
    /// Wait up to `max_wait_ms` for room, then drop and count.
    Block { max_wait_ms: u64 },
    /// Drop at once and count.
    Drop,
}

/// Counters of the telemetry path, exposed to operators.
#[derive(Debug, Default)]
pub struct Counters {
    pub recorded: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub batches: AtomicU64,
    pub write_errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    pub recorded: u64,
    pub dropped: u64,
    pub written: u64,
    pub batches: u64,
    pub write_errors: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            recorded: self.recorded.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}

/// A call as the call path hands it over: the unit version interned, the
/// rest as measured. The writer makes the stored row of it, so the call path
/// neither formats nor copies a name.
pub(crate) struct Row {
    pub target: Arc<str>,
    pub version: Arc<str>,
    pub started_at: i64,
    pub duration_us: i64,
    pub outcome: Outcome,
    pub error_class: Option<String>,
    pub message: Option<String>,
    pub request: Option<Vec<u8>>,
    pub attempts: Attempts,
}

impl Row {
    fn into_call(self) -> Call {
        Call {
            execution: Execution {
                target: self.target.as_ref().to_owned(),
                version: self.version.as_ref().to_owned(),
                started_at: self.started_at,
                duration_us: self.duration_us,
                outcome: self.outcome,
                error_class: self.error_class,
                message: self.message,
                request: self.request,
            },
            attempts: self.attempts,
        }
    }
}

pub(crate) enum Msg {
    Call(Call),
    Row(Row),
    /// Answered once everything sent before it is committed.
    Flush(oneshot::Sender<()>),
}

/// The call path's handle: cheap to clone, never waits on the database.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    policy: FullPolicy,
    counters: Arc<Counters>,
    aggregates: Arc<Aggregates>,
}

impl Recorder {
    pub(crate) fn new(
        tx: mpsc::Sender<Msg>,
        policy: FullPolicy,
        counters: Arc<Counters>,
        aggregates: Arc<Aggregates>,
    ) -> Self {
        Recorder { tx, policy, counters, aggregates }
    }

    /// Record one execution of a call made once: see [`Recorder::record_call`].
    pub fn record(&self, e: Execution) -> bool {
        self.record_call(Call { execution: e, attempts: Attempts::ONCE })
    }

    /// Record one call: counted in the rolling aggregates at once, queued
    /// for the writer. Returns false when it had to be dropped.
    pub fn record_call(&self, c: Call) -> bool {
        self.aggregates.observe(&c);
        self.send(Msg::Call(c))
    }

    /// Queue a row whose aggregates the caller has counted already.
    pub(crate) fn record_row(&self, row: Row) -> bool {
        self.send(Msg::Row(row))
    }

    fn send(&self, mut msg: Msg) -> bool {
        self.counters.recorded.fetch_add(1, Ordering::Relaxed);
        let deadline = match self.policy {
            FullPolicy::Drop => None,
            FullPolicy::Block { max_wait_ms } => Some(std::time::Instant::now() + Duration::from_millis(max_wait_ms)),
        };
        match self.tx.try_send(msg) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full(back)) => msg = back,
            Err(mpsc::error::TrySendError::Closed(_)) => return self.dropped(),
        }
        let Some(deadline) = deadline else { return self.dropped() };
        // Calls run on the runtime's workers, and so does the writer that
        // makes room: a worker that waits must hand its other tasks to the
        // rest of the pool first (`block_in_place`). On a current-thread
        // runtime the writer cannot run while its only thread waits, so the
        // row is dropped (and counted) at once.
        let wait = move || loop {
            std::thread::sleep(Duration::from_micros(200));
            match self.tx.try_send(msg) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(back)) if std::time::Instant::now() < deadline => msg = back,
                Err(_) => return self.dropped(),
            }
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => wait(),
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => self.dropped(),
            Ok(_) => tokio::task::block_in_place(wait),
        }
    }

    /// Count a row that could not be queued.
    fn dropped(&self) -> bool {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Wait until everything recorded before this call is committed.
    pub async fn flush(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_err() {
            return false;
        }
        rx.await.is_ok()
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }
}

/// What the writer owns across its runs: the channel's receiving end and
/// the batch in hand. It lives outside the writer's future so that a writer
/// that panicked starts again on the same queue — nothing queued is lost.
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Msg>,
    batch: Vec<Call>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Inbox {
    pub(crate) fn new(rx: mpsc::Receiver<Msg>) -> Arc<tokio::sync::Mutex<Inbox>> {
        Arc::new(tokio::sync::Mutex::new(Inbox { rx, batch: Vec::new(), waiters: Vec::new() }))
    }
}

/// The writer task: batches of up to `max_batch`, each one transaction.
/// Started again after a panic (see `crate::tasks`): the batch the panicked
/// run held may be what made it panic, so it is not retried but counted as
/// write errors and logged; flushes waiting on it answer false.
pub(crate) async fn writer(
    db: Db,
    inbox: Arc<tokio::sync::Mutex<Inbox>>,
    max_batch: usize,
    linger: Duration,
    counters: Arc<Counters>,
) {
    let mut inbox = inbox.lock().await;
    let Inbox { rx, batch, waiters } = &mut *inbox;
    if !batch.is_empty() {
        tracing::error!(rows = batch.len(), "telemetry batch lost: the writer panicked while holding it");
        counters.write_errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
    waiters.clear();
    loop {
        // Wait for the first message, then gather what arrives within the
        // linger time (or until the batch is full).
        let Some(first) = rx.recv().await else { break };
        let mut open = true;
        let flush_now = matches!(first, Msg::Flush(_));
        push(first, batch, waiters);
        // Let a batch gather for the linger time by sleeping rather than
        // waking for every message (a sender's `try_send` then costs no
        // wake-up of this task), unless a full batch is queued already or a
        // flush waits. At a high rate this makes batches large, and a row
        // in a large batch costs the database a fraction of one in a small
        // one (one commit, and the index pages written once for many rows).
        if !flush_now && rx.len() < max_batch {
            tokio::time::sleep(linger).await;
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(m) => push(m, batch, waiters),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        commit(&db, batch, &counters).await;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
        if !open {
            break;
        }
    }
    // Channel closed: everything sent was received above; commit the rest.
    commit(&db, batch, &counters).await;
}

fn push(m: Msg, batch: &mut Vec<Call>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Call(c) => batch.push(c),
        Msg::Row(r) => batch.push(r.into_call()),
        Msg::Flush(w) => waiters.push(w),
    }
}

/// Commit `batch`, retrying a failing database a few times before counting
/// the batch as a write error (and saying so in the log).
async fn commit(db: &Db, batch: &mut Vec<Call>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match executions::insert_batch(db, batch).await {
            Ok(()) => {
                counters.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                counters.batches.fetch_add(1, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(e) if attempt < 5 => {
                tracing::warn!(attempt, rows = batch.len(), "telemetry batch failed, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(rows = batch.len(), "telemetry batch lost after 5 attempts: {e}");
                counters.write_errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
            }
        }
    }
}
