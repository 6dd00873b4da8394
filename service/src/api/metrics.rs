//! Prometheus metrics in the text exposition format: unit calls, errors
//! and latency histograms per unit and version, slots, swaps, rollbacks,
//! findings, loop state, telemetry drops, failed store writes, watch folder
//! and webhooks. Swaps, rollbacks and findings are counted in the store,
//! where they are recorded, so they agree with the history and the audit
//! trail (and survive a restart). Readable with the metrics token, which
//! grants nothing else, or the admin token.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use kaizen_host::telemetry::calls::{CallCounts, LATENCY_BUCKETS};

use super::AppState;
use crate::error::ApiResult;
use crate::tokens::Scraper;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.head(name, kind, help);
        let _ = writeln!(self.0, "{name} {value}");
    }
    /// A counter with one series per unit version of `calls`.
    fn per_version(&mut self, name: &str, help: &str, calls: &[CallCounts], value: impl Fn(&CallCounts) -> u64) {
        self.head(name, "counter", help);
        for c in calls {
            let _ = writeln!(self.0, "{name}{{{}}} {}", version_labels(c), value(c));
        }
    }
}

/// The labels of one unit version's series: `unit="…",version="…"`.
fn version_labels(c: &CallCounts) -> String {
    format!("unit=\"{}\",version=\"{}\"", esc(&c.unit), esc(&c.version))
}

/// Prometheus metrics. The metrics token (kept in `tokens.json` beside the
/// others, or `KAIZEN_METRICS_TOKEN`) reads this and nothing else; the
/// admin token reads it too; the invoke token is answered 403.
#[utoipa::path(get, path = "/metrics", tag = "service", security(("metrics" = []), ("admin" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(_: Scraper, State(s): State<AppState>) -> ApiResult<impl IntoResponse> {
    let tallies = kaizen_host::store::tallies::count(&s.host.db).await?;
    let mut o = Out(String::with_capacity(8192));
    let calls = s.host.telemetry.calls().snapshot();

    o.per_version(
        "kaizen_calls_total",
        "Unit calls through the host (one per caller's call, however many attempts), by unit and version.",
        &calls,
        |c| c.calls,
    );
    o.per_version(
        "kaizen_call_attempts_total",
        "Attempts made for unit calls, first attempts, retries and fallbacks included, by unit and version.",
        &calls,
        |c| c.attempts,
    );
    o.per_version(
        "kaizen_calls_recovered_total",
        "Unit calls that failed at first and recovery answered, by unit and version.",
        &calls,
        |c| c.recovered,
    );
    o.per_version(
        "kaizen_calls_refused_total",
        "Callers' calls refused because the unit's circuit was open (not made, so not among kaizen_calls_total), \
         by unit and the version serving.",
        &calls,
        |c| c.refused,
    );
    o.head("kaizen_call_errors_total", "counter", "Failed unit calls, by unit, version and error class.");
    for c in &calls {
        for (class, n) in &c.errors {
            let _ = writeln!(o.0, "kaizen_call_errors_total{{{},class=\"{class}\"}} {n}", version_labels(c));
        }
    }
    o.head("kaizen_call_duration_seconds", "histogram", "Unit call latency, by unit and version.");
    for c in &calls {
        let l = version_labels(c);
        for (b, n) in LATENCY_BUCKETS.iter().zip(&c.buckets) {
            let _ = writeln!(o.0, "kaizen_call_duration_seconds_bucket{{{l},le=\"{b}\"}} {n}");
        }
        let _ = writeln!(o.0, "kaizen_call_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", c.calls);
        let _ = writeln!(o.0, "kaizen_call_duration_seconds_sum{{{l}}} {}", c.sum_secs);
        let _ = writeln!(o.0, "kaizen_call_duration_seconds_count{{{l}}} {}", c.calls);
    }

    o.head("kaizen_slot_info", "gauge", "The version each slot serves (value 1).");
    let slots = s.host.runtime.slots();
    for sl in &slots {
        let cur = sl.current();
        let _ = writeln!(
            o.0,
            "kaizen_slot_info{{slot=\"{}\",kind=\"{}\",version=\"{}\",sha256=\"{}\"}} 1",
            esc(sl.name()),
            kaizen_host::runtime::validate::world_name(sl.kind()),
            esc(cur.version()),
            cur.id()
        );
    }
    o.head("kaizen_canary_percent", "gauge", "Share of a slot's calls routed to its canary.");
    for sl in &slots {
        let pct = sl.serving().canary.as_ref().map_or(0.0, |c| c.percent);
        let _ = writeln!(o.0, "kaizen_canary_percent{{slot=\"{}\"}} {pct}", esc(sl.name()));
    }

    o.one(
        "kaizen_swaps_total",
        "counter",
        "Versions that became a slot's active version (deploys and promotions), as the deployment history records.",
        tallies.swaps,
    );
    o.one(
        "kaizen_rollbacks_total",
        "counter",
        "Rollbacks (by the judge, recovery or an operator), as the deployment history records.",
        tallies.rollbacks,
    );
    o.one(
        "kaizen_findings_total",
        "counter",
        "Finding occurrences recorded (reported again while open counts once; a recurrence after it resolved is a new one).",
        tallies.findings,
    );
    o.one(
        "kaizen_finding_reports_total",
        "counter",
        "Reports of findings by detectors, repeats of an open finding included.",
        tallies.finding_reports,
    );

    let st = s.host.improve.stats();
    let control = s.host.safety.state();
    o.one("kaizen_loop_paused", "gauge", "1 while the loop is paused.", u8::from(control.paused));
    o.one("kaizen_loop_stopped", "gauge", "1 while the emergency stop holds.", u8::from(control.stopped));
    o.one("kaizen_loop_enabled", "gauge", "0 when the global switch is off.", u8::from(control.enabled));
    o.one("kaizen_loop_cycles_total", "counter", "Loop cycles completed.", st.cycles_completed);
    o.one("kaizen_loop_opportunities_total", "counter", "Opportunities detected.", st.opportunities_detected);
    o.one("kaizen_loop_improvements_attempted_total", "counter", "Improvements attempted.", st.improvements_attempted);
    o.one("kaizen_loop_improvements_deployed_total", "counter", "Improvements promoted.", st.improvements_deployed);
    o.one(
        "kaizen_loop_improvements_rolled_back_total",
        "counter",
        "Improvements rolled back.",
        st.improvements_rolled_back,
    );
    o.one("kaizen_loop_improvements_failed_total", "counter", "Improvements that failed.", st.improvements_failed);
    o.one("kaizen_loop_rollouts_in_flight", "gauge", "Rollouts in progress.", st.rollouts_in_flight);
    o.one("kaizen_loop_candidates_queued", "gauge", "Candidates waiting.", st.candidates_queued);
    o.one("kaizen_loop_interval_seconds", "gauge", "Time to the next scheduled cycle.", st.next_interval_secs);

    let tasks = s.host.tasks.list();
    o.head("kaizen_task_panics_total", "counter", "Panics of supervised background tasks, by task.");
    for t in &tasks {
        let _ = writeln!(o.0, "kaizen_task_panics_total{{task=\"{}\"}} {}", esc(&t.name), t.panics);
    }
    o.head("kaizen_task_restarts_total", "counter", "Supervised background tasks started again after a panic.");
    for t in &tasks {
        let _ = writeln!(o.0, "kaizen_task_restarts_total{{task=\"{}\"}} {}", esc(&t.name), t.restarts);
    }
    o.head("kaizen_task_up", "gauge", "1 while a supervised background task runs, 0 while it is down.");
    for t in &tasks {
        let _ = writeln!(o.0, "kaizen_task_up{{task=\"{}\"}} {}", esc(&t.name), u8::from(!t.is_down()));
    }

    let t = s.host.telemetry.counters();
    o.one("kaizen_telemetry_recorded_total", "counter", "Executions recorded.", t.recorded);
    o.one("kaizen_telemetry_dropped_total", "counter", "Executions dropped because the writer was behind.", t.dropped);
    o.one("kaizen_telemetry_written_total", "counter", "Executions committed.", t.written);
    o.one("kaizen_telemetry_write_errors_total", "counter", "Failed telemetry writes.", t.write_errors);

    o.head(
        "kaizen_store_write_failures_total",
        "counter",
        "Store writes that failed where the host carried on (logged), by what was written.",
    );
    for (what, n) in s.host.write_failures.snapshot() {
        let _ = writeln!(o.0, "kaizen_store_write_failures_total{{what=\"{what}\"}} {n}");
    }

    if let Some(f) = &s.host.fleet {
        let host = esc(&f.host_id);
        o.head("kaizen_fleet_leader", "gauge", "1 while this host leads the fleet's loop, else 0.");
        let _ = writeln!(o.0, "kaizen_fleet_leader{{host=\"{host}\"}} {}", u8::from(s.host.leadership.is_leader()));
        o.head(
            "kaizen_fleet_epoch",
            "gauge",
            "The fencing epoch of this host's term as leader (0 when it does not lead).",
        );
        let _ = writeln!(o.0, "kaizen_fleet_epoch{{host=\"{host}\"}} {}", s.host.leadership.epoch());
        o.head("kaizen_fleet_applied_revision", "gauge", "The revision of the fleet's desired state this host serves.");
        let _ = writeln!(o.0, "kaizen_fleet_applied_revision{{host=\"{host}\"}} {}", f.applied());
        o.head("kaizen_fleet_in_contact", "gauge", "1 while the fleet's database answers this host's heartbeats.");
        let _ = writeln!(o.0, "kaizen_fleet_in_contact{{host=\"{host}\"}} {}", u8::from(f.in_contact()));
    }
    if let Some(w) = &s.watch {
        use std::sync::atomic::Ordering::Relaxed;
        o.one("kaizen_watch_accepted_total", "counter", "Watch-folder files registered.", w.accepted.load(Relaxed));
        o.one("kaizen_watch_rejected_total", "counter", "Watch-folder files rejected.", w.rejected.load(Relaxed));
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        let wh = &s.webhooks;
        o.one(
            "kaizen_webhook_delivered_total",
            "counter",
            "Webhook notifications delivered.",
            wh.delivered.load(Relaxed),
        );
        o.one(
            "kaizen_webhook_failed_total",
            "counter",
            "Webhook notifications that failed every attempt.",
            wh.failed.load(Relaxed),
        );
        o.one(
            "kaizen_webhook_dropped_total",
            "counter",
            "Webhook notifications dropped (queue full).",
            wh.dropped.load(Relaxed),
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], o.0))
}
