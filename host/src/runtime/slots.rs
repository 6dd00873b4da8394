//! Slots: one per plugin name, holding the version that serves, an optional
//! weighted canary, and a bounded history of previous versions kept compiled
//! so that a rollback needs no compile.
//!
//! What serves is one `ArcSwap` pointer. A caller loads it once and calls the
//! version it got, so a call that started before a swap finishes on the old
//! version, a call that starts after it uses the new one, and no call ever
//! observes a half-made change.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::bindings::types::PluginKind;
use super::plugin::Plugin;

/// A candidate receiving a share of a slot's calls.
#[derive(Debug, Clone)]
pub struct Canary {
    pub plugin: Arc<Plugin>,
    /// Share of calls, 0.0 to 100.0.
    pub percent: f64,
}

/// What a slot serves at one instant.
#[derive(Debug, Clone)]
pub struct Serving {
    pub current: Arc<Plugin>,
    pub canary: Option<Canary>,
}

/// Errors of slot operations.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SlotError {
    #[error("slot `{slot}` holds {expected:?} plugins; `{name}` {version} is a {got:?}")]
    WrongKind { slot: String, name: String, version: String, expected: PluginKind, got: PluginKind },
    #[error("slot `{slot}` cannot take plugin `{name}`: names differ")]
    WrongName { slot: String, name: String },
    #[error("slot `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    #[error("slot `{0}` has no canary in progress")]
    NoCanary(String),
    #[error("canary share {0} is outside 0-100")]
    BadShare(f64),
}

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub from: Arc<Plugin>,
    pub to: Arc<Plugin>,
}

/// One plugin name's versions.
pub struct Slot {
    name: String,
    kind: PluginKind,
    serving: ArcSwap<Serving>,
    /// Previous versions, newest last. Writers hold this lock for the whole
    /// change so that concurrent swaps and rollbacks serialise.
    history: Mutex<VecDeque<Arc<Plugin>>>,
    depth: usize,
    calls: AtomicU64,
}

impl Slot {
    pub fn new(first: Arc<Plugin>, depth: usize) -> Slot {
        Slot {
            name: first.name().to_string(),
            kind: first.kind(),
            serving: ArcSwap::from_pointee(Serving { current: first, canary: None }),
            history: Mutex::new(VecDeque::new()),
            depth: depth.max(1),
            calls: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// What serves now.
    pub fn serving(&self) -> Arc<Serving> {
        self.serving.load_full()
    }

    /// The version that answers most calls.
    pub fn current(&self) -> Arc<Plugin> {
        self.serving.load().current.clone()
    }

    /// Previous versions, newest first.
    pub fn history(&self) -> Vec<Arc<Plugin>> {
        self.history.lock().iter().rev().cloned().collect()
    }

    /// The version that should answer the next call: the canary for its share
    /// of calls, else the current version. The split is spread by hashing a
    /// call counter, so shares hold exactly over any run of calls yet do not
    /// follow a periodic pattern in the traffic.
    pub fn route(&self) -> Arc<Plugin> {
        let serving = self.serving.load();
        match &serving.canary {
            None => serving.current.clone(),
            Some(c) => {
                let n = self.calls.fetch_add(1, Ordering::Relaxed);
                let bucket = (splitmix(n) % 10_000) as f64;
                if bucket < c.percent * 100.0 { c.plugin.clone() } else { serving.current.clone() }
            }
        }
    }

    fn check(&self, p: &Plugin) -> Result<(), SlotError> {
        if p.kind() != self.kind {
            return Err(SlotError::WrongKind {
                slot: self.name.clone(),
                name: p.name().into(),
                version: p.version().into(),
                expected: self.kind,
                got: p.kind(),
            });
        }
        if p.name() != self.name {
            return Err(SlotError::WrongName { slot: self.name.clone(), name: p.name().into() });
        }
        Ok(())
    }

    fn push_history(&self, history: &mut VecDeque<Arc<Plugin>>, p: Arc<Plugin>) {
        history.retain(|h| h.sha256() != p.sha256());
        history.push_back(p);
        while history.len() > self.depth {
            history.pop_front();
        }
    }

    /// Make `next` the current version at once, ending any canary; the
    /// previous current version goes to the history. Returns it.
    pub fn swap(&self, next: Arc<Plugin>) -> Result<Arc<Plugin>, SlotError> {
        self.check(&next)?;
        let mut history = self.history.lock();
        let prev = self.serving.load_full();
        if prev.current.sha256() == next.sha256() && prev.canary.is_none() {
            return Ok(prev.current.clone());
        }
        self.serving.store(Arc::new(Serving { current: next, canary: None }));
        self.push_history(&mut history, prev.current.clone());
        Ok(prev.current.clone())
    }

    /// Send `percent` of calls to `candidate` (a new canary, or a new share
    /// for the one in progress).
    pub fn set_canary(&self, candidate: Arc<Plugin>, percent: f64) -> Result<(), SlotError> {
        self.check(&candidate)?;
        if !(0.0..=100.0).contains(&percent) || percent.is_nan() {
            return Err(SlotError::BadShare(percent));
        }
        let _history = self.history.lock();
        let current = self.serving.load().current.clone();
        self.serving.store(Arc::new(Serving { current, canary: Some(Canary { plugin: candidate, percent }) }));
        Ok(())
    }

    /// The canary becomes the current version; the old current goes to the
    /// history.
    pub fn promote_canary(&self) -> Result<Arc<Plugin>, SlotError> {
        let mut history = self.history.lock();
        let serving = self.serving.load_full();
        let Some(canary) = &serving.canary else {
            return Err(SlotError::NoCanary(self.name.clone()));
        };
        self.serving.store(Arc::new(Serving { current: canary.plugin.clone(), canary: None }));
        self.push_history(&mut history, serving.current.clone());
        Ok(canary.plugin.clone())
    }

    /// Roll back: a canary in progress is withdrawn (every call returns to the
    /// current version); otherwise the newest previous version serves again.
    /// The version rolled back from is not kept in the history.
    pub fn rollback(&self) -> Result<Rollback, SlotError> {
        let mut history = self.history.lock();
        let serving = self.serving.load_full();
        if let Some(canary) = &serving.canary {
            self.serving.store(Arc::new(Serving { current: serving.current.clone(), canary: None }));
            return Ok(Rollback { from: canary.plugin.clone(), to: serving.current.clone() });
        }
        let Some(prev) = history.pop_back() else {
            return Err(SlotError::NoPrevious(self.name.clone()));
        };
        self.serving.store(Arc::new(Serving { current: prev.clone(), canary: None }));
        Ok(Rollback { from: serving.current.clone(), to: prev })
    }

    /// Put `target` (a version restored from the content-addressed store)
    /// back in service, as a rollback to a specific version.
    pub fn restore(&self, target: Arc<Plugin>) -> Result<Rollback, SlotError> {
        self.check(&target)?;
        let mut history = self.history.lock();
        let serving = self.serving.load_full();
        history.retain(|h| h.sha256() != target.sha256());
        self.serving.store(Arc::new(Serving { current: target.clone(), canary: None }));
        Ok(Rollback { from: serving.current.clone(), to: target })
    }
}

/// A 64-bit mixer (splitmix64's finaliser).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
