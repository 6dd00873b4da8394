//! Shadow: a share of live calls mirrored to the candidate in a task of
//! its own and compared with what the live version answered, class by
//! class ([`super::outcomes`]); a mirrored call that ends differently is run
//! again on both versions there, off the call path. Never answers a caller,
//! never slows one down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::outcomes::{About, Difference, Ending, RateTest, Tally, run, settle};
use super::{ProofStep, ProveConfig};
use crate::invoke::{Invoker, Mirror};
use crate::runtime::{CallError, Plugin};
use crate::store::{Db, executions};

/// What the mirrored calls share with the proof waiting on them.
struct Shared {
    current: Arc<Plugin>,
    candidate: Arc<Plugin>,
    about: About,
    reruns: u32,
    running: AtomicU64,
    /// A difference held on every run: nothing more is mirrored.
    stopped: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tally: Tally,
    failed: Option<Difference>,
}

impl Shared {
    /// Compare one mirrored call.
    async fn compare(&self, request: &[u8], live: Ending) {
        let mirrored = run(&self.candidate, request).await;
        let runs = settle(&self.current, &self.candidate, request, (live, mirrored), self.reruns, false).await;
        let mut st = self.state.lock();
        if st.failed.is_none()
            && let Some(d) = st.tally.add(None, request, &runs, &self.about, false)
        {
            st.failed = Some(d);
            self.stopped.store(true, Ordering::Relaxed);
        }
    }
}

struct Shadow {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    percent: f64,
    concurrency: u64,
    offered: AtomicU64,
}

impl Mirror for Shadow {
    fn offer(&self, request: &[u8], live: &Result<Vec<u8>, CallError>) {
        let n = self.offered.fetch_add(1, Ordering::Relaxed);
        let every = (100.0 / self.percent.clamp(0.01, 100.0)).round() as u64;
        let s = &self.shared;
        if !n.is_multiple_of(every.max(1))
            || s.running.load(Ordering::Relaxed) >= self.concurrency
            || s.stopped.load(Ordering::Relaxed)
        {
            return;
        }
        s.running.fetch_add(1, Ordering::Relaxed);
        let (shared, request, live) = (s.clone(), request.to_vec(), Ending::of(live));
        self.handle.spawn(async move {
            shared.compare(&request, live).await;
            shared.running.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Longest wait, after mirroring stops, for mirrored calls still running.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

pub async fn shadow(
    db: &Db,
    invoker: &Arc<Invoker>,
    current: &Arc<Plugin>,
    candidate: &Arc<Plugin>,
    cfg: &ProveConfig,
    test: RateTest,
    about: &About,
) -> ProofStep {
    let (sv, cv) = (current.version(), candidate.version());
    let shared = Arc::new(Shared {
        current: current.clone(),
        candidate: candidate.clone(),
        about: about.clone(),
        reruns: cfg.reruns,
        running: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        state: Mutex::default(),
    });
    let s = Arc::new(Shadow {
        shared: shared.clone(),
        handle: tokio::runtime::Handle::current(),
        percent: cfg.shadow_percent,
        concurrency: cfg.shadow_concurrency.max(1),
        offered: AtomicU64::new(0),
    });
    // Every call mirrored from now on is written after this row.
    let mark = executions::last_id(db).await.unwrap_or(0);
    invoker.set_mirror(candidate.name(), Some(s));
    let until = Instant::now() + Duration::from_secs(cfg.shadow_secs);
    let decided = |st: &State| st.failed.clone().or_else(|| st.tally.increase(test, sv, cv));
    loop {
        {
            let st = shared.state.lock();
            if decided(&st).is_some() || st.tally.requests >= cfg.shadow_min_calls || Instant::now() >= until {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    invoker.set_mirror(candidate.name(), None);
    let stop = Instant::now();
    while shared.running.load(Ordering::Relaxed) > 0 && stop.elapsed() < SETTLE_WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (failed, tally) = {
        let st = shared.state.lock();
        (decided(&st), st.tally.clone())
    };
    let n = tally.requests;
    if let Some(mut d) = failed {
        if let Some(e) = d.example_mut() {
            // The live call was recorded before it was mirrored: once the
            // recorder has written it, the store knows its sample id.
            invoker.telemetry().recorder().flush().await;
            e.id = executions::newest_with_request(db, candidate.name(), mark, &e.request).await.ok().flatten();
        }
        return ProofStep::new("shadow", "failed", format!("after {n} mirrored call(s): {}", d.words(sv, cv)));
    }
    if n == 0 {
        return ProofStep::new("shadow", "skipped", format!("no live traffic within {} s", cfg.shadow_secs));
    }
    ProofStep::new(
        "shadow",
        "passed",
        format!(
            "{n} mirrored call(s) compared with live {sv}, outcomes compared{}",
            tally.words(cfg.reruns, about, sv, cv)
        ),
    )
}
