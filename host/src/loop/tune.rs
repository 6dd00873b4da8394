//! Config candidates: the serving module of a unit with some of its
//! declared tunables changed. Whoever proposes one — an operator (`kaizen
//! tune`, `POST /api/v1/units/{unit}/tune`) or an improver — it is checked
//! here against the unit's declarations and the operator's policy
//! (`[loop.tuning.UNIT]`), then proven, canaried and judged like a new
//! module version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::runtime::types::{PluginKind, Setting, Tunable, TunableType, TunableValue};
use crate::runtime::validate::{check_value, type_name, value_text};
use crate::runtime::{ConfigVersion, Plugin, Runtime};

/// What the operator lets the loop and improvers change on one unit:
/// `[loop.tuning.UNIT] allow = ["chunk_size"]` (absent: every declared
/// canary-safe tunable) and `bounds.chunk_size = [16, 1024]` (tighter than
/// the declared bounds; numbers only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuningPolicy {
    pub allow: Option<Vec<String>>,
    pub bounds: HashMap<String, [f64; 2]>,
}

/// Why a config candidate was refused. Each names the unit and the tunable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TuneError {
    #[error("no unit named `{0}`")]
    NoSuchUnit(String),
    #[error("`{unit}` declares no tunables (a unit declares them in its self-description, contract 0.2)")]
    NoTunables { unit: String },
    #[error("`{name}` is not a tunable of `{unit}` (its tunables: {declared})")]
    NotTunable { unit: String, name: String, declared: String },
    #[error("`{name}` of `{unit}` is not safe to canary (it changes the unit's answers); the host never changes it")]
    NotCanarySafe { unit: String, name: String },
    #[error("`{name}` of `{unit}` is not in loop.tuning.{unit}.allow ({allowed})")]
    NotAllowed { unit: String, name: String, allowed: String },
    #[error("`{name}` of `{unit}`: value {why}")]
    Invalid { unit: String, name: String, why: String },
    #[error("`{name}` of `{unit}`: value {value} is outside loop.tuning.{unit}.bounds ({min} to {max})")]
    OutsidePolicy { unit: String, name: String, value: String, min: f64, max: f64 },
    #[error("`{unit}` already serves with these values: nothing to try")]
    NoChange { unit: String },
    #[error("`{name}` is set twice")]
    Twice { name: String },
    #[error("cannot keep the config version: {0}")]
    Storage(String),
}

/// The value each of `plugin`'s tunables has now: its config version's,
/// else the operator's configuration, else the declared default.
pub fn current_values(plugin: &Plugin) -> Vec<(Tunable, TunableValue)> {
    plugin
        .info()
        .tunables
        .iter()
        .map(|t| {
            let value =
                plugin.config_value(&t.name).and_then(|text| parse_value(t, text).ok()).unwrap_or(t.default.clone());
            (t.clone(), value)
        })
        .collect()
}

/// The value each of `plugin`'s tunables has without a config version:
/// the operator's configuration, else the declared default.
pub fn module_values(plugin: &Plugin) -> Vec<(Tunable, TunableValue)> {
    plugin
        .info()
        .tunables
        .iter()
        .map(|t| {
            let value = plugin
                .base_config_value(&t.name)
                .and_then(|text| parse_value(t, text).ok())
                .unwrap_or(t.default.clone());
            (t.clone(), value)
        })
        .collect()
}

/// `text` (as an operator writes it: `64`, `0.5`, `true`, `lru`) as a value
/// of `t`'s type, bounds not checked.
pub fn parse_value(t: &Tunable, text: &str) -> Result<TunableValue, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not {}", type_name(&t.type_));
    Ok(match &t.type_ {
        TunableType::Integer(r) => match (text.parse::<i64>(), text.parse::<f64>()) {
            (Ok(v), _) => TunableValue::Integer(v),
            // A whole number past what an integer holds (JSON's
            // 99999999999999999999 arrives as `1e20`) is out of bounds.
            (Err(_), Ok(v)) if v.is_finite() && v.fract() == 0.0 && v > 0.0 => {
                return Err(format!("{text} is above the maximum {}", r.max));
            }
            (Err(_), Ok(v)) if v.is_finite() && v.fract() == 0.0 => {
                return Err(format!("{text} is below the minimum {}", r.min));
            }
            _ => return Err(bad()),
        },
        TunableType::Float(_) => TunableValue::Float(text.parse().map_err(|_| bad())?),
        TunableType::Boolean => TunableValue::Boolean(text.parse().map_err(|_| bad())?),
        TunableType::Choice(_) => TunableValue::Choice(text.to_string()),
    })
}

/// `changes` on `serving`'s tunables as a config candidate: every change
/// names a declared, canary-safe, allowed tunable with a value of its type
/// within the declared bounds and the policy's; the others keep their
/// current values. The settings are kept in the runtime's config store.
pub fn candidate(
    runtime: &Runtime,
    serving: &Arc<Plugin>,
    changes: &[Setting],
    policy: Option<&TuningPolicy>,
) -> Result<Arc<Plugin>, TuneError> {
    let unit = serving.name().to_string();
    if serving.kind() != PluginKind::Unit {
        return Err(TuneError::NoSuchUnit(unit));
    }
    let current = current_values(serving);
    if current.is_empty() {
        return Err(TuneError::NoTunables { unit });
    }
    let mut values: BTreeMap<String, TunableValue> = current.iter().map(|(t, v)| (t.name.clone(), v.clone())).collect();
    for (i, change) in changes.iter().enumerate() {
        if changes[..i].iter().any(|c| c.name == change.name) {
            return Err(TuneError::Twice { name: change.name.clone() });
        }
        let Some((tunable, _)) = current.iter().find(|(t, _)| t.name == change.name) else {
            let declared = current.iter().map(|(t, _)| t.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(TuneError::NotTunable { unit, name: change.name.clone(), declared });
        };
        check_change(&unit, tunable, &change.value, policy)?;
        values.insert(change.name.clone(), change.value.clone());
    }
    let settings: BTreeMap<String, String> = values.iter().map(|(k, v)| (k.clone(), value_text(v))).collect();
    let unchanged = current.iter().all(|(t, v)| settings.get(&t.name) == Some(&value_text(v)));
    if unchanged {
        return Err(TuneError::NoChange { unit });
    }
    runtime.with_config(serving, ConfigVersion::new(settings)).map_err(|e| TuneError::Storage(e.to_string()))
}

fn check_change(
    unit: &str,
    tunable: &Tunable,
    value: &TunableValue,
    policy: Option<&TuningPolicy>,
) -> Result<(), TuneError> {
    let name = tunable.name.clone();
    if !tunable.canary_safe {
        return Err(TuneError::NotCanarySafe { unit: unit.into(), name });
    }
    if let Some(allow) = policy.and_then(|p| p.allow.as_ref())
        && !allow.contains(&name)
    {
        return Err(TuneError::NotAllowed { unit: unit.into(), name, allowed: allow.join(", ") });
    }
    check_value(&tunable.type_, value).map_err(|why| TuneError::Invalid {
        unit: unit.into(),
        name: name.clone(),
        why,
    })?;
    if let Some([min, max]) = policy.and_then(|p| p.bounds.get(&name)).copied() {
        let number = match value {
            TunableValue::Integer(v) => Some(*v as f64),
            TunableValue::Float(v) => Some(*v),
            _ => None,
        };
        if let Some(n) = number
            && !(min..=max).contains(&n)
        {
            return Err(TuneError::OutsidePolicy { unit: unit.into(), name, value: value_text(value), min, max });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::IntegerRange;

    fn chunk() -> Tunable {
        Tunable {
            name: "chunk_size".into(),
            type_: TunableType::Integer(IntegerRange { min: 1, max: 4096 }),
            default: TunableValue::Integer(8),
            unit: String::new(),
            description: String::new(),
            canary_safe: true,
        }
    }

    #[test]
    fn values_are_parsed_by_type_and_checked_against_bounds_and_policy() {
        assert_eq!(parse_value(&chunk(), " 64 "), Ok(TunableValue::Integer(64)));
        assert_eq!(parse_value(&chunk(), "lots"), Err("\"lots\" is not an integer".into()));
        assert_eq!(parse_value(&chunk(), "1e+20"), Err("1e+20 is above the maximum 4096".into()));
        assert_eq!(parse_value(&chunk(), "-1e20"), Err("-1e20 is below the minimum 1".into()));
        assert_eq!(parse_value(&chunk(), "1.5"), Err("\"1.5\" is not an integer".into()));
        let policy = TuningPolicy { allow: None, bounds: HashMap::from([("chunk_size".into(), [16.0, 1024.0])]) };
        assert_eq!(check_change("b", &chunk(), &TunableValue::Integer(64), Some(&policy)), Ok(()));
        let err = check_change("b", &chunk(), &TunableValue::Integer(8), Some(&policy)).unwrap_err();
        assert!(err.to_string().contains("outside loop.tuning.b.bounds (16 to 1024)"), "{err}");
        let err = check_change("b", &chunk(), &TunableValue::Integer(9999), None).unwrap_err();
        assert!(err.to_string().contains("above the maximum 4096"), "{err}");
        let only = TuningPolicy { allow: Some(vec!["cache_entries".into()]), ..TuningPolicy::default() };
        assert!(matches!(
            check_change("b", &chunk(), &TunableValue::Integer(64), Some(&only)),
            Err(TuneError::NotAllowed { .. })
        ));
        let unsafe_knob = Tunable { canary_safe: false, ..chunk() };
        assert!(matches!(
            check_change("b", &unsafe_knob, &TunableValue::Integer(64), None),
            Err(TuneError::NotCanarySafe { .. })
        ));
    }
}
