//! Presets: coherent bundles of the loop's pace and the safety limits, so
//! that an operator picks a posture (`safety.preset = "conservative"`)
//! instead of tuning eight keys that only make sense together. A preset
//! sits between the built-in defaults and the configuration file: any key
//! set in the file, the environment or a flag wins over it. Per target
//! (`[safety.targets.NAME] preset = …`) a preset sets that target's limits
//! on top of the global ones.
//!
//! Without a preset the built-in defaults apply; they are paced for trying
//! Kaizen out (a cycle every 30 s). The presets are paced for production:
//! cycles days apart (conservative), daily (default) or every few hours
//! (aggressive).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A named bundle of settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Weekly cycles, one change at a time, a 5 % judge threshold, every
    /// proof step, two hours of bake.
    Conservative,
    /// Daily cycles, two at a time, 10 %, one hour of bake.
    Default,
    /// Cycles every six hours, five at a time, 15 %, 30 minutes of bake.
    Aggressive,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Conservative => "conservative",
            Preset::Default => "default",
            Preset::Aggressive => "aggressive",
        }
    }

    /// The `safety.limits` keys the preset sets (a partial `Limits`).
    pub fn limits(self) -> Value {
        let (per_cycle, concurrent, min_executions, bake_secs, threshold, proof): (u64, u64, u64, u64, f64, &[&str]) =
            match self {
                Preset::Conservative => (1, 1, 1000, 7200, 0.05, &["validation", "synthetic", "replay", "shadow"]),
                Preset::Default => (2, 2, 200, 3600, 0.10, &["validation", "replay", "shadow"]),
                Preset::Aggressive => (5, 5, 50, 1800, 0.15, &["validation", "replay"]),
            };
        json!({
            "improvements_per_cycle": per_cycle,
            "concurrent_rollouts": concurrent,
            "min_executions": min_executions,
            "bake_secs": bake_secs,
            "required_proof": proof,
            "judge": { "threshold": threshold },
        })
    }

    /// The `loop` keys the preset sets: the cycle interval and the range
    /// the adaptive schedule moves it in, in seconds.
    pub fn pace(self) -> Value {
        let (interval, min, max) = match self {
            Preset::Conservative => (604_800.0, 86_400.0, 1_209_600.0),
            Preset::Default => (86_400.0, 21_600.0, 259_200.0),
            Preset::Aggressive => (21_600.0, 3_600.0, 86_400.0),
        };
        json!({ "interval_secs": interval, "min_interval_secs": min, "max_interval_secs": max })
    }

    /// What a global preset sets, as a configuration document
    /// (`{"loop": …, "safety": {"limits": …}}`).
    pub fn document(self) -> Value {
        json!({ "loop": self.pace(), "safety": { "limits": self.limits() } })
    }
}

/// Overlay `over` onto `base`, objects key by key, everything else replaced.
pub fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                overlay(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::Limits;

    /// Every preset is a valid configuration on its own, and they are
    /// ordered: conservative is slower and stricter than default, default
    /// than aggressive.
    #[test]
    fn presets_are_valid_and_ordered() {
        let mut last: Option<(f64, f64, usize)> = None;
        for p in [Preset::Conservative, Preset::Default, Preset::Aggressive] {
            let mut limits = serde_json::to_value(Limits::default()).unwrap();
            overlay(&mut limits, &p.limits());
            let limits: Limits = serde_json::from_value(limits).unwrap();
            let mut config = crate::host::HostConfig::default();
            config.safety.limits = limits.clone();
            let pace = p.pace();
            config.improve.interval_secs = pace["interval_secs"].as_f64().unwrap();
            config.improve.min_interval_secs = pace["min_interval_secs"].as_f64().unwrap();
            config.improve.max_interval_secs = pace["max_interval_secs"].as_f64().unwrap();
            config.check().unwrap_or_else(|e| panic!("{}: {e}", p.name()));
            let now = (config.improve.interval_secs, limits.judge.threshold, limits.concurrent_rollouts);
            if let Some(before) = last {
                assert!(now.0 < before.0 && now.1 > before.1 && now.2 >= before.2, "{} after {before:?}", p.name());
            }
            last = Some(now);
        }
    }
}
