//! Rolling aggregates per target and version: fixed time buckets holding
//! counts, failures per error class and a latency sketch (DDSketch, 0.5 %
//! relative error, mergeable). Detection windows are merges of buckets, so
//! building a detector's input costs the same whether a thousand or a
//! hundred million executions are stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use crate::runtime::types::{DetectionInput, ErrorCount, LatencyStats, MetricPoint, TargetStats, WindowStats};
use crate::store::aggregates::StoredBucket;
use crate::store::executions::{Attempts, Outcome, Recordable};

/// Relative accuracy of latency quantiles.
pub const SKETCH_ALPHA: f64 = 0.005;

fn sketch() -> DDSketch {
    // 1 ns floor; 4096 bins cover 1 µs .. hours at 0.5 %.
    DDSketch::new(SketchConfig::new(SKETCH_ALPHA, 4096, 1e-6))
}

/// One time bucket of one target version.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub executions: u64,
    pub failures: u64,
    pub rejected: u64,
    pub errors: BTreeMap<String, u64>,
    pub sum_ms: f64,
    pub sum_sq_ms: f64,
    #[serde(with = "sketch_serde")]
    pub latency: DDSketch,
    /// Attempts beyond the first made for these calls (retries, fallbacks):
    /// `executions` counts calls, this what recovery added to them. Last,
    /// with a default, so that buckets checkpointed before it read back.
    #[serde(default)]
    pub retries: u64,
    /// Calls whose failure recovery turned into an answer.
    #[serde(default)]
    pub recovered: u64,
    /// Callers' calls refused by the unit's open circuit: not made, so not
    /// among `executions`, failures or latency (they say nothing of the
    /// version), but counted so that no caller's error goes unseen. Last,
    /// with a default, as `retries`.
    #[serde(default)]
    pub refused: u64,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            executions: 0,
            failures: 0,
            rejected: 0,
            errors: BTreeMap::new(),
            sum_ms: 0.0,
            sum_sq_ms: 0.0,
            latency: sketch(),
            retries: 0,
            recovered: 0,
            refused: 0,
        }
    }
}

impl Bucket {
    fn observe(&mut self, outcome: Outcome, class: Option<&str>, latency_ms: f64, attempts: Attempts) {
        self.executions += 1;
        self.retries += attempts.retries();
        self.recovered += u64::from(attempts.recovered);
        match outcome {
            Outcome::Ok => {}
            Outcome::Rejected => self.rejected += 1,
            Outcome::Error => {
                self.failures += 1;
                *self.errors.entry(class.unwrap_or("unknown").to_string()).or_default() += 1;
            }
        }
        let ms = latency_ms.max(0.0);
        self.sum_ms += ms;
        self.sum_sq_ms += ms * ms;
        self.latency.add(ms);
    }

    fn merge(&mut self, o: &Bucket) {
        self.executions += o.executions;
        self.failures += o.failures;
        self.rejected += o.rejected;
        self.retries += o.retries;
        self.recovered += o.recovered;
        self.refused += o.refused;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.sum_ms += o.sum_ms;
        self.sum_sq_ms += o.sum_sq_ms;
        // Both sketches share one configuration, so merging cannot fail.
        let _ = self.latency.merge(&o.latency);
    }

    /// Window statistics of this (merged) bucket over `duration_secs`.
    pub fn stats(&self, duration_secs: f64) -> WindowStats {
        let n = self.executions as f64;
        let q = |p: f64| self.latency.quantile(p).ok().flatten().unwrap_or(0.0);
        let mean = if n > 0.0 { self.sum_ms / n } else { 0.0 };
        let var = if n > 0.0 { (self.sum_sq_ms / n - mean * mean).max(0.0) } else { 0.0 };
        WindowStats {
            duration_secs,
            executions: self.executions,
            failures: self.failures,
            success_rate: if n > 0.0 { 1.0 - self.failures as f64 / n } else { 1.0 },
            latency: LatencyStats {
                p50_ms: q(0.5),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
                mean_ms: mean,
                stddev_ms: var.sqrt(),
            },
            throughput: if duration_secs > 0.0 { n / duration_secs } else { 0.0 },
            errors: self.errors.iter().map(|(k, v)| ErrorCount { error_class: k.clone(), count: *v }).collect(),
        }
    }
}

/// A window's calls counted apart (see [`Aggregates::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Callers' calls.
    pub calls: u64,
    /// Attempts made for them, first attempts included.
    pub attempts: u64,
    /// Of `calls`, those that failed at first and recovery answered.
    pub recovered: u64,
    /// Of `calls`, those that failed for the unit's own reasons.
    pub unit_errors: u64,
    /// Of `calls`, those refused as `invalid-input`.
    pub caller_errors: u64,
    /// Callers' calls refused by an open circuit: not made, not among
    /// `calls`.
    pub refused: u64,
}

#[derive(Default)]
struct Series {
    buckets: BTreeMap<i64, Bucket>,
    /// Buckets changed since the last checkpoint.
    dirty: BTreeSet<i64>,
}

type Key = (String, String);

/// Borrowed view of a [`Key`], so that a `HashMap<Key, _>` can be searched
/// with two `&str` (the usual trait-object trick for tuple keys).
trait KeyRef {
    fn parts(&self) -> (&str, &str);
}

impl KeyRef for Key {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl KeyRef for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn KeyRef + 'a> for Key {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

impl std::hash::Hash for dyn KeyRef + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyRef + '_ {}

/// A series held by a caller (see [`Aggregates::handle`]).
#[derive(Clone)]
pub struct SeriesHandle(Arc<Mutex<Series>>);

/// Other hosts' buckets, as their checkpoints last read.
#[derive(Default)]
struct Peers {
    /// By (host, target, version), then bucket start.
    series: HashMap<(String, String, String), BTreeMap<i64, Bucket>>,
    /// The newest `written_at` read (the database's clock).
    cursor: i64,
}

/// All rolling aggregates of a host.
pub struct Aggregates {
    bucket_ms: i64,
    horizon_ms: i64,
    series: RwLock<HashMap<Key, Arc<Mutex<Series>>>>,
    /// A fleet's other hosts' calls, read from their checkpoints by the
    /// leader for detection ([`Aggregates::take_peers`]); empty elsewhere.
    peers: RwLock<Peers>,
}

impl Aggregates {
    /// Buckets `bucket_ms` wide, kept in memory for `horizon_ms`.
    pub fn new(bucket_ms: i64, horizon_ms: i64) -> Aggregates {
        Aggregates {
            bucket_ms: bucket_ms.max(1),
            horizon_ms,
            series: RwLock::new(HashMap::new()),
            peers: RwLock::default(),
        }
    }

    pub fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    fn series(&self, target: &str, version: &str) -> Arc<Mutex<Series>> {
        // Look up by borrowed strings first: the call path allocates nothing
        // for a series that already exists.
        if let Some(s) = self.series.read().get(&(target, version) as &dyn KeyRef) {
            return s.clone();
        }
        self.series.write().entry((target.to_string(), version.to_string())).or_default().clone()
    }

    /// Count one call (however many attempts it took).
    pub fn observe<R: Recordable>(&self, r: &R) {
        let e = r.execution();
        let series = SeriesHandle(self.series(&e.target, &e.version));
        self.observe_in(&series, e.started_at, e.outcome, e.error_class.as_deref(), e.duration_us, r.attempts());
    }

    /// The series of `target` at `version`, for a caller that records many
    /// calls of it: held, it is never evicted, and counting into it needs no
    /// lookup.
    pub fn handle(&self, target: &str, version: &str) -> SeriesHandle {
        SeriesHandle(self.series(target, version))
    }

    /// Count one call into a held series.
    pub fn observe_in(
        &self,
        series: &SeriesHandle,
        started_at: i64,
        outcome: Outcome,
        error_class: Option<&str>,
        duration_us: i64,
        attempts: Attempts,
    ) {
        self.in_bucket(series, started_at, |b| b.observe(outcome, error_class, duration_us as f64 / 1000.0, attempts));
    }

    /// Change the bucket of a held series that holds `at` (ms since the
    /// epoch), and mark it for the next checkpoint.
    fn in_bucket(&self, series: &SeriesHandle, at: i64, change: impl FnOnce(&mut Bucket)) {
        let start = at - at.rem_euclid(self.bucket_ms);
        let mut s = series.0.lock();
        let s = &mut *s;
        change(s.buckets.entry(start).or_default());
        // Calls arrive in time order: the bucket is usually marked already.
        if s.dirty.last() != Some(&start) {
            s.dirty.insert(start);
        }
    }

    /// Count one caller's call of a held series refused by an open circuit
    /// at `at` (ms since the epoch): apart from the calls made.
    pub fn refused_in(&self, series: &SeriesHandle, at: i64) {
        self.in_bucket(series, at, |b| b.refused += 1);
    }

    /// Merged statistics of `target` (one version, or all when `None`) over
    /// `[from, to)`; `None` when nothing was recorded then. Whole buckets
    /// are merged, so the window starts at the start of the bucket holding
    /// `from`, and its rates are per second of that span (not of `to -
    /// from`, which would count up to a bucket's calls more than it
    /// divides by).
    pub fn window(&self, target: &str, version: Option<&str>, from: i64, to: i64) -> Option<WindowStats> {
        let merged = self.merged(target, version, from, to);
        let start = from - from.rem_euclid(self.bucket_ms);
        (merged.executions > 0).then(|| merged.stats((to - start) as f64 / 1000.0))
    }

    /// Calls of the same window refused as `invalid-input`: not failures of
    /// the unit (the contract's success rate leaves them out), but a version
    /// refusing what callers send must not look healthy.
    pub fn rejected(&self, target: &str, version: Option<&str>, from: i64, to: i64) -> u64 {
        self.merged(target, version, from, to).rejected
    }

    /// The window's calls counted apart: calls, the attempts made for them
    /// and the calls recovery answered, with how they ended.
    pub fn counts(&self, target: &str, version: Option<&str>, from: i64, to: i64) -> WindowCounts {
        let m = self.merged(target, version, from, to);
        WindowCounts {
            calls: m.executions,
            attempts: m.executions + m.retries,
            recovered: m.recovered,
            unit_errors: m.failures,
            caller_errors: m.rejected,
            refused: m.refused,
        }
    }

    fn merged(&self, target: &str, version: Option<&str>, from: i64, to: i64) -> Bucket {
        self.merged_in(target, version, from, to, false)
    }

    /// [`Aggregates::merged`], with the other hosts' buckets when `peers`.
    fn merged_in(&self, target: &str, version: Option<&str>, from: i64, to: i64, peers: bool) -> Bucket {
        let keys: Vec<Arc<Mutex<Series>>> = self
            .series
            .read()
            .iter()
            .filter(|((t, v), _)| t == target && version.is_none_or(|want| want == v))
            .map(|(_, s)| s.clone())
            .collect();
        let mut merged = Bucket::default();
        for s in keys {
            let s = s.lock();
            for (_, b) in s.buckets.range(from - from.rem_euclid(self.bucket_ms)..to) {
                merged.merge(b);
            }
        }
        if peers {
            let p = self.peers.read();
            for ((_, t, v), buckets) in &p.series {
                if t == target && version.is_none_or(|want| want == v) {
                    for (_, b) in buckets.range(from - from.rem_euclid(self.bucket_ms)..to) {
                        merged.merge(b);
                    }
                }
            }
        }
        merged
    }

    /// The detectors' window of `target`: this host's calls and, in a
    /// fleet's leader, the other hosts' checkpointed ones. Rates are per
    /// second of the span merged, as in [`Aggregates::window`].
    fn fleet_window(&self, target: &str, version: Option<&str>, from: i64, to: i64) -> Option<WindowStats> {
        let merged = self.merged_in(target, version, from, to, true);
        let start = from - from.rem_euclid(self.bucket_ms);
        (merged.executions > 0).then(|| merged.stats((to - start) as f64 / 1000.0))
    }

    /// Take other hosts' buckets read from their checkpoints in place of
    /// those held for the same keys, keep `cursor` (the newest `written_at`
    /// read) for the next read, and forget buckets starting before `since`.
    /// Undecodable buckets are skipped (and logged).
    pub fn take_peers(&self, rows: &[(String, StoredBucket)], since: i64, cursor: i64) {
        let mut p = self.peers.write();
        for (host, sb) in rows {
            match rmp_serde::from_slice::<Bucket>(&sb.bucket) {
                Ok(b) => {
                    let key = (host.clone(), sb.target.clone(), sb.version.clone());
                    p.series.entry(key).or_default().insert(sb.bucket_start, b);
                }
                Err(e) => tracing::warn!(host, target = %sb.target, "skipping another host's unreadable bucket: {e}"),
            }
        }
        p.series.retain(|_, buckets| {
            buckets.retain(|start, _| *start >= since - since.rem_euclid(self.bucket_ms));
            !buckets.is_empty()
        });
        p.cursor = p.cursor.max(cursor);
    }

    /// The newest `written_at` of the other hosts' buckets read so far.
    pub fn peer_cursor(&self) -> i64 {
        self.peers.read().cursor
    }

    /// The detectors' input at `now`: every target version with calls in the
    /// last `window_ms`, against the same target's `baseline_ms` before it;
    /// in a fleet's leader, every host's calls (the others' as of their
    /// last checkpoint).
    pub fn detection_input(
        &self,
        now: i64,
        window_ms: i64,
        baseline_ms: i64,
        metrics: Vec<MetricPoint>,
    ) -> DetectionInput {
        let mut keys: BTreeSet<Key> = self.series.read().keys().cloned().collect();
        keys.extend(self.peers.read().series.keys().map(|(_, t, v)| (t.clone(), v.clone())));
        // The two windows meet at a bucket boundary: buckets are merged
        // whole, so a cut inside one would count its calls in both windows
        // (and overstate the current rate by up to a bucket's calls).
        let from = (now - window_ms) - (now - window_ms).rem_euclid(self.bucket_ms);
        let base_from = from - baseline_ms;
        let mut targets = Vec::new();
        for (target, version) in keys {
            let Some(current) = self.fleet_window(&target, Some(&version), from, now) else {
                continue;
            };
            let baseline = self.fleet_window(&target, None, base_from, from);
            targets.push(TargetStats { target, version, current, baseline });
        }
        targets.sort_by(|a, b| (&a.target, &a.version).cmp(&(&b.target, &b.version)));
        DetectionInput { now_ms: now, targets, metrics }
    }

    /// Targets and versions with calls in the horizon, for listings.
    pub fn keys(&self) -> Vec<(String, String)> {
        let mut k: Vec<_> =
            self.series.read().iter().filter(|(_, s)| !s.lock().buckets.is_empty()).map(|(k, _)| k.clone()).collect();
        k.sort();
        k
    }

    /// Take the buckets changed since the last call, encoded for storage.
    pub fn take_dirty(&self) -> Vec<StoredBucket> {
        let all: Vec<(Key, Arc<Mutex<Series>>)> =
            self.series.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut out = Vec::new();
        for ((target, version), s) in all {
            let mut s = s.lock();
            let dirty = std::mem::take(&mut s.dirty);
            for start in dirty {
                if let Some(b) = s.buckets.get(&start) {
                    out.push(StoredBucket {
                        target: target.clone(),
                        version: version.clone(),
                        bucket_start: start,
                        bucket: rmp_serde::to_vec(b).expect("bucket encodes"),
                    });
                }
            }
        }
        out
    }

    /// Put buckets read back from storage in place (at start-up).
    pub fn restore(&self, stored: &[StoredBucket]) -> usize {
        let mut n = 0;
        for sb in stored {
            match rmp_serde::from_slice::<Bucket>(&sb.bucket) {
                Ok(b) => {
                    let series = self.series(&sb.target, &sb.version);
                    series.lock().buckets.insert(sb.bucket_start, b);
                    n += 1;
                }
                Err(e) => {
                    tracing::warn!(target = %sb.target, "skipping unreadable aggregate bucket: {e}")
                }
            }
        }
        n
    }

    /// Forget buckets older than the horizon.
    pub fn evict(&self, now: i64) {
        let cutoff = now - self.horizon_ms;
        let mut map = self.series.write();
        map.retain(|_, series| {
            let mut s = series.lock();
            s.buckets.retain(|start, _| *start >= cutoff);
            s.dirty.retain(|start| *start >= cutoff);
            // A series held by the call path stays: its next calls count
            // into it.
            !s.buckets.is_empty() || Arc::strong_count(series) > 1
        });
    }
}

/// DDSketch's serde form, behind a stable name.
mod sketch_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use sketches_ddsketch::DDSketch;

    pub fn serialize<S: Serializer>(s: &DDSketch, ser: S) -> Result<S::Ok, S::Error> {
        s.serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DDSketch, D::Error> {
        DDSketch::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::executions::{Call, Execution};

    fn exec(t: i64, ms: f64, outcome: Outcome) -> Execution {
        Execution {
            target: "calc".into(),
            version: "1.0.0".into(),
            started_at: t,
            duration_us: (ms * 1000.0) as i64,
            outcome,
            error_class: (outcome == Outcome::Error).then(|| "trap".into()),
            message: None,
            request: None,
        }
    }

    /// 20 calls a second for 70 s, read as "the last 60 s" from an instant
    /// inside a 10 s bucket: the whole first bucket is merged, and the rate
    /// divides by the span it covers, so it reads 20/s, not 23/s.
    #[test]
    fn a_window_starting_inside_a_bucket_divides_by_the_span_it_merges() {
        let agg = Aggregates::new(10_000, 3_600_000);
        for i in 0..1_400 {
            agg.observe(&exec(i * 50, 1.0, Outcome::Ok));
        }
        let now = 70_000;
        let w = agg.window("calc", None, now - 65_000, now).unwrap();
        assert_eq!(w.executions, 1_400, "from 5 s, the bucket [0, 10 s) is merged whole");
        assert!((w.throughput - 20.0).abs() < 1e-9, "{} calls/s", w.throughput);
    }

    /// Steady 20 calls/s, detection at a moment inside a 10 s bucket:
    /// both windows read 20/s and no call is counted in both.
    #[test]
    fn the_detectors_windows_meet_at_a_bucket_boundary_and_read_the_true_rate() {
        let agg = Aggregates::new(10_000, 3_600_000);
        for i in 0..2_500 {
            agg.observe(&exec(i * 50, 1.0, Outcome::Ok));
        }
        let now = 125_000;
        let input = agg.detection_input(now, 60_000, 60_000, Vec::new());
        let t = &input.targets[0];
        let base = t.baseline.as_ref().unwrap();
        assert_eq!(t.current.executions + base.executions, 2_500, "no call is counted twice");
        assert!((t.current.throughput - 20.0).abs() < 1e-9, "current {} calls/s", t.current.throughput);
        assert!((base.throughput - 20.0).abs() < 1e-9, "baseline {} calls/s", base.throughput);
    }

    #[test]
    fn p95_within_one_percent_of_exact() {
        use rand::{Rng, SeedableRng};
        let agg = Aggregates::new(10_000, 3_600_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut exact = Vec::new();
        for i in 0..100_000 {
            // Log-normal-ish latencies from 0.1 ms to ~100 ms.
            let ms = (rng.random_range(-2.3f64..4.6)).exp();
            exact.push((ms * 1000.0).trunc() / 1000.0);
            agg.observe(&exec(i % 60_000, ms, Outcome::Ok));
        }
        exact.sort_by(f64::total_cmp);
        let truth = exact[(0.95 * (exact.len() - 1) as f64) as usize];
        let w = agg.window("calc", None, 0, 60_000).unwrap();
        let err = (w.latency.p95_ms - truth).abs() / truth;
        assert!(err <= 0.01, "p95 {} vs exact {truth}: {:.3}% off", w.latency.p95_ms, err * 100.0);
        assert_eq!(w.executions, 100_000);
    }

    #[test]
    fn windows_split_by_version_and_time_and_baseline_spans_versions() {
        let agg = Aggregates::new(1_000, 3_600_000);
        for t in 0..100 {
            agg.observe(&exec(t * 100, 1.0, Outcome::Ok)); // 0..10 s on 1.0.0
        }
        let mut e = exec(15_000, 5.0, Outcome::Error);
        e.version = "2.0.0".into();
        agg.observe(&e);
        agg.observe(&exec(15_500, 1.0, Outcome::Rejected));
        let input = agg.detection_input(20_000, 10_000, 10_000, vec![]);
        let v2 = input.targets.iter().find(|t| t.version == "2.0.0").unwrap();
        assert_eq!(v2.current.executions, 1);
        assert_eq!(v2.current.failures, 1);
        assert_eq!(v2.current.errors[0].error_class, "trap");
        assert_eq!(v2.baseline.as_ref().unwrap().executions, 100);
        let v1 = input.targets.iter().find(|t| t.version == "1.0.0").unwrap();
        // A rejected call (the caller's bad input) is no failure.
        assert_eq!((v1.current.executions, v1.current.failures), (1, 0));
    }

    #[test]
    fn checkpoint_round_trip_and_eviction() {
        let agg = Aggregates::new(1_000, 10_000);
        agg.observe(&exec(500, 2.0, Outcome::Ok));
        agg.observe(&exec(20_500, 3.0, Outcome::Error));
        let dirty = agg.take_dirty();
        assert_eq!(dirty.len(), 2);
        assert!(agg.take_dirty().is_empty());
        let back = Aggregates::new(1_000, 10_000);
        assert_eq!(back.restore(&dirty), 2);
        assert_eq!(back.window("calc", None, 0, 30_000).unwrap().executions, 2);
        back.evict(25_000);
        assert_eq!(back.window("calc", None, 0, 30_000).unwrap().executions, 1);
    }

    /// A call retried into an answer counts once as a call, twice as an
    /// attempt, once as recovered; the detectors' window counts calls.
    #[test]
    fn calls_attempts_and_recovered_calls_count_apart() {
        let agg = Aggregates::new(1_000, 3_600_000);
        agg.observe(&exec(100, 1.0, Outcome::Ok));
        agg.observe(&Call {
            execution: exec(200, 30.0, Outcome::Ok),
            attempts: Attempts { attempts: 3, recovered: true },
        });
        agg.observe(&Call {
            execution: exec(300, 2.0, Outcome::Error),
            attempts: Attempts { attempts: 2, recovered: false },
        });
        let c = agg.counts("calc", None, 0, 1_000);
        assert_eq!(
            c,
            WindowCounts { calls: 3, attempts: 6, recovered: 1, unit_errors: 1, caller_errors: 0, refused: 0 },
            "{c:?}"
        );
        let w = agg.window("calc", None, 0, 1_000).unwrap();
        assert_eq!((w.executions, w.failures), (3, 1), "the detectors see calls, not attempts");
    }

    /// A bucket checkpointed before attempts were counted reads back with
    /// none beyond its calls.
    #[test]
    fn a_bucket_checkpointed_before_attempts_were_counted_reads_back() {
        #[derive(Serialize)]
        struct Before {
            executions: u64,
            failures: u64,
            rejected: u64,
            errors: BTreeMap<String, u64>,
            sum_ms: f64,
            sum_sq_ms: f64,
            #[serde(with = "sketch_serde")]
            latency: DDSketch,
        }
        let old = Before {
            executions: 4,
            failures: 1,
            rejected: 0,
            errors: BTreeMap::new(),
            sum_ms: 4.0,
            sum_sq_ms: 4.0,
            latency: sketch(),
        };
        let b: Bucket = rmp_serde::from_slice(&rmp_serde::to_vec(&old).unwrap()).unwrap();
        assert_eq!((b.executions, b.retries, b.recovered), (4, 0, 0));
    }
}
