//! A fleet's hosts following the database: every host but the leader
//! serves the desired state the leader wrote (each slot's serving version
//! and canary share, by revision), and every host adopts the control state
//! (pause, emergency stop) whichever host set it.
//!
//! A notification (`LISTEN kaizen_desired, kaizen_control,
//! kaizen_submitted`) starts an application at once (and, on the leader,
//! takes the candidates uploaded to followers and the rollbacks their
//! recovery strategies asked for); a poll every [`RECONCILE_EVERY`] is the backstop
//! for notifications lost while a connection was down.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::host::{Host, HostError};
use crate::runtime::{Plugin, Slot};
use crate::store::deployments::{DeployState, Deployment};
use crate::store::{self, StoreError};

/// How often a host checks for a newer desired state or control state
/// without a notification.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(1);

impl Host {
    /// Bring this host's slots to the desired state in the database when
    /// its revision is newer than the one this host serves. The leader's
    /// slots are the desired state: it applies nothing. Returns the revision
    /// applied, if one was.
    pub async fn apply_desired(&self) -> Result<Option<i64>, HostError> {
        self.apply_desired_as(self.leadership.is_leader()).await
    }

    /// [`Host::apply_desired`] as a follower would, whatever this host's
    /// role: what a new leader does before it resumes the last one's
    /// rollouts, so that it starts from the desired state and not from
    /// slots that lagged behind it.
    pub(crate) async fn catch_up(&self) -> Result<Option<i64>, HostError> {
        self.apply_desired_as(false).await
    }

    async fn apply_desired_as(&self, leading: bool) -> Result<Option<i64>, HostError> {
        let Some(fleet) = &self.fleet else { return Ok(None) };
        let _one_at_a_time = fleet.applying.lock().await;
        // The revision before the rows: rows newer than it are applied
        // again at the next round, never older ones taken as new.
        let revision = fleet.desired_revision().await?;
        if leading {
            fleet.set_applied(revision);
            return Ok(None);
        }
        if revision <= fleet.applied() {
            return Ok(None);
        }
        let mut failed = Vec::new();
        for d in store::deployments::all(&self.db).await? {
            if let Err(e) = self.apply_slot(&d).await {
                failed.push(format!("slot {}: {e}", d.slot));
            }
        }
        if !failed.is_empty() {
            return Err(StoreError::Corrupt(format!("desired state {revision}: {}", failed.join("; "))).into());
        }
        fleet.set_applied(revision);
        Ok(Some(revision))
    }

    /// Serve `d`: its current version, and beside it the sparse arm of a
    /// rollout in progress: the candidate at its share while it is in
    /// canary, or the previous version at the bake's holdback after a
    /// promotion, each with the leader's matched control of the current
    /// version when it has one.
    async fn apply_slot(&self, d: &Deployment) -> Result<(), HostError> {
        let slot = self.runtime.slot(&d.slot);
        let current = self.version(slot.as_deref(), &d.current_sha).await?;
        // After a promotion the sparse arm is the bake's holdback.
        let holdback = d.state == DeployState::Active;
        let sparse = match (d.state, &d.candidate_sha, &d.previous_sha) {
            (DeployState::Canary, Some(c), _) if d.canary_percent > 0.0 => Some((c, d.canary_percent)),
            (DeployState::Active, _, Some(p)) if d.holdback_percent > 0.0 => Some((p, d.holdback_percent)),
            (DeployState::Active, _, None) if d.holdback_percent > 0.0 => {
                let why = format!("slot {}: a {}% holdback without a previous version", d.slot, d.holdback_percent);
                return Err(StoreError::Corrupt(why).into());
            }
            _ => None,
        };
        let sparse = match sparse {
            Some((id, pct)) => Some((self.version(slot.as_deref(), id).await?, pct)),
            None => None,
        };
        let controlled = sparse.is_some() && d.control_percent > 0.0;
        let slot_err = crate::runtime::RuntimeError::from;
        let slot = match slot {
            Some(s) => s,
            None => {
                self.runtime.install(current.clone()).map_err(slot_err)?;
                self.runtime.slot(&d.slot).ok_or_else(|| StoreError::Corrupt(format!("slot {} vanished", d.slot)))?
            }
        };
        self.ship_calls_of(&d.slot, sparse.is_some());
        let serving = slot.serving();
        let same_split = match (&serving.canary, &sparse) {
            (None, None) => true,
            (Some(have), Some((want, pct))) => {
                have.plugin.id() == want.id()
                    && have.percent == *pct
                    && have.control.is_some() == controlled
                    && have.holdback == holdback
            }
            _ => false,
        };
        if serving.current.id() == current.id() && same_split {
            return Ok(());
        }
        // The same matched control as the leader's, so that every host's
        // calls split alike and pool into one judged step; loaded before
        // anything moves, so that a control that cannot be loaded leaves
        // the slot as it was.
        let control = match (&sparse, &serving.canary) {
            (Some(_), Some(have)) if controlled && have.control.as_ref().is_some_and(|k| k.id() == current.id()) => {
                have.control.clone()
            }
            (Some((arm, _)), _) if controlled => {
                let (runtime, of, sparse) = (self.runtime.clone(), current.clone(), arm.clone());
                let copy = tokio::task::spawn_blocking(move || runtime.control_of(&of, &sparse))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("loading a control panicked: {e}")))?;
                Some(copy.map_err(crate::runtime::RuntimeError::from)?)
            }
            _ => None,
        };
        if serving.current.id() != current.id() || sparse.is_none() {
            slot.swap(current.clone()).map_err(slot_err)?;
        }
        if let Some((arm, pct)) = sparse {
            slot.set_split(arm, pct, control, holdback).map_err(slot_err)?;
        }
        tracing::info!(slot = %d.slot, state = %d.state.as_str(), "fleet: applied the leader's desired state");
        Ok(())
    }

    /// Ship the calls of `slot` for the leader's judge while a rollout's
    /// arms split its calls here (`on`), and stop when they do not.
    fn ship_calls_of(&self, slot: &str, on: bool) {
        let Some(fleet) = &self.fleet else { return };
        // A leader judges its own calls where they are made.
        let on = on && !self.leadership.is_leader();
        let listener: Arc<dyn crate::invoke::CallListener> = fleet.shipper.clone();
        let mut slots = fleet.shipper.slots.lock();
        if on && slots.insert(slot.to_string()) {
            self.invoker.listen(slot, listener);
        } else if !on && slots.remove(slot) {
            self.invoker.unlisten(slot, &listener);
        }
    }

    /// The version `id`: one the slot holds already, else loaded from this
    /// host's stores, its bytes fetched from the database first if need be.
    async fn version(&self, slot: Option<&Slot>, id: &str) -> Result<Arc<Plugin>, HostError> {
        if let Some(known) = slot.and_then(|s| s.versions().into_iter().find(|p| p.id() == id)) {
            return Ok(known);
        }
        self.load_fetched(id).await
    }

    /// Take the control state in the database as this host's when another
    /// host changed it. Returns whether it did.
    pub async fn adopt_control(&self) -> Result<bool, HostError> {
        let Some(fleet) = &self.fleet else { return Ok(false) };
        if fleet.control_changed_at().await? == self.safety.state().updated_at {
            return Ok(false);
        }
        Ok(self.safety.adopt(store::control::get(&self.db).await?))
    }
}

/// Ship a follower's calls of the slots in canary every
/// [`crate::fleet::SHIP_EVERY`], for as long as the host lives.
pub(crate) async fn ship(host: Weak<Host>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(crate::fleet::SHIP_EVERY).await;
        let Some(h) = host.upgrade() else { return };
        let Some(fleet) = h.fleet.clone() else { return };
        drop(h);
        match fleet.ship().await {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("fleet: cannot ship calls for the leader's judge: {e}");
            }
            Err(_) => {}
        }
    }
}

/// Follow the database for as long as the host lives: on every
/// notification, and every [`RECONCILE_EVERY`].
pub(crate) async fn follow(host: Weak<Host>) {
    let mut listener = None;
    let mut failing = false;
    loop {
        let Some(h) = host.upgrade() else { return };
        let Some(fleet) = h.fleet.clone() else { return };
        if listener.is_none() {
            listener = fleet.listen().await.map_err(|e| tracing::warn!("fleet: cannot listen: {e}")).ok();
        }
        // The control state first: an emergency stop reaches this host
        // even while its slots cannot follow the desired state.
        let round = async {
            let adopted = h.adopt_control().await;
            h.apply_desired().await?;
            if h.leadership.is_leader() {
                h.take_submissions(&fleet).await;
                h.take_rollback_requests(&fleet).await;
            } else {
                h.forward_rollback_requests(&fleet).await;
            }
            adopted
        };
        let result = round.await;
        fleet.set_caught_up(result.is_ok());
        match result {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("fleet: following the desired state again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("fleet: cannot apply the desired state (serving the last applied): {e}");
            }
            Err(_) => {}
        }
        drop(h);
        match listener.as_mut() {
            Some(l) => {
                if let Ok(Err(e)) = tokio::time::timeout(RECONCILE_EVERY, l.recv()).await {
                    tracing::warn!("fleet: notifications lost: {e}");
                    listener = None;
                }
            }
            None => tokio::time::sleep(RECONCILE_EVERY).await,
        }
    }
}
