//! A built-in traffic generator for the calculator units: a paced stream of
//! calls, a third of them dividing by zero (the bug of the seed story's
//! v1). The demo uses it to show the loop working; tests use it as live
//! traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::invoke::Invoker;
use crate::runtime::types::CallContext;

/// Calls `calculator` from its own thread until dropped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The `i`-th request of the stream.
pub fn calculator_request(i: i64) -> Vec<u8> {
    let (op, b) = match i % 6 {
        0 | 3 => ("div", 0),
        1 => ("div", i % 7 + 1),
        2 | 4 => ("mul", 3),
        _ => ("add", 5),
    };
    serde_json::to_vec(&serde_json::json!({"op": op, "a": i % 1000, "b": b})).expect("JSON request")
}

impl Traffic {
    /// Offer `rate` calls per second (paced, not more).
    pub fn start(invoker: Arc<Invoker>, rate: u64) -> Traffic {
        let (stop, calls) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, c) = (stop.clone(), calls.clone());
        let thread = std::thread::Builder::new()
            .name("kaizen-traffic".into())
            .spawn(move || {
                let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
                let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
                let mut next = Instant::now();
                let mut i = 0i64;
                while !s.load(Ordering::Relaxed) {
                    let _ = invoker.call("calculator", &ctx, &calculator_request(i));
                    c.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    next += period;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
            })
            .expect("spawn traffic thread");
        Traffic { stop, calls, thread: Some(thread) }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Wait until `more` calls beyond the current count were made.
    pub async fn wait_for(&self, more: u64) {
        let target = self.calls() + more;
        while self.calls() < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
