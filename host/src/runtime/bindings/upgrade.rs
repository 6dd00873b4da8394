//! Between contract 0.1 and the current contract: what a 0.1 plugin answers
//! becomes the host's (current) types, and what the host asks becomes the
//! 0.1 shapes. 0.2 only adds to 0.1, so every 0.1 value has a 0.2 value;
//! the additions get their neutral value (no tunables, no capabilities) or,
//! for a finding's category, the one its kind suggests ([`category_of_kind`]).
//!
//! The unit call path (context, typed error) is mapped field by field; the
//! larger records of detection and recovery, identical in both versions,
//! go through their serde form, which costs an allocation per call on
//! paths that run once per detection pass or per failed call.

use super::types as now;
use super::v0_1::types as v1;

/// Map a record between two versions whose serde forms are identical.
fn same_shape<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> B {
    let value = serde_json::to_value(a).expect("contract records serialise");
    serde_json::from_value(value).expect("the record has the same shape in both contract versions")
}

pub fn kind(k: v1::PluginKind) -> now::PluginKind {
    match k {
        v1::PluginKind::Detector => now::PluginKind::Detector,
        v1::PluginKind::Recovery => now::PluginKind::Recovery,
        v1::PluginKind::Unit => now::PluginKind::Unit,
    }
}

pub fn info(i: v1::PluginInfo) -> now::PluginInfo {
    now::PluginInfo {
        name: i.name,
        kind: kind(i.kind),
        version: i.version,
        description: i.description,
        tunables: Vec::new(),
        capabilities: Vec::new(),
    }
}

pub fn error_class(c: v1::ErrorClass) -> now::ErrorClass {
    match c {
        v1::ErrorClass::Timeout => now::ErrorClass::Timeout,
        v1::ErrorClass::Memory => now::ErrorClass::Memory,
        v1::ErrorClass::Trap(t) => now::ErrorClass::Trap(t),
        v1::ErrorClass::InvalidInput => now::ErrorClass::InvalidInput,
        v1::ErrorClass::Dependency => now::ErrorClass::Dependency,
        v1::ErrorClass::Internal => now::ErrorClass::Internal,
        v1::ErrorClass::CircuitOpen => now::ErrorClass::CircuitOpen,
        v1::ErrorClass::Other(o) => now::ErrorClass::Other(o),
    }
}

pub fn unit_error(e: v1::UnitError) -> now::UnitError {
    now::UnitError { error_class: error_class(e.error_class), message: e.message }
}

pub fn call_context(c: &now::CallContext) -> v1::CallContext {
    v1::CallContext { attempt: c.attempt, scope_pct: c.scope_pct, deadline_ms: c.deadline_ms }
}

pub fn detection_input(i: &now::DetectionInput) -> v1::DetectionInput {
    same_shape(i)
}

pub fn failure(f: &now::Failure) -> v1::Failure {
    same_shape(f)
}

pub fn action(a: v1::RecoveryAction) -> now::RecoveryAction {
    same_shape(&a)
}

pub fn finding(f: v1::Finding) -> now::Finding {
    let category = category_of_kind(&f.kind);
    let severity = same_shape(&f.severity);
    let risk = same_shape(&f.risk);
    let evidence = f.evidence.into_iter().map(|e| now::Evidence { key: e.key, value: e.value }).collect();
    now::Finding {
        target: f.target,
        kind: f.kind,
        severity,
        confidence: f.confidence,
        summary: f.summary,
        evidence,
        expected_gain_pct: f.expected_gain_pct,
        risk,
        category,
    }
}

/// The category of a finding from a 0.1 detector, which cannot say: read
/// from the words of its kind (`latency-regression` is about performance,
/// `secret-in-config` about security), reliability when none match — the
/// concern of every 0.1 detector Kaizen bundled.
pub fn category_of_kind(kind: &str) -> now::Category {
    let has = |words: &[&str]| words.iter().any(|w| kind.contains(w));
    if has(&["security", "vuln", "secret", "cve", "auth", "inject"]) {
        now::Category::Security
    } else if has(&["latency", "throughput", "slow", "memory", "cpu", "perf"]) {
        now::Category::Performance
    } else if has(&["coverage", "untested"]) {
        now::Category::Coverage
    } else if has(&["quality", "lint", "smell", "complex"]) {
        now::Category::Quality
    } else {
        now::Category::Reliability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_keeps_every_field_and_gets_a_category_from_its_kind() {
        let old = v1::Finding {
            target: "calculator".into(),
            kind: "latency-regression".into(),
            severity: v1::Severity::High,
            confidence: 0.9,
            summary: "p95 up".into(),
            evidence: vec![v1::Evidence { key: "p95_ms".into(), value: "12".into() }],
            expected_gain_pct: 30.0,
            risk: v1::Risk::Medium,
        };
        let new = finding(old);
        assert_eq!(new.severity, now::Severity::High);
        assert_eq!(new.risk, now::Risk::Medium);
        assert_eq!(new.category, now::Category::Performance);
        assert_eq!(new.evidence[0].value, "12");
        assert_eq!(category_of_kind("low-success-rate"), now::Category::Reliability);
        assert_eq!(category_of_kind("secret-in-config"), now::Category::Security);
    }

    #[test]
    fn recovery_actions_and_failures_map_both_ways() {
        let a = v1::RecoveryAction::RetryReducedScope(v1::ReducedScope { delay_ms: 5, scope_pct: 50 });
        assert_eq!(action(a), now::RecoveryAction::RetryReducedScope(now::ReducedScope { delay_ms: 5, scope_pct: 50 }));
        let f = now::Failure {
            target: "t".into(),
            version: "1.0.0".into(),
            error_class: now::ErrorClass::Other("x".into()),
            message: "m".into(),
            attempt: 2,
            elapsed_ms: 3,
            remaining_ms: 4,
            recent: vec![now::RecentOutcome {
                age_ms: 1,
                ok: false,
                error_class: Some(now::ErrorClass::Trap("t".into())),
                latency_ms: 2.5,
            }],
        };
        let old = failure(&f);
        assert_eq!(old.error_class, v1::ErrorClass::Other("x".into()));
        assert_eq!(old.recent[0].error_class, Some(v1::ErrorClass::Trap("t".into())));
    }
}
