//! External telemetry: batches of executions and metrics pushed in JSON or
//! MessagePack. Every record is validated; a batch with any bad record is
//! refused whole, listing each bad record's index and reason, so a client
//! can fix and resend it without creating duplicates of the good ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::executions::{Execution, Outcome};
use crate::store::metrics::Metric;

/// An execution as sent by a client: every field optional here so that a
/// missing one is reported by name and index rather than as a parse error
/// (the document marks the ones a record needs as required).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct IncomingExecution {
    /// The unit (or external service): lowercase letters, digits and `-`.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, pattern = "^[a-z][a-z0-9-]{0,63}$"))]
    pub target: Option<String>,
    /// The version that ran.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1))]
    pub version: Option<String>,
    /// Unix milliseconds, within the retention horizon and at most
    /// `telemetry.max_future_secs` ahead of the host's clock.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = i64, minimum = 0))]
    pub started_at: Option<i64>,
    /// Milliseconds (fractions allowed), 0 up to the longest deadline the
    /// host allows a call.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = f64, minimum = 0.0))]
    pub duration_ms: Option<f64>,
    /// `ok`, `error` (then `error_class` is required) or `rejected`.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, pattern = "^(ok|error|rejected)$"))]
    pub outcome: Option<String>,
    /// With `outcome: error`: why, as the contract's classes name it
    /// (`timeout`, `memory`, `trap`, `dependency`, `internal`, …) or any
    /// class of the service's own.
    pub error_class: Option<String>,
    /// What went wrong, in words (kept with the record).
    pub message: Option<String>,
    /// The request's bytes (a string's UTF-8 bytes in JSON, binary in
    /// MessagePack), kept for replay.
    #[serde(default, with = "serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub request: Option<Vec<u8>>,
}
crate::map_only!(IncomingExecution, "an execution", serialize);

/// A metric sample as sent by a client.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct IncomingMetric {
    /// 1 to 200 bytes.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = String, min_length = 1))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = f64))]
    pub value: Option<f64>,
    /// Unix milliseconds, in the same window as an execution's `started_at`.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = i64))]
    pub at: Option<i64>,
    /// Labels of the sample (`{"region": "eu"}`), strings to strings.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}
crate::map_only!(IncomingMetric, "a metric", serialize);

/// One ingest request body: `{executions, metrics}`, each list optional.
/// Executions are calls of a service the host does not run (or of a unit,
/// recorded elsewhere): the detectors see them like the host's own calls.
/// Metrics are free-form samples handed to the detectors beside them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
// A misspelt list (`execution`) would otherwise be an empty batch answered
// 200 "on disk" with nothing recorded.
#[serde(remote = "Self", deny_unknown_fields)]
pub struct IngestBatch {
    /// Calls: each needs `target`, `version`, `started_at`, `duration_ms`
    /// and `outcome`.
    #[serde(default)]
    pub executions: Vec<IncomingExecution>,
    /// Metric samples: each needs `name`, `value` and `at`.
    #[serde(default)]
    pub metrics: Vec<IncomingMetric>,
}
crate::map_only!(IngestBatch, "a telemetry batch", serialize);

/// Which record was refused and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordError {
    /// `executions` or `metrics`.
    pub list: String,
    pub index: usize,
    pub reason: String,
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
pub enum IngestError {
    /// `what` the body is not: `valid JSON`, `valid MessagePack`, or a
    /// telemetry batch (well-formed, another shape).
    #[error("body is not {what}: {reason}")]
    Undecodable { what: String, reason: String },
    #[error("batch refused: {} bad record(s), first: {}[{}] {}", .0.len(), .0[0].list, .0[0].index, .0[0].reason)]
    BadRecords(Vec<RecordError>),
    #[error("batch of {0} records exceeds the limit of {1}")]
    TooMany(usize, usize),
}

/// Limits applied to incoming records.
///
/// Time bounds keep impossible records out of the aggregates, where they
/// would sit forever: a timestamp further ahead than `max_future_ms` (clock
/// skew; Prometheus refuses samples more than 10 minutes ahead) or older
/// than `max_age_ms` (the retention horizon: retention would delete it at
/// once) is refused, and so is a duration longer than `max_duration_ms`
/// (the longest deadline the host allows a call).
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_records: usize,
    pub max_request_bytes: usize,
    pub max_message_bytes: usize,
    /// How far past the host's clock a timestamp may be, in milliseconds.
    pub max_future_ms: i64,
    /// How far before the host's clock a timestamp may be, in milliseconds.
    pub max_age_ms: i64,
    /// The longest duration an execution may report, in milliseconds.
    pub max_duration_ms: f64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_records: 100_000,
            max_request_bytes: 64 << 10,
            max_message_bytes: 4096,
            max_future_ms: 10 * 60 * 1000,
            max_age_ms: 7 * 24 * 3600 * 1000,
            max_duration_ms: 3600.0 * 1000.0,
        }
    }
}

impl IngestLimits {
    /// Why `at` (Unix ms) is outside the accepted window around `now_ms`.
    fn refuse_time(&self, field: &str, at: i64, now_ms: i64) -> Option<String> {
        if at > now_ms.saturating_add(self.max_future_ms) {
            Some(format!(
                "`{field}` {at} is {} s ahead of the host's clock (at most {} s allowed)",
                at.saturating_sub(now_ms) / 1000,
                self.max_future_ms / 1000
            ))
        } else if at < now_ms.saturating_sub(self.max_age_ms) {
            Some(format!("`{field}` {at} is older than the retention horizon of {} s", self.max_age_ms / 1000))
        } else {
            None
        }
    }
}

/// The wire format of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MessagePack,
}

/// Decode a body.
pub fn decode(body: &[u8], format: Format) -> Result<IngestBatch, IngestError> {
    match format {
        // Well-formed JSON of the wrong shape is not "invalid JSON": say
        // which it is, so the sender looks at the right thing.
        Format::Json => serde_json::from_slice(body).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "a telemetry batch (well-formed JSON of another shape)",
                _ => "valid JSON",
            };
            IngestError::Undecodable { what: what.into(), reason: e.to_string() }
        }),
        Format::MessagePack => rmp_serde::from_slice(body)
            .map_err(|e| IngestError::Undecodable { what: "valid MessagePack".into(), reason: e.to_string() }),
    }
}

fn valid_target(s: &str) -> bool {
    crate::runtime::validate::valid_name(s)
}

/// Validate every record against `limits`, times against the host's clock
/// `now_ms` (Unix ms); all good → the records to store.
pub fn validate(
    batch: IngestBatch,
    limits: &IngestLimits,
    now_ms: i64,
) -> Result<(Vec<Execution>, Vec<Metric>), IngestError> {
    let total = batch.executions.len() + batch.metrics.len();
    if total > limits.max_records {
        return Err(IngestError::TooMany(total, limits.max_records));
    }
    let mut errors = Vec::new();
    let mut execs = Vec::with_capacity(batch.executions.len());
    for (index, e) in batch.executions.into_iter().enumerate() {
        let mut bad = |reason: String| errors.push(RecordError { list: "executions".into(), index, reason });
        let Some(target) = e.target else {
            bad("missing field `target`".into());
            continue;
        };
        if !valid_target(&target) {
            bad(format!("`target` {target:?} is not a valid unit name"));
            continue;
        }
        let Some(version) = e.version.filter(|v| !v.is_empty()) else {
            bad("missing field `version`".into());
            continue;
        };
        let Some(started_at) = e.started_at else {
            bad("missing field `started_at`".into());
            continue;
        };
        if started_at < 0 {
            bad(format!("`started_at` {started_at} is before 1970"));
            continue;
        }
        if let Some(why) = limits.refuse_time("started_at", started_at, now_ms) {
            bad(why);
            continue;
        }
        let Some(duration_ms) = e.duration_ms else {
            bad("missing field `duration_ms`".into());
            continue;
        };
        if !duration_ms.is_finite() || duration_ms < 0.0 {
            bad(format!("`duration_ms` {duration_ms} must be a non-negative number"));
            continue;
        }
        if duration_ms > limits.max_duration_ms {
            bad(format!(
                "`duration_ms` {duration_ms} exceeds the longest deadline the host allows ({} ms)",
                limits.max_duration_ms
            ));
            continue;
        }
        let Some(outcome) = e.outcome else {
            bad("missing field `outcome`".into());
            continue;
        };
        let Some(outcome) = Outcome::parse(&outcome) else {
            bad(format!("unknown `outcome` {outcome:?} (expected ok, error or rejected)"));
            continue;
        };
        if outcome == Outcome::Error && e.error_class.as_deref().is_none_or(str::is_empty) {
            bad("`error_class` is required when `outcome` is error".into());
            continue;
        }
        if let Some(r) = &e.request
            && r.len() > limits.max_request_bytes
        {
            bad(format!("`request` of {} bytes exceeds the {}-byte limit", r.len(), limits.max_request_bytes));
            continue;
        }
        if let Some(m) = &e.message
            && m.len() > limits.max_message_bytes
        {
            bad(format!("`message` of {} bytes exceeds the {}-byte limit", m.len(), limits.max_message_bytes));
            continue;
        }
        execs.push(Execution {
            target,
            version,
            started_at,
            duration_us: (duration_ms * 1000.0).round() as i64,
            outcome,
            error_class: e.error_class,
            message: e.message,
            request: e.request,
        });
    }
    let mut metrics = Vec::with_capacity(batch.metrics.len());
    for (index, m) in batch.metrics.into_iter().enumerate() {
        let mut bad = |reason: String| errors.push(RecordError { list: "metrics".into(), index, reason });
        let Some(name) = m.name.filter(|n| !n.is_empty() && n.len() <= 200) else {
            bad("missing or oversized field `name`".into());
            continue;
        };
        if name.starts_with(super::hourly::RESERVED_PREFIX) {
            bad(format!(
                "`name` {name:?} uses the prefix {:?}, reserved for the host's own rollups",
                super::hourly::RESERVED_PREFIX
            ));
            continue;
        }
        let Some(value) = m.value.filter(|v| v.is_finite()) else {
            bad("missing or non-finite field `value`".into());
            continue;
        };
        let Some(at) = m.at else {
            bad("missing field `at`".into());
            continue;
        };
        if let Some(why) = limits.refuse_time("at", at, now_ms) {
            bad(why);
            continue;
        }
        metrics.push(Metric { name, value, at, tags: m.tags });
    }
    if errors.is_empty() { Ok((execs, metrics)) } else { Err(IngestError::BadRecords(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The host's clock in these tests: a fixed instant, so that records
    /// dated a few ms after 1970 are within the accepted window.
    const NOW: i64 = 1_000;

    fn check(v: serde_json::Value) -> Result<(Vec<Execution>, Vec<Metric>), IngestError> {
        validate(decode(v.to_string().as_bytes(), Format::Json)?, &IngestLimits::default(), NOW)
    }

    #[test]
    fn good_batch_passes() {
        let (e, m) = check(json!({
            "executions": [{"target": "calc", "version": "1.0.0", "started_at": 5, "duration_ms": 1.5, "outcome": "ok", "request": "{}"}],
            "metrics": [{"name": "queue", "value": 3.0, "at": 9, "tags": {"target": "calc"}}]
        }))
        .unwrap();
        assert_eq!(e[0].duration_us, 1500);
        assert_eq!(e[0].request.as_deref(), Some(&b"{}"[..]));
        assert_eq!(m[0].tags["target"], "calc");
    }

    #[test]
    fn every_bad_record_is_named_by_index() {
        let err = check(json!({"executions": [
            {"target": "calc", "version": "1", "started_at": 1, "duration_ms": 1.0, "outcome": "ok"},
            {"version": "1", "started_at": 1, "duration_ms": 1.0, "outcome": "ok"},
            {"target": "calc", "version": "1", "started_at": 1, "duration_ms": -4.0, "outcome": "ok"},
            {"target": "calc", "version": "1", "started_at": 1, "duration_ms": 1.0, "outcome": "meh"},
            {"target": "calc", "version": "1", "started_at": 1, "duration_ms": 1.0, "outcome": "ok", "request": "x".repeat(70_000)},
        ]}))
        .unwrap_err();
        let IngestError::BadRecords(errs) = err else { panic!("{err:?}") };
        let summary: Vec<(usize, &str)> = errs.iter().map(|e| (e.index, e.reason.as_str())).collect();
        assert_eq!(summary.len(), 4, "{summary:?}");
        assert!(summary[0].1.contains("missing field `target`") && summary[0].0 == 1);
        assert!(summary[1].1.contains("non-negative") && summary[1].0 == 2);
        assert!(summary[2].1.contains("unknown `outcome`") && summary[2].0 == 3);
        assert!(summary[3].1.contains("exceeds") && summary[3].0 == 4);
    }

    /// Records dated far ahead, before the retention horizon, or lasting
    /// longer than any deadline would sit in the aggregates forever.
    #[test]
    fn impossible_times_and_durations_are_refused_by_index() {
        let now = 1_700_000_000_000_i64;
        let limits = IngestLimits::default();
        let exec = |started_at: i64, duration_ms: f64| json!({"target": "calc", "version": "1", "started_at": started_at, "duration_ms": duration_ms, "outcome": "ok"});
        let year = 365 * 24 * 3600 * 1000_i64;
        let body = json!({
            "executions": [exec(now, 1.0), exec(now + year, 1.0), exec(i64::MAX, 1.0), exec(now, 1e308),
                           exec(now - 8 * 24 * 3600 * 1000, 1.0), exec(now + 60_000, 1.0)],
            "metrics": [{"name": "q", "value": 1.0, "at": i64::MAX}, {"name": "q", "value": 1.0, "at": now}],
        });
        let err = validate(decode(body.to_string().as_bytes(), Format::Json).unwrap(), &limits, now).unwrap_err();
        let IngestError::BadRecords(errs) = err else { panic!("{err:?}") };
        let refused: Vec<(&str, usize)> = errs.iter().map(|e| (e.list.as_str(), e.index)).collect();
        assert_eq!(
            refused,
            [("executions", 1), ("executions", 2), ("executions", 3), ("executions", 4), ("metrics", 0)]
        );
        assert!(errs[0].reason.contains("ahead of the host's clock"), "{}", errs[0].reason);
        assert!(errs[2].reason.contains("longest deadline"), "{}", errs[2].reason);
        assert!(errs[3].reason.contains("retention horizon"), "{}", errs[3].reason);
    }

    /// `kaizen.*` names are the host's hourly rollups: a pushed point
    /// under them would be read as the history of a target.
    #[test]
    fn metric_names_under_the_reserved_prefix_are_refused() {
        let err = check(json!({"metrics": [
            {"name": "queue", "value": 1.0, "at": 9},
            {"name": "kaizen.hourly.calls", "value": 1.0, "at": 9},
        ]}))
        .unwrap_err();
        let IngestError::BadRecords(errs) = err else { panic!("{err:?}") };
        assert_eq!((errs.len(), errs[0].index), (1, 1));
        assert!(errs[0].reason.contains("\"kaizen.hourly.calls\" uses the prefix \"kaizen.\""), "{}", errs[0].reason);
    }

    #[test]
    fn invalid_messagepack_is_refused_with_a_reason() {
        let err = decode(&[0xc1, 0xff, 0x00], Format::MessagePack).unwrap_err();
        assert!(err.to_string().contains("not valid MessagePack"), "{err}");
    }

    #[test]
    fn malformed_json_and_json_of_another_shape_are_told_apart() {
        let err = decode(b"{\"executions\": [", Format::Json).unwrap_err().to_string();
        assert!(err.starts_with("body is not valid JSON: "), "{err}");
        let err = decode(br#"{"executions": 5}"#, Format::Json).unwrap_err().to_string();
        assert!(err.starts_with("body is not a telemetry batch (well-formed JSON of another shape): "), "{err}");
        assert!(err.contains("invalid type: integer `5`"), "{err}");
        // A misspelt list is named, not taken as an empty batch.
        let err = decode(br#"{"execution": []}"#, Format::Json).unwrap_err().to_string();
        assert!(err.contains("unknown field `execution`, expected `executions` or `metrics`"), "{err}");
    }

    #[test]
    fn messagepack_bytes_round_trip() {
        let batch = IngestBatch {
            executions: vec![IncomingExecution {
                target: Some("calc".into()),
                version: Some("2.0.0".into()),
                started_at: Some(1),
                duration_ms: Some(0.25),
                outcome: Some("error".into()),
                error_class: Some("dependency".into()),
                request: Some(vec![0x81, 0xa1, 0x61, 0x01]),
                ..Default::default()
            }],
            metrics: vec![],
        };
        let body = rmp_serde::to_vec_named(&batch).unwrap();
        let (e, _) = validate(decode(&body, Format::MessagePack).unwrap(), &IngestLimits::default(), NOW).unwrap();
        assert_eq!(e[0].request.as_deref(), Some(&[0x81, 0xa1, 0x61, 0x01][..]));
        assert_eq!(e[0].error_class.as_deref(), Some("dependency"));
    }
}
