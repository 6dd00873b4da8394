//! Webhook notifications: what an operator must hear about without watching
//! (rollbacks, promotions, an emergency stop, the loop pausing itself, a
//! failed cycle, a serious finding), POSTed as JSON to each subscription.
//!
//! Each subscription has its own queue and worker, so a slow or dead
//! receiver delays only itself; the loop publishes into a broadcast channel
//! and never waits for delivery. A full queue drops (and counts) rather than
//! block. Every delivery is recorded in `webhook_deliveries` with its
//! attempts and last error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kaizen_host::events::{ControlAction, Envelope, Event, Events};
use kaizen_host::store::improvements::ImprovementState;
use kaizen_host::store::{self, Db};
use kaizen_host::tasks::Tasks;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events a subscription can choose.
pub const EVENTS: [&str; 6] = ["rollback", "promotion", "emergency-stop", "self-pause", "cycle-failed", "finding"];

/// Queued notifications per subscription before new ones are dropped.
const QUEUE: usize = 1024;

/// `low` < `medium` < `high` < `critical`.
pub fn severity_rank(s: &str) -> Option<u8> {
    ["low", "medium", "high", "critical"].iter().position(|x| *x == s).map(|i| i as u8)
}

/// One webhook subscription (a `[[webhooks]]` entry of the configuration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL receiving a JSON POST per event.
    pub url: String,
    /// Events wanted (see [`EVENTS`]); all when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Events below this severity are not sent: `low`, `medium`, `high`
    /// (the default) or `critical`. Emergency stops are critical; rollbacks,
    /// promotions, self-pauses and failed cycles high; findings carry their
    /// detector's severity.
    #[serde(default = "high")]
    pub min_severity: String,
    /// Attempts per event before it is recorded as failed.
    #[serde(default = "five")]
    pub max_attempts: u32,
    /// First retry delay; doubled on each retry.
    #[serde(default = "backoff")]
    pub backoff_ms: u64,
    /// Per-attempt timeout.
    #[serde(default = "timeout")]
    pub timeout_ms: u64,
}

fn high() -> String {
    "high".into()
}
fn five() -> u32 {
    5
}
fn backoff() -> u64 {
    500
}
fn timeout() -> u64 {
    5000
}

/// A subscription that cannot work, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum InvalidWebhook {
    #[error("url `{0}` must start with http:// or https://")]
    Url(String),
    #[error("min_severity `{0}` must be low, medium, high or critical")]
    Severity(String),
    #[error("events: unknown event `{0}` (known: {known})", known = EVENTS.join(", "))]
    Event(String),
    #[error("max_attempts must be at least 1")]
    NoAttempts,
}

impl WebhookConfig {
    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), InvalidWebhook> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(InvalidWebhook::Url(self.url.clone()));
        }
        if severity_rank(&self.min_severity).is_none() {
            return Err(InvalidWebhook::Severity(self.min_severity.clone()));
        }
        if let Some(e) = self.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(InvalidWebhook::Event(e.clone()));
        }
        if self.max_attempts == 0 {
            return Err(InvalidWebhook::NoAttempts);
        }
        Ok(())
    }
}

/// A notification as POSTed.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub event: &'static str,
    pub severity: String,
    pub at: i64,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Which notification, if any, a host event is. Each happening is one
/// event, so at most one notification comes of it.
pub fn classify(e: &Envelope) -> Option<Notification> {
    let (event, severity) = match &e.event {
        Event::Rollback { .. } => ("rollback", "high".to_string()),
        Event::ImprovementEnded { state: ImprovementState::Promoted, .. } => ("promotion", "high".into()),
        Event::Control { action: ControlAction::EmergencyStop, .. } => ("emergency-stop", "critical".into()),
        Event::Control { action: ControlAction::SelfPause, .. } => ("self-pause", "high".into()),
        Event::Cycle { failed: true, .. } => ("cycle-failed", "high".into()),
        // A finding is published when it opens or changes state (resolved,
        // acknowledged, snoozed, closed, open again), never when reported
        // again unchanged; `detail.status` says which.
        Event::Finding { severity, .. } => ("finding", severity.clone()),
        _ => return None,
    };
    Some(Notification { event, severity, at: e.at, target: e.target.clone(), detail: e.event.detail() })
}

/// Delivery counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// The running notifier.
pub struct Notifier {
    pub counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Notifier {
    /// Start one worker per subscription (`webhook-worker-N`, N from 1 in
    /// the order of the configuration) and a dispatcher reading `events`
    /// (`webhook-dispatch`), supervised in `tasks`. Each is started again
    /// after a panic: a worker's queue outlives it (only the notification in
    /// hand is lost; its delivery row keeps saying `pending`), and the
    /// dispatcher subscribes again (events while it was down are missed,
    /// as when it lags).
    pub fn start(subscriptions: Vec<WebhookConfig>, events: &Events, db: Db, tasks: &Tasks) -> Notifier {
        let counters = Arc::new(Counters::default());
        let mut handles = Vec::new();
        let mut queues = Vec::new();
        let client = reqwest::Client::builder().user_agent(concat!("kaizen/", env!("CARGO_PKG_VERSION"))).build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("webhooks disabled: cannot build an HTTP client: {e}");
                return Notifier { counters, tasks: handles };
            }
        };
        for (n, sub) in subscriptions.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(QUEUE);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let (s, client, db, counters) = (sub.clone(), client.clone(), db.clone(), counters.clone());
            handles.push(tasks.spawn(format!("webhook-worker-{}", n + 1), move || {
                worker(s.clone(), rx.clone(), client.clone(), db.clone(), counters.clone())
            }));
            queues.push((sub, tx));
        }
        if !queues.is_empty() {
            // Subscribed now, so that nothing published before the task
            // first runs is missed; a restarted run subscribes again.
            let mut first = Some(events.subscribe());
            let (events, c, queues) = (events.clone(), counters.clone(), Arc::new(queues));
            handles.push(tasks.spawn("webhook-dispatch", move || {
                let rx = first.take().unwrap_or_else(|| events.subscribe());
                let (mut rx, c, queues) = (rx, c.clone(), queues.clone());
                async move {
                loop {
                    let e = match rx.recv().await {
                        Ok(e) => e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!("webhooks fell {n} events behind the loop; those were not examined");
                            continue;
                        }
                        Err(_) => break,
                    };
                    let Some(n) = classify(&e) else { continue };
                    for (sub, tx) in queues.iter() {
                        if wants(sub, &n) && tx.try_send(n.clone()).is_err() {
                            c.dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(url = %sub.url, event = n.event, "webhook queue full: notification dropped");
                        }
                    }
                }
                }
            }));
        }
        Notifier { counters, tasks: handles }
    }
}

fn wants(sub: &WebhookConfig, n: &Notification) -> bool {
    (sub.events.is_empty() || sub.events.iter().any(|e| e == n.event))
        && severity_rank(&n.severity).unwrap_or(0) >= severity_rank(&sub.min_severity).unwrap_or(3)
}

async fn worker(
    sub: WebhookConfig,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Notification>>>,
    client: reqwest::Client,
    db: Db,
    counters: Arc<Counters>,
) {
    let mut rx = rx.lock().await;
    while let Some(n) = rx.recv().await {
        let payload = serde_json::to_value(&n).unwrap_or_default();
        let id = match store::deliveries::insert(&db, &sub.url, n.event, &payload).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!("cannot record a webhook delivery: {e}");
                None
            }
        };
        let mut last_error = None;
        let mut attempts = 0;
        while attempts < sub.max_attempts {
            if attempts > 0 {
                let wait = sub.backoff_ms.saturating_mul(1 << (attempts - 1).min(10));
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            attempts += 1;
            let sent = client.post(&sub.url).timeout(Duration::from_millis(sub.timeout_ms)).json(&payload).send().await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    last_error = None;
                    break;
                }
                Ok(r) => last_error = Some(format!("receiver answered {}", r.status())),
                Err(e) if e.is_timeout() => {
                    last_error = Some(format!("receiver did not answer within {} ms (timeout_ms)", sub.timeout_ms))
                }
                Err(e) => last_error = Some(format!("cannot reach receiver: {e}")),
            }
        }
        let status = if last_error.is_none() { "delivered" } else { "failed" };
        match status {
            "delivered" => counters.delivered.fetch_add(1, Ordering::Relaxed),
            _ => {
                tracing::warn!(url = %sub.url, event = n.event, attempts, "webhook delivery failed: {}", last_error.as_deref().unwrap_or(""));
                counters.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        if let Some(id) = id
            && let Err(e) = store::deliveries::update(&db, id, status, attempts as i64, last_error.as_deref()).await
        {
            tracing::warn!("cannot record a webhook delivery: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Event) -> Envelope {
        Envelope { at: 1, target: "calculator".into(), event }
    }

    fn ended(state: ImprovementState) -> Envelope {
        ev(Event::ImprovementEnded { improvement: 4, state, version: "3.0.0".into(), reason: "r".into() })
    }

    fn finding(new: bool, severity: &str) -> Envelope {
        let (kind, priority, summary) = ("slow".to_string(), "high".to_string(), "s".to_string());
        let (status, reason) = if new {
            (kaizen_host::store::findings::FindingStatus::Open, String::new())
        } else {
            (kaizen_host::store::findings::FindingStatus::Resolved, "condition cleared".to_string())
        };
        let (version, previous) = (Some("1.0.0".to_string()), None);
        ev(Event::Finding {
            id: 1,
            kind,
            severity: severity.into(),
            priority,
            summary,
            new,
            status,
            version,
            reason,
            previous,
        })
    }

    #[test]
    fn one_notification_per_happening() {
        let rollback = ev(Event::Rollback {
            from: "3.0.0".into(),
            to: "2.0.0".into(),
            to_sha256: "ab".into(),
            reason: "slow".into(),
            phase: Some(kaizen_host::events::Phase::Canary),
            judgement: None,
            requested_by: None,
        });
        let n = classify(&rollback).unwrap();
        assert_eq!(n.event, "rollback");
        assert_eq!((n.detail["from"].as_str(), n.detail["to"].as_str()), (Some("3.0.0"), Some("2.0.0")));
        assert!(classify(&ended(ImprovementState::RolledBack)).is_none(), "the rollback itself notifies");
        assert!(classify(&ev(Event::Promoted { version: "2".into(), sha256: "ab".into() })).is_none());
        assert_eq!(classify(&ended(ImprovementState::Promoted)).unwrap().event, "promotion");
        let f = classify(&finding(true, "medium")).unwrap();
        let sub = WebhookConfig {
            url: "http://x".into(),
            events: vec![],
            min_severity: "high".into(),
            max_attempts: 1,
            backoff_ms: 1,
            timeout_ms: 1,
        };
        assert!(!wants(&sub, &f), "a medium finding is below a high threshold");
        let resolved = classify(&finding(false, "critical")).expect("a finding's change of state notifies");
        assert_eq!(
            (resolved.detail["status"].as_str(), resolved.detail["reason"].as_str()),
            (Some("resolved"), Some("condition cleared"))
        );
    }
}
