//! Client commands: drive a running host through its HTTP API.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde_json::Value;

use crate::Remote;
use crate::table;

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
    let kept: Value = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .with_context(|| {
            format!("no token: pass --token, set KAIZEN_ADMIN_TOKEN, or point --tokens-from at the host's data directory (no {})", file.display())
        })?;
    kept["admin"].as_str().map(str::to_string).context("tokens.json has no admin token")
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
        let body: Value = res.json().unwrap_or(Value::Null);
        let msg = body["message"].as_str().unwrap_or("");
        let class = body["class"].as_str().map(|c| format!(" [{c}]")).unwrap_or_default();
        bail!("{} {}{class}: {msg}", status.as_u16(), body["code"].as_str().unwrap_or("error"))
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.http.get(format!("{}{path}", self.base)))?.json()?)
    }

    fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Ok(self.send(req)?.json()?)
    }

    fn print_json(&self, v: &Value) -> bool {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        }
        self.json
    }

    pub fn status(&self) -> anyhow::Result<()> {
        let s = self.get("/api/v1/status")?;
        if self.print_json(&s) {
            return Ok(());
        }
        let l = &s["loop"];
        println!("loop: {} — {}", s["state"].as_str().unwrap_or("?"), s["control"]["reason"].as_str().unwrap_or(""));
        println!(
            "  {} cycles, {} opportunities, {} attempted, {} promoted, {} rolled back, {} rollout(s) in flight",
            l["cycles_completed"],
            l["opportunities_detected"],
            l["improvements_attempted"],
            l["improvements_deployed"],
            l["improvements_rolled_back"],
            l["rollouts_in_flight"]
        );
        println!();
        let v = |x: &Value| {
            if x.is_null() {
                "-".to_string()
            } else {
                format!("{} ({})", x["version"].as_str().unwrap_or(""), short(x["sha256"].as_str().unwrap_or("")))
            }
        };
        let rows: Vec<Vec<String>> = s["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                let canary = if x["canary"].is_null() {
                    "-".into()
                } else {
                    format!("{} at {}%", v(&x["canary"]), x["canary"]["percent"])
                };
                vec![
                    x["name"].as_str().unwrap_or("").into(),
                    x["kind"].as_str().unwrap_or("").into(),
                    v(&x["current"]),
                    v(&x["previous"]),
                    canary,
                ]
            })
            .collect();
        table::print(&["SLOT", "KIND", "CURRENT", "PREVIOUS", "CANARY"], &rows);
        let findings: Vec<Vec<String>> = s["recent_findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                ["priority", "target", "kind", "status", "summary"]
                    .iter()
                    .map(|k| f[*k].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        println!();
        if findings.is_empty() {
            println!("no findings");
        } else {
            table::print(&["PRIORITY", "TARGET", "KIND", "STATUS", "SUMMARY"], &findings);
        }
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
        let v: Value = res?.json()?;
        if !self.print_json(&v) {
            let what = match v["result"].as_str() {
                Some("candidate") => "handed to the loop as a candidate (it will be proven and rolled out stepwise)",
                Some("unchanged") => "unchanged: those exact bytes already serve",
                _ => "deployed",
            };
            println!(
                "{} {} {} ({}): {what}",
                v["kind"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or(""),
                v["version"].as_str().unwrap_or(""),
                short(v["sha256"].as_str().unwrap_or(""))
            );
        }
        Ok(())
    }

    pub fn rollback(&self, slot: &str, reason: Option<String>) -> anyhow::Result<()> {
        let body = serde_json::json!({ "reason": reason.unwrap_or_else(|| "operator rollback from the CLI".into()) });
        let v = self.post(&format!("/api/v1/deployments/{slot}/rollback"), Some(body))?;
        if !self.print_json(&v) {
            println!(
                "{slot}: rolled back {} → {} ({})",
                v["from"].as_str().unwrap_or(""),
                v["to"].as_str().unwrap_or(""),
                short(v["to_sha256"].as_str().unwrap_or(""))
            );
        }
        Ok(())
    }

    pub fn control(&self, action: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "reason": format!("{action} from the CLI") });
        let v = self.post(&format!("/api/v1/control/{action}"), Some(body))?;
        if !self.print_json(&v) {
            let state = if v["stopped"] == true {
                "stopped (emergency stop)"
            } else if v["paused"] == true {
                "paused"
            } else {
                "running"
            };
            println!("loop {state}");
        }
        Ok(())
    }

    pub fn cycle(&self) -> anyhow::Result<()> {
        let p = spinner("running a loop cycle");
        let v = self.post("/api/v1/cycles", None);
        p.finish_and_clear();
        let v = v?;
        if self.print_json(&v) {
            return Ok(());
        }
        if let Some(why) = v["skipped"].as_str() {
            println!("cycle {} skipped: {why}", v["id"]);
            return Ok(());
        }
        println!(
            "cycle {}: {} target(s) sampled, {} finding(s) ({} new)",
            v["id"], v["targets_sampled"], v["findings_total"], v["findings_new"]
        );
        for a in v["attempts"].as_array().into_iter().flatten() {
            println!(
                "  attempt on {}: {} {}",
                a["target"].as_str().unwrap_or(""),
                a["candidate"].as_str().unwrap_or("-"),
                a["result"].as_str().unwrap_or("")
            );
        }
        for d in v["denied"].as_array().into_iter().flatten() {
            println!("  denied: {}", d.as_str().unwrap_or(""));
        }
        Ok(())
    }

    pub fn history(&self, slot: &str, limit: i64) -> anyhow::Result<()> {
        let v = self.get(&format!("/api/v1/deployments/{slot}/history?limit={limit}"))?;
        if self.print_json(&v) {
            return Ok(());
        }
        let rows: Vec<Vec<String>> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                vec![
                    time(h["at"].as_i64().unwrap_or(0)),
                    h["state"].as_str().unwrap_or("").into(),
                    short(h["sha256"].as_str().unwrap_or("")),
                    short(h["from_sha"].as_str().unwrap_or("-")),
                    h["reason"].as_str().unwrap_or("").into(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("{slot}: no deployments");
        } else {
            table::print(&["WHEN", "STATE", "SHA256", "FROM", "REASON"], &rows);
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
