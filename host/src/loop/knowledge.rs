//! What fixed what: the changes promoted after a finding, per target and
//! finding kind, with what the judge measured and how often the fix held
//! (the finding kind did not come back on the target afterwards). Read from
//! the improvements and findings the store keeps; the fix library improver
//! works from the same history, as the trials it is given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::improvers::effects;
use crate::runtime::Runtime;
use crate::store::improvements::{Improvement, ImprovementState};
use crate::store::{self, Db};

/// Improvements and findings read at most.
const READ_AT_MOST: i64 = 1000;

/// One metric as the judge last measured it on a fix's rollout: both arms
/// in the same period, and the relative change with its confidence bounds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// `p95-ms` or `error-rate`.
    pub metric: String,
    pub candidate: f64,
    pub baseline: f64,
    /// candidate / baseline − 1 (−0.2 is 20 % lower).
    pub change: f64,
    /// The change's confidence bounds; `null` for a bound the judge had not
    /// reached (still infinite) when it decided.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// A change promoted after findings of one kind on one target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub target: String,
    pub finding_kind: String,
    /// `config chunk_size=64, cache_entries=512` or `module <id>`.
    pub change: String,
    /// The promoted version's id (module sha256, `+` config sha256).
    pub id: String,
    /// Who proposed it last: `api`, `watch`, `improver tuner`, …
    pub source: String,
    /// Times it was promoted after a finding of this kind.
    pub promoted: u64,
    /// Of those, the times the finding kind did not come back on the
    /// target afterwards.
    pub held: u64,
    /// Whether it was taken back since its last promotion: a later
    /// rollout of the same change rolled back, or an operator's rollback
    /// away from it.
    pub rolled_back_since: bool,
    /// What the judge measured at its last promotion.
    pub measured: Vec<Measured>,
    /// Unix milliseconds of its last promotion.
    pub last_promoted_at: i64,
}

/// Every fix, optionally only on `target` and for finding `kind`, most
/// often promoted first.
pub async fn fixes(db: &Db, runtime: &Runtime, target: Option<&str>, kind: Option<&str>) -> store::Result<Vec<Fix>> {
    let improvements = store::improvements::list(db, target, READ_AT_MOST).await?;
    let findings = store::findings::list(db, None, READ_AT_MOST).await?;
    let kind_of = |id: i64| findings.iter().find(|f| f.id == id).map(|f| f.kind.clone());
    let recurred = |target: &str, kind: &str, after: i64| {
        findings.iter().any(|f| f.target == target && f.kind == kind && f.first_seen > after)
    };
    let mut out: BTreeMap<(String, String, String), Fix> = BTreeMap::new();
    // Oldest first, so that the last promotion's figures win.
    for i in improvements.iter().rev() {
        let Some(finding_kind) = i.finding_id.and_then(kind_of) else { continue };
        if kind.is_some_and(|k| k != finding_kind) {
            continue;
        }
        let key = (i.target.clone(), finding_kind.clone(), i.candidate_sha.clone());
        match i.state {
            ImprovementState::Promoted => {
                let fix = out.entry(key).or_insert_with(|| Fix {
                    target: i.target.clone(),
                    finding_kind: finding_kind.clone(),
                    change: describe(runtime, i),
                    id: i.candidate_sha.clone(),
                    source: i.source.clone(),
                    promoted: 0,
                    held: 0,
                    rolled_back_since: false,
                    measured: vec![],
                    last_promoted_at: 0,
                });
                fix.promoted += 1;
                fix.held += u64::from(!recurred(&i.target, &finding_kind, i.updated_at));
                fix.rolled_back_since = false;
                fix.source = i.source.clone();
                fix.last_promoted_at = i.updated_at;
                fix.measured = effects(&i.verdicts)
                    .into_iter()
                    .map(|e| Measured {
                        metric: e.metric,
                        candidate: e.candidate,
                        baseline: e.baseline,
                        change: e.change,
                        lower: Some(e.lower).filter(|b| b.is_finite()),
                        upper: Some(e.upper).filter(|b| b.is_finite()),
                    })
                    .collect();
            }
            ImprovementState::RolledBack => {
                if let Some(fix) = out.get_mut(&key) {
                    fix.rolled_back_since = true;
                }
            }
            _ => {}
        }
    }
    // An operator's rollback is no improvement: it is in the slot's history.
    let targets: std::collections::BTreeSet<String> = out.values().map(|f| f.target.clone()).collect();
    for t in targets {
        let history = store::deployments::history(db, &t, READ_AT_MOST).await?;
        for fix in out.values_mut().filter(|f| f.target == t) {
            fix.rolled_back_since |= history.iter().any(|h| {
                h.state == crate::store::deployments::DeployState::RolledBack
                    && h.from_sha.as_deref() == Some(fix.id.as_str())
                    && h.at > fix.last_promoted_at
            });
        }
    }
    let mut fixes: Vec<Fix> = out.into_values().collect();
    fixes.sort_by(|a, b| b.promoted.cmp(&a.promoted).then(b.last_promoted_at.cmp(&a.last_promoted_at)));
    Ok(fixes)
}

/// A promoted improvement's change in words.
fn describe(runtime: &Runtime, i: &Improvement) -> String {
    let same_module = i.baseline_sha.as_deref().and_then(|b| b.split('+').next()) == i.candidate_sha.split('+').next();
    match i.candidate_sha.split_once('+') {
        Some((_, config)) if same_module => match runtime.stored_config(config) {
            Ok(version) => {
                let words: Vec<String> = version.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("config {}", words.join(", "))
            }
            Err(_) => format!("config {config}"),
        },
        _ => format!("module {}", &i.candidate_sha[..i.candidate_sha.len().min(16)]),
    }
}
