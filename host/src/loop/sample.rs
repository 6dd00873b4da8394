//! Step 1, sample: every target's window of calls against its baseline,
//! with the metrics pushed from outside (those of the metric lookback, so a
//! rule's `for` can be judged) and the host's hourly rollups of each
//! target's history (`kaizen.hourly.*`), and the load behind each target;
//! in a fleet, every host's calls.

use std::collections::HashMap;
use std::sync::Arc;

use super::Ctx;
use crate::runtime::types::{DetectionInput, MetricPoint};
use crate::store::{self, now_ms};

/// What one cycle saw.
pub struct Sample {
    pub at: i64,
    pub input: Arc<DetectionInput>,
    /// Calls per target in the window.
    pub load: HashMap<String, u64>,
    /// Calls and failures across all targets in the window.
    pub calls: u64,
    pub failures: u64,
}

pub async fn sample(ctx: &Ctx) -> Sample {
    let now = now_ms();
    let window_ms = ctx.config.window_secs as i64 * 1000;
    let lookback_ms = ctx.metric_lookback_ms.max(window_ms);
    let metrics = match store::metrics::newest_since(&ctx.db, now - lookback_ms, ctx.max_metric_points as i64).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("cannot read pushed metrics; sampling without them: {e}");
            Vec::new()
        }
    };
    let mut metric_points: Vec<MetricPoint> = metrics
        .into_iter()
        .map(|m| MetricPoint { name: m.name, value: m.value, timestamp_ms: m.at, tags: m.tags.into_iter().collect() })
        .collect();
    let hourly = ctx.telemetry.hourly();
    if let Err(e) = hourly.refresh(&ctx.db, now).await {
        tracing::warn!("cannot bring the hourly rollups up to date; using the last ones: {e}");
    }
    metric_points.extend(hourly.points());
    let baseline_ms = ctx.config.baseline_secs as i64 * 1000;
    // In a fleet the leader detects on every host's calls.
    if let Err(e) = ctx.telemetry.refresh_peers(now - window_ms - baseline_ms).await {
        tracing::warn!("cannot read the other hosts' aggregates; detecting on the last read: {e}");
    }
    let input = ctx.telemetry.aggregates().detection_input(now, window_ms, baseline_ms, metric_points);
    let mut load: HashMap<String, u64> = HashMap::new();
    let (mut calls, mut failures) = (0, 0);
    for t in &input.targets {
        *load.entry(t.target.clone()).or_default() += t.current.executions;
        calls += t.current.executions;
        failures += t.current.failures;
    }
    Sample { at: now, input: Arc::new(input), load, calls, failures }
}
