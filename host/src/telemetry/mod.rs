//! Telemetry: every call recorded off the call path, rolling aggregates for
//! detection, external ingest, checkpoints and retention.

pub mod aggregates;
pub mod calls;
pub mod hourly;
pub mod ingest;
pub mod recorder;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::aggregates::Aggregates;
use self::aggregates::SeriesHandle;
use self::ingest::{Format, IngestError, IngestLimits};
pub use self::recorder::{CounterSnapshot, FullPolicy, Recorder};
use self::recorder::{Counters, Inbox, Row, writer};
use crate::store::executions::{Attempts, Outcome};
use crate::store::{self, Db, StoreError, now_ms};
use crate::tasks::Tasks;

/// Settings of the telemetry path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Executions queued for the writer before the full policy applies.
    pub channel_capacity: usize,
    /// Rows per transaction at most.
    pub max_batch: usize,
    /// How long the writer waits to fill a batch.
    pub linger_ms: u64,
    pub full_policy: FullPolicy,
    /// Keep the request payload of one call in this many (1 = every call),
    /// for replaying candidates against real inputs.
    pub sample_requests_every: u64,
    /// Requests larger than this are not kept.
    pub max_request_bytes: usize,
    /// Executions older than this are deleted; aggregates survive.
    /// Ingested records dated before the horizon are refused. Deletion goes
    /// in the order rows were written (no index on time is kept per call):
    /// a row written well after it started waits for the rows written
    /// before it, up to this long after it was written.
    pub retention_secs: u64,
    /// How far ahead of the host's clock an ingested record may be dated
    /// (clock skew between services), in seconds.
    pub max_future_secs: u64,
    /// Width of an aggregate bucket.
    pub bucket_secs: u64,
    /// How far back aggregates are kept in memory.
    pub horizon_secs: u64,
    /// How often aggregates are checkpointed and retention applied.
    pub maintenance_secs: u64,
    /// Days of recorded history rolled up by hour of day and day of week
    /// for the detectors (`kaizen.hourly.*` points) and for scheduling
    /// (see [`hourly`]); only what `retention_secs` keeps can count.
    pub history_days: u64,
    /// Those rollups are brought up to date at most this often.
    pub history_refresh_secs: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            channel_capacity: 65_536,
            max_batch: 4096,
            linger_ms: 10,
            full_policy: FullPolicy::Block { max_wait_ms: 5 },
            sample_requests_every: 10,
            max_request_bytes: 64 << 10,
            retention_secs: 7 * 24 * 3600,
            max_future_secs: 600,
            bucket_secs: 10,
            horizon_secs: 6 * 3600,
            maintenance_secs: 10,
            history_days: 14,
            history_refresh_secs: 3600,
        }
    }
}

/// Why an ingest failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestFailure {
    #[error(transparent)]
    Refused(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an accepted ingest stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    pub executions: usize,
    pub metrics: usize,
}

/// One finished call, as the call path measured it.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// When the call started, Unix milliseconds.
    pub started_at: i64,
    pub latency: Duration,
    pub outcome: Outcome,
    pub error_class: Option<&'a str>,
    pub message: Option<&'a str>,
    /// The caller's request, kept for replay when it is sampled.
    pub request: &'a [u8],
    pub attempts: Attempts,
}

/// What the call path records into for one unit version, found with one
/// lookup per call: its name and version shared (no copy per call), its
/// Prometheus counters and its rolling aggregate series.
struct Interned {
    target: Arc<str>,
    version: Arc<str>,
    counter: Arc<calls::Counter>,
    series: SeriesHandle,
}

/// The running telemetry path.
pub struct Telemetry {
    db: Db,
    config: TelemetryConfig,
    recorder: Recorder,
    aggregates: Arc<Aggregates>,
    counters: Arc<Counters>,
    calls: AtomicU64,
    call_counters: calls::CallCounters,
    /// By unit, then version.
    interned: RwLock<HashMap<String, HashMap<String, Arc<Interned>>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    hourly: hourly::Hourly,
    /// The fleet's id of this host ('' outside a fleet): its checkpoints
    /// are its own, and every other host's are its peers'.
    host: String,
}

impl Telemetry {
    /// [`Telemetry::start_in`] with a registry of its own (a telemetry path
    /// used without a host: benches, backtests).
    pub async fn start(db: Db, config: TelemetryConfig) -> store::Result<Arc<Telemetry>> {
        Telemetry::start_in(db, config, &Tasks::new(), "").await
    }

    /// Restore the aggregates from their last checkpoint and start the writer
    /// (`telemetry-writer`) and maintenance (`telemetry-maintenance`:
    /// checkpoints and retention) under supervision in `tasks`. Both are
    /// started again after a panic: the writer's queue outlives it, and
    /// maintenance keeps no state between passes. `host` is the fleet's id
    /// of this host ('' outside a fleet), under which its aggregates are
    /// checkpointed and restored.
    pub async fn start_in(db: Db, config: TelemetryConfig, tasks: &Tasks, host: &str) -> store::Result<Arc<Telemetry>> {
        let bucket_ms = config.bucket_secs.max(1) as i64 * 1000;
        let horizon_ms = config.horizon_secs.max(60) as i64 * 1000;
        let aggregates = Arc::new(Aggregates::new(bucket_ms, horizon_ms));
        let stored = store::aggregates::since(&db, host, now_ms() - horizon_ms).await?;
        let restored = aggregates.restore(&stored);
        tracing::debug!(restored, "aggregates restored");

        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let recorder = Recorder::new(tx, config.full_policy, counters.clone(), aggregates.clone());
        let w = {
            let (db, inbox, counters) = (db.clone(), Inbox::new(rx), counters.clone());
            let (max_batch, linger) = (config.max_batch.max(1), Duration::from_millis(config.linger_ms));
            tasks.spawn("telemetry-writer", move || {
                writer(db.clone(), inbox.clone(), max_batch, linger, counters.clone())
            })
        };
        let hourly = hourly::Hourly::new(config.history_days, config.history_refresh_secs);
        let t = Arc::new(Telemetry {
            db,
            config,
            recorder,
            aggregates,
            counters,
            calls: AtomicU64::new(0),
            call_counters: calls::CallCounters::default(),
            interned: RwLock::default(),
            tasks: Mutex::new(vec![w]),
            hourly,
            host: host.to_string(),
        });
        let weak = Arc::downgrade(&t);
        let every = Duration::from_secs(t.config.maintenance_secs.max(1));
        let m = tasks.spawn("telemetry-maintenance", move || {
            let weak = weak.clone();
            async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(t) = weak.upgrade() else { break };
                    if let Err(e) = t.maintain().await {
                        tracing::warn!("telemetry maintenance failed: {e}");
                    }
                }
            }
        });
        t.tasks.lock().push(m);
        Ok(t)
    }

    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
    pub fn aggregates(&self) -> &Arc<Aggregates> {
        &self.aggregates
    }
    pub fn db(&self) -> &Db {
        &self.db
    }
    /// Each target's history by hour of day and day of week.
    pub fn hourly(&self) -> &hourly::Hourly {
        &self.hourly
    }
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }
    /// Calls, errors and latency per unit version since start.
    pub fn calls(&self) -> &calls::CallCounters {
        &self.call_counters
    }

    fn interned(&self, unit: &str, version: &str) -> Arc<Interned> {
        // Borrowed lookups first: a known unit version allocates nothing.
        if let Some(i) = self.interned.read().get(unit).and_then(|v| v.get(version)) {
            return i.clone();
        }
        let mut all = self.interned.write();
        all.entry(unit.to_string())
            .or_default()
            .entry(version.to_string())
            .or_insert_with(|| {
                Arc::new(Interned {
                    target: unit.into(),
                    version: version.into(),
                    counter: self.call_counters.counter(unit, version),
                    series: self.aggregates.handle(unit, version),
                })
            })
            .clone()
    }

    /// Record one call of `unit` at `version`: its Prometheus counters and
    /// rolling aggregates counted at once (what `/metrics`, the units view
    /// and the judge read is up to date when the caller is answered), its
    /// row queued for the writer. One lookup of the unit version; nothing
    /// formatted, names not copied (the writer makes the row). Returns
    /// false when the row had to be dropped.
    pub fn record(&self, unit: &str, version: &str, m: Measured<'_>) -> bool {
        let i = self.interned(unit, version);
        let duration_us = m.latency.as_micros() as i64;
        i.counter.observe(m.error_class, m.latency, m.attempts);
        self.aggregates.observe_in(&i.series, m.started_at, m.outcome, m.error_class, duration_us, m.attempts);
        let keep = self.sample_request(m.request.len());
        self.recorder.record_row(Row {
            target: i.target.clone(),
            version: i.version.clone(),
            started_at: m.started_at,
            duration_us,
            outcome: m.outcome,
            error_class: m.error_class.map(str::to_owned),
            message: m.message.map(str::to_owned),
            request: keep.then(|| m.request.to_vec()),
            attempts: m.attempts,
        })
    }

    /// Count a caller's call of `unit` refused at `at` (ms since the epoch)
    /// because its circuit was open, on `version` (the one serving). The
    /// unit was not called: no row, no latency, no error of the version's;
    /// the refusal is counted apart, in `/metrics`, the units view and the
    /// aggregates, so that a caller's error is never invisible.
    pub fn refused(&self, unit: &str, version: &str, at: i64) {
        let i = self.interned(unit, version);
        i.counter.refused();
        self.aggregates.refused_in(&i.series, at);
    }

    /// Whether the next call's request should be kept for replay.
    pub fn sample_request(&self, len: usize) -> bool {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        len <= self.config.max_request_bytes && n.is_multiple_of(self.config.sample_requests_every.max(1))
    }

    /// Checkpoint changed aggregate buckets, apply retention, evict old
    /// buckets from memory.
    pub async fn maintain(&self) -> store::Result<()> {
        let dirty = self.aggregates.take_dirty();
        store::aggregates::upsert(&self.db, &self.host, &dirty).await?;
        let now = now_ms();
        let cutoff = now - self.config.retention_secs as i64 * 1000;
        let latest = now.saturating_add(self.config.max_future_secs.saturating_mul(1000) as i64);
        let deleted = store::executions::delete_before(&self.db, cutoff, latest).await?;
        store::metrics::delete_before(&self.db, cutoff).await?;
        let horizon_ms = self.config.horizon_secs.max(60) as i64 * 1000;
        store::aggregates::delete_before(&self.db, now - horizon_ms.max(self.config.retention_secs as i64 * 1000))
            .await?;
        self.aggregates.evict(now);
        if deleted > 0 {
            tracing::debug!(deleted, "retention removed old executions");
        }
        Ok(())
    }

    /// Bring the other hosts' aggregates up to date from their checkpoints,
    /// for the buckets that start at or after `since` (ms since the epoch):
    /// only what they wrote since the last read (a few seconds back, for
    /// transactions that committed late). What a fleet's leader does before
    /// it detects; nothing outside a fleet. A host checkpoints every
    /// `maintenance_secs`, so the others' calls are that late at most.
    pub async fn refresh_peers(&self, since: i64) -> store::Result<()> {
        if self.host.is_empty() {
            return Ok(());
        }
        /// How far before the last `written_at` read the next read starts.
        const LATE_COMMITS_MS: i64 = 5_000;
        let bucket_ms = self.aggregates.bucket_ms();
        let since = since - since.rem_euclid(bucket_ms);
        let cursor = self.aggregates.peer_cursor();
        let from = if cursor == 0 { 0 } else { cursor - LATE_COMMITS_MS };
        let (rows, newest) = store::aggregates::peers_since(&self.db, &self.host, from, since).await?;
        self.aggregates.take_peers(&rows, since, newest);
        Ok(())
    }

    /// Validate and store an external batch. Returns only once the records
    /// are committed: what this acknowledges is on disk.
    pub async fn ingest(
        &self,
        body: &[u8],
        format: Format,
        limits: &IngestLimits,
    ) -> Result<IngestReport, IngestFailure> {
        let batch = ingest::decode(body, format)?;
        let (execs, metrics) = ingest::validate(batch, limits, store::now_ms())?;
        store::executions::insert_batch(&self.db, &execs).await?;
        store::metrics::insert_batch(&self.db, &metrics).await?;
        for e in &execs {
            self.aggregates.observe(e);
        }
        Ok(IngestReport { executions: execs.len(), metrics: metrics.len() })
    }

    /// Flush everything queued and checkpoint the aggregates. Call after the
    /// call path has stopped taking calls.
    pub async fn shutdown(&self) -> store::Result<()> {
        self.recorder.flush().await;
        let dirty = self.aggregates.take_dirty();
        // A writer stalled on a busy disk can hold the store past its busy
        // timeout; the last aggregates are worth a few more tries.
        let mut tries = 0;
        while let Err(e) = store::aggregates::upsert(&self.db, &self.host, &dirty).await {
            tries += 1;
            if tries == 3 {
                return Err(e);
            }
            tracing::warn!("cannot write the last aggregates (try {tries} of 3), trying again: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        Ok(())
    }
}
