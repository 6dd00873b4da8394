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

use super::Ctx;
use super::candidates::Candidate;
use crate::store::{self, StoreError};

/// What a refill found.
#[derive(Debug, Default)]
pub struct Refilled {
    /// Candidates waiting in memory now.
    pub queued: usize,
    /// Rows that could not be taken up, each in words.
    pub errors: Vec<String>,
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
