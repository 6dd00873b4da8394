//! `kaizen serve` and `kaizen demo`.
//!
//! The demo is the service itself with the bundled calculator units, a
//! built-in traffic generator, loop timings shortened so the story fits in
//! a couple of minutes, and a narrator printing the loop's events.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use kaizen_host::events::{Envelope, Event, WatchResult};
use kaizen_host::host::Host;
use kaizen_host::traffic::Traffic;
use kaizen_service::{ServeConfig, Service};

/// `println!` that ignores a closed stdout: a server whose output pipe goes
/// away (`kaizen serve | head -1`) must keep serving, not panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// TOML configuration file (see kaizen.example.toml).
    #[arg(long, short, env = "KAIZEN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the file and KAIZEN_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Watch folder (overrides the file and KAIZEN_WATCH_DIR).
    #[arg(long)]
    watch_dir: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:7700 (overrides the file and KAIZEN_LISTEN).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// `postgres://…` or `sqlite://…` (overrides the file and KAIZEN_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// Run the demo story on this service (see `kaizen demo`).
    #[arg(long)]
    demo: bool,
    /// Demo: calls per second of the built-in traffic generator, issued on
    /// schedule whatever earlier calls take (at most 64 in flight; calls
    /// due beyond that are dropped and counted).
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Demo: stop once the story has been told instead of serving on.
    #[arg(long)]
    exit_after_story: bool,
}

#[derive(Args, Clone)]
pub struct DemoArgs {
    /// Data directory of the demo (its database is started afresh).
    #[arg(long, default_value = "kaizen-demo")]
    data_dir: PathBuf,
    /// Listen address (a free port is picked if this one is taken).
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: std::net::SocketAddr,
    /// `postgres://…` to keep the state in PostgreSQL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Calls per second of the built-in traffic generator, issued on
    /// schedule whatever earlier calls take (at most 64 in flight; calls
    /// due beyond that are dropped and counted).
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Stop once the story has been told instead of serving on.
    #[arg(long)]
    exit_after_story: bool,
}

pub fn demo(a: DemoArgs) -> anyhow::Result<()> {
    // A fresh state each run: the demo tells its story from the start.
    for f in ["kaizen.db", "kaizen.db-wal", "kaizen.db-shm", "tokens.json"] {
        let _ = std::fs::remove_file(a.data_dir.join(f));
    }
    serve(ServeArgs {
        config: None,
        data_dir: Some(a.data_dir),
        watch_dir: None,
        listen: Some(a.listen),
        database_url: a.database_url,
        demo: true,
        rate: a.rate,
        exit_after_story: a.exit_after_story,
    })
}

/// The demo's log filter: warnings only, and not the control changes and
/// watch-folder refusals the narration already tells (each operator action
/// is told once). `KAIZEN_LOG` still wins.
const DEMO_LOG: &str = "warn,kaizen_host::safety=error,kaizen_service::watch=error";

/// The demo's p95 budget for batcher, in ms: under what its shipped knobs
/// give, over what good ones give.
const BATCHER_BUDGET_MS: &str = "1.0";

/// Trials the demo's second act watches the tuner make.
const TUNER_TRIALS: usize = 8;

fn demo_config(c: &mut ServeConfig) {
    // The story starts from calculator 1.0.0, which crashes by design.
    c.seed_unit = true;
    let h = &mut c.host;
    h.telemetry.sample_requests_every = 5;
    h.improve.interval_secs = 10.0;
    h.improve.min_interval_secs = 2.0;
    h.improve.window_secs = 30;
    h.improve.baseline_secs = 30;
    h.improve.prove.shadow_secs = 3;
    h.safety.limits.judge.max_samples = 600;
    h.safety.limits.bake_secs = 3;
    // calculator 1.0.0 fails a third of its calls by design: the default
    // 50 % would leave a breaker little margin over a short window, and
    // a breaker that switched the whole unit off would leave the candidates
    // no traffic to be judged on. Both breakers: the strategy's and the
    // host's own, whose 20-call window sees more than half of them fail now
    // and then once a busy machine reorders the calls' ends (a third
    // failing, P(more than 10 of 20) ≈ 4 % per window).
    h.runtime.plugin_config.entry("circuit-breaker".into()).or_default().insert("failure_rate".into(), "0.8".into());
    h.recovery.breaker.failure_rate = 0.8;
    // The second act: a p95 budget batcher does not meet with its shipped
    // knobs, so the latency finding stands and the tuner works on it.
    h.runtime
        .plugin_config
        .entry("latency-budget".into())
        .or_default()
        .insert("batcher".into(), BATCHER_BUDGET_MS.into());
    c.health.interval_secs = 10;
}

pub fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut config = ServeConfig::load(a.config.as_deref())?;
    let mut by_flag = |key: &str, flag: &str| {
        config.provenance.insert(key.into(), format!("flag {flag}"));
    };
    if let Some(d) = a.data_dir.clone() {
        by_flag("data_dir", "--data-dir");
        config.host.data_dir = d;
    }
    if let Some(d) = a.watch_dir.clone() {
        by_flag("watch_dir", "--watch-dir");
        config.watch_dir = Some(d);
    }
    if let Some(l) = a.listen {
        by_flag("listen", "--listen");
        config.listen = l;
    }
    if let Some(u) = a.database_url.clone() {
        by_flag("database_url", "--database-url");
        config.host.database_url = Some(u);
    }
    if a.demo {
        // The story is told with the bundled units and detectors.
        if !config.bundled {
            anyhow::bail!(
                "the demo needs the bundled plugins, and bundled = false ({}) turns them off",
                config.provenance.get("bundled").map_or("default", String::as_str)
            );
        }
        demo_config(&mut config);
    }
    let json = match config.log.format.as_str() {
        "json" => true,
        "human" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    crate::logs::init_logs(if a.demo { DEMO_LOG } else { &config.log.filter }, json);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(config, a))
}

async fn run(mut config: ServeConfig, a: ServeArgs) -> anyhow::Result<()> {
    let config_data_dir = config.host.data_dir.clone();
    let window_secs = config.host.improve.window_secs;
    let service = match Service::start(config.clone()).await {
        Err(e) if a.demo && is_addr_in_use(&e) => {
            config.listen.set_port(0);
            Service::start(config).await?
        }
        other => other?,
    };
    announce(&service, &config_data_dir, a.demo);
    let story = a.demo.then(|| {
        let host = service.host.clone();
        let (rate, window_secs) = (a.rate, window_secs);
        tokio::spawn(async move { tell_story(host, rate, window_secs).await })
    });
    let exit = async {
        match story {
            Some(story) if a.exit_after_story => {
                let traffic = story.await.context("the demo story failed")??;
                drop(traffic);
                anyhow::Ok(())
            }
            Some(story) => {
                tokio::select! {
                    r = story => {
                        let traffic = r.context("the demo story failed")??;
                        say!("\nThe story is told; the host keeps serving (Ctrl-C to stop).");
                        shutdown_signal().await;
                        drop(traffic);
                    }
                    _ = shutdown_signal() => {}
                }
                Ok(())
            }
            None => {
                shutdown_signal().await;
                Ok(())
            }
        }
    };
    let result = exit.await;
    tracing::info!("shutting down: finishing in-flight calls, flushing telemetry");
    service.shutdown().await?;
    result
}

fn is_addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse))
}

/// What an operator needs to know at start. Tokens are shown only when they
/// were generated by this start.
fn announce(s: &Service, data_dir: &std::path::Path, demo: bool) {
    let url = format!("http://{}", s.addr);
    say!("Kaizen {} listening on {url}", env!("CARGO_PKG_VERSION"));
    if s.tokens_generated {
        say!("  admin token:   {}", s.tokens.admin);
        say!("  invoke token:  {}", s.tokens.invoke);
        say!("  metrics token: {} (reads /metrics only)", s.tokens.metrics);
        say!("  (generated now and kept in tokens.json in the data directory; they will not be shown again)");
        say!("Dashboard: {url}/dashboard#token={}", s.tokens.admin);
    } else {
        say!("Dashboard: {url}/dashboard (asks for the admin token)");
    }
    if let Some(w) = &s.watch_dir {
        say!("Watch folder: {}", w.display());
    }
    client_hint(&kaizen_service::serve::client_url(s.addr), data_dir);
    if s.restored.slots > 0 {
        say!("Restored {} slot(s) from the store", s.restored.slots);
    }
    for p in &s.bundled_deployed {
        say!("  deployed {p}");
    }
    if !demo {
        say!("Ready. Ctrl-C (or SIGTERM) stops gracefully.");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// How client commands find this host. Run from the directory that holds
/// the data directory (`kaizen-data`, or the demo's `kaizen-demo`), they
/// read its `tokens.json` and `url` themselves; from anywhere else, these
/// two variables say the same.
fn client_hint(url: &str, data_dir: &std::path::Path) {
    let here = ["kaizen-data", "kaizen-demo"].iter().any(|d| data_dir == std::path::Path::new(d));
    if here {
        say!(
            "Client commands (`kaizen status`, `kaizen deploy`, …) run from this directory find this host by themselves."
        );
        say!("From another directory:");
    } else {
        say!("Client commands find this host with:");
    }
    let abs = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    say!("  export KAIZEN_URL={url}");
    say!("  export KAIZEN_DATA_DIR={}", shell_word(&abs.display().to_string()));
}

/// `w` as one shell word (quoted when it holds anything but plain
/// path characters).
fn shell_word(w: &str) -> String {
    if w.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,".contains(c)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The demo's narration: one line per loop event worth telling, and one
/// per operator action — a deploy, a rollback, a pause or stop, a file
/// picked up from the watch folder — each told once. A watch-folder pickup
/// is published twice (the deploy or candidate it made, then the watch
/// folder's own report), so the narrator remembers the versions it just
/// told and skips the second report of the same one.
#[derive(Default)]
struct Narrator {
    /// (unit, version) deployed or queued lately, newest last.
    told: std::collections::VecDeque<(String, String)>,
}

impl Narrator {
    fn remember(&mut self, name: &str, version: &str) {
        self.told.push_back((name.to_string(), version.to_string()));
        if self.told.len() > 16 {
            self.told.pop_front();
        }
    }

    /// Whether `name` `version` was just told (and forget it: a second
    /// pickup of the same file later is news again).
    fn already_told(&mut self, name: &str, version: &str) -> bool {
        let found = self.told.iter().position(|(n, v)| n == name && v == version);
        found.map(|i| self.told.remove(i)).is_some()
    }

    fn narrate(&mut self, e: &Envelope) -> Option<String> {
        let target = &e.target;
        Some(match &e.event {
            Event::Finding { new: true, severity, priority, kind, summary, version, .. } => {
                let version = version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
                format!("finding   {kind} on {target}{version} (severity {severity}, priority {priority}): {summary}")
            }
            Event::Finding { id, kind, status, reason, version, .. } => {
                let version = version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
                format!("finding   {id} {kind} on {target}{version}: {status}, {reason}")
            }
            Event::Candidate { version, .. } => {
                self.remember(target, version);
                format!("candidate {target} {version} queued to be proven")
            }
            Event::CandidateWithdrawn { version, reason, .. } => {
                format!("candidate {target} {version} withdrawn: {reason}")
            }
            Event::Deploy { version, reason, .. } => {
                self.remember(target, version);
                format!("deployed  {target} {version}: {reason}")
            }
            Event::VersionReplaced { version, replaced_sha256, sha256 } => {
                format!("replaced  {target} {version}: its bytes were {replaced_sha256:.12}, now {sha256:.12}")
            }
            Event::Watch { result, name, version, reason } => {
                let (name, version) = (name.as_deref().unwrap_or("?"), version.as_deref().unwrap_or("?"));
                match result {
                    WatchResult::Deployed | WatchResult::Candidate if self.already_told(name, version) => return None,
                    WatchResult::Deployed => format!("watch     {target}: deployed {name} {version}"),
                    WatchResult::Candidate => format!("watch     {target}: {name} {version} queued to be proven"),
                    WatchResult::Unchanged => {
                        format!("watch     {target}: {name} {version} already serves; nothing to do")
                    }
                    WatchResult::Rejected => {
                        format!("watch     {target} rejected: {}", reason.as_deref().unwrap_or("no reason given"))
                    }
                    WatchResult::Retry => return None,
                }
            }
            Event::Proof { candidate_version, steps, .. } => {
                let steps: Vec<String> = steps.iter().map(|p| format!("{} {}", p.step, p.result)).collect();
                format!("proof     {target} {candidate_version}: {}", steps.join(", "))
            }
            Event::Checkpoint { .. } => format!("checkpoint {target} serving, saved for rollback"),
            Event::CanaryStep { percent, control_percent: None, .. } => {
                format!("canary    {target} → {percent:?}% of calls")
            }
            Event::CanaryStep { percent, control_percent: Some(c), .. } => {
                format!("canary    {target} → {percent:?}% of calls, {c:?}% to a matched control")
            }
            Event::Verdict { percent, judgement: j, .. } => format!(
                "verdict   at {percent:?}%: {} ({} vs {} calls) {}",
                wire_name(j.verdict),
                j.candidate_samples,
                j.baseline_samples,
                j.reason
            ),
            Event::Rollback { from, to, reason, .. } => format!("ROLLED BACK {target} {from} → {to}: {reason}"),
            Event::RolloutAborted { candidate_version, by, reason, .. } => {
                format!("aborted   rollout of {target} {candidate_version} by {by}: {reason}")
            }
            Event::Control { action, reason, by, .. } => format!("control   {} by {by}: {reason}", wire_name(action)),
            Event::Proposal { improver, change, accepted: true, rationale, .. } => {
                format!("proposal  {improver} on {target}: {change} — {rationale}")
            }
            Event::Proposal { improver, change, accepted: false, reason, .. } => {
                format!("proposal  {improver} on {target}: {change} refused: {reason}")
            }
            Event::ImproverFailed { improver, error, .. } => {
                format!("improver  {improver} failed on {target}: {error}")
            }
            Event::ImproversSpent { version, trials, .. } => {
                format!("improvers done with {target} {version}: {trials} trials in a row without a promotion")
            }
            _ => return None,
        })
    }
}

/// A unit variant's name as written on the wire (`pass`, `emergency-stop`).
fn wire_name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The first event on `rx` that `pick` maps to a value, skipping what a
/// lagging receiver missed; `None` when the channel closes. Callers bound
/// the wait with a timeout.
async fn next_event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<Envelope>,
    mut pick: impl FnMut(Envelope) -> Option<T>,
) -> Option<T> {
    loop {
        match rx.recv().await {
            Ok(e) => {
                if let Some(v) = pick(e) {
                    return Some(v);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return None,
        }
    }
}

/// Wait for the current improvement of `target` to end; returns its final
/// state.
async fn wait_end(rx: &mut tokio::sync::broadcast::Receiver<Envelope>, target: &str) -> String {
    let end = next_event(rx, |e| match e {
        Envelope { target: t, event: Event::ImprovementEnded { state, .. }, .. } if t == target => {
            Some(state.to_string())
        }
        _ => None,
    });
    match tokio::time::timeout(Duration::from_secs(300), end).await {
        Ok(state) => state.unwrap_or_else(|| "closed".into()),
        Err(_) => "undecided after 5 minutes (see the dashboard and the audit trail)".into(),
    }
}

/// What the detectors count of `calculator` `version` as a cycle is
/// triggered at `at`, from the same aggregates they read, and what the
/// generator did by then: one period for both. The aggregates' buckets are
/// 10 s wide, so their counts cannot be cut at an earlier moment: they are
/// read at `at`, and every call so far is in the window.
struct Counted {
    at: i64,
    counts: kaizen_host::telemetry::aggregates::WindowCounts,
    generator: kaizen_host::traffic::TrafficCounts,
}

impl Counted {
    fn now(host: &Host, traffic: &Traffic, version: &str, window_secs: u64) -> Counted {
        let at = kaizen_host::store::now_ms();
        let generator = traffic.counts();
        let counts =
            host.telemetry.aggregates().counts("calculator", Some(version), at - window_secs as i64 * 1000, at + 1);
        Counted { at, counts, generator }
    }
}

/// The detectors' counts told: calls, their rate over the time the traffic
/// has run, failures, and apart from the calls the attempts recovery added,
/// the calls it answered and those an open circuit refused; then what the
/// generator itself made and dropped.
fn counted(n: &Counted, version: &str, started_at: i64) -> Vec<String> {
    let (c, g) = (&n.counts, &n.generator);
    let secs = ((n.at - started_at) as f64 / 1000.0).max(0.001);
    let share = if c.calls == 0 { 0.0 } else { c.unit_errors as f64 * 100.0 / c.calls as f64 };
    vec![
        format!(
            "counted by the detectors: calculator {version} had {} calls in {secs:.1} s ({:.1} calls/s), {} failed ({share:.1} %)",
            c.calls,
            c.calls as f64 / secs,
            c.unit_errors,
        ),
        format!(
            "  a call counts once: recovery made {} more attempts and answered {} calls that had failed at first, \
             the open circuit refused {} more; \
             the generator has made {} calls and dropped {} (calls due while all {} callers were busy)",
            c.attempts - c.calls,
            c.recovered,
            c.refused,
            g.issued,
            g.dropped,
            kaizen_host::traffic::DEFAULT_CONCURRENCY,
        ),
    ]
}

async fn tell_story(host: std::sync::Arc<Host>, rate: u64, window_secs: u64) -> anyhow::Result<Traffic> {
    let mut narration = host.events.subscribe();
    tokio::spawn(async move {
        let mut narrator = Narrator::default();
        loop {
            match narration.recv().await {
                Ok(e) => {
                    if let Some(line) = narrator.narrate(&e) {
                        say!("    {line}");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    let mut ends = host.events.subscribe();
    let load = |package: &str| -> anyhow::Result<_> {
        let g = kaizen_plugins::BUNDLED.iter().find(|g| g.package == package).context("bundled unit")?;
        Ok(host.runtime.load(g.package, &g.load()?)?)
    };
    let (v2, v3) = (load("unit-calculator-v2")?, load("unit-calculator-v3")?);

    say!("\n1. calculator 1.0.0 serves {rate} calls/s; a third of them divide by zero and crash it");
    // A cycle now, and the traffic as it ends: the next scheduled cycle is
    // an interval away, so the cycle triggered below, 8 s in, is the one
    // that sees the calls first, and what is told of its counts and of the
    // generator's is one period (however long start-up took on a busy
    // machine).
    let mut cycles = host.events.subscribe();
    host.improve.trigger();
    let cycle_ended = next_event(&mut cycles, |e| matches!(e.event, Event::Cycle { .. }).then_some(()));
    let _ = tokio::time::timeout(Duration::from_secs(60), cycle_ended).await;
    let mut first = host.events.subscribe();
    let started_at = kaizen_host::store::now_ms();
    let traffic = Traffic::start(host.invoker.clone(), rate);
    tokio::time::sleep(Duration::from_secs(8)).await;
    // The detectors' look at the calls, told in their own counts.
    let version = host.runtime.slot("calculator").map_or_else(|| "1.0.0".into(), |s| s.current().version().to_string());
    let seen_at_trigger = Counted::now(&host, &traffic, &version, window_secs);
    host.improve.trigger();
    // Its findings, told by the narrator as they open, then its counts.
    let opened = next_event(&mut first, |e| {
        (e.target == "calculator" && matches!(e.event, Event::Finding { new: true, .. })).then_some(())
    });
    let _ = tokio::time::timeout(Duration::from_secs(60), opened).await;
    for line in counted(&seen_at_trigger, &version, started_at) {
        say!("    {line}");
    }

    say!("\n2. calculator 2.0.0 arrives as a candidate: the loop detects, proves, rolls out stepwise, judges");
    host.improve.submit(v2, "demo").await?;
    host.improve.trigger();
    let end = wait_end(&mut ends, "calculator").await;
    say!("    → 2.0.0 {end}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    say!("\n3. calculator 3.0.0 (correct, but slow) arrives as a candidate");
    host.improve.submit(v3, "demo").await?;
    host.improve.trigger();
    let end = wait_end(&mut ends, "calculator").await;
    say!("    → 3.0.0 {end}");
    if let Some(slot) = host.runtime.slot("calculator") {
        let cur = slot.current();
        say!("    serving calculator {} (sha256 {}…)", cur.version(), &cur.id()[..16]);
    }

    say!(
        "\n4. batcher, a batch job with two knobs, has a p95 budget of {BATCHER_BUDGET_MS} ms it does not meet; \
         nobody supplies a candidate: the tuner proposes configs, each proven, canaried and judged"
    );
    let batcher = load("unit-batcher")?;
    host.deploy(batcher, "demo", "the second act").await?;
    let _batch_traffic = Traffic::to(
        host.invoker.clone(),
        "batcher",
        kaizen_host::traffic::batcher_request,
        40,
        kaizen_host::traffic::DEFAULT_CONCURRENCY,
    );
    for trial in 1..=TUNER_TRIALS {
        host.improve.trigger();
        match tokio::time::timeout(Duration::from_secs(150), wait_end(&mut ends, "batcher")).await {
            Ok(end) => say!("    → trial {trial} of {TUNER_TRIALS}: {end}"),
            Err(_) => {
                say!("    → no trial ended within 150 s (see `kaizen findings list` and the audit trail)");
                break;
            }
        }
    }
    if let Some(slot) = host.runtime.slot("batcher") {
        say!("    serving batcher {}", slot.current().version());
    }
    let fixes = kaizen_host::r#loop::knowledge::fixes(&host.db, &host.runtime, Some("batcher"), None).await?;
    for f in fixes {
        let measured: Vec<String> =
            f.measured.iter().map(|m| format!("{} {:+.1} %", m.metric, m.change * 100.0)).collect();
        say!("    knowledge: {} fixed {} on batcher ({})", f.change, f.finding_kind, measured.join(", "));
    }

    let s = host.improve.stats();
    say!(
        "\nloop: {} cycles, {} opportunities, {} attempted, {} promoted, {} rolled back",
        s.cycles_completed,
        s.opportunities_detected,
        s.improvements_attempted,
        s.improvements_deployed,
        s.improvements_rolled_back
    );
    Ok(traffic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(target: &str, event: Event) -> Envelope {
        Envelope { at: 0, target: target.into(), event }
    }

    fn watch(result: WatchResult, version: &str) -> Event {
        Event::Watch { result, name: Some("calculator".into()), version: Some(version.into()), reason: None }
    }

    /// An operator action is told once: a watch-folder pickup publishes
    /// the deploy (or candidate) it made and then its own report.
    #[test]
    fn each_operator_action_is_told_once() {
        let mut n = Narrator::default();
        let deploy = Event::Deploy {
            version: "2.0.0".into(),
            sha256: "ab".into(),
            reason: "dropped in the watch folder as c2.wasm".into(),
        };
        let lines: Vec<String> = [
            envelope("calculator", deploy),
            envelope("c2.wasm", watch(WatchResult::Deployed, "2.0.0")),
            envelope("calculator", Event::Candidate { version: "3.0.0".into(), sha256: "cd".into() }),
            envelope("c3.wasm", watch(WatchResult::Candidate, "3.0.0")),
            envelope("c3.wasm", watch(WatchResult::Candidate, "3.0.0")),
        ]
        .iter()
        .filter_map(|e| n.narrate(e))
        .collect();
        assert_eq!(
            lines,
            [
                "deployed  calculator 2.0.0: dropped in the watch folder as c2.wasm",
                "candidate calculator 3.0.0 queued to be proven",
                "watch     c3.wasm: calculator 3.0.0 queued to be proven",
            ],
            "the second pickup of the same file is news again; the echo of the first is not"
        );
    }

    /// A finding's severity and priority are two things, named as such.
    #[test]
    fn a_finding_names_its_severity_and_its_priority() {
        let mut n = Narrator::default();
        let e = Event::Finding {
            id: 1,
            kind: "failure-burst".into(),
            severity: "critical".into(),
            priority: "low".into(),
            summary: "crashes".into(),
            new: true,
            status: kaizen_host::store::findings::FindingStatus::Open,
            version: Some("1.0.0".into()),
            reason: String::new(),
            previous: None,
        };
        let line = n.narrate(&envelope("calculator", e)).unwrap();
        assert_eq!(line, "finding   failure-burst on calculator 1.0.0 (severity critical, priority low): crashes");
    }
}
