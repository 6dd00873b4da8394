//! Client commands: drive a running host through its HTTP API.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::ProgressBar;
use kaizen_host::store::improvements::Improvement;
use kaizen_service::api::findings::FindingActionBody;
use kaizen_service::tokens::Tokens;
use kaizen_service::views::{
    ControlState, CycleReport, ErrorBody, FindingRecord, HistoryEntry, Reason, RolledBack, Status, TaskState,
    TaskStatus, Uploaded, VersionView,
};
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::table;

/// How client commands reach a running host.
#[derive(Args, Clone)]
pub struct Remote {
    /// The host's base URL.
    #[arg(long, env = "KAIZEN_URL", default_value = "http://127.0.0.1:7700")]
    pub(crate) url: String,
    /// API token (default: KAIZEN_ADMIN_TOKEN, or the data directory's tokens.json).
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// Where to look for tokens.json when no token is given.
    #[arg(long = "tokens-from", env = "KAIZEN_DATA_DIR", default_value = "kaizen-data")]
    pub(crate) data_dir: PathBuf,
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

/// The token to use: `--token`, else the environment, else the data
/// directory's `tokens.json` (a host on this machine).
fn find_token(r: &Remote, invoke: bool) -> anyhow::Result<String> {
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
    let file = r.data_dir.join("tokens.json");
    let kept: Tokens = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .with_context(|| {
            format!("no token: pass --token, set KAIZEN_ADMIN_TOKEN, or point --tokens-from at the host's data directory (no {})", file.display())
        })?;
    Ok(kept.admin)
}

fn spinner(msg: &str) -> ProgressBar {
    let p = ProgressBar::new_spinner().with_message(msg.to_string());
    p.enable_steady_tick(Duration::from_millis(120));
    p
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn time(ms: i64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}Z")
}

/// A version as the tables show it: `2.0.0 (0123456789ab)`.
fn version(v: &VersionView) -> String {
    format!("{} ({})", v.version, short(&v.sha256))
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
        println!("tasks: all {} background tasks run", tasks.len());
        return;
    }
    println!("tasks: {} of {} background tasks are down or have panicked", troubled.len(), tasks.len());
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
                time(t.since),
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
        println!("no findings");
        return;
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.id.to_string(),
                f.status.to_string(),
                f.priority.clone(),
                f.target.clone(),
                f.version.clone().unwrap_or_else(|| "-".into()),
                f.kind.clone(),
                f.summary.clone(),
            ]
        })
        .collect();
    table::print(&["ID", "STATE", "PRIORITY", "TARGET", "VERSION", "KIND", "SUMMARY"], &rows);
    for f in findings {
        let previous = f.previous.map(|p| format!(" (recurs after finding {p})")).unwrap_or_default();
        if !f.reason.is_empty() {
            println!("  {}: {}: {}{previous}", f.id, f.status, f.reason);
        } else if !previous.is_empty() {
            println!("  {}: {}{previous}", f.id, f.status);
        }
        if let Some(why) = f.inaction.as_ref().filter(|_| !matches!(f.status.as_str(), "resolved")) {
            println!("  {}: no attempt: {why}", f.id);
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
        _ => bail!("`{text}` is not a duration: the unit must be s, m, h or d (e.g. 30m)"),
    };
    match n.checked_mul(scale) {
        Some(secs) if secs >= 1 => Ok(secs),
        Some(_) => bail!("a snooze must last at least 1 second"),
        None => bail!("`{text}` is too long a duration"),
    }
}

impl Client {
    pub fn new(r: &Remote, invoke: bool) -> anyhow::Result<Client> {
        let http = Http::builder().timeout(Duration::from_secs(600)).build()?;
        Ok(Client { http, base: r.url.trim_end_matches('/').to_string(), token: find_token(r, invoke)?, json: r.json })
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
        bail!("{} {code}{class}: {msg}", status.as_u16())
    }

    /// For `--json`, print the answer as the host sent it and return
    /// `None`; else decode it as the view the service serialized it from.
    fn view<T: DeserializeOwned>(&self, res: Response) -> anyhow::Result<Option<T>> {
        let body: Value = res.json()?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
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
        println!("loop: {} — {}", s.state, s.control.reason);
        println!(
            "  {} cycles, {} opportunities, {} attempted, {} promoted, {} rolled back, {} inconclusive, {} aborted, \
             {} rollout(s) in flight",
            l.cycles_completed,
            l.opportunities_detected,
            l.improvements_attempted,
            l.improvements_deployed,
            l.improvements_rolled_back,
            l.improvements_inconclusive,
            l.improvements_aborted,
            l.rollouts_in_flight
        );
        for r in &s.rollouts {
            println!(
                "  rollout of {} {} (improvement {}) holds its slot: `kaizen abort {}` ends it",
                r.target, r.candidate_version, r.improvement, r.target
            );
        }
        print_tasks(&s.tasks);
        println!();
        let rows: Vec<Vec<String>> = s
            .slots
            .iter()
            .map(|x| {
                let previous = x.previous.as_ref().map_or_else(|| "-".into(), version);
                let canary = x.canary.as_ref().map_or_else(
                    || "-".into(),
                    |c| format!("{} ({}) at {}%", c.version, short(&c.sha256), json_number(c.percent)),
                );
                vec![x.name.clone(), x.kind.clone(), version(&x.current), previous, canary]
            })
            .collect();
        table::print(&["SLOT", "KIND", "CURRENT", "PREVIOUS", "CANARY"], &rows);
        println!();
        print_findings(&s.recent_findings);
        Ok(())
    }

    pub fn deploy(&self, file: &Path, now: bool) -> anyhow::Result<()> {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let p = spinner(&format!("uploading and validating {} ({} bytes)", file.display(), bytes.len()));
        let mode = if now { "deploy" } else { "auto" };
        let req = self
            .http
            .post(format!("{}/api/v1/plugins?mode={mode}", self.base))
            .header("content-type", "application/wasm")
            .body(bytes);
        let res = self.send(req);
        p.finish_and_clear();
        let Some(u) = self.view::<Uploaded>(res?)? else { return Ok(()) };
        let what = match (u.result.as_str(), &u.detail) {
            ("candidate", _) => "handed to the loop as a candidate (it will be proven and rolled out stepwise)".into(),
            ("unchanged", Some(why)) => format!("unchanged: {why}"),
            ("unchanged", None) => "unchanged: those exact bytes already serve".into(),
            _ => "deployed".to_string(),
        };
        println!("{} {} {} ({}): {what}", u.kind, u.name, u.version, short(&u.sha256));
        Ok(())
    }

    pub fn rollback(&self, slot: &str, reason: Option<String>) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| "operator rollback from the CLI".into());
        let Some(r) = self.post::<RolledBack>(&format!("/api/v1/deployments/{slot}/rollback"), reason)? else {
            return Ok(());
        };
        println!("{slot}: rolled back {} → {} ({})", r.from, r.to, short(&r.to_sha256));
        Ok(())
    }

    /// Abort the rollout of `unit`; prints how its improvement ended.
    pub fn abort(&self, unit: &str, reason: Option<String>) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| "operator abort from the CLI".into());
        let path = format!("/api/v1/rollouts/{unit}/abort");
        let Some(imp) = self.post::<Improvement>(&path, reason)? else { return Ok(()) };
        println!("{unit}: rollout of improvement {} {}: {}", imp.id, imp.state, imp.reason);
        Ok(())
    }

    pub fn control(&self, action: &str) -> anyhow::Result<()> {
        let path = format!("/api/v1/control/{action}");
        let Some(c) = self.post::<ControlState>(&path, format!("{action} from the CLI"))? else { return Ok(()) };
        let state = if c.stopped {
            "stopped (emergency stop)"
        } else if c.paused {
            "paused"
        } else {
            "running"
        };
        println!("loop {state}");
        Ok(())
    }

    pub fn cycle(&self) -> anyhow::Result<()> {
        let p = spinner("running a loop cycle");
        let res = self.send(self.http.post(format!("{}/api/v1/cycles", self.base)));
        p.finish_and_clear();
        let Some(c) = self.view::<CycleReport>(res?)? else { return Ok(()) };
        if let Some(why) = &c.skipped {
            println!("cycle {} skipped: {why}", c.id);
            return Ok(());
        }
        println!(
            "cycle {}: {} target(s) sampled, {} finding(s) ({} new), {} resolved",
            c.id, c.targets_sampled, c.findings_total, c.findings_new, c.findings_resolved
        );
        for a in &c.attempts {
            let about = a.finding_id.map(|f| format!(" for finding {f}")).unwrap_or_default();
            let with = a.candidate.as_deref().map(|c| format!(" with candidate {c}")).unwrap_or_default();
            println!("  attempt on {}{about}{with}: {}", a.target, a.result);
        }
        for n in &c.not_attempted {
            println!("  no attempt on finding {} ({} on {}): {}", n.finding_id, n.kind, n.target, n.reason);
        }
        for d in &c.denied {
            println!("  denied: {d}");
        }
        Ok(())
    }

    /// Findings, newest first (`status` filters).
    pub fn findings(&self, status: Option<&str>, limit: i64) -> anyhow::Result<()> {
        let filter = status.map(|s| format!("&status={s}")).unwrap_or_default();
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
        println!("finding {} ({} on {}): {}: {}", f.id, f.kind, f.target, f.status, f.reason);
        Ok(())
    }

    pub fn history(&self, slot: &str, limit: i64) -> anyhow::Result<()> {
        let path = format!("/api/v1/deployments/{slot}/history?limit={limit}");
        let Some(entries) = self.get::<Vec<HistoryEntry>>(&path)? else { return Ok(()) };
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|h| {
                vec![
                    time(h.at),
                    h.state.as_str().into(),
                    short(&h.sha256),
                    short(h.from_sha.as_deref().unwrap_or("-")),
                    h.reason.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("{slot}: no deployments");
        } else {
            table::print(&["WHEN", "STATE", "SHA256", "FROM", "REASON"], &rows);
        }
        // What the judge said of each improvement, in its own words.
        let path = format!("/api/v1/improvements?target={slot}&limit={limit}");
        let improvements = self.get::<Vec<Improvement>>(&path)?.unwrap_or_default();
        for imp in &improvements {
            println!();
            println!(
                "improvement {} ({}, {}): {} — {}",
                imp.id,
                short(&imp.candidate_sha),
                time(imp.updated_at),
                imp.state.as_str(),
                imp.reason
            );
            for v in imp.verdicts.as_array().into_iter().flatten() {
                let j = &v["judgement"];
                println!(
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
        let res = self.send(self.http.post(format!("{}/api/v1/units/{unit}/invoke", self.base)).body(body))?;
        let version = res.headers().get("x-kaizen-version").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let out = res.bytes()?;
        if self.json {
            let output: Value =
                serde_json::from_slice(&out).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out).into()));
            println!("{}", serde_json::json!({ "version": version, "output": output }));
        } else {
            println!("{}", String::from_utf8_lossy(&out));
            eprintln!("(answered by {unit} {version})");
        }
        Ok(())
    }
}
