//! Each target's recorded history rolled up by hour of day and day of week
//! (UTC): calls, and the mean and variance of ln(latency), over the last
//! `telemetry.history_days` (bounded by `telemetry.retention_secs`).
//!
//! Detectors only see what the host hands them, so the rollups reach them
//! as metric points under the reserved `kaizen.` prefix (see [`points`]),
//! which pushed metrics may not use; the host reads them itself through
//! [`Hourly::hourly_profile`] (traffic per hour of day, for scheduling).
//!
//! Refreshing is incremental and rare: at most once per
//! `telemetry.history_refresh_secs`, reading only the executions recorded
//! since the last refresh (by row id) into per-calendar-hour moments, and
//! forgetting calendar hours that left the history.
//!
//! [`points`]: Hourly::points

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;

use crate::runtime::types::MetricPoint;
use crate::store::{self, Db};

/// Metric names starting with this are the host's own rollups: pushed
/// metrics using it are refused at ingest.
pub const RESERVED_PREFIX: &str = "kaizen.";

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Hour of day (0–23) and day of week (0 = Monday) of Unix ms `at`, UTC.
pub fn hour_and_weekday(at: i64) -> (usize, usize) {
    let day = at.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday (3 counting from Monday = 0).
    ((at.rem_euclid(DAY_MS) / HOUR_MS) as usize, (day + 3).rem_euclid(7) as usize)
}

/// Count, sum and sum of squares of ln(latency in ms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: u64,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    fn add(&mut self, duration_us: i64) {
        let x = (duration_us.max(1) as f64 / 1000.0).ln();
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    fn merge(&mut self, o: &Moments) {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum / self.n as f64 }
    }

    /// Sample variance (n − 1).
    fn var(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
}

/// One hour of day of a target's history, all days of the week together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HourStats {
    /// Calls recorded in this hour of day over the history.
    pub calls: u64,
    /// Calendar hours of history behind it (zero-traffic ones included).
    pub hours: u64,
    /// `calls / hours`: the traffic this hour of day has on average.
    pub calls_per_hour: f64,
    /// Geometric mean latency, ms (0 without calls).
    pub geomean_ms: f64,
}

/// One (hour, weekday) cell.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    moments: Moments,
    hours: u64,
}

/// The rollups as of one refresh.
#[derive(Debug, Default)]
struct Snapshot {
    at: i64,
    /// By target: 24 × 7 cells, index `hour * 7 + weekday`.
    cells: BTreeMap<String, Vec<Cell>>,
}

/// What a refresh keeps between refreshes.
#[derive(Debug, Default)]
struct State {
    after_id: i64,
    refreshed_at: Option<i64>,
    /// By target, then the calendar hour's start (Unix ms).
    hours: HashMap<String, BTreeMap<i64, Moments>>,
}

/// The cached rollups; one per host, held by its telemetry.
pub struct Hourly {
    history_ms: i64,
    refresh_ms: i64,
    state: tokio::sync::Mutex<State>,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl Hourly {
    pub fn new(history_days: u64, refresh_secs: u64) -> Hourly {
        Hourly {
            history_ms: (history_days as i64).saturating_mul(DAY_MS),
            refresh_ms: (refresh_secs as i64).saturating_mul(1000),
            state: Default::default(),
            snapshot: Default::default(),
        }
    }

    /// Bring the rollups up to `now` if the last refresh is older than the
    /// refresh interval (or there was none); a store error leaves the
    /// previous rollups in place and is returned.
    pub async fn refresh(&self, db: &Db, now: i64) -> store::Result<()> {
        let mut state = self.state.lock().await;
        if state.refreshed_at.is_some_and(|at| now - at < self.refresh_ms) {
            return Ok(());
        }
        let from = now - self.history_ms;
        loop {
            let page = store::executions::durations_after(db, state.after_id, 10_000).await?;
            let Some(last) = page.last() else { break };
            state.after_id = last.id;
            for e in page {
                if e.started_at >= from {
                    let hour = e.started_at - e.started_at.rem_euclid(HOUR_MS);
                    state.hours.entry(e.target).or_default().entry(hour).or_default().add(e.duration_us);
                }
            }
        }
        state.hours.retain(|_, hours| {
            hours.retain(|start, _| *start + HOUR_MS > from);
            !hours.is_empty()
        });
        state.refreshed_at = Some(now);
        let mut snapshot = Snapshot { at: now, cells: BTreeMap::new() };
        let now_hour = now - now.rem_euclid(HOUR_MS);
        for (target, hours) in &state.hours {
            let mut cells = vec![Cell::default(); 24 * 7];
            for (start, m) in hours {
                let (h, d) = hour_and_weekday(*start);
                cells[h * 7 + d].moments.merge(m);
            }
            // Every calendar hour since the target's first, calls or not.
            let first = *hours.keys().next().unwrap_or(&now_hour);
            let mut at = first.max(from - from.rem_euclid(HOUR_MS));
            while at <= now_hour {
                let (h, d) = hour_and_weekday(at);
                cells[h * 7 + d].hours += 1;
                at += HOUR_MS;
            }
            snapshot.cells.insert(target.clone(), cells);
        }
        *self.snapshot.write() = Arc::new(snapshot);
        Ok(())
    }

    /// The rollups as metric points for the detectors: for each target,
    /// hour of day (`hour`, 0–23 UTC) and day of week (`weekday`, 0 =
    /// Monday) with history, `kaizen.hourly.calls` and `kaizen.hourly.hours`
    /// (calendar hours behind the cell), and with calls
    /// `kaizen.hourly.log_latency_mean` and `kaizen.hourly.log_latency_var`
    /// (of ln(latency in ms), sample variance). Dated at the refresh.
    pub fn points(&self) -> Vec<MetricPoint> {
        let snap = self.snapshot.read().clone();
        let mut out = Vec::new();
        for (target, cells) in &snap.cells {
            for (i, c) in cells.iter().enumerate().filter(|(_, c)| c.hours > 0 || c.moments.n > 0) {
                let tags = vec![
                    ("target".to_string(), target.clone()),
                    ("hour".to_string(), (i / 7).to_string()),
                    ("weekday".to_string(), (i % 7).to_string()),
                ];
                let mut point = |name: &str, value: f64| {
                    out.push(MetricPoint {
                        name: format!("{RESERVED_PREFIX}hourly.{name}"),
                        value,
                        timestamp_ms: snap.at,
                        tags: tags.clone(),
                    })
                };
                point("calls", c.moments.n as f64);
                point("hours", c.hours as f64);
                if c.moments.n > 0 {
                    point("log_latency_mean", c.moments.mean());
                    point("log_latency_var", c.moments.var());
                }
            }
        }
        out
    }

    /// The traffic and latency of `target` by hour of day (UTC, index =
    /// hour), all days of the week together, as of the last refresh;
    /// `None` when it has no recorded history. For scheduling: the quiet
    /// hours are those with the fewest `calls_per_hour`, and an hour whose
    /// `calls_per_hour` is too low cannot give a canary enough traffic.
    pub fn hourly_profile(&self, target: &str) -> Option<[HourStats; 24]> {
        let snap = self.snapshot.read().clone();
        let cells = snap.cells.get(target)?;
        let mut out = [HourStats::default(); 24];
        for (h, stats) in out.iter_mut().enumerate() {
            let mut m = Moments::default();
            let mut hours = 0;
            for c in &cells[h * 7..h * 7 + 7] {
                m.merge(&c.moments);
                hours += c.hours;
            }
            *stats = HourStats {
                calls: m.n,
                hours,
                calls_per_hour: if hours > 0 { m.n as f64 / hours as f64 } else { 0.0 },
                geomean_ms: if m.n > 0 { m.mean().exp() } else { 0.0 },
            };
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_weekdays_are_utc_from_monday() {
        // 2024-01-01T00:00Z was a Monday; 2024-01-06T15:30Z a Saturday.
        assert_eq!(hour_and_weekday(1_704_067_200_000), (0, 0));
        assert_eq!(hour_and_weekday(1_704_555_000_000), (15, 5));
        assert_eq!(hour_and_weekday(0), (0, 3));
    }

    #[test]
    fn moments_give_the_mean_and_sample_variance_of_log_latency() {
        let mut m = Moments::default();
        for us in [1000, 10_000, 100_000] {
            m.add(us);
        }
        let ln10 = 10f64.ln();
        assert!((m.mean() - ln10).abs() < 1e-12);
        assert!((m.var() - ln10 * ln10).abs() < 1e-9, "{}", m.var());
    }

    fn call(at: i64, ms: i64) -> crate::store::executions::Execution {
        crate::store::executions::Execution {
            target: "checkout".into(),
            version: "1.0.0".into(),
            started_at: at,
            duration_us: ms * 1000,
            outcome: crate::store::executions::Outcome::Ok,
            error_class: None,
            message: None,
            request: None,
        }
    }

    /// Two days of one 10 ms call an hour, three 40 ms ones at 14:00: the
    /// profile counts every calendar hour, busy or not; a refresh within
    /// the interval changes nothing, the next one reads only new calls.
    #[tokio::test]
    async fn the_profile_is_traffic_per_calendar_hour_and_refreshes_are_incremental() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite_file(&dir.path().join("kaizen.db")).await.unwrap();
        let monday = 1_704_067_200_000;
        let mut calls = Vec::new();
        for h in 0..48 {
            let at = monday + h * HOUR_MS + 60_000;
            let (n, ms) = if h % 24 == 14 { (3, 40) } else { (1, 10) };
            calls.extend((0..n).map(|k| call(at + k, ms)));
        }
        store::executions::insert_batch(&db, &calls).await.unwrap();
        let hourly = Hourly::new(14, 3600);
        let now = monday + 48 * HOUR_MS + 30 * 60_000;
        hourly.refresh(&db, now).await.unwrap();
        let p = hourly.hourly_profile("checkout").unwrap();
        assert_eq!((p[14].calls, p[14].hours, p[14].calls_per_hour), (6, 2, 3.0));
        assert!((p[14].geomean_ms - 40.0).abs() < 1e-9, "{:?}", p[14]);
        // Midnight: Monday's and Tuesday's had a call, Wednesday's (now) none yet.
        assert_eq!((p[0].calls, p[0].hours), (2, 3));
        assert!(hourly.hourly_profile("ledger").is_none());
        let names: std::collections::BTreeSet<String> = hourly.points().into_iter().map(|m| m.name).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("kaizen.hourly.")));

        store::executions::insert_batch(&db, &[call(now - 1000, 10)]).await.unwrap();
        hourly.refresh(&db, now + 1).await.unwrap();
        assert_eq!(hourly.hourly_profile("checkout").unwrap()[0].calls, 2, "cached within the refresh interval");
        hourly.refresh(&db, now + 3_600_000).await.unwrap();
        let p = hourly.hourly_profile("checkout").unwrap();
        assert_eq!((p[0].calls, p[14].calls), (3, 6), "only the new call was added");
    }
}
