//! Slots: one per plugin name, holding the version that serves, an optional
//! weighted canary, and a bounded history of previous versions kept compiled
//! so that a rollback needs no compile.
//!
//! What serves is one `ArcSwap` pointer. A caller loads it once and calls the
//! version it got, so a call that started before a swap finishes on the old
//! version, a call that starts after it uses the new one, and no call ever
//! observes a half-made change.
//!
//! A rollout *claims* its slot: while a [`Claim`] is held, only the claim
//! moves the slot (its canary split, its promotion, its withdrawal), and a
//! direct swap or rollback is refused with [`SlotError::Owned`] naming the
//! holder. So an operator's deploy cannot be undone by a stale rollout, and
//! a rollout only ever takes back what it installed.

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
    /// A matched control: a separately loaded copy of the current version
    /// that takes [`Canary::control_percent`] of the calls, so that a
    /// rollout's judge compares the canary with an arm that runs as seldom
    /// as it does ([`crate::runtime::Runtime::control_of`]).
    pub control: Option<Arc<Plugin>>,
    /// The sparse arm is the bake's holdback — the version serving before
    /// a promotion, kept for a share of calls — rather than a candidate.
    pub holdback: bool,
}

impl Canary {
    /// The control's share of calls: the canary's, or what is left beside
    /// it when that is less (a canary above 50 %). 0 without a control.
    pub fn control_percent(&self) -> f64 {
        if self.control.is_some() { self.percent.min(100.0 - self.percent) } else { 0.0 }
    }
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
    #[error("a matched control must be a control copy of {of}; got {got}")]
    NotAControl { of: String, got: String },
    #[error("canary share {0} is outside 0-100")]
    BadShare(f64),
    /// A rollout holds the slot; it must end or be aborted first.
    #[error("slot `{slot}` is held by {holder}")]
    Owned { slot: String, holder: String },
    /// The slot no longer serves what the claimant expected.
    #[error("slot `{slot}` serves {serving}, not {expected}")]
    Moved { slot: String, expected: String, serving: String },
    /// A withdrawal found neither the canary nor the current version to be
    /// the claimant's candidate.
    #[error("slot `{slot}` does not serve {candidate}: nothing of this rollout to take back")]
    NotInstalled { slot: String, candidate: String },
}

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub from: Arc<Plugin>,
    pub to: Arc<Plugin>,
    /// The slot's history once `to` serves, newest first (module ids):
    /// what the next rollbacks go back to (empty: nothing to go back to).
    /// The deployment record keeps it, so that a restart restores it too.
    pub chain: Vec<String>,
}

/// A history's module ids, newest first.
fn newest_first(history: &VecDeque<Arc<Plugin>>) -> Vec<String> {
    history.iter().rev().map(|p| p.id().to_string()).collect()
}

/// What writers of a slot hold their lock on.
#[derive(Default)]
struct Guarded {
    /// Previous versions, newest last.
    history: VecDeque<Arc<Plugin>>,
    /// The claim in force: its id and who holds it.
    owner: Option<(u64, String)>,
}

/// One plugin name's versions.
pub struct Slot {
    name: String,
    kind: PluginKind,
    serving: ArcSwap<Serving>,
    /// Writers hold this lock for the whole change so that concurrent swaps,
    /// rollbacks and claims serialise.
    guarded: Mutex<Guarded>,
    depth: usize,
    calls: AtomicU64,
    claims: AtomicU64,
}

impl Slot {
    pub fn new(first: Arc<Plugin>, depth: usize) -> Slot {
        Slot::named(first.name().to_string(), first, depth)
    }

    /// A slot named `name` serving `first`, whatever `first` calls itself
    /// (see `Runtime::install_as`).
    pub(crate) fn named(name: String, first: Arc<Plugin>, depth: usize) -> Slot {
        Slot {
            name,
            kind: first.kind(),
            serving: ArcSwap::from_pointee(Serving { current: first, canary: None }),
            guarded: Mutex::default(),
            depth: depth.max(1),
            calls: AtomicU64::new(0),
            claims: AtomicU64::new(0),
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

    /// Every version the slot holds: current, canary, history.
    pub fn versions(&self) -> Vec<Arc<Plugin>> {
        let serving = self.serving.load();
        let mut all = vec![serving.current.clone()];
        all.extend(serving.canary.as_ref().map(|c| c.plugin.clone()));
        all.extend(serving.canary.as_ref().and_then(|c| c.control.clone()));
        all.extend(self.guarded.lock().history.iter().cloned());
        all
    }

    /// Previous versions, newest first.
    pub fn history(&self) -> Vec<Arc<Plugin>> {
        self.guarded.lock().history.iter().rev().cloned().collect()
    }

    /// What a rollback can go back to once the version `serving` serves,
    /// newest first (module ids): the version serving now and the history,
    /// without `serving`, at most the slot's depth. Right both after a
    /// change (`serving` is current, so this is the history) and before a
    /// promotion that is recorded before it is made (the version serving
    /// now becomes the newest to go back to).
    pub fn rollback_chain(&self, serving: &str) -> Vec<String> {
        let g = self.guarded.lock();
        let current = self.serving.load().current.clone();
        let mut chain: Vec<String> = Vec::with_capacity(self.depth);
        for p in std::iter::once(&current).chain(g.history.iter().rev()) {
            if p.id() != serving && !chain.iter().any(|c| c == p.id()) && chain.len() < self.depth {
                chain.push(p.id().to_string());
            }
        }
        chain
    }

    /// Who holds the slot, if a rollout does.
    pub fn owner(&self) -> Option<String> {
        self.guarded.lock().owner.as_ref().map(|(_, holder)| holder.clone())
    }

    /// The version that should answer the next call: the canary for its share
    /// of calls, its matched control (a copy of the current version) for
    /// the control's share, else the current version. The split is spread
    /// by hashing a call counter, so shares hold exactly over any run of
    /// calls yet do not follow a periodic pattern in the traffic; which arm
    /// a call gets is independent of the call, which is what the judge's
    /// randomization test rests on.
    pub fn route(&self) -> Arc<Plugin> {
        let serving = self.serving.load();
        match &serving.canary {
            None => serving.current.clone(),
            Some(c) => {
                let n = self.calls.fetch_add(1, Ordering::Relaxed);
                let bucket = (splitmix(n) % 10_000) as f64;
                if bucket < c.percent * 100.0 {
                    return c.plugin.clone();
                }
                match &c.control {
                    Some(control) if bucket < (c.percent + c.control_percent()) * 100.0 => control.clone(),
                    _ => serving.current.clone(),
                }
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

    /// Refuse a change by anyone but the claim in force.
    fn unowned(&self, g: &Guarded) -> Result<(), SlotError> {
        match &g.owner {
            Some((_, holder)) => Err(SlotError::Owned { slot: self.name.clone(), holder: holder.clone() }),
            None => Ok(()),
        }
    }

    fn push_history(&self, history: &mut VecDeque<Arc<Plugin>>, p: Arc<Plugin>) {
        history.retain(|h| h.id() != p.id());
        history.push_back(p);
        while history.len() > self.depth {
            history.pop_front();
        }
    }

    /// Make `next` the current version at once, ending any canary; the
    /// previous current version goes to the history. Returns it.
    pub fn swap(&self, next: Arc<Plugin>) -> Result<Arc<Plugin>, SlotError> {
        self.check(&next)?;
        let mut g = self.guarded.lock();
        let prev = self.serving.load_full();
        if prev.current.id() == next.id() && prev.canary.is_none() {
            return Ok(prev.current.clone());
        }
        self.unowned(&g)?;
        // Ending a split around the same current version changes no
        // version: the history (what a rollback goes back to) stays.
        let same = prev.current.id() == next.id();
        self.serving.store(Arc::new(Serving { current: next, canary: None }));
        if !same {
            self.push_history(&mut g.history, prev.current.clone());
        }
        Ok(prev.current.clone())
    }

    /// Send `percent` of calls to `candidate` (a new canary, or a new share
    /// for the one in progress). Refused while a rollout holds the slot.
    pub fn set_canary(&self, candidate: Arc<Plugin>, percent: f64) -> Result<(), SlotError> {
        self.set_split(candidate, percent, None, false)
    }

    /// [`Slot::set_canary`] with a matched `control` (a copy of the current
    /// version) beside it: how a fleet's follower serves the split its
    /// leader's rollout set; `holdback` when the sparse arm is the bake's
    /// holdback ([`Canary::holdback`]).
    pub fn set_split(
        &self,
        candidate: Arc<Plugin>,
        percent: f64,
        control: Option<Arc<Plugin>>,
        holdback: bool,
    ) -> Result<(), SlotError> {
        self.check(&candidate)?;
        if !(0.0..=100.0).contains(&percent) || percent.is_nan() {
            return Err(SlotError::BadShare(percent));
        }
        let g = self.guarded.lock();
        self.unowned(&g)?;
        let current = self.serving.load().current.clone();
        Claim::check_control(control.as_ref(), &current)?;
        self.serving.store(Arc::new(Serving {
            current,
            canary: Some(Canary { plugin: candidate, percent, control, holdback }),
        }));
        Ok(())
    }

    /// The canary becomes the current version; the old current goes to the
    /// history.
    pub fn promote_canary(&self) -> Result<Arc<Plugin>, SlotError> {
        let mut g = self.guarded.lock();
        self.unowned(&g)?;
        self.promote_locked(&mut g)
    }

    fn promote_locked(&self, g: &mut Guarded) -> Result<Arc<Plugin>, SlotError> {
        let serving = self.serving.load_full();
        let Some(canary) = &serving.canary else {
            return Err(SlotError::NoCanary(self.name.clone()));
        };
        self.serving.store(Arc::new(Serving { current: canary.plugin.clone(), canary: None }));
        self.push_history(&mut g.history, serving.current.clone());
        Ok(canary.plugin.clone())
    }

    /// Roll back: a canary in progress is withdrawn (every call returns to the
    /// current version); otherwise the newest previous version serves again.
    /// The version rolled back from is not kept in the history.
    pub fn rollback(&self) -> Result<Rollback, SlotError> {
        let mut g = self.guarded.lock();
        self.unowned(&g)?;
        let history = &mut g.history;
        let serving = self.serving.load_full();
        if let Some(canary) = &serving.canary {
            self.serving.store(Arc::new(Serving { current: serving.current.clone(), canary: None }));
            let chain = newest_first(history);
            return Ok(Rollback { from: canary.plugin.clone(), to: serving.current.clone(), chain });
        }
        let Some(prev) = history.pop_back() else {
            return Err(SlotError::NoPrevious(self.name.clone()));
        };
        self.serving.store(Arc::new(Serving { current: prev.clone(), canary: None }));
        Ok(Rollback { from: serving.current.clone(), to: prev, chain: newest_first(history) })
    }

    /// Put `target` (a version restored from the content-addressed store)
    /// back in service, as a rollback to a specific version.
    pub fn restore(&self, target: Arc<Plugin>) -> Result<Rollback, SlotError> {
        self.check(&target)?;
        let mut g = self.guarded.lock();
        self.unowned(&g)?;
        let serving = self.serving.load_full();
        g.history.retain(|h| h.id() != target.id());
        self.serving.store(Arc::new(Serving { current: target.clone(), canary: None }));
        Ok(Rollback { from: serving.current.clone(), to: target, chain: newest_first(&g.history) })
    }
}

/// A rollout's hold on a slot: while it lives, only it moves the slot.
/// Dropping it releases the slot.
pub struct Claim {
    slot: Arc<Slot>,
    id: u64,
}

impl Slot {
    /// Take the slot for a rollout described by `holder` (shown to whoever
    /// is refused), provided its current version is one of `accept`
    /// (sha256s) and no one else holds it.
    pub fn claim(self: &Arc<Self>, holder: impl Into<String>, accept: &[&str]) -> Result<Claim, SlotError> {
        let mut g = self.guarded.lock();
        self.unowned(&g)?;
        let serving = self.serving.load();
        if !accept.contains(&serving.current.id()) {
            let short: Vec<String> = accept.iter().map(|s| s.chars().take(12).collect()).collect();
            return Err(SlotError::Moved {
                slot: self.name.clone(),
                expected: short.join(" or "),
                serving: serving.current.version().to_string(),
            });
        }
        let id = self.claims.fetch_add(1, Ordering::Relaxed) + 1;
        g.owner = Some((id, holder.into()));
        Ok(Claim { slot: self.clone(), id })
    }
}

impl Claim {
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    fn guarded(&self) -> parking_lot::MutexGuard<'_, Guarded> {
        let g = self.slot.guarded.lock();
        debug_assert!(g.owner.as_ref().is_some_and(|(id, _)| *id == self.id), "a claim outlived its hold");
        g
    }

    /// Serve `baseline` with `percent` of calls going to `candidate`, and,
    /// with a `control` (a copy of `baseline`), as many to the control. The
    /// baseline becomes the current version again if the candidate was
    /// (a rollout resumed after its promotion).
    pub fn split(
        &self,
        baseline: &Arc<Plugin>,
        candidate: &Arc<Plugin>,
        percent: f64,
        control: Option<&Arc<Plugin>>,
    ) -> Result<(), SlotError> {
        let slot = &self.slot;
        slot.check(candidate)?;
        slot.check(baseline)?;
        if !(0.0..=100.0).contains(&percent) || percent.is_nan() {
            return Err(SlotError::BadShare(percent));
        }
        Self::check_control(control, baseline)?;
        let mut g = self.guarded();
        g.history.retain(|h| h.id() != baseline.id());
        let canary = Some(Canary { plugin: candidate.clone(), percent, control: control.cloned(), holdback: false });
        slot.serving.store(Arc::new(Serving { current: baseline.clone(), canary }));
        Ok(())
    }

    /// The canary becomes the current version.
    pub fn promote(&self) -> Result<Arc<Plugin>, SlotError> {
        let mut g = self.guarded();
        self.slot.promote_locked(&mut g)
    }

    /// After the promotion: the candidate serves, `percent` of the calls
    /// stay on `baseline` (the bake's concurrent holdback), and, with a
    /// `control` (a copy of `candidate`), as many go to the control; 0
    /// ends it.
    pub fn holdback(
        &self,
        candidate: &Arc<Plugin>,
        baseline: &Arc<Plugin>,
        percent: f64,
        control: Option<&Arc<Plugin>>,
    ) -> Result<(), SlotError> {
        let slot = &self.slot;
        slot.check(baseline)?;
        if !(0.0..100.0).contains(&percent) || percent.is_nan() {
            return Err(SlotError::BadShare(percent));
        }
        Self::check_control(control, candidate)?;
        let _g = self.guarded();
        let serving = slot.serving.load();
        if serving.current.id() != candidate.id() {
            return Err(SlotError::NotInstalled { slot: slot.name.clone(), candidate: candidate.version().into() });
        }
        let canary = (percent > 0.0).then(|| Canary {
            plugin: baseline.clone(),
            percent,
            control: control.cloned(),
            holdback: true,
        });
        slot.serving.store(Arc::new(Serving { current: candidate.clone(), canary }));
        Ok(())
    }

    /// A control must be a marked copy of the version it stands beside.
    fn check_control(control: Option<&Arc<Plugin>>, of: &Plugin) -> Result<(), SlotError> {
        match control {
            Some(c) if !c.is_control() || c.id() != of.id() => {
                Err(SlotError::NotAControl { of: of.version().into(), got: c.version().into() })
            }
            _ => Ok(()),
        }
    }

    /// Take back what this rollout installed: its canary is withdrawn, or,
    /// once promoted (with or without a holdback), `baseline` serves every
    /// call again. Anything else is not this rollout's to touch.
    pub fn withdraw(&self, candidate: &Arc<Plugin>, baseline: &Arc<Plugin>) -> Result<Rollback, SlotError> {
        let mut g = self.guarded();
        let serving = self.slot.serving.load_full();
        let from = match &serving.canary {
            Some(c) if c.plugin.id() == candidate.id() => c.plugin.clone(),
            _ if serving.current.id() == candidate.id() => serving.current.clone(),
            _ => {
                return Err(SlotError::NotInstalled {
                    slot: self.slot.name.clone(),
                    candidate: candidate.version().to_string(),
                });
            }
        };
        g.history.retain(|h| h.id() != baseline.id() && h.id() != candidate.id());
        self.slot.serving.store(Arc::new(Serving { current: baseline.clone(), canary: None }));
        Ok(Rollback { from, to: baseline.clone(), chain: newest_first(&g.history) })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut g = self.slot.guarded.lock();
        if g.owner.as_ref().is_some_and(|(id, _)| *id == self.id) {
            g.owner = None;
        }
    }
}

/// A 64-bit mixer (splitmix64's finaliser).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
