//! The candidate queue on disk (`candidate_queue`) and the one in memory
//! the loop works from, kept one: the table is the truth, and memory is
//! made to match it when the host opens or takes the lead, and at the
//! start of every cycle.
//!
//! Why each cycle and not only at a start: in a fleet a leader's election
//! runs beside whatever was under way (an upload answered between the
//! table's read and memory's refill, a list that failed once), and a
//! candidate the table holds must not wait for the next election to be
//! seen. Why under the cycle's lock: the cycle is the only one that takes
//! a candidate out of memory and opens its improvement (which deletes its
//! row in the same transaction); refilled while it runs, memory could hold
//! a candidate that is already being proven.

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::candidates::Candidate;
use crate::events::Event;
use crate::runtime::types::PluginKind;
use crate::store::{self, StoreError};

/// What a refill found.
#[derive(Debug, Default)]
pub struct Refilled {
    /// Candidates waiting in memory now.
    pub queued: usize,
    /// Rows that could not be taken up, each in words.
    pub errors: Vec<String>,
    /// The units with candidates queued, in the order their oldest came:
    /// the order a cycle takes them up in.
    pub units: Vec<String>,
}

/// Make the in-memory queue what the table holds, in its order. A row whose
/// candidate already has an unfinished improvement is left out (that
/// improvement carries it); one whose module the store no longer records is
/// dropped, said in `errors`; one that cannot be loaded for another reason
/// (bytes not fetched yet, the database slow) stays for the next refill.
/// Before it reads the table it writes again the candidates queued again
/// whose write failed ([`Ctx::requeues`]).
/// The caller holds the cycle's lock; this takes the queue's
/// ([`Ctx::queue_lock`]).
pub(super) async fn refill(ctx: &Ctx) -> Result<Refilled, StoreError> {
    let _queue = ctx.queue_lock.lock().await;
    let mut r = Refilled::default();
    // Candidates queued again whose write the store refused last time: their
    // rows first, so the table read below holds them in their place.
    let requeues = std::mem::take(&mut *ctx.requeues.lock());
    for (imp, c) in requeues {
        let (target, version) = (imp.target.clone(), c.plugin.version().to_string());
        if !ctx.write_requeue(imp, c).await {
            r.errors.push(format!(
                "candidate {version} for {target} could not be queued again yet (its improvement stays open); \
                 tried again next cycle"
            ));
        }
    }
    let rows = store::candidate_queue::list(&ctx.db).await?;
    let open = store::improvements::unsettled(&ctx.db).await?;
    let mut waiting = Vec::with_capacity(rows.len());
    for row in rows {
        if open.iter().any(|i| i.target == row.target && i.candidate_sha == row.sha256) {
            continue;
        }
        if !r.units.contains(&row.target) {
            r.units.push(row.target.clone());
        }
        if let Some(c) = ctx.candidates.get(&row.target, &row.sha256) {
            waiting.push(c);
            continue;
        }
        match ctx.runtime.load_stored(&row.sha256) {
            Ok(plugin) => waiting.push(Candidate { plugin, source: row.source }),
            Err(e) => {
                // A config candidate's id is its module's sha256 and its
                // config's, joined by `+`.
                let module = row.sha256.split('+').next().unwrap_or(&row.sha256);
                if store::modules::get(&ctx.db, module).await?.is_none() {
                    r.errors.push(format!(
                        "queued candidate {} for {} is dropped: its module is not in the store ({e})",
                        row.sha256, row.target
                    ));
                    store::candidate_queue::remove(&ctx.db, &row.target, &row.sha256).await?;
                } else {
                    r.errors.push(format!(
                        "queued candidate {} for {} cannot be loaded yet, tried again next cycle: {e}",
                        row.sha256, row.target
                    ));
                }
            }
        }
    }
    r.queued = waiting.len();
    ctx.candidates.replace(waiting);
    Ok(r)
}

/// A candidate waiting in the queue, as an operator sees it
/// (`GET /api/v1/candidates`, `kaizen candidates`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCandidate {
    /// The unit it is for.
    pub target: String,
    /// Its version (empty when its module is not in the store).
    pub version: String,
    /// Its id: the module's sha256, or for a config candidate the module's
    /// and its config's joined by `+`.
    pub sha256: String,
    /// Where it came from: `api`, `watch`, `cli`, an improver's name, ...
    pub source: String,
    /// Unix milliseconds: when it was queued (its place in its unit's line).
    pub queued_at: i64,
    /// Why the loop has not taken it up yet, in words: no such unit is
    /// hosted, an improvement of its unit is under way, earlier candidates
    /// of its unit come first, the safety controller's reason, that other
    /// units' candidates fill the next cycle or the rollout permits first
    /// (`safety.limits.improvements_per_cycle`, `concurrent_rollouts`), or
    /// that the next cycle takes it up.
    pub waiting: String,
}

/// Why a candidate that the safety controller would let start now still
/// waits: `before` candidates of other units start ahead of it in the next
/// cycle, which starts at most `improvements_per_cycle`, and each holds a
/// rollout permit of `concurrent_rollouts`, of which `in_flight` are held.
/// `None` when it is taken up by the next cycle. With none before it, the
/// permits are the safety controller's to refuse (`RolloutLimit`), which
/// the caller asks first.
fn after_others(limits: &crate::safety::Limits, before: usize, in_flight: usize) -> Option<String> {
    if in_flight + before >= limits.concurrent_rollouts {
        let held = if in_flight > 0 { format!(" and {in_flight} rollout(s) are in flight") } else { String::new() };
        return Some(format!(
            "after a rollout ends: {before} candidate(s) of other units start before it{held}, and at most {} \
             rollout(s) run at once (safety.limits.concurrent_rollouts)",
            limits.concurrent_rollouts
        ));
    }
    (before >= limits.improvements_per_cycle).then(|| {
        format!(
            "taken up by a later cycle: {before} candidate(s) of other units start before it, and a cycle starts \
             at most {} (safety.limits.improvements_per_cycle)",
            limits.improvements_per_cycle
        )
    })
}

/// Why withdrawing a queued candidate failed.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawError {
    #[error(
        "no candidate `{which}` is queued for `{target}`{} (`kaizen candidates list` lists them)",
        if .which.len() < MIN_ID_PREFIX { " (a sha256 prefix names one from 6 characters on)" } else { "" }
    )]
    NotQueued { target: String, which: String },
    #[error(
        "`{which}` names {} candidates queued for `{target}` ({}): name one by its version or by more of its id",
        .matches.len(),
        .matches.join(", ")
    )]
    Ambiguous { target: String, which: String, matches: Vec<String> },
    #[error(
        "candidate `{which}` of `{target}` was already taken up by improvement {improvement} ({state}): \
         abort its rollout instead (`kaizen abort {target}`)"
    )]
    TakenUp { target: String, which: String, improvement: i64, state: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How few characters of a sha256 may name a candidate.
const MIN_ID_PREFIX: usize = 6;

impl super::Loop {
    /// Every queued candidate in its place in line (oldest first), with
    /// why it waits. Read from the table, the queue's truth, so a fleet's
    /// follower lists what waits for the leader too.
    pub async fn queued(&self) -> Result<Vec<QueuedCandidate>, StoreError> {
        let ctx = &self.ctx;
        let rows = store::candidate_queue::list(&ctx.db).await?;
        let open = store::improvements::unsettled(&ctx.db).await?;
        let follower = ctx.leadership.check().is_err();
        let next_cycle = self.stats().next_cycle_at;
        // What starts before a candidate the safety controller would let
        // start: the proven candidates parked for a rollout permit (they
        // start first), then the other units' candidates ready before it in
        // the queue's order (the cycle's, see [`super::improve`]). The
        // rollouts in flight hold their permits until they end.
        let parked = ctx.waiting.lock().len();
        let in_flight = ctx.safety.rollouts_in_flight();
        let mut ready = 0;
        let mut ahead: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (version, size) = describe(ctx, &row).await?;
            let earlier = ahead.entry(row.target.clone()).or_default();
            let carried = open.iter().find(|i| i.target == row.target && i.candidate_sha == row.sha256);
            let under_way = open.iter().find(|i| i.target == row.target);
            let hosted = ctx.runtime.slot(&row.target).is_some_and(|s| s.kind() == PluginKind::Unit);
            let waiting = if let Some(i) = carried {
                format!("taken up by improvement {} ({})", i.id, i.state)
            } else if follower {
                "queued for the fleet's leader, whose loop takes it up".to_string()
            } else if !hosted {
                format!(
                    "no unit `{}` is hosted, so nothing serves to judge it against: deploy one, or withdraw it",
                    row.target
                )
            } else if let Some(i) = under_way {
                format!("after improvement {} of `{}` ({}) ends", i.id, row.target, i.state)
            } else if *earlier > 0 {
                format!("behind {} earlier candidate(s) for `{}`", *earlier, row.target)
            } else if let Err(denied) = ctx.safety.may_attempt(&row.target, 0, size, u64::MAX) {
                denied.to_string()
            } else if let Err(denied) = super::attempt::replay_possible(ctx, &row.target).await {
                denied.to_string()
            } else if let Some(later) = after_others(ctx.safety.limits_for(&row.target), parked + ready, in_flight) {
                ready += 1;
                later
            } else {
                ready += 1;
                match next_cycle {
                    Some(at) => {
                        format!("taken up by the next cycle (in {} s)", ((at - store::now_ms()).max(0) + 999) / 1000)
                    }
                    None => "taken up by the next cycle".to_string(),
                }
            };
            if carried.is_none() {
                *earlier += 1;
            }
            out.push(QueuedCandidate {
                target: row.target,
                version,
                sha256: row.sha256,
                source: row.source,
                queued_at: row.queued_at,
                waiting,
            });
        }
        Ok(out)
    }

    /// Take the queued candidate of `target` named by `which` (its
    /// version, or its sha256 or a prefix of at least six characters) out
    /// of the queue, on disk and in memory, audited as done by `actor` for
    /// `reason`. Waits for the cycle in progress, if any, so the candidate
    /// is either withdrawn or already taken up by an improvement
    /// ([`WithdrawError::TakenUp`]), never both.
    pub async fn withdraw(
        &self,
        target: &str,
        which: &str,
        actor: &str,
        reason: &str,
    ) -> Result<QueuedCandidate, WithdrawError> {
        let _no_cycle = self.cycle_lock.lock().await;
        let ctx = &self.ctx;
        let named = |version: &str, sha: &str| {
            version == which || (which.len() >= MIN_ID_PREFIX && sha.starts_with(&which.to_ascii_lowercase()))
        };
        let chosen = {
            let _queue = ctx.queue_lock.lock().await;
            let mut matches = Vec::new();
            for row in store::candidate_queue::list(&ctx.db).await?.into_iter().filter(|r| r.target == target) {
                let (version, _) = describe(ctx, &row).await?;
                if named(&version, &row.sha256) {
                    matches.push((row, version));
                }
            }
            if matches.len() > 1 {
                let matches = matches.iter().map(|(r, v)| format!("{v} {}", &r.sha256[..12.min(r.sha256.len())]));
                return Err(WithdrawError::Ambiguous {
                    target: target.into(),
                    which: which.into(),
                    matches: matches.collect(),
                });
            }
            match matches.pop() {
                Some((row, version)) => {
                    store::candidate_queue::remove(&ctx.db, &row.target, &row.sha256).await?;
                    ctx.candidates.remove(&row.target, &row.sha256);
                    Some((row, version))
                }
                None => None,
            }
        };
        let Some((row, version)) = chosen else {
            let mut taken = None;
            for i in store::improvements::unsettled(&ctx.db).await?.into_iter().filter(|i| i.target == target) {
                let version = store::modules::version_of(&ctx.db, &i.candidate_sha).await?.unwrap_or_default();
                if named(&version, &i.candidate_sha) {
                    taken = Some(i);
                    break;
                }
            }
            return Err(match taken {
                Some(i) => WithdrawError::TakenUp {
                    target: target.into(),
                    which: which.into(),
                    improvement: i.id,
                    state: i.state.to_string(),
                },
                None => WithdrawError::NotQueued { target: target.into(), which: which.into() },
            });
        };
        let event =
            Event::CandidateWithdrawn { version: version.clone(), sha256: row.sha256.clone(), reason: reason.into() };
        ctx.audit.record_event(actor, "candidate-withdrawn", target, event).await;
        Ok(QueuedCandidate {
            target: row.target,
            version,
            sha256: row.sha256,
            source: row.source,
            queued_at: row.queued_at,
            waiting: format!("withdrawn: {reason}"),
        })
    }

    /// Take `id` out of `target`'s queue if it waits there, because an
    /// operator deployed those very bytes directly: left queued, the loop
    /// would take it up only to reject it as the version already serving.
    /// Audited as `candidate-withdrawn` by `actor`; returns whether it was
    /// queued.
    pub async fn dequeue_deployed(&self, target: &str, id: &str, actor: &str) -> Result<bool, StoreError> {
        let ctx = &self.ctx;
        let row = {
            let _queue = ctx.queue_lock.lock().await;
            let queued = store::candidate_queue::list(&ctx.db).await?;
            let Some(row) = queued.into_iter().find(|r| r.target == target && r.sha256 == id) else {
                return Ok(false);
            };
            store::candidate_queue::remove(&ctx.db, target, id).await?;
            ctx.candidates.remove(target, id);
            row
        };
        let (version, _) = describe(ctx, &row).await?;
        let reason = "deployed directly: the version it would have rolled out serves".to_string();
        let event = Event::CandidateWithdrawn { version, sha256: row.sha256, reason };
        ctx.audit.record_event(actor, "candidate-withdrawn", target, event).await;
        Ok(true)
    }
}

/// A queued row's version and size in bytes: from the candidate in memory,
/// else from the module store (a config candidate's module is the part of
/// its id before `+`); empty and 0 when the store has no such module.
async fn describe(ctx: &Ctx, row: &store::candidate_queue::Queued) -> Result<(String, usize), StoreError> {
    if let Some(c) = ctx.candidates.get(&row.target, &row.sha256) {
        return Ok((c.plugin.version().to_string(), c.plugin.size()));
    }
    let module = row.sha256.split('+').next().unwrap_or(&row.sha256);
    Ok(store::modules::get(&ctx.db, module)
        .await?
        .map(|m| (store::modules::versioned_id(&m.version, &row.sha256), usize::try_from(m.size).unwrap_or(0)))
        .unwrap_or_default())
}
