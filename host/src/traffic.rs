//! A built-in traffic generator: for the calculator units, a stream of
//! calls, a third of them dividing by zero (the bug of the seed story's
//! v1); for any unit, a stream of the requests a function makes. The demo
//! uses it to show the loop working; tests use it as live traffic.
//!
//! It is open-loop, as real callers are: calls are issued on a fixed
//! schedule at the stated rate whatever earlier calls take (a retried call
//! does not hold the next one back), by a bounded pool of callers. A call
//! due while every caller is busy is not made, and counted as dropped: the
//! rate offered, the calls made and the calls dropped always add up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::invoke::Invoker;
use crate::runtime::types::CallContext;

/// Calls in flight at most, unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Calls a unit (`calculator` unless told otherwise) from its own threads
/// until dropped.
pub struct Traffic {
    shared: Arc<Shared>,
    rate: u64,
    started: Instant,
    scheduler: Option<std::thread::JoinHandle<()>>,
    callers: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Calls handed to a caller.
    issued: AtomicU64,
    /// Calls ended (answered or failed).
    done: AtomicU64,
    /// Of `done`, calls that returned an error to the generator.
    failed: AtomicU64,
    /// Calls due while every caller was busy: not made.
    dropped: AtomicU64,
    /// Calls in flight.
    busy: AtomicU64,
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

/// The `i`-th request of the batcher unit's stream: batches of 1 024 items,
/// 500 distinct seeds (so replay has many distinct recorded requests).
pub fn batcher_request(i: i64) -> Vec<u8> {
    format!("{{\"seed\": {}}}", i.rem_euclid(500)).into_bytes()
}

/// What the generator did so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficCounts {
    /// Calls made (handed to a caller).
    pub issued: u64,
    /// Of `issued`, calls that have ended.
    pub done: u64,
    /// Of `done`, calls that failed (whatever recovery tried).
    pub failed: u64,
    /// Calls due on the schedule but not made: every caller was busy.
    pub dropped: u64,
}

impl Traffic {
    /// Offer `rate` calls per second, at most [`DEFAULT_CONCURRENCY`] in
    /// flight.
    pub fn start(invoker: Arc<Invoker>, rate: u64) -> Traffic {
        Traffic::with_concurrency(invoker, rate, DEFAULT_CONCURRENCY)
    }

    /// Offer `rate` calls per second on a fixed schedule, at most
    /// `concurrency` in flight.
    pub fn with_concurrency(invoker: Arc<Invoker>, rate: u64, concurrency: usize) -> Traffic {
        Traffic::to(invoker, "calculator", calculator_request, rate, concurrency)
    }

    /// Offer `rate` calls per second to unit `target`, call `i` asking
    /// `request(i)`, at most `concurrency` in flight.
    pub fn to(
        invoker: Arc<Invoker>,
        target: &str,
        request: fn(i64) -> Vec<u8>,
        rate: u64,
        concurrency: usize,
    ) -> Traffic {
        let rate = rate.max(1);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel::<i64>();
        let rx = Arc::new(Mutex::new(rx));
        // The callers' calls run on the runtime that started the traffic,
        // when there is one.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let callers = (0..concurrency.max(1))
            .map(|n| {
                let (shared, rx, invoker, runtime) = (shared.clone(), rx.clone(), invoker.clone(), runtime.clone());
                let target = target.to_string();
                std::thread::Builder::new()
                    .name(format!("kaizen-traffic-{n}"))
                    .spawn(move || {
                        let _entered = runtime.as_ref().map(|h| h.enter());
                        let ctx = CallContext { attempt: 1, scope_pct: None, deadline_ms: 1000 };
                        loop {
                            let Ok(i) = rx.lock().recv() else { break };
                            let request = request(i);
                            let call = invoker.call(&target, &ctx, &request);
                            let failed = crate::runtime::blocking::block_on(call).is_err();
                            shared.failed.fetch_add(u64::from(failed), Ordering::Relaxed);
                            shared.done.fetch_add(1, Ordering::Relaxed);
                            shared.busy.fetch_sub(1, Ordering::Release);
                        }
                    })
                    .expect("spawn a traffic caller")
            })
            .collect();
        let started = Instant::now();
        let s = shared.clone();
        let bound = concurrency.max(1) as u64;
        let scheduler = std::thread::Builder::new()
            .name("kaizen-traffic".into())
            .spawn(move || {
                // Call `i` is due at `started + i / rate`, whatever the calls
                // before it are doing.
                let mut i: u64 = 0;
                while !s.stop.load(Ordering::Relaxed) {
                    let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
                    while i < due {
                        if s.busy.load(Ordering::Acquire) >= bound {
                            s.dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            s.busy.fetch_add(1, Ordering::AcqRel);
                            s.issued.fetch_add(1, Ordering::Relaxed);
                            if tx.send(i as i64).is_err() {
                                return;
                            }
                        }
                        i += 1;
                    }
                    let next = started + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d.min(Duration::from_millis(50)));
                    }
                }
                // Dropping `tx` lets the callers finish what they hold and end.
            })
            .expect("spawn the traffic scheduler");
        Traffic { shared, rate, started, scheduler: Some(scheduler), callers }
    }

    /// The rate offered, in calls per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// When the schedule started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.shared.issued.load(Ordering::Relaxed)
    }

    /// The `i`-th request of the batcher unit's stream: batches of 1 024 items,
    /// 500 distinct seeds (so replay has many distinct recorded requests).
    pub fn batcher_request(i: i64) -> Vec<u8> {
        format!("{{\"seed\": {}}}", i.rem_euclid(500)).into_bytes()
    }

    /// What the generator did so far.
    pub fn counts(&self) -> TrafficCounts {
        let s = &self.shared;
        TrafficCounts {
            issued: s.issued.load(Ordering::Relaxed),
            done: s.done.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }

    /// Wait until `more` calls beyond the current count have ended.
    pub async fn wait_for(&self, more: u64) {
        let target = self.shared.done.load(Ordering::Relaxed) + more;
        while self.shared.done.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Traffic {
    /// Stop issuing calls and wait for the calls in flight to end.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.scheduler.take() {
            let _ = t.join();
        }
        for t in self.callers.drain(..) {
            let _ = t.join();
        }
    }
}
