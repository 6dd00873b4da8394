//! Client commands: drive a running host through its HTTP API.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressBar;
use kaizen_host::r#loop::queue::QueuedCandidate;
use kaizen_host::store::improvements::Improvement;
use kaizen_host::store::modules::ModuleRecord;
use kaizen_service::api::findings::FindingActionBody;
use kaizen_service::api::observe::UnitStats;
use kaizen_service::tokens::Tokens;
use kaizen_service::views::{
    ControlState, CycleReport, EffectiveConfig, ErrorBody, FindingRecord, HistoryEntry, Reason, RolledBack, Status,
    TaskState, TaskStatus, Uploaded, VersionView,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::table;

/// How client commands reach a running host.
#[derive(Args, Clone)]
pub struct Remote {
    /// The host's base URL (default: where the host whose data directory
    /// is used says it listens, else http://127.0.0.1:7700).
    #[arg(long, env = "KAIZEN_URL", value_parser = host_url)]
    pub(crate) url: Option<String>,
    /// API token (default: KAIZEN_ADMIN_TOKEN, or the data directory's tokens.json).
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The host's data directory, holding tokens.json and the URL it
    /// listens on (default: ./kaizen-data or the demo's ./kaizen-demo,
    /// whichever host started last).
    #[arg(long = "tokens-from", env = "KAIZEN_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

pub struct Client {
    http: Http,
    base: String,
    token: String,
    json: bool,
}

/// The data directories a client run beside a host looks in: `kaizen serve`'s
/// default and the demo's.
const LOCAL_DATA_DIRS: [&str; 2] = ["kaizen-data", "kaizen-demo"];

/// The data directory to read: the one given, else of the local ones holding
/// `tokens.json`, the one whose host wrote its URL last (a running host
/// keeps its `url` file; a stopped one removes it).
fn data_dir(r: &Remote) -> Option<PathBuf> {
    if let Some(d) = &r.data_dir {
        return Some(d.clone());
    }
    let started = |d: &Path| std::fs::metadata(d.join(kaizen_service::serve::URL_FILE)).and_then(|m| m.modified()).ok();
    LOCAL_DATA_DIRS.iter().map(PathBuf::from).filter(|d| d.join("tokens.json").is_file()).max_by_key(|d| started(d))
}

/// The token to use: `--token`, else the environment, else the data
/// directory's `tokens.json` (a host on this machine).
fn find_token(r: &Remote, dir: Option<&Path>, invoke: bool) -> anyhow::Result<String> {
    if let Some(t) = &r.token {
        return Ok(t.clone());
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let from_env = if invoke {
        env("KAIZEN_INVOKE_TOKEN").or_else(|| env("KAIZEN_ADMIN_TOKEN"))
    } else {
        env("KAIZEN_ADMIN_TOKEN")
    };
    if let Some(t) = from_env {
        return Ok(t);
    }
    let Some(dir) = dir else {
        bail!(
            "no token: pass --token, set KAIZEN_ADMIN_TOKEN, run this from the directory holding the host's data \
             directory (./kaizen-data, or ./kaizen-demo for the demo), or point --tokens-from at it"
        );
    };
    let file = dir.join("tokens.json");
    let kept: Tokens = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .with_context(|| {
            format!("no token: pass --token, set KAIZEN_ADMIN_TOKEN, or point --tokens-from at the host's data directory (no {})", file.display())
        })?;
    Ok(kept.admin)
}

/// `--url` / `KAIZEN_URL` checked when read: an http(s) URL naming a host
/// (an empty or relative one would fail later as "cannot reach the host at").
fn host_url(s: &str) -> Result<String, String> {
    let example = "give the host's URL, e.g. http://127.0.0.1:7700";
    if s.trim().is_empty() {
        return Err(format!("it is empty: {example}"));
    }
    match reqwest::Url::parse(s.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s.trim().to_string()),
        Ok(_) => Err(format!("`{s}` is not an http(s) URL to a host: {example}")),
        Err(e) => Err(format!("`{s}` is not a URL ({e}): {example}")),
    }
}

/// The host's URL: `--url` or `KAIZEN_URL`, else what the host of the data
/// directory wrote, else the default address.
fn find_url(r: &Remote, dir: Option<&Path>) -> String {
    let written = || {
        let text = std::fs::read_to_string(dir?.join(kaizen_service::serve::URL_FILE)).ok()?;
        Some(text.trim().to_string()).filter(|u| !u.is_empty())
    };
    r.url.clone().or_else(written).unwrap_or_else(|| "http://127.0.0.1:7700".into())
}

fn spinner(msg: &str) -> ProgressBar {
    let p = ProgressBar::new_spinner().with_message(msg.to_string());
    p.enable_steady_tick(Duration::from_millis(120));
    p
}

/// RFC 3986's unreserved characters: everything else in a name is
/// percent-encoded before it goes into a URL.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A name given on the command line (`what` says which argument) as one
/// path segment or query value: percent-encoded, so that `../freeze`,
/// `x?y` or `x#y` name a thing the host does not have (a 404) instead of
/// reaching another route. Empty, `.` and `..` are refused: a URL cannot
/// carry them as a name.
fn part(what: &str, name: &str) -> anyhow::Result<String> {
    if matches!(name, "" | "." | "..") {
        bail!("{what} `{name}` is not a name");
    }
    Ok(utf8_percent_encode(name, UNRESERVED).to_string())
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// A version as the tables show it: `2.0.0 (0123456789ab)`.
fn version(v: &VersionView) -> String {
    format!("{} ({})", v.version, short(&v.sha256))
}

/// A module by its version when known: `2.0.0 (0123456789ab)`, else its
/// short sha256.
fn versioned(version: Option<&str>, sha: &str) -> String {
    match version {
        Some(v) => format!("{v} ({})", short(sha)),
        None => short(sha),
    }
}

/// A number as the JSON answer spells it (`10.0`, where Rust would print `10`).
fn json_number(x: f64) -> String {
    Value::from(x).to_string()
}

/// The supervised background tasks: one line when all run and none ever
/// panicked, else a table of those that are down or panicked.
fn print_tasks(tasks: &[TaskStatus]) {
    let troubled: Vec<&TaskStatus> = tasks.iter().filter(|t| t.is_down() || t.panics > 0).collect();
    if troubled.is_empty() {
        out!("tasks: all {} background tasks run", tasks.len());
        return;
    }
    out!("tasks: {} of {} background tasks are down or have panicked", troubled.len(), tasks.len());
    let rows: Vec<Vec<String>> = troubled
        .iter()
        .map(|t| {
            let state = match t.state {
                TaskState::Running => "running",
                TaskState::Restarting => "restarting",
                TaskState::Ended => "ended",
            };
            vec![
                t.name.clone(),
                state.into(),
                table::date(t.since),
                t.panics.to_string(),
                t.restarts.to_string(),
                t.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table::print(&["TASK", "STATE", "SINCE", "PANICS", "RESTARTS", "LAST ERROR"], &rows);
}

/// Findings as a table, then each one's state reason and why the loop made
/// no attempt on it, in words.
fn print_findings(findings: &[FindingRecord]) {
    if findings.is_empty() {
        out!("no findings");
        return;
    }
    // A finding's severity is the detector's judgement of how bad it is;
    // its priority is the loop's ranking of what to work on first (impact:
    // gain, traffic, confidence, risk, times the predicted success). Two
    // different things, shown under their own names.
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.id.to_string(),
                f.status.to_string(),
                f.severity.clone(),
                f.priority.clone(),
                f.prediction.map_or_else(|| "-".into(), |p| p.describe()),
                f.target.clone(),
                f.version.clone().unwrap_or_else(|| "-".into()),
                f.kind.clone(),
                f.summary.clone(),
            ]
        })
        .collect();
    table::print(&["ID", "STATE", "SEVERITY", "PRIORITY", "SUCCESS", "TARGET", "VERSION", "KIND", "SUMMARY"], &rows);
    for f in findings {
        let previous = f.previous.map(|p| format!(" (recurs after finding {p})")).unwrap_or_default();
        if !f.reason.is_empty() {
            out!("  {}: {}: {}{previous}", f.id, f.status, f.reason);
        } else if !previous.is_empty() {
            out!("  {}: {}{previous}", f.id, f.status);
        }
        if let Some(why) = f.inaction.as_ref().filter(|_| !matches!(f.status.as_str(), "resolved")) {
            out!("  {}: no attempt: {why}", f.id);
        }
    }
}

/// A duration as people write it: `90` or `90s`, `30m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 =
        digits.parse().with_context(|| format!("`{text}` is not a duration: write e.g. 90s, 30m, 2h or 1d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ if unit.starts_with(['.', ',']) => {
            bail!("`{text}` is not a duration: write a whole number of one unit (e.g. 90m for an hour and a half)")
        }
        _ => bail!("`{text}` is not a duration: the unit must be s, m, h or d (e.g. 30m)"),
    };
    // Freezes, snoozes and forced breakers last a year at most (the API's
    // limit, said here in the operator's own unit rather than as seconds or
    // milliseconds the command computed).
    match n.checked_mul(scale) {
        Some(secs) if (1..=kaizen_service::api::control::MAX_FREEZE_SECS).contains(&secs) => Ok(secs),
        Some(0) => bail!("`{text}` is no time: a duration must be at least 1 second"),
        _ => bail!("`{text}` is too long: a duration is at most a year (366d)"),
    }
}

/// The loop's state in words: what it does, and who made it so, when.
fn loop_state(state: &str, c: &ControlState) -> String {
    let doing = match state {
        "running" => "running: it detects, proves and rolls out improvements",
        "paused" => "paused: calls are served and recorded, the loop starts nothing new (`kaizen resume`)",
        "stopped" => "stopped (emergency stop): every rollout is frozen where it stands (`kaizen stop --release`)",
        "disabled" => "disabled: the global switch is off; the loop observes but changes nothing",
        other => other,
    };
    // The store's first control record: nobody has touched the controls.
    if c.state_changed_at == 0 {
        return format!("{doing} (as it started; nobody has paused or stopped it)");
    }
    format!("{doing} (since {}, by {}: {})", table::date(c.state_changed_at), c.by_whom, c.reason)
}

/// A breaker's state and what it holds, in words.
fn breaker_words(b: &Value) -> (String, String) {
    let n = |k: &str| b[k].as_u64().unwrap_or(0);
    match b["state"].as_str().unwrap_or("?") {
        "open" => {
            let why = b["reason"].as_str().unwrap_or_default();
            ("open".into(), format!("{} more: {why}", duration_words(n("remaining_ms"))))
        }
        "half-open" => ("half-open".into(), format!("{} probe call(s) left", n("probes_left"))),
        "closed" if n("calls") == 0 => ("closed".into(), "no calls since it closed".into()),
        "closed" => ("closed".into(), format!("{} of its last {} calls failed", n("failures"), n("calls"))),
        other => (other.into(), String::new()),
    }
}

/// A refusal of the JSON body this command built, in the words of what
/// the operator typed: without the server's preamble and without the
/// place in a body nobody wrote ("reason: a reason with … at line 1
/// column 17" reads "reason: a reason with …").
fn in_command_words(msg: &str) -> &str {
    let msg = msg.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(msg);
    match msg.rsplit_once(" at line ") {
        Some((head, place))
            if place.split_once(" column ").is_some_and(|(l, c)| {
                [l, c].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            head
        }
        _ => msg,
    }
}

/// Milliseconds as a person reads them: `850 ms`, `42 s`, `12 min`, `3 h`,
/// `2 d`.
fn duration_words(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        7_200_000..172_800_000 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

/// Units as `kaizen status` shows them: every call counted once, as
/// answered, refused as the caller's error or failed by the unit, beside
/// the attempts made for them and the calls recovery answered.
fn print_units(units: &[UnitStats]) {
    if units.is_empty() {
        out!("no unit calls yet");
        return;
    }
    let pct = |part: u64, whole: u64| {
        if whole == 0 { "-".to_string() } else { format!("{:.1} %", part as f64 * 100.0 / whole as f64) }
    };
    let rows: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            vec![
                u.unit.clone(),
                u.version.clone(),
                if u.serving { "yes" } else { "" }.into(),
                u.calls_total.to_string(),
                u.successes_total.to_string(),
                u.caller_errors_total.to_string(),
                u.unit_errors_total.to_string(),
                pct(u.successes_total, u.successes_total + u.unit_errors_total),
                u.attempts_total.to_string(),
                u.recovered_total.to_string(),
                u.refused_total.to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "UNIT",
            "VERSION",
            "SERVING",
            "CALLS",
            "ANSWERED",
            "CALLER ERRORS",
            "UNIT ERRORS",
            "UNIT SUCCESS",
            "ATTEMPTS",
            "RECOVERED",
            "REFUSED",
        ],
        &rows,
    );
    out!(
        "  since this start of the host (the last minute's figures come from the store, across restarts); \
         caller errors are calls refused as invalid-input, left out of the unit's success \
         (answered / (answered + unit errors)); a call counts once however many attempts it took: \
         attempts include retries and fallbacks, recovered calls are answered calls that failed at first; \
         refused calls were not made (an open circuit breaker answered them) and are not among the calls"
    );
}

impl Client {
    pub fn new(r: &Remote, invoke: bool) -> anyhow::Result<Client> {
        let http = Http::builder().timeout(Duration::from_secs(600)).build()?;
        let dir = data_dir(r);
        let token = find_token(r, dir.as_deref(), invoke)?;
        let base = find_url(r, dir.as_deref()).trim_end_matches('/').to_string();
        Ok(Client { http, base, token, json: r.json })
    }

    fn send(&self, req: RequestBuilder) -> anyhow::Result<Response> {
        let res =
            req.bearer_auth(&self.token).send().with_context(|| format!("cannot reach the host at {}", self.base))?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body: Option<ErrorBody> = res.json().ok();
        let code = body.as_ref().map_or("error", |b| b.code.as_str());
        let msg = body.as_ref().map_or("", |b| b.message.as_str());
        let class = body.as_ref().and_then(|b| b.class.as_ref()).map(|c| format!(" [{c}]")).unwrap_or_default();
        bail!("{} {code}{class}: {}", status.as_u16(), in_command_words(msg))
    }

    /// For `--json`, print the answer as the host sent it and return
    /// `None`; else decode it as the view the service serialized it from.
    fn view<T: DeserializeOwned>(&self, res: Response) -> anyhow::Result<Option<T>> {
        let body: Value = res.json()?;
        if self.json {
            out!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
            return Ok(None);
        }
        let view = serde_json::from_value(body).context("the host answered in a shape this client does not know")?;
        Ok(Some(view))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Option<T>> {
        self.view(self.send(self.http.get(format!("{}{path}", self.base)))?)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, reason: String) -> anyhow::Result<Option<T>> {
        let body = Reason { reason: Some(reason) };
        self.view(self.send(self.http.post(format!("{}{path}", self.base)).json(&body))?)
    }

    pub fn status(&self) -> anyhow::Result<()> {
        let Some(s) = self.get::<Status>("/api/v1/status")? else { return Ok(()) };
        let l = &s.improve;
        out!("loop: {}", loop_state(&s.state, &s.control));
        out!(
            "  since this start: {} cycles, {} opportunities, {} attempted, {} promoted, {} rolled back, \
             {} inconclusive, {} aborted, {} rejected or failed; {} rollout(s) in flight",
            l.cycles_completed,
            l.opportunities_detected,
            l.improvements_attempted,
            l.improvements_deployed,
            l.improvements_rolled_back,
            l.improvements_inconclusive,
            l.improvements_aborted,
            l.improvements_failed,
            l.rollouts_in_flight
        );
        for r in &s.rollouts {
            out!(
                "  rollout of {} {} (improvement {}) holds its slot: `kaizen abort {}` ends it",
                r.target,
                r.candidate_version,
                r.improvement,
                r.target
            );
        }
        if let Some(at) = l.next_cycle_at {
            let quiet = l.quiet_hour.map(|h| format!(", moved to the quiet hour {h:02}:00 UTC")).unwrap_or_default();
            out!("  next scheduled cycle at {}{quiet}", kaizen_host::store::format_time(at));
        }
        for g in &s.rollout_gates {
            match &g.target {
                None => out!("rollouts: {}", g.reason),
                Some(t) => out!("  rollouts of {t}: {}", g.reason),
            }
        }
        for w in &s.waiting {
            out!("  improvement {} ({} {}) {}", w.improvement, w.target, w.candidate_version, w.reason);
        }
        // An open circuit refuses calls: never out of an operator's sight.
        for b in self.get::<Vec<Value>>("/api/v1/breakers")?.unwrap_or_default() {
            if b["breaker"]["state"] == "open" {
                let (_, detail) = breaker_words(&b["breaker"]);
                let unit = b["target"].as_str().unwrap_or("?");
                out!(
                    "breaker of {unit} open ({detail}): its calls fail fast; `kaizen breakers close {unit}` closes it"
                );
            }
        }
        for u in &s.unrestored {
            out!(
                "slot {} serves nothing: the version it served ({}) could not be loaded at start ({}); deploy a \
                 version to it",
                u.slot,
                short(&u.sha256),
                u.reason
            );
        }
        print_tasks(&s.tasks);
        if let Some(f) = self.get::<kaizen_service::api::fleet::FleetStatus>("/api/v1/fleet")? {
            print_fleet(&f);
        }
        out!();
        let rows: Vec<Vec<String>> = s
            .slots
            .iter()
            .map(|x| {
                let previous = x.previous.as_ref().map_or_else(|| "-".into(), version);
                let canary = x.canary.as_ref().map_or_else(
                    || "-".into(),
                    |c| {
                        let arm = if c.holdback { "holdback " } else { "" };
                        format!("{arm}{} ({}) at {}%", c.version, short(&c.sha256), json_number(c.percent))
                    },
                );
                vec![x.name.clone(), x.kind.clone(), version(&x.current), previous, canary]
            })
            .collect();
        table::print(&["SLOT", "KIND", "CURRENT", "PREVIOUS", "CANARY OR HOLDBACK"], &rows);
        let units = self.get::<Vec<UnitStats>>("/api/v1/units")?.unwrap_or_default();
        out!();
        print_units(&units);
        out!();
        print_findings(&s.recent_findings);
        if let Some(c) = self.get::<EffectiveConfig>("/api/v1/config")? {
            out!();
            print_config(&c);
        }
        Ok(())
    }

    /// Every unit version's calls, since start and in the last minute.
    pub fn units(&self) -> anyhow::Result<()> {
        let Some(units) = self.get::<Vec<UnitStats>>("/api/v1/units")? else { return Ok(()) };
        print_units(&units);
        let window = units.first().map_or(60, |u| u.window_secs);
        let rows: Vec<Vec<String>> = units
            .iter()
            .filter(|u| u.calls > 0 || u.refused > 0)
            .map(|u| {
                vec![
                    u.unit.clone(),
                    u.version.clone(),
                    u.calls.to_string(),
                    u.successes.to_string(),
                    u.caller_errors.to_string(),
                    u.unit_errors.to_string(),
                    u.attempts.to_string(),
                    u.recovered.to_string(),
                    u.refused.to_string(),
                    format!("{:.1}/s", u.throughput),
                    format!("{:.3}", u.p50_ms),
                    format!("{:.3}", u.p95_ms),
                    format!("{:.3}", u.p99_ms),
                ]
            })
            .collect();
        out!();
        if rows.is_empty() {
            out!("no calls in the last {window} s");
            return Ok(());
        }
        out!("last {window} s:");
        table::print(
            &[
                "UNIT",
                "VERSION",
                "CALLS",
                "ANSWERED",
                "CALLER ERRORS",
                "UNIT ERRORS",
                "ATTEMPTS",
                "RECOVERED",
                "REFUSED",
                "RATE",
                "P50 MS",
                "P95 MS",
                "P99 MS",
            ],
            &rows,
        );
        Ok(())
    }

    pub fn deploy(&self, file: &Path, now: bool, replace: bool) -> anyhow::Result<()> {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let p = spinner(&format!("uploading and validating {} ({} bytes)", file.display(), bytes.len()));
        let mode = if now { "deploy" } else { "auto" };
        let req = self
            .http
            .post(format!("{}/api/v1/plugins?mode={mode}&replace={replace}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes);
        let res = self.send(req);
        p.finish_and_clear();
        // A refusal names the file it is about.
        let res = res.with_context(|| format!("{} was not deployed", file.display()))?;
        let Some(u) = self.view::<Uploaded>(res)? else { return Ok(()) };
        let what = match (u.result.as_str(), &u.detail) {
            ("candidate", _) => "handed to the loop as a candidate (it will be proven and rolled out stepwise)".into(),
            ("unchanged", Some(why)) => format!("unchanged: {why}"),
            ("unchanged", None) => "unchanged: those exact bytes already serve".into(),
            _ => "deployed".to_string(),
        };
        out!("{} {} {} ({}): {what}", u.kind, u.name, u.version, short(&u.sha256));
        Ok(())
    }

    /// Propose `settings` (`key=value` words) for `unit`'s tunables: a
    /// config candidate the loop proves and rolls out stepwise.
    pub fn tune(&self, unit: &str, settings: &[String]) -> anyhow::Result<()> {
        let mut values = std::collections::BTreeMap::new();
        for word in settings {
            let Some((key, value)) = word.split_once('=') else {
                bail!("`{word}` is not KEY=VALUE (for example chunk_size=64)");
            };
            let key = key.trim();
            if key.is_empty() {
                bail!("`{word}` names no tunable: KEY=VALUE (for example chunk_size=64)");
            }
            if values.insert(key.to_string(), Value::String(value.trim().to_string())).is_some() {
                bail!("`{key}` is given twice: name each tunable once");
            }
        }
        if values.is_empty() {
            bail!("name at least one tunable: kaizen tune {unit} KEY=VALUE…");
        }
        let body = kaizen_service::api::tune::TuneRequest { settings: values };
        let req = self.http.post(format!("{}/api/v1/units/{}/tune", self.base, part("UNIT", unit)?)).json(&body);
        let Some(t) = self.view::<kaizen_service::api::tune::Tuned>(self.send(req)?)? else { return Ok(()) };
        let values: Vec<String> = t.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match (t.result.as_str(), &t.detail) {
            ("unchanged", Some(why)) => out!("{unit} {}: unchanged: {why}", t.version),
            _ => out!(
                "{unit} {} ({}): handed to the loop as a config candidate (it will be proven and rolled out stepwise)",
                t.version,
                values.join(", ")
            ),
        }
        Ok(())
    }

    pub fn rollback(&self, slot: &str, reason: Option<String>) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| "operator rollback from the CLI".into());
        let Some(r) =
            self.post::<RolledBack>(&format!("/api/v1/deployments/{}/rollback", part("SLOT", slot)?), reason)?
        else {
            return Ok(());
        };
        out!("{slot}: rolled back {} → {} ({})", r.from, r.to, short(&r.to_sha256));
        Ok(())
    }

    /// Abort the rollout of `unit`; prints how its improvement ended.
    pub fn abort(&self, unit: &str, reason: Option<String>) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| "operator abort from the CLI".into());
        let path = format!("/api/v1/rollouts/{}/abort", part("UNIT", unit)?);
        let Some(imp) = self.post::<Improvement>(&path, reason)? else { return Ok(()) };
        out!("{unit}: rollout of improvement {} {}: {}", imp.id, imp.state, imp.reason);
        Ok(())
    }

    /// Pause, resume, stop or release the loop, with the operator's reason
    /// (or one naming the CLI) for the audit trail.
    pub fn control(&self, action: &str, reason: Option<String>) -> anyhow::Result<()> {
        let path = format!("/api/v1/control/{action}");
        let reason = reason.unwrap_or_else(|| format!("{action} from the CLI"));
        let Some(c) = self.post::<ControlState>(&path, reason)? else { return Ok(()) };
        // As `status` names it, with the reason of the switch that holds
        // it: a pause of a loop someone else paused shows their reason, a
        // release over a pause shows the pause's.
        let state = if c.stopped {
            "stopped"
        } else if !c.enabled {
            "disabled"
        } else if c.paused {
            "paused"
        } else {
            "running"
        };
        out!("loop {}", loop_state(state, &c));
        if action == "resume" && c.stopped {
            out!("  resume lifts a pause, not the emergency stop: `kaizen stop --release` lifts it");
        }
        Ok(())
    }

    /// Declare a change freeze for `secs` seconds, or lift it (`None`).
    pub fn freeze(&self, secs: Option<u64>, reason: Option<String>) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/freeze", self.base);
        // The freeze before, to say what this replaced or lifted (read
        // without printing it: `--json` prints the answer of the change).
        let before = self.send(self.http.get(format!("{}/api/v1/status", self.base)))?.json::<Status>()?.control;
        let earlier = before.freeze_until.filter(|&until| until > kaizen_host::store::now_ms()).map(|until| {
            let why = before.freeze_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            format!("the change freeze that was to hold until {}{why}", kaizen_host::store::format_time(until))
        });
        let res = match secs {
            Some(secs) => {
                let reason = reason.unwrap_or_else(|| "change freeze from the CLI".into());
                self.send(self.http.put(url).json(&serde_json::json!({ "for_secs": secs, "reason": reason })))
            }
            None => {
                let reason = reason.unwrap_or_else(|| "freeze lifted from the CLI".into());
                self.send(self.http.delete(url).json(&Reason { reason: Some(reason) }))
            }
        };
        let Some(c) = self.view::<ControlState>(res?)? else { return Ok(()) };
        match (c.freeze_until, earlier) {
            (Some(until), earlier) => {
                out!(
                    "change freeze until {}: no rollout starts; rollouts in progress hold at their step",
                    kaizen_host::store::format_time(until)
                );
                if let Some(earlier) = earlier {
                    out!("  it replaces {earlier}");
                }
            }
            (None, Some(earlier)) => {
                out!("lifted {earlier}: rollouts may start within the configured windows")
            }
            (None, None) => {
                out!("no declared change freeze to lift: rollouts may start within the configured windows")
            }
        }
        Ok(())
    }

    pub fn cycle(&self) -> anyhow::Result<()> {
        let p = spinner("running a loop cycle");
        let res = self.send(self.http.post(format!("{}/api/v1/cycles", self.base)));
        p.finish_and_clear();
        let Some(c) = self.view::<CycleReport>(res?)? else { return Ok(()) };
        if let Some(why) = &c.skipped {
            out!("cycle {} skipped: {why}", c.id);
            return Ok(());
        }
        out!(
            "cycle {}: {} target(s) sampled, {} finding(s) ({} new), {} resolved",
            c.id,
            c.targets_sampled,
            c.findings_total,
            c.findings_new,
            c.findings_resolved
        );
        if !c.ranking.is_empty() {
            out!("  in the loop's order (impact × predicted success):");
        }
        for (i, f) in c.ranking.iter().enumerate() {
            let success = f.prediction.map_or_else(|| "-".into(), |p| p.describe());
            out!(
                "  {:>3}. finding {} ({} on {}): impact {:.0}, success {success}, priority {}",
                i + 1,
                f.finding_id,
                f.kind,
                f.target,
                f.impact,
                f.priority
            );
        }
        for a in &c.attempts {
            let about = a.finding_id.map(|f| format!(" for finding {f}")).unwrap_or_default();
            let with = a.candidate.as_deref().map(|c| format!(" with candidate {c}")).unwrap_or_default();
            out!("  attempt on {}{about}{with}: {}", a.target, a.result);
        }
        for n in &c.not_attempted {
            out!("  no attempt on finding {} ({} on {}): {}", n.finding_id, n.kind, n.target, n.reason);
        }
        // Denied attempts are among the attempts above, each already
        // saying "denied: why" (the report's `denied` lists them again).
        Ok(())
    }

    /// Every breaker in a table.
    pub fn breakers(&self) -> anyhow::Result<()> {
        let Some(list) = self.get::<Vec<Value>>("/api/v1/breakers")? else { return Ok(()) };
        if list.is_empty() {
            out!("no breakers yet: a unit's breaker appears with its first call");
            return Ok(());
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|b| {
                let (state, detail) = breaker_words(&b["breaker"]);
                vec![b["target"].as_str().unwrap_or("?").to_string(), state, detail]
            })
            .collect();
        table::print(&["UNIT", "BREAKER", "DETAIL"], &rows);
        Ok(())
    }

    /// Force `unit`'s breaker to `state` (`open` for `ms`, or `closed`),
    /// then say where it stands.
    pub fn force_breaker(
        &self,
        unit: &str,
        state: &str,
        ms: Option<u64>,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| format!("forced {state} from the CLI"));
        let body = serde_json::json!({ "state": state, "ms": ms, "reason": reason });
        let url = format!("{}/api/v1/breakers/{}", self.base, part("UNIT", unit)?);
        let Some(list) = self.view::<Vec<Value>>(self.send(self.http.post(url).json(&body))?)? else { return Ok(()) };
        let b = list.iter().find(|b| b["target"] == unit).map(|b| breaker_words(&b["breaker"]));
        let (state, detail) = b.unwrap_or_else(|| ("?".into(), String::new()));
        out!("{unit}: breaker {state}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") });
        Ok(())
    }

    /// The queued candidates in their place in line, each with why it waits.
    pub fn candidates(&self) -> anyhow::Result<()> {
        let Some(queued) = self.get::<Vec<QueuedCandidate>>("/api/v1/candidates")? else { return Ok(()) };
        if queued.is_empty() {
            out!("no candidates queued");
            return Ok(());
        }
        let rows: Vec<Vec<String>> = queued
            .iter()
            .map(|c| {
                let version = (!c.version.is_empty()).then_some(c.version.as_str());
                vec![
                    table::date(c.queued_at),
                    c.target.clone(),
                    versioned(version, &c.sha256),
                    c.source.clone(),
                    c.waiting.clone(),
                ]
            })
            .collect();
        table::print(&["QUEUED", "UNIT", "CANDIDATE", "SOURCE", "WAITING"], &rows);
        Ok(())
    }

    /// Withdraw `unit`'s queued candidate named by `which` (its version or
    /// sha256 prefix).
    pub fn withdraw(&self, unit: &str, which: &str, reason: Option<String>) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| "withdrawn from the CLI".into());
        let url = format!("{}/api/v1/candidates/{}/{}", self.base, part("UNIT", unit)?, part("CANDIDATE", which)?);
        let res = self.send(self.http.delete(url).json(&Reason { reason: Some(reason) }))?;
        let Some(c) = self.view::<QueuedCandidate>(res)? else { return Ok(()) };
        out!("{unit}: candidate {} withdrawn from the queue", versioned(Some(&c.version), &c.sha256));
        Ok(())
    }

    /// Findings, newest first (`status` filters).
    pub fn findings(&self, status: Option<&str>, limit: i64) -> anyhow::Result<()> {
        let filter =
            status.map(|s| part("--status", s).map(|s| format!("&status={s}"))).transpose()?.unwrap_or_default();
        let path = format!("/api/v1/findings?limit={limit}{filter}");
        let Some(findings) = self.get::<Vec<FindingRecord>>(&path)? else { return Ok(()) };
        print_findings(&findings);
        Ok(())
    }

    /// Acknowledge, snooze (`for_secs`) or close finding `id`.
    pub fn finding_action(
        &self,
        id: i64,
        action: &str,
        reason: Option<String>,
        for_secs: Option<u64>,
    ) -> anyhow::Result<()> {
        let body = FindingActionBody { reason: Some(reason.unwrap_or_else(|| "from the CLI".into())), for_secs };
        let req = self.http.post(format!("{}/api/v1/findings/{id}/{action}", self.base)).json(&body);
        let Some(f) = self.view::<FindingRecord>(self.send(req)?)? else { return Ok(()) };
        out!("finding {} ({} on {}): {}: {}", f.id, f.kind, f.target, f.status, f.reason);
        Ok(())
    }

    pub fn history(&self, slot: &str, limit: i64) -> anyhow::Result<()> {
        let slot_part = part("SLOT", slot)?;
        let path = format!("/api/v1/deployments/{slot_part}/history?limit={limit}");
        let Some(entries) = self.get::<Vec<HistoryEntry>>(&path)? else { return Ok(()) };
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|h| {
                vec![
                    table::date(h.at),
                    h.state.as_str().into(),
                    versioned(h.version.as_deref(), &h.sha256),
                    // What served before: for a rollback, the version it
                    // took back (a rollback recorded by an earlier release
                    // kept only that, as its version, and shows no FROM).
                    match h.from_sha.as_deref() {
                        Some(sha) if sha != h.sha256 => versioned(h.from_version.as_deref(), sha),
                        _ => "-".into(),
                    },
                    h.reason.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            out!("{slot}: no deployments");
        } else {
            table::print(&["WHEN", "STATE", "VERSION", "FROM", "REASON"], &rows);
        }
        // What the judge said of each improvement, in its own words.
        let path = format!("/api/v1/improvements?target={slot_part}&limit={limit}");
        let improvements = self.get::<Vec<Improvement>>(&path)?.unwrap_or_default();
        // Every version the host has seen of this slot, to name candidates
        // that never served (and so are in no history entry).
        let modules: Vec<ModuleRecord> = if improvements.is_empty() {
            Vec::new()
        } else {
            self.send(self.http.get(format!("{}/api/v1/plugins/{slot_part}/versions", self.base)))?.json()?
        };
        let versions: std::collections::HashMap<&str, &str> =
            modules.iter().map(|m| (m.sha256.as_str(), m.version.as_str())).collect();
        for imp in &improvements {
            out!();
            // An improvement under way may have no reason yet.
            let reason = if imp.reason.is_empty() { String::new() } else { format!(" — {}", imp.reason) };
            out!(
                "improvement {} ({}, {}): {}{reason}",
                imp.id,
                versioned(versions.get(imp.candidate_sha.as_str()).copied(), &imp.candidate_sha),
                table::date(imp.updated_at),
                imp.state.as_str(),
            );
            for v in imp.verdicts.as_array().into_iter().flatten() {
                let j = &v["judgement"];
                out!(
                    "  {} at {}%: {} — {}",
                    v["phase"].as_str().unwrap_or("?"),
                    v["percent"],
                    j["verdict"].as_str().unwrap_or("?"),
                    j["reason"].as_str().unwrap_or("")
                );
            }
        }
        Ok(())
    }

    /// What fixed what: every change promoted after a finding, on `unit`
    /// or on every target.
    pub fn knowledge(&self, unit: Option<&str>) -> anyhow::Result<()> {
        let path = match unit {
            Some(u) => format!("/api/v1/knowledge?target={}", part("UNIT", u)?),
            None => "/api/v1/knowledge".into(),
        };
        let Some(fixes) = self.get::<Vec<kaizen_host::r#loop::knowledge::Fix>>(&path)? else { return Ok(()) };
        if fixes.is_empty() {
            out!("nothing fixed yet{}", unit.map(|u| format!(" on {u}")).unwrap_or_default());
            return Ok(());
        }
        let rows: Vec<Vec<String>> = fixes
            .iter()
            .map(|f| {
                let measured: Vec<String> = f
                    .measured
                    .iter()
                    .map(|m| {
                        let bound = |b: Option<f64>, unreached: &str| {
                            b.map_or_else(|| unreached.to_string(), |b| format!("{:+.1}", b * 100.0))
                        };
                        format!(
                            "{} {:+.1} % [{}, {}]",
                            m.metric,
                            m.change * 100.0,
                            bound(m.lower, "-∞"),
                            bound(m.upper, "+∞")
                        )
                    })
                    .collect();
                vec![
                    f.target.clone(),
                    f.finding_kind.clone(),
                    f.change.clone(),
                    format!("{} of {}", f.held, f.promoted),
                    if f.rolled_back_since { "yes".into() } else { "no".into() },
                    if measured.is_empty() { "-".into() } else { measured.join(", ") },
                    f.source.clone(),
                ]
            })
            .collect();
        table::print(&["TARGET", "FINDING", "CHANGE", "HELD", "ROLLED BACK SINCE", "MEASURED", "SOURCE"], &rows);
        Ok(())
    }

    pub fn invoke(&self, unit: &str, payload: Option<String>) -> anyhow::Result<()> {
        let body = match payload.as_deref() {
            Some(p) if p.starts_with('@') => {
                std::fs::read(&p[1..]).with_context(|| format!("cannot read {}", &p[1..]))?
            }
            Some(p) => p.as_bytes().to_vec(),
            None => {
                let mut b = Vec::new();
                std::io::stdin().read_to_end(&mut b)?;
                b
            }
        };
        let res =
            self.send(self.http.post(format!("{}/api/v1/units/{}/invoke", self.base, part("UNIT", unit)?)).body(body))?;
        let version = res.headers().get("x-kaizen-version").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let out = res.bytes()?;
        if self.json {
            let output: Value =
                serde_json::from_slice(&out).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out).into()));
            out!("{}", serde_json::json!({ "version": version, "output": output }));
        } else {
            out!("{}", String::from_utf8_lossy(&out));
            note!("(answered by {unit} {version})");
        }
        Ok(())
    }
}

/// The settings not at their built-in default, each with its source.
fn print_config(c: &EffectiveConfig) {
    let preset = c.preset.map_or_else(|| "none (built-in defaults)".to_string(), |p| p.name().to_string());
    out!("configuration: preset {preset}");
    let rows: Vec<Vec<String>> = c
        .settings
        .iter()
        .filter(|s| s.source != "default")
        .map(|s| vec![s.key.clone(), s.value.to_string(), s.source.clone()])
        .collect();
    if !rows.is_empty() {
        table::print(&["SETTING", "VALUE", "FROM"], &rows);
    }
    out!("  every other setting is at its default (GET /api/v1/config lists them all)");
}

/// The fleet's hosts, when this host is in one (on PostgreSQL).
fn print_fleet(f: &kaizen_service::api::fleet::FleetStatus) {
    if !f.enabled {
        return;
    }
    let (now, me) = (f.now.unwrap_or_default(), f.this_host.clone().unwrap_or_default());
    match &f.lease {
        Some(l) if l.expires_at > now => out!("fleet: {} leads (epoch {})", l.holder, l.epoch),
        Some(l) => out!("fleet: no leader now (the lease of {} at epoch {} ran out)", l.holder, l.epoch),
        None => out!("fleet: no leader yet"),
    }
    let rows: Vec<Vec<String>> = f
        .hosts
        .iter()
        .map(|m| {
            let me = if m.host.id == me { " (this host)" } else { "" };
            vec![
                format!("{}{me}", m.host.id),
                m.role.clone(),
                if m.host.address.is_empty() { "-".into() } else { m.host.address.clone() },
                format!("{:.1} s ago", m.heartbeat_age_ms as f64 / 1000.0),
                m.host.applied_revision.to_string(),
                if m.host.serving.is_empty() {
                    "-".into()
                } else {
                    m.host.serving.iter().map(|(slot, v)| format!("{slot} {v}")).collect::<Vec<_>>().join(", ")
                },
                m.host.kaizen_version.clone(),
            ]
        })
        .collect();
    table::print(&["HOST", "ROLE", "ADDRESS", "HEARTBEAT", "REVISION", "SERVING", "KAIZEN"], &rows);
}
