//! `kaizen backtest`: replay recorded executions and pushed metrics through
//! detectors, window by window, and print what they would have found and
//! when — to tune a detector, or a rule on pushed metrics, on real history
//! before deploying it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kaizen_host::r#loop::prioritize::severity_name;
use kaizen_host::runtime::types::MetricPoint;
use kaizen_host::store::executions::{Execution, Outcome};
use kaizen_host::store::metrics::Metric;
use kaizen_host::telemetry::Aggregates;
use kaizen_host::{Runtime, RuntimeConfig};
use serde::{Deserialize, Serialize};

use crate::table;

#[derive(Args)]
pub struct BacktestArgs {
    /// Recorded executions in a database: `sqlite://PATH` or `postgres://…`.
    #[arg(long, conflicts_with_all = ["csv", "data_dir"])]
    database: Option<String>,
    /// A host's data directory (its `kaizen.db`).
    #[arg(long, conflicts_with = "csv")]
    data_dir: Option<PathBuf>,
    /// A CSV of executions with a header: target,version,started_at
    /// (Unix ms),duration_ms,outcome (ok|error|rejected)[,error_class].
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Pushed metrics in a CSV with a header: name,value,timestamp_ms,tags
    /// (tags as `key=value` pairs separated by `;`, or empty). Taken with
    /// the recorded ones of --database or --data-dir, if given.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// The host's configuration file: its `[[metrics.rules]]`,
    /// `metrics.lookback_secs` and `[runtime.plugin_config.*]` configure the
    /// detectors as `kaizen serve` would.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Detector modules to run (default: the bundled detectors).
    #[arg(long = "detector")]
    detectors: Vec<PathBuf>,
    /// Detection window, seconds (at least 1).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Baseline before each window, seconds (at least 1).
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    baseline: u64,
    /// Step between windows, seconds (default: the window; at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    step: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Deserialize)]
struct CsvRow {
    target: String,
    version: String,
    started_at: i64,
    duration_ms: f64,
    outcome: String,
    #[serde(default)]
    error_class: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MetricRow {
    name: String,
    value: f64,
    timestamp_ms: i64,
    #[serde(default)]
    tags: Option<String>,
}

/// One finding, merged over the consecutive windows it fired in.
#[derive(Debug, Serialize)]
struct Found {
    detector: String,
    target: String,
    kind: String,
    severity: String,
    first_at: i64,
    last_at: i64,
    windows: u32,
    summary: String,
}

/// Check the CSV's header names every column of `required`: a file of the
/// wrong kind (a metrics file given as executions) or without a header is
/// named as such, not read as "nothing recorded".
fn check_header<R: std::io::Read>(r: &mut csv::Reader<R>, path: &Path, required: &[&str]) -> anyhow::Result<()> {
    let header = r.headers().with_context(|| format!("cannot read {}", path.display()))?.clone();
    let missing: Vec<&str> = required.iter().copied().filter(|c| !header.iter().any(|h| h.trim() == *c)).collect();
    if !missing.is_empty() {
        bail!(
            "{}: the header has no column {} (the first line names the columns: {}; it reads {:?})",
            path.display(),
            missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
            required.join(","),
            header.iter().collect::<Vec<_>>().join(",")
        );
    }
    Ok(())
}

fn read_csv(path: &PathBuf) -> anyhow::Result<Vec<Execution>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    check_header(&mut r, path, &["target", "version", "started_at", "duration_ms", "outcome"])?;
    let mut out = Vec::new();
    for (i, row) in r.deserialize::<CsvRow>().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), i + 2))?;
        let outcome = Outcome::parse(&row.outcome).with_context(|| {
            format!("{} row {}: outcome `{}` is not ok, error or rejected", path.display(), i + 2, row.outcome)
        })?;
        if !row.duration_ms.is_finite() || row.duration_ms < 0.0 {
            bail!("{} row {}: duration_ms must be a non-negative number", path.display(), i + 2);
        }
        out.push(Execution {
            target: row.target,
            version: row.version,
            started_at: row.started_at,
            duration_us: (row.duration_ms * 1000.0) as i64,
            outcome,
            error_class: row.error_class.filter(|c| !c.is_empty()),
            message: None,
            request: None,
        });
    }
    Ok(out)
}

fn read_metrics_csv(path: &PathBuf) -> anyhow::Result<Vec<Metric>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    check_header(&mut r, path, &["name", "value", "timestamp_ms"])?;
    let mut out = Vec::new();
    for (i, row) in r.deserialize::<MetricRow>().enumerate() {
        let at = || format!("{} row {}", path.display(), i + 2);
        let row = row.with_context(at)?;
        if row.name.is_empty() || !row.value.is_finite() {
            bail!("{}: a metric needs a name and a finite value", at());
        }
        let mut tags = BTreeMap::new();
        for pair in row.tags.as_deref().unwrap_or("").split(';').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("{}: tag {pair:?} is not key=value (pairs separated by `;`)", at()))?;
            tags.insert(k.trim().to_string(), v.trim().to_string());
        }
        out.push(Metric { name: row.name, value: row.value, at: row.timestamp_ms, tags });
    }
    Ok(out)
}

async fn read_db(url: &str) -> anyhow::Result<(Vec<Execution>, Vec<Metric>)> {
    let db = kaizen_host::store::Db::connect(url).await.with_context(|| format!("cannot open {url}"))?;
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = kaizen_host::store::executions::range(&db, i64::MIN, i64::MAX, after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        out.extend(page.into_iter().map(|s| s.execution));
    }
    let metrics = kaizen_host::store::metrics::since(&db, i64::MIN, i64::MAX).await?;
    Ok((out, metrics))
}

pub fn run(a: BacktestArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (execs, mut metrics) = match (&a.csv, &a.database, &a.data_dir) {
        (Some(csv), _, _) => (read_csv(csv)?, Vec::new()),
        (_, Some(url), _) => rt.block_on(read_db(url))?,
        (_, _, Some(dir)) => rt.block_on(read_db(&format!("sqlite://{}", dir.join("kaizen.db").display())))?,
        _ if a.metrics.is_some() => (Vec::new(), Vec::new()),
        _ => bail!(
            "give the recorded executions or metrics: --csv FILE, --database URL, --data-dir DIR or --metrics FILE"
        ),
    };
    if let Some(path) = &a.metrics {
        metrics.extend(read_metrics_csv(path)?);
    }
    if execs.is_empty() && metrics.is_empty() {
        bail!("no executions or metrics recorded there: nothing to backtest");
    }
    metrics.sort_by_key(|m| m.at);
    let points: Vec<MetricPoint> = metrics
        .iter()
        .map(|m| MetricPoint {
            name: m.name.clone(),
            value: m.value,
            timestamp_ms: m.at,
            tags: m.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
        .collect();
    // The detectors configured as the host would configure them.
    let host_config = match &a.config {
        Some(path) => kaizen_service::ServeConfig::load(Some(path))?.host,
        None => kaizen_host::host::HostConfig::default(),
    };
    let mut runtime_config =
        RuntimeConfig { cache_dir: host_config.runtime.cache_dir.clone(), ..RuntimeConfig::default() };
    runtime_config.plugin_config = host_config.runtime.plugin_config.clone();
    kaizen_host::metric_rules::install(&mut runtime_config, &host_config.metrics);
    let lookback = host_config.metrics.lookback_ms(a.window, &host_config.runtime.plugin_config);
    let scratch = tempfile::tempdir()?;
    let runtime = Runtime::new(scratch.path(), runtime_config)?;
    let detectors = if a.detectors.is_empty() {
        kaizen_plugins::BUNDLED
            .iter()
            .filter(|g| g.package.starts_with("detector-"))
            .map(|g| Ok(runtime.load(g.package, &g.load()?)?))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        a.detectors.iter().map(|p| Ok(runtime.load_file(p)?)).collect::<anyhow::Result<Vec<_>>>()?
    };
    if let Some(d) = detectors.iter().find(|d| d.kind() != kaizen_host::runtime::types::PluginKind::Detector) {
        bail!("{} is not a detector", d.name());
    }

    let aggs = Aggregates::new(10_000, i64::MAX / 4);
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for e in &execs {
        aggs.observe(e);
        first = first.min(e.started_at);
        last = last.max(e.started_at);
    }
    for m in &metrics {
        first = first.min(m.at);
        last = last.max(m.at);
    }
    let (window, baseline) = (a.window as i64 * 1000, a.baseline as i64 * 1000);
    let step = a.step.unwrap_or(a.window) as i64 * 1000;
    let ends: Vec<i64> = (0..).map(|i| first + window + i * step).take_while(|t| *t <= last + step).collect();
    let bar = ProgressBar::new((ends.len() * detectors.len()) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} detector runs {msg}").expect("progress template"),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut found: BTreeMap<(String, String, String), Found> = BTreeMap::new();
    let mut errors = Vec::new();
    for now in ends {
        let from = points.partition_point(|p| p.timestamp_ms < now - lookback);
        let to = points.partition_point(|p| p.timestamp_ms <= now);
        let input = aggs.detection_input(now, window, baseline, points[from..to.max(from)].to_vec());
        for d in &detectors {
            bar.inc(1);
            match rt.block_on(d.detect(&input)) {
                Ok(fs) => {
                    for f in fs {
                        let key = (d.name().to_string(), f.target.clone(), f.kind.clone());
                        let e = found.entry(key).or_insert_with(|| Found {
                            detector: d.name().into(),
                            target: f.target.clone(),
                            kind: f.kind.clone(),
                            severity: severity_name(f.severity).into(),
                            first_at: now,
                            last_at: now,
                            windows: 0,
                            summary: f.summary.clone(),
                        });
                        e.last_at = now;
                        e.windows += 1;
                    }
                }
                Err(e) => errors.push(format!("{} at {now}: {e}", d.name())),
            }
        }
    }
    bar.finish_and_clear();
    let mut found: Vec<Found> = found.into_values().collect();
    found.sort_by_key(|f| (f.first_at, f.detector.clone()));
    if a.json {
        out!(
            "{}",
            serde_json::json!({ "executions": execs.len(), "metrics": metrics.len(), "from": first, "to": last, "findings": found, "errors": errors })
        );
        return Ok(());
    }
    out!(
        "{} executions and {} metric points from {} to {} ({:.1} h), {} detector(s), {} s windows",
        execs.len(),
        metrics.len(),
        table::date(first),
        table::date(last),
        (last - first) as f64 / 3.6e6,
        detectors.len(),
        a.window
    );
    if found.is_empty() {
        out!("no findings");
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|f| {
                vec![
                    format!("{} (+{}s)", table::date(f.first_at), (f.first_at - first) / 1000),
                    table::date(f.last_at),
                    f.windows.to_string(),
                    f.severity.clone(),
                    f.detector.clone(),
                    f.target.clone(),
                    f.kind.clone(),
                    f.summary.clone(),
                ]
            })
            .collect();
        table::print(
            &["FIRST (WINDOW END)", "LAST", "WINDOWS", "SEVERITY", "DETECTOR", "TARGET", "KIND", "SUMMARY"],
            &rows,
        );
    }
    for e in &errors {
        note!("detector error: {e}");
    }
    Ok(())
}
