//! Scoring findings: impact = gain % × affected load × frequency / 100 ×
//! severity multiplier (critical 2, high 1.5, medium 1, low 0.5) × 0.5 when
//! confidence < 0.7 × risk penalty (high 0.5, medium 0.8, low 1) × the
//! category's weight (`loop.category_weights`: security 1.0, reliability
//! 0.9, performance 0.8, quality 0.6, coverage 0.4 by default) × the
//! detector's learned weight. The priority is the impact × the finding's
//! predicted success relative to the loop's overall record
//! ([`super::predict`]), in buckets critical > 5000, high > 1000, medium >
//! 100, else low; findings are ordered by it.
//!
//! Step 3 of the cycle: score what the detectors found, record it
//! (deduplicated against the current occurrence of each finding) and order
//! it by impact. Only a finding that opens is published: one reported
//! again unchanged is news to nobody.

use std::sync::atomic::Ordering;

use super::detect::Reported;
use super::sample::Sample;
use super::{Ctx, CycleReport};
use crate::events::Event;
use crate::runtime::types::{Category, Finding, Risk, Severity};
use crate::store;
use crate::store::findings::{FindingRecord, FindingStatus};

/// Score and record what the detectors reported; returns the recorded
/// findings (each in the state of its current occurrence), highest impact
/// first, and fills the report's counts.
pub async fn prioritize(ctx: &Ctx, found: Vec<Reported>, sample: &Sample, r: &mut CycleReport) -> Vec<FindingRecord> {
    let weights = ctx.weights.lock().clone();
    let predictor = super::predict::load(ctx).await;
    let severities: Vec<Severity> = found.iter().map(|x| x.finding.severity).collect();
    let rows: Vec<FindingRecord> = found
        .into_iter()
        .map(|x| {
            let weight = weights.get(&x.detector).copied().unwrap_or(1.0)
                * ctx.config.category_weights.weight(x.finding.category);
            let target_load = sample.load.get(&x.finding.target).copied().unwrap_or(0) as f64;
            let impact = impact(&x.finding, target_load, 1.0, weight);
            let prediction = predictor.predict(&x.finding.target, &x.finding.kind, None);
            let mut rec = record(&x.finding, x.detector, x.version, impact, sample.at);
            rec.priority = bucket(impact * predictor.weight(&prediction)).into();
            rec.prediction = Some(prediction);
            rec
        })
        .collect();
    // One write transaction for the whole pass.
    let resolve_after = i64::from(ctx.config.resolve_after_cycles);
    let stored = store::findings::upsert_open_all(&ctx.db, &rows, resolve_after).await;
    if let Err(e) = &stored {
        r.detector_errors.push(format!("cannot store findings: {e}"));
    }
    let ids = ctx.check("finding", &format!("{} findings", rows.len()), stored).unwrap_or_default();
    let mut scored: Vec<FindingRecord> = Vec::new();
    for ((rec, severity), u) in rows.into_iter().zip(severities).zip(ids) {
        r.findings_new += usize::from(u.new);
        if u.new && severity == Severity::Critical {
            r.critical_findings += 1;
        }
        let rec = FindingRecord {
            id: u.id,
            status: u.status,
            previous: u.previous,
            reason: u.reason,
            snoozed_until: u.snoozed_until,
            ..rec
        };
        if u.new {
            ctx.publish(&rec.target, Event::finding(&rec, true));
        }
        scored.push(rec);
    }
    // Impact × predicted success (the overall rate divides every finding
    // alike, so the order is that product's).
    let score = |f: &FindingRecord| f.impact * f.prediction.map_or(1.0, |p| predictor.weight(&p));
    scored.sort_by(|a, b| score(b).total_cmp(&score(a)));
    r.ranking = scored
        .iter()
        .take(super::report::RANKED)
        .map(|f| super::report::Ranked {
            finding_id: f.id,
            target: f.target.clone(),
            kind: f.kind.clone(),
            impact: f.impact,
            prediction: f.prediction,
            score: score(f),
            priority: f.priority.clone(),
        })
        .collect();
    *ctx.predictor.lock() = predictor;
    r.findings_total = scored.len();
    r.impact_total = scored.iter().map(|f| f.impact).sum();
    for f in &scored {
        *r.by_priority.entry(f.priority.clone()).or_default() += 1;
    }
    ctx.stats.opportunities.fetch_add(r.findings_new as u64, Ordering::Relaxed);
    scored
}

fn record(f: &Finding, detector: String, version: Option<String>, impact: f64, now: i64) -> FindingRecord {
    FindingRecord {
        id: 0,
        target: f.target.clone(),
        version,
        kind: f.kind.clone(),
        detector,
        severity: severity_name(f.severity).into(),
        confidence: f.confidence,
        summary: f.summary.clone(),
        evidence: f.evidence.iter().map(|e| (e.key.clone(), e.value.clone())).collect(),
        expected_gain_pct: f.expected_gain_pct,
        risk: risk_name(f.risk).into(),
        category: category_name(f.category).into(),
        impact,
        priority: bucket(impact).into(),
        status: FindingStatus::Open,
        reason: String::new(),
        previous: None,
        occurrences: 1,
        first_seen: now,
        last_seen: now,
        missed: 0,
        snoozed_until: None,
        changed_at: now,
        inaction: None,
        prediction: None,
    }
}

pub fn severity_multiplier(s: Severity) -> f64 {
    match s {
        Severity::Critical => 2.0,
        Severity::High => 1.5,
        Severity::Medium => 1.0,
        Severity::Low => 0.5,
    }
}

pub fn risk_penalty(r: Risk) -> f64 {
    match r {
        Risk::High => 0.5,
        Risk::Medium => 0.8,
        Risk::Low => 1.0,
    }
}

/// Impact of `f` on `load` calls, seen `frequency` times, with `weight` the
/// product of its detector's learned weight and its category's weight.
pub fn impact(f: &Finding, load: f64, frequency: f64, weight: f64) -> f64 {
    let confidence = if f.confidence < 0.7 { 0.5 } else { 1.0 };
    f.expected_gain_pct.max(0.0) * load.max(0.0) * frequency.max(1.0) / 100.0
        * severity_multiplier(f.severity)
        * confidence
        * risk_penalty(f.risk)
        * weight.max(0.0)
}

/// The priority bucket of an impact.
pub fn bucket(impact: f64) -> &'static str {
    if impact > 5000.0 {
        "critical"
    } else if impact > 1000.0 {
        "high"
    } else if impact > 100.0 {
        "medium"
    } else {
        "low"
    }
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
    }
}

pub fn category_name(c: Category) -> &'static str {
    match c {
        Category::Security => "security",
        Category::Reliability => "reliability",
        Category::Performance => "performance",
        Category::Quality => "quality",
        Category::Coverage => "coverage",
    }
}

/// How much a finding of each category counts (`[loop.category_weights]`),
/// after the seeds' order: security first, coverage last.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CategoryWeights {
    pub security: f64,
    pub reliability: f64,
    pub performance: f64,
    pub quality: f64,
    pub coverage: f64,
}

impl Default for CategoryWeights {
    fn default() -> Self {
        CategoryWeights { security: 1.0, reliability: 0.9, performance: 0.8, quality: 0.6, coverage: 0.4 }
    }
}

impl CategoryWeights {
    /// The weight of `c`.
    pub fn weight(&self, c: Category) -> f64 {
        match c {
            Category::Security => self.security,
            Category::Reliability => self.reliability,
            Category::Performance => self.performance,
            Category::Quality => self.quality,
            Category::Coverage => self.coverage,
        }
    }

    /// Every category with its weight, for the settings check.
    pub fn all(&self) -> [(&'static str, f64); 5] {
        [
            ("security", self.security),
            ("reliability", self.reliability),
            ("performance", self.performance),
            ("quality", self.quality),
            ("coverage", self.coverage),
        ]
    }
}

pub fn risk_name(r: Risk) -> &'static str {
    match r {
        Risk::High => "high",
        Risk::Medium => "medium",
        Risk::Low => "low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(gain: f64, sev: Severity, conf: f64, risk: Risk) -> Finding {
        Finding {
            target: "t".into(),
            kind: "k".into(),
            severity: sev,
            confidence: conf,
            summary: String::new(),
            evidence: vec![],
            expected_gain_pct: gain,
            risk,
            category: Category::Reliability,
        }
    }

    #[test]
    fn formula_and_buckets() {
        // 50 % × 1000 calls × 1 / 100 = 500; high ×1.5 = 750; low risk.
        let f = finding(50.0, Severity::High, 0.9, Risk::Low);
        assert_eq!(impact(&f, 1000.0, 1.0, 1.0), 750.0);
        assert_eq!(bucket(750.0), "medium");
        // Low confidence halves, medium risk × 0.8, critical × 2.
        let f = finding(50.0, Severity::Critical, 0.5, Risk::Medium);
        assert_eq!(impact(&f, 1000.0, 1.0, 1.0), 400.0);
        assert_eq!(bucket(5000.1), "critical");
        assert_eq!(bucket(1000.1), "high");
        assert_eq!(bucket(100.0), "low");
        // Learned weight scales it.
        assert_eq!(impact(&finding(10.0, Severity::Medium, 0.9, Risk::Low), 100.0, 3.0, 0.5), 15.0);
    }

    #[test]
    fn a_security_finding_outranks_the_same_coverage_finding() {
        let w = CategoryWeights::default();
        let f = finding(50.0, Severity::High, 0.9, Risk::Low);
        let security = impact(&f, 1000.0, 1.0, w.weight(Category::Security));
        let coverage = impact(&f, 1000.0, 1.0, w.weight(Category::Coverage));
        assert_eq!((security, coverage), (750.0, 300.0));
    }
}
